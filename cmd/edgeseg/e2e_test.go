package main

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/andybalholm/brotli"

	"github.com/edgeseg/edgeseg/segments/events"
	"github.com/edgeseg/edgeseg/segments/profile"
)

const (
	uaDesktop = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
	uaIPhone  = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)

// stack is the demo origin and edgeseg, started through Main as ops would.
type stack struct {
	t      *testing.T
	url    string
	origin *httptest.Server
	m      *Main
	stderr *lockedBuffer
	stdout *lockedBuffer
	cfg    string
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startStack serves origin (the demo shop when nil) behind edgeseg with
// examples/edgeseg.yaml, after edit changes the YAML text.
func startStack(t *testing.T, origin http.Handler, edit func(string) string, env ...string) *stack {
	t.Helper()
	if origin == nil {
		d, err := NewDemoOrigin("../../examples/site")
		if err != nil {
			t.Fatal(err)
		}
		origin = d
	}
	o := httptest.NewServer(origin)
	t.Cleanup(o.Close)
	dir := t.TempDir()
	raw, err := os.ReadFile("../../examples/edgeseg.yaml")
	if err != nil {
		t.Fatal(err)
	}
	yml := strings.Replace(string(raw), "dir: templates ", "dir: "+mustAbs(t, "../../examples/templates")+" ", 1)
	// The example's mobile-evening segment depends on the time of day;
	// tests must not. It never matches here, so phones get "mobile".
	yml = strings.Replace(yml, `rule: 'device == "mobile" && daypart == "evening"'`, `rule: 'device == "mobile" && daypart == "evening" && hour > 23'`, 1)
	if edit != nil {
		yml = edit(yml)
	}
	cfgPath := filepath.Join(dir, "edgeseg.yaml")
	os.WriteFile(cfgPath, []byte(yml), 0o644)
	m := NewMain()
	s := &stack{t: t, origin: o, m: m, stderr: &lockedBuffer{}, stdout: &lockedBuffer{}, cfg: cfgPath}
	m.Stdout, m.Stderr = s.stdout, s.stderr
	m.Environ = append([]string{"EDGESEG_ORIGIN_URL=" + o.URL, "EDGESEG_LISTEN=127.0.0.1:0", "EDGESEG_LOG_FORMAT=json"}, env...)
	runUntilCleanup(t, m, s.stderr, "serve", "--config", cfgPath)
	s.url = "http://" + m.Addr
	return s
}

// lacks reports each of wants that got, what the test names what, does
// not contain.
func lacks(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(got, want) {
			t.Errorf("%s lacks %q:\n%s", what, want, got)
		}
	}
}

// runUntilCleanup runs the command args on m until the test ends, once it
// listens; stderr is what m writes there, shown if it fails to start.
func runUntilCleanup(t *testing.T, m *Main, stderr fmt.Stringer, args ...string) {
	t.Helper()
	if err := m.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	select {
	case <-m.Ready:
	case err := <-done:
		cancel()
		t.Fatalf("%s: %v\n%s", args[0], err, stderr)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatalf("%s did not start", args[0])
	}
	t.Cleanup(func() {
		cancel()
		<-done
		m.Close()
	})
}

// noHoldouts edits the example config for startStack so that no visitor
// is held out: for tests that check what a segment's members see.
func noHoldouts(y string) string { return strings.ReplaceAll(y, "holdout: 0.1", "holdout: 0") }

// withSink returns the path of an event file in a test directory, and a
// config edit that makes the example config write events there, after
// edits.
func withSink(t *testing.T, edits ...func(string) string) (string, func(string) string) {
	sink := filepath.Join(t.TempDir(), "events.jsonl")
	return sink, func(y string) string {
		for _, e := range edits {
			y = e(y)
		}
		return strings.Replace(y, `sink: "off"`, `sink: "`+sink+`"`, 1)
	}
}

func mustAbs(t *testing.T, p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// browser is a visitor with a cookie jar.
type browser struct {
	t      *testing.T
	s      *stack
	c      *http.Client
	ua     string
	header http.Header
}

func (s *stack) browser(ua string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: s.t, s: s, ua: ua, header: http.Header{},
		c: &http.Client{Jar: jar, Timeout: 10 * time.Second, Transport: &http.Transport{DisableCompression: true},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// page requests path as a browser navigation and returns the response and
// its decoded body.
func (b *browser) page(path string) (*http.Response, string) {
	b.t.Helper()
	req, _ := http.NewRequest("GET", b.s.url+path, nil)
	req.Header.Set("User-Agent", b.ua)
	req.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	req.Header.Set("Sec-Fetch-Dest", "document")
	for k, v := range b.header {
		req.Header[k] = v
	}
	return b.do(req)
}

func (b *browser) do(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s: %v", req.URL, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatalf("%s: %v", req.URL, err)
	}
	return resp, decode(b.t, resp.Header.Get("Content-Encoding"), raw)
}

func decode(t *testing.T, enc string, raw []byte) string {
	t.Helper()
	var r io.Reader
	switch enc {
	case "":
		return string(raw)
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		r = zr
	case "br":
		r = brotli.NewReader(bytes.NewReader(raw))
	case "deflate":
		zr, err := zlib.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("deflate: %v", err)
		}
		r = zr
	default:
		t.Fatalf("unexpected encoding %q", enc)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s body does not decode: %v", enc, err)
	}
	return string(out)
}

// profile visits path and returns the profile cookie it is given.
func (b *browser) profile(path string) *http.Cookie {
	b.t.Helper()
	resp, _ := b.page(path)
	c := profileCookie(resp)
	if c == nil {
		b.t.Fatalf("%s: no profile cookie set", path)
	}
	return c
}

func profileCookie(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == "edgeseg" {
			return c
		}
	}
	return nil
}

func TestBrowsingMakesADealSeeker(t *testing.T) {
	s := startStack(t, nil, nil)
	b := s.browser(uaDesktop)
	resp, body := b.page("/")
	if !strings.Contains(body, "Welcome to the Demo Shop") || strings.Contains(body, "data-edgeseg-segment") {
		t.Fatalf("first visit should see the default hero:\n%s", body)
	}
	c := profileCookie(resp)
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || len(c.Value) > 1200 {
		t.Fatalf("profile cookie: %+v", c)
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "private") || strings.Contains(cc, "public") {
		t.Errorf("a response setting the profile cookie is cacheable by shared caches: %q", cc)
	}
	for i := 0; i < 3; i++ {
		b.page("/category/sale")
	}
	resp, body = b.page("/")
	deal := strings.Contains(body, "Deals picked for you") && strings.Contains(body, `data-edgeseg-segment="deal-seekers"`)
	held := strings.Contains(body, "Welcome to the Demo Shop")
	if !deal && !held {
		t.Fatalf("after three sale pages, neither the deal-seekers hero nor its holdout:\n%s", body)
	}
	metrics := s.get("/_edgeseg/metrics")
	for _, want := range []string{`edgeseg_segment_assignments_total{segment="deal-seekers"`, `edgeseg_requests_total{status="200",personalized=`,
		`edgeseg_cache_hit_ratio{cache="assignment"}`, `edgeseg_cache_hits_total{cache="plans"}`, "edgeseg_request_duration_seconds_bucket", "edgeseg_origin_duration_seconds_bucket"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// The same browser made every request: its User-Agent was classified
	// once and then found in the table.
	if m := regexp.MustCompile(`edgeseg_cache_hits_total\{cache="user_agents"\} (\d+)`).FindStringSubmatch(metrics); m == nil || m[1] == "0" {
		t.Errorf("user agent table hits: %v", m)
	}
	if deal {
		if resp.Header.Get("Cache-Control") != "private, no-cache" || !strings.Contains(resp.Header.Get("Vary"), "Cookie") {
			t.Errorf("personalized page headers: %v", resp.Header)
		}
		if !strings.Contains(body, "SAVE15") || !strings.Contains(body, "Clearance sneakers") {
			t.Errorf("segment data / sidebar block missing")
		}
		if !strings.Contains(body, "<h2>Categories</h2>") || !strings.HasSuffix(strings.TrimSpace(body), "</html>") {
			t.Errorf("page outside the slots damaged")
		}
	}
}

func TestEveryCompressionIsRewrittenAndReencoded(t *testing.T) {
	page := `<!doctype html><html><head><title>t</title></head><body><div data-edgeseg-slot="hero"><p>default</p></div><p>rest ü</p></body></html>`
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("ETag", `"abc"`)
		w.Header().Set("Last-Modified", "Mon, 02 Jan 2026 15:04:05 GMT")
		var buf bytes.Buffer
		enc := r.URL.Query().Get("enc")
		switch enc {
		case "gzip":
			zw := gzip.NewWriter(&buf)
			zw.Write([]byte(page))
			zw.Close()
		case "br":
			bw := brotli.NewWriter(&buf)
			bw.Write([]byte(page))
			bw.Close()
		case "deflate":
			zw := zlib.NewWriter(&buf)
			zw.Write([]byte(page))
			zw.Close()
		default:
			buf.WriteString(page)
		}
		if enc != "" {
			w.Header().Set("Content-Encoding", enc)
		}
		w.Write(buf.Bytes())
	})
	s := startStack(t, origin, nil)
	for _, enc := range []string{"", "gzip", "br", "deflate"} {
		t.Run("enc="+enc, func(t *testing.T) {
			// Pages decoded and re-encoded once are kept (cache.codings):
			// each visitor still gets their own variant, whoever came first.
			var first string
			for i, ua := range []string{uaIPhone, uaDesktop, uaIPhone, uaDesktop, uaIPhone} {
				d := s.browser(ua)
				d.header.Set("Accept-Encoding", "gzip, deflate, br, zstd")
				_, body := d.page("/?enc=" + enc)
				if mobile := strings.Contains(body, "Shop on the go"); mobile != (ua == uaIPhone) || !strings.Contains(body, "rest ü") {
					t.Fatalf("visitor %d (%s): wrong variant:\n%s", i, ua, body)
				}
				if ua == uaIPhone && first != "" && body != first {
					t.Fatalf("visitor %d: the same variant differs:\n%s\n%s", i, body, first)
				}
				if ua == uaIPhone {
					first = body
				}
			}
			b := s.browser(uaIPhone) // mobile: the "mobile" hero
			b.header.Set("Accept-Encoding", "gzip, deflate, br, zstd")
			resp, body := b.page("/?enc=" + enc)
			if !strings.Contains(body, "Shop on the go") || !strings.Contains(body, "rest ü") {
				t.Fatalf("not personalized:\n%s", body)
			}
			if got := resp.Header.Get("Content-Encoding"); got != enc {
				t.Errorf("Content-Encoding %q, want %q", got, enc)
			}
			if resp.Header.Get("Etag") != `W/"abc"` || resp.Header.Get("Last-Modified") != "" {
				t.Errorf("validators not fixed: ETag %q Last-Modified %q", resp.Header.Get("Etag"), resp.Header.Get("Last-Modified"))
			}
		})
	}
}

func TestNoConsentNoCookieDefaultContent(t *testing.T) {
	s := startStack(t, nil, nil)
	b := s.browser(uaDesktop)
	b.header.Set("Sec-GPC", "1")
	for i := 0; i < 4; i++ {
		resp, body := b.page("/category/sale")
		if profileCookie(resp) != nil || len(resp.Header.Values("Set-Cookie")) > 0 {
			t.Fatal("a profile cookie was set without consent")
		}
		_ = body
	}
	// Context segments still apply without consent (context_without_consent).
	m := s.browser(uaIPhone)
	m.header.Set("Sec-GPC", "1")
	resp, body := m.page("/")
	if profileCookie(resp) != nil {
		t.Fatal("cookie without consent")
	}
	if !strings.Contains(body, "Shop on the go") {
		t.Errorf("context segment (mobile) not applied without consent")
	}
	_, body = b.page("/")
	if !strings.Contains(body, "Welcome to the Demo Shop") {
		t.Errorf("behavior segment applied without consent")
	}
}

// TestWithdrawnConsentClearsTheProfile: a visitor who had consented and
// then withdraws it (GPC) gets the profile cookie deleted, on a response
// kept out of shared caches; assets do not carry the deletion, and once it
// is gone nothing more is sent.
func TestWithdrawnConsentClearsTheProfile(t *testing.T) {
	s := startStack(t, nil, nil)
	b := s.browser(uaDesktop)
	for i := 0; i < 3; i++ {
		b.page("/category/sale")
	}
	u, _ := url.Parse(s.url)
	if len(b.c.Jar.Cookies(u)) == 0 {
		t.Fatal("no profile cookie with consent")
	}
	b.header.Set("Sec-GPC", "1")
	req, _ := http.NewRequest("GET", s.url+"/static/style.css", nil)
	if resp, _ := b.do(req); len(resp.Header.Values("Set-Cookie")) > 0 {
		t.Errorf("an asset carries a cookie change: %q", resp.Header.Values("Set-Cookie"))
	}
	resp, body := b.page("/")
	c := profileCookie(resp)
	if c == nil || c.Value != "" || c.MaxAge >= 0 && !c.Expires.Before(time.Now()) {
		t.Fatalf("the profile cookie is not deleted: %q", resp.Header.Values("Set-Cookie"))
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "private") && !strings.Contains(cc, "no-store") {
		t.Errorf("a response deleting a cookie may be kept by a shared cache: Cache-Control %q", cc)
	}
	if !strings.Contains(body, "Welcome to the Demo Shop") {
		t.Errorf("behavior segment applied without consent")
	}
	if len(b.c.Jar.Cookies(u)) != 0 {
		t.Errorf("the client still holds %v", b.c.Jar.Cookies(u))
	}
	if resp, _ := b.page("/"); len(resp.Header.Values("Set-Cookie")) > 0 {
		t.Errorf("a cookie change without a cookie to change: %q", resp.Header.Values("Set-Cookie"))
	}
	if m := s.get("/_edgeseg/metrics"); !strings.Contains(m, "edgeseg_profile_cookies_cleared_total 1\n") {
		t.Errorf("want edgeseg_profile_cookies_cleared_total 1 in:\n%s", m)
	}
}

// TestHeadOfAFilledPage: a HEAD for a page a GET would fill gets the head
// that GET gets (RFC 9110 §9.3.2): kept out of shared caches, varying by
// cookie, and without the origin's Content-Length, which the filled page's
// is not. A HEAD for anything else is answered as the origin answers it.
func TestHeadOfAFilledPage(t *testing.T) {
	s := startStack(t, nil, noHoldouts)
	b := s.browser(uaIPhone)
	get, body := b.page("/")
	if !strings.Contains(body, "Shop on the go") {
		t.Fatalf("GET not filled:\n%s", body)
	}
	head := func(path, dest string) *http.Response {
		req, _ := http.NewRequest(http.MethodHead, s.url+path, nil)
		req.Header.Set("User-Agent", uaIPhone)
		req.Header.Set("Accept", "text/html,*/*;q=0.8")
		req.Header.Set("Sec-Fetch-Dest", dest)
		resp, rest := b.do(req)
		if resp.StatusCode != 200 || rest != "" {
			t.Fatalf("HEAD %s: %d %q", path, resp.StatusCode, rest)
		}
		return resp
	}
	resp := head("/", "document")
	for _, h := range []string{"Cache-Control", "Vary"} {
		if resp.Header.Get(h) != get.Header.Get(h) {
			t.Errorf("HEAD %s %q, GET %q", h, resp.Header.Get(h), get.Header.Get(h))
		}
	}
	if resp.ContentLength != -1 {
		t.Errorf("HEAD of a filled page says its length is %d (the GET's was %d)", resp.ContentLength, len(body))
	}
	want, _ := os.ReadFile("../../examples/site/static/style.css")
	if resp := head("/static/style.css", "style"); resp.ContentLength != int64(len(want)) || resp.Header.Get("Cache-Control") != "public, max-age=3600" {
		t.Errorf("HEAD of an asset: length %d, Cache-Control %q", resp.ContentLength, resp.Header.Get("Cache-Control"))
	}
}

func TestAssetsUntouched(t *testing.T) {
	s := startStack(t, nil, nil)
	b := s.browser(uaIPhone)
	req, _ := http.NewRequest("GET", s.url+"/static/style.css", nil)
	req.Header.Set("User-Agent", uaIPhone)
	req.Header.Set("Accept", "text/css,*/*;q=0.1")
	req.Header.Set("Sec-Fetch-Dest", "style")
	resp, body := b.do(req)
	if resp.StatusCode != 200 || profileCookie(resp) != nil || resp.Header.Get("Cache-Control") != "public, max-age=3600" {
		t.Fatalf("asset: status %d cookie %v cache %q", resp.StatusCode, profileCookie(resp), resp.Header.Get("Cache-Control"))
	}
	want, _ := os.ReadFile("../../examples/site/static/style.css")
	if body != string(want) {
		t.Error("asset body changed")
	}
	// A page fetched as an API call (no navigation signals) is not personalized.
	req, _ = http.NewRequest("GET", s.url+"/", nil)
	req.Header.Set("User-Agent", uaIPhone)
	req.Header.Set("Accept", "*/*")
	resp, body = b.do(req)
	if strings.Contains(body, "data-edgeseg-segment") || profileCookie(resp) != nil {
		t.Error("non-navigation request personalized")
	}
}

func TestBotsGetDefault(t *testing.T) {
	s := startStack(t, nil, nil)
	b := s.browser("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")
	_, body := b.page("/?utm_campaign=promo-x&utm_medium=cpc")
	if strings.Contains(body, "data-edgeseg-segment") {
		t.Fatal("bot got personalized content")
	}
}

func TestBadCookiesGetFreshProfile(t *testing.T) {
	s := startStack(t, nil, nil)
	for name, val := range map[string]string{
		"garbage":  "not-a-jwt",
		"alg none": "eyJhbGciOiJub25lIn0.eyJpZCI6IkFBQUFBQUFBQUFBQSIsImYiOjEsIm4iOjk5fQ.",
		"huge":     strings.Repeat("A", 3900),
		"utf8":     "%FF%FE",
	} {
		t.Run(name, func(t *testing.T) {
			b := s.browser(uaDesktop)
			u, _ := url.Parse(s.url)
			b.c.Jar.SetCookies(u, []*http.Cookie{{Name: "edgeseg", Value: val}})
			resp, body := b.page("/")
			if resp.StatusCode != 200 || !strings.Contains(body, "Demo Shop") {
				t.Fatalf("status %d", resp.StatusCode)
			}
			c := profileCookie(resp)
			if c == nil || c.Value == val {
				t.Fatal("bad cookie not replaced by a fresh profile")
			}
		})
	}
	if !strings.Contains(s.get("/_edgeseg/metrics"), `edgeseg_profile_resets_total{reason="garbled"}`) {
		t.Error("profile resets not counted")
	}
}

// originPage is the page at path as the origin sends it to a phone.
func (s *stack) originPage(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.origin.URL+path, nil)
	req.Header.Set("User-Agent", uaIPhone)
	req.Header.Set("Accept", "text/html")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (s *stack) get(path string) string {
	resp, err := http.Get(s.url + path)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// previewToken mints a preview token for segment with the CLI, as an
// editor would, valid for ttl.
func (s *stack) previewToken(segment, ttl string) string {
	s.t.Helper()
	m := NewMain()
	var out bytes.Buffer
	m.Stdout, m.Stderr = &out, io.Discard
	if err := m.ParseFlags([]string{"preview-token", "--config", s.cfg, "--segment", segment, "--ttl", ttl}); err != nil {
		s.t.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		s.t.Fatal(err)
	}
	return strings.TrimSpace(out.String())
}

// TestPreviewTokenURL: with --url, preview-token prints the page's link
// with the token added to its query, and refuses what is not a page's
// address.
func TestPreviewTokenURL(t *testing.T) {
	run := func(args ...string) (string, error) {
		m := NewMain()
		var out bytes.Buffer
		m.Stdout, m.Stderr = &out, io.Discard
		if err := m.ParseFlags(append([]string{"preview-token", "--config", "../../examples/edgeseg.yaml", "--segment", "deal-seekers"}, args...)); err != nil {
			return "", err
		}
		err := m.Run(context.Background())
		return strings.TrimSpace(out.String()), err
	}
	link, err := run("--url", "https://shop.example/category/sale?sort=price")
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(link)
	if err != nil || u.Host != "shop.example" || u.Path != "/category/sale" || u.Query().Get("sort") != "price" || strings.Count(u.Query().Get("edgeseg_preview"), ".") != 2 {
		t.Fatalf("link %q", link)
	}
	for _, bad := range []string{"shop.example/sale", "/category/sale", "ftp://shop.example/"} {
		if _, err := run("--url", bad); err == nil || !strings.Contains(err.Error(), "want a page's address") {
			t.Errorf("--url %q: %v", bad, err)
		}
	}
}

func TestPreviewAndExplain(t *testing.T) {
	s := startStack(t, nil, nil)
	tok := s.previewToken("luxury-returning", "10m")
	b := s.browser(uaDesktop)
	previewed := func(path string) bool {
		t.Helper()
		resp, body := b.page(path)
		on := strings.Contains(body, `data-edgeseg-segment="luxury-returning"`)
		if on && resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("%s: a preview without Cache-Control: no-store: %v", path, resp.Header)
		}
		return on
	}
	resp, body := b.page("/?edgeseg_preview=" + tok)
	if !strings.Contains(body, `data-edgeseg-segment="luxury-returning"`) || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("preview not applied: %v\n%s", resp.Header, body)
	}
	// The token is kept in a cookie that ends with it, so the editor
	// browses on in the segment, link after link, until ?edgeseg_preview=off.
	var kept *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "edgeseg_preview" {
			kept = c
		}
	}
	if kept == nil || kept.Value != tok || !kept.HttpOnly || kept.Path != "/" || kept.MaxAge < 590 || kept.MaxAge > 600 {
		t.Fatalf("preview cookie %v, want the token for the token's 10 minutes", kept)
	}
	if !previewed("/category/electronics") || !previewed("/") {
		t.Fatal("the pages after a preview link are not previewed")
	}
	if previewed("/?edgeseg_preview=" + tok[:len(tok)-3] + "abc") {
		t.Fatal("forged preview token applied")
	}
	if previewed("/?edgeseg_preview=off") || previewed("/") {
		t.Fatal("the preview goes on after ?edgeseg_preview=off")
	}
	// A forged token in a link is not kept.
	b.page("/?edgeseg_preview=" + tok[:len(tok)-3] + "abc")
	u, _ := url.Parse(s.url)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "edgeseg_preview" {
			t.Fatalf("a forged token was kept: %v", c)
		}
	}
	explain := s.get("/_edgeseg/explain?path=/&edgeseg_preview=" + tok)
	if !strings.Contains(explain, `"rules"`) || !strings.Contains(explain, `"forced": "luxury-returning"`) ||
		!strings.Contains(explain, `"rule": "visitor.visits >= 2 && `) || !strings.Contains(explain, `"campaign": ""`) {
		t.Fatalf("explain (its rules as written, its keys in lower case): %s", explain)
	}
	// The access log names the request as it came, not the page explained.
	for deadline := time.Now().Add(2 * time.Second); !strings.Contains(s.stderr.String(), `"path":"/_edgeseg/explain"`); {
		if time.Now().After(deadline) {
			t.Fatalf("no access line for /_edgeseg/explain:\n%s", s.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, q := range []string{"", "?edgeseg_preview=" + tok[:len(tok)-2]} {
		r, err := http.Get(s.url + "/_edgeseg/explain" + q)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != 404 || r.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Fatalf("explain with token %q: %d, Content-Type %q", q, r.StatusCode, r.Header.Get("Content-Type"))
		}
	}
}

func TestRenderFailureKeepsDefault(t *testing.T) {
	for _, tc := range []struct {
		name, block, path, logged string
		refused                   bool // at load: nothing is rendered
	}{
		{"helper panics", `{{formatCurrency signals.hour}}`, "/", "render", false},
		{"helper panics on data alone", `{{formatCurrency 1}}`, "/", "render", true},
		// Blocks that would break the page around the slot, not just the
		// slot: the page keeps its own content and its shape.
		{"element left open", `<div class="promo"><h2>Shop on the go, {{signals.device}}</h2>`, "/", `<div class=\"promo\"> is never closed`, false},
		{"stray end tag", `<p>Shop on the go, {{signals.device}}</p></div></section>`, "/", `</div> closes an element the block did not open`, false},
		{"comment left open", `<p>Shop on the go, {{signals.device}}</p><!-- TODO: link`, "/", "is never closed", false},
		// A block that reads nothing of the visitor is rendered at load:
		// one that fails is refused there (a reload keeps its last good
		// version).
		{"static block left open", `<div class="promo"><h2>Shop on the go</h2>`, "/", `as rendered: <div class=\"promo\"> is never closed`, true},
		// What a visitor sends, written with {{{ }}}, is refused at load,
		// in the block or in a partial it is handed to.
		{"visitor's value unescaped", `<p>{{{signals.utm.campaign}}}</p>`, "/?utm_campaign=%3C!--", "{{{ }}} writes signals.utm.campaign into the page as HTML", true},
		{"visitor's value unescaped in a partial", `<p>{{> raw v=signals.utm.campaign}}</p>`, "/?utm_campaign=%3C!--", "{{{ }}} writes v (in _partials/raw.hbs, line 1) into the page as HTML", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			os.MkdirAll(filepath.Join(dir, "hero"), 0o755)
			os.MkdirAll(filepath.Join(dir, "_partials"), 0o755)
			os.WriteFile(filepath.Join(dir, "hero", "mobile.hbs"), []byte(tc.block), 0o644)
			os.WriteFile(filepath.Join(dir, "_partials", "raw.hbs"), []byte(`{{{v}}}`), 0o644)
			refused := tc.refused
			s := startStack(t, nil, func(y string) string {
				return strings.Replace(y, "dir: "+mustAbs(t, "../../examples/templates")+" ", "dir: "+dir+" ", 1)
			})
			b := s.browser(uaIPhone)
			resp, body := b.page(tc.path)
			if resp.StatusCode != 200 || !strings.Contains(body, "Welcome to the Demo Shop") || strings.Contains(body, "data-edgeseg-segment") {
				t.Fatalf("render failure: %d\n%s", resp.StatusCode, body)
			}
			if _, orig := s.originPage(t, tc.path); orig != body {
				t.Errorf("the page is not the origin's:\n%s", body)
			}
			if !refused {
				// Counted each time, logged once (a block failing for
				// everyone fails on every request).
				b.page(tc.path)
				b.page(tc.path)
				if !strings.Contains(s.get("/_edgeseg/metrics"), "edgeseg_template_render_errors_total 3") {
					t.Error("render errors not counted")
				}
				if n := strings.Count(s.stderr.String(), "block failed to render"); n != 1 {
					t.Errorf("%d log lines for 3 failed renders of one block, want 1", n)
				}
			}
			// explain says why the slot keeps its default.
			m := NewMain()
			var out bytes.Buffer
			m.Stdout, m.Stderr = &out, io.Discard
			m.ParseFlags([]string{"explain", "--config", s.cfg, "--url", tc.path, "--header", "User-Agent:" + uaIPhone, "--format", "json"})
			if err := m.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			var e struct{ Slots map[string]string }
			json.Unmarshal(out.Bytes(), &e)
			if hero := e.Slots["hero"]; !refused && (!strings.HasPrefix(hero, "default (templates: ") || !strings.Contains(hero, strings.ReplaceAll(tc.logged, `\"`, `"`))) {
				t.Errorf("explain: hero: %q", hero)
			}
			if log := s.stderr.String(); !strings.Contains(log, "hero/mobile.hbs") || !strings.Contains(log, tc.logged) {
				t.Errorf("the log does not name the block and what is wrong with it (%q):\n%s", tc.logged, log)
			}
		})
	}
}

func TestOnlySuccessfulHTMLIsPersonalized(t *testing.T) {
	s := startStack(t, nil, nil)
	b := s.browser(uaIPhone)
	resp, body := b.page("/product/nope/x")
	if resp.StatusCode != 404 || strings.Contains(body, "data-edgeseg-segment") {
		t.Fatalf("404: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("POST", s.url+"/cart/add", strings.NewReader("id=s-1"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Dest", "document")
	resp, _ = b.do(req)
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/cart" {
		t.Fatalf("redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if profileCookie(resp) == nil {
		t.Error("a mapped cart_add did not update the profile")
	}
}

func TestConfigReloadKeepsServingOnBadRule(t *testing.T) {
	s := startStack(t, nil, nil)
	b := s.browser(uaIPhone)
	if _, body := b.page("/"); !strings.Contains(body, "Shop on the go") {
		t.Fatal("mobile hero missing before reload")
	}
	raw, _ := os.ReadFile(s.cfg)
	os.WriteFile(s.cfg, []byte(strings.Replace(string(raw), `rule: 'device == "mobile"'`, `rule: 'devise == "mobile"'`, 1)), 0o644)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(s.stderr.String(), "config reload failed") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	logs := s.stderr.String()
	if !strings.Contains(logs, "config reload failed") || !strings.Contains(logs, `did you mean \"device\"`) {
		t.Fatalf("bad reload not logged with its location:\n%s", logs)
	}
	if _, body := b.page("/"); !strings.Contains(body, "Shop on the go") {
		t.Fatal("previous config stopped serving after a bad reload")
	}
	// A good edit applies.
	os.WriteFile(s.cfg, []byte(strings.Replace(string(raw), `rule: 'device == "mobile"'`, `rule: 'device == "tablet"'`, 1)), 0o644)
	deadline = time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, body := b.page("/"); !strings.Contains(body, "Shop on the go") {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("good config edit never applied")
}

// TestPersonalizeSwitchAppliesOnReload: personalize: false is the incident
// switch, and a reload applies it at once, both ways: off, pages come as
// the origin sends them, without a cookie; on again, personalized.
func TestPersonalizeSwitchAppliesOnReload(t *testing.T) {
	s := startStack(t, nil, nil)
	b := s.browser(uaIPhone)
	personalized := func() bool {
		resp, body := b.page("/")
		return strings.Contains(body, "Shop on the go") && len(resp.Header.Values("Set-Cookie")) > 0
	}
	if !personalized() {
		t.Fatal("not personalized before the switch")
	}
	raw, _ := os.ReadFile(s.cfg)
	flip := func(on bool, says string) {
		t.Helper()
		to := "personalize: false"
		if on {
			to = "personalize: true"
		}
		if err := os.WriteFile(s.cfg, []byte(strings.Replace(string(raw), "personalize: true", to, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for personalized() != on {
			if time.Now().After(deadline) {
				t.Fatalf("personalize: %v never applied:\n%s", on, s.stderr.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
		if !strings.Contains(s.stderr.String(), says) {
			t.Errorf("the switch is not logged (%q):\n%s", says, s.stderr.String())
		}
	}
	flip(false, "edgeseg runs as a plain reverse proxy until it is set true again")
	// Off, the reserved paths of personalization answer as without it.
	if resp, err := http.Get(s.url + "/_edgeseg/explain?path=/"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("explain while off: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	flip(true, "personalization is back on")
}

func TestValidateCommand(t *testing.T) {
	var out bytes.Buffer
	validate := func(cfg string) error {
		out.Reset()
		m := NewMain()
		m.Stdout, m.Stderr = &out, io.Discard
		m.ParseFlags([]string{"validate", "--config", cfg})
		return m.Run(context.Background())
	}
	failsWith := func(cfg string, wants ...string) {
		t.Helper()
		if ec, ok := validate(cfg).(exitCoder); !ok || ec.ExitCode() != 1 {
			t.Fatalf("want exit 1:\n%s", out.String())
		}
		for _, want := range wants {
			if !strings.Contains(out.String(), want) {
				t.Errorf("validate output lacks %q:\n%s", want, out.String())
			}
		}
	}
	if err := validate("../../examples/edgeseg.yaml"); err != nil {
		t.Fatalf("example does not validate: %v\n%s", err, out.String())
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "templates", "hero"), 0o755)
	os.WriteFile(filepath.Join(dir, "templates", "hero", "mobile.hbs"), []byte("{{#if x}}unclosed"), 0o644)
	os.WriteFile(filepath.Join(dir, "templates", "hero", "ghost.hbs"), []byte("hi"), 0o644)
	os.WriteFile(filepath.Join(dir, "c.yaml"), []byte("origin:\n  url: http://127.0.0.1:1\nsegments:\n  - name: mobile\n    rule: 'devise == \"mobile\"'\n"), 0o644)
	failsWith(filepath.Join(dir, "c.yaml"), "c.yaml:5: segments[0].rule", `did you mean "device"`, "hero/mobile.hbs:", `no segment named "ghost"`)

	// The config's own problems do not hide those of its rules and
	// templates: one run lists them all, each once.
	os.WriteFile(filepath.Join(dir, "c.yaml"), []byte("origin:\n  url: http://127.0.0.1:1\n  ulr: typo\n  max_conns: many\nsegments:\n  - name: mobile\n    rule: 'devise == \"mobile\"'\n    holdout: 2\n  - name: other\n    rule: [not, a, rule]\n"), 0o644)
	failsWith(filepath.Join(dir, "c.yaml"), `c.yaml:3: origin.ulr: unknown key`, `c.yaml:4: origin.max_conns: "many" is not a whole number`,
		"c.yaml:8: segments[0].holdout:", "c.yaml:7: segments[0].rule", `did you mean "device"`, "hero/mobile.hbs:", `no segment named "ghost"`,
		"c.yaml:10: segments[1].rule: a list is not a string", "6 error(s), 1 warning(s)")

	// A block that parses but would break the page around its slot.
	os.Remove(filepath.Join(dir, "templates", "hero", "ghost.hbs"))
	os.WriteFile(filepath.Join(dir, "templates", "hero", "mobile.hbs"), []byte("<div class=\"promo\">\n  {{#if (eq signals.device \"mobile\")}}Shop on the go</div>{{/if}}"), 0o644)
	os.WriteFile(filepath.Join(dir, "c.yaml"), []byte("origin:\n  url: http://127.0.0.1:1\nsegments:\n  - name: mobile\n    rule: 'device == \"mobile\"'\n"), 0o644)
	failsWith(filepath.Join(dir, "c.yaml"), `hero/mobile.hbs: as rendered: <div class="promo"> is never closed`)

	// A block that writes segment data its segment is not given: it
	// would show empty, which validate warns of, naming the nearest field.
	os.WriteFile(filepath.Join(dir, "templates", "hero", "mobile.hbs"), []byte("<p>Use code\n<b>{{segment.data.cod}}</b></p>"), 0o644)
	os.WriteFile(filepath.Join(dir, "c.yaml"), []byte("origin:\n  url: http://127.0.0.1:1\nsegments:\n  - name: mobile\n    rule: 'device == \"mobile\"'\n    data: {code: APP10}\n"), 0o644)
	if err := validate(filepath.Join(dir, "c.yaml")); err != nil {
		t.Fatalf("warnings only, yet: %v\n%s", err, out.String())
	}
	if want := `hero/mobile.hbs:2: segment.data.cod: segment "mobile" has no such data in the config: it renders empty: did you mean "segment.data.code"?`; !strings.Contains(out.String(), want) {
		t.Errorf("validate output lacks %q:\n%s", want, out.String())
	}

	// A certificate near its end is a warning; one past it, an error.
	os.WriteFile(filepath.Join(dir, "templates", "hero", "mobile.hbs"), []byte("<p>Shop on the go</p>"), 0o644)
	for _, tc := range []struct {
		end     time.Duration
		fails   bool
		message string
	}{
		{90 * 24 * time.Hour, false, ""},
		{3 * 24 * time.Hour, false, "warning: server.tls_cert_file: "},
		{-time.Hour, true, "error: server.tls_cert_file: "},
	} {
		certFile, keyFile := writeLoopbackCert(t, t.TempDir(), time.Now().Add(tc.end))
		os.WriteFile(filepath.Join(dir, "c.yaml"), []byte("origin:\n  url: http://127.0.0.1:1\nserver:\n  tls_cert_file: "+certFile+"\n  tls_key_file: "+keyFile+
			"\nsegments:\n  - name: mobile\n    rule: 'device == \"mobile\"'\n"), 0o644)
		err := validate(filepath.Join(dir, "c.yaml"))
		if (err != nil) != tc.fails || tc.message == "" && strings.Contains(out.String(), "tls_cert_file") || !strings.Contains(out.String(), tc.message) {
			t.Errorf("a certificate ending in %v: %v\n%s", tc.end, err, out.String())
		}
	}
}

func TestEventsAreWritten(t *testing.T) {
	sink, edit := withSink(t)
	s := startStack(t, nil, edit)
	b := s.browser(uaIPhone)
	b.page("/")
	b.page("/checkout/complete")
	// A visitor in no segment sees no slot filled, and is traffic all the
	// same; one who sends GPC is not recorded at all.
	plain := s.browser(uaDesktop)
	plain.page("/category/home")
	plain.page("/category/electronics")
	gpc := s.browser(uaDesktop)
	gpc.header = http.Header{"Sec-Gpc": {"1"}}
	gpc.page("/")
	// Nor is a crawler, which keeps no cookie: a visitor per page.
	for range 3 {
		s.browser("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)").page("/")
	}
	s.m.Close() // drains the queue
	raw, _ := os.ReadFile(sink)
	if !strings.Contains(string(raw), `"type":"exposure"`) || !strings.Contains(string(raw), `"variant":"block"`) ||
		!strings.Contains(string(raw), `"type":"conversion"`) || !strings.Contains(string(raw), `"event":"purchase"`) {
		t.Fatalf("events:\n%s", raw)
	}
	// One visit each, as it began, with the visitor's segments then.
	var visits []events.Event
	for _, l := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var e events.Event
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		if e.Type == "visit" {
			visits = append(visits, e)
		}
	}
	if len(visits) != 2 || visits[0].Visitor == visits[1].Visitor || visits[0].Visitor == "" ||
		!slices.Contains(visits[0].Segments, "mobile") || len(visits[1].Segments) != 0 {
		t.Fatalf("visits: %+v\n%s", visits, raw)
	}
}

func TestServeErrors(t *testing.T) {
	m := NewMain()
	m.Stdout, m.Stderr = io.Discard, io.Discard
	m.Environ = nil
	if err := m.ParseFlags([]string{"serve"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "--config") {
		t.Fatalf("serve without config: %v", err)
	}
	if err := NewMain().ParseFlags([]string{"frobnicate"}); err == nil {
		t.Fatal("unknown command accepted")
	}
	// An unwritable event sink is an error at start-up.
	m = NewMain()
	m.Stdout, m.Stderr = io.Discard, io.Discard
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ln.Close()
	m.Environ = []string{"EDGESEG_ORIGIN_URL=http://" + ln.Addr().String(), "EDGESEG_LISTEN=127.0.0.1:0", "EDGESEG_EVENTS_SINK=/proc/nope/events.jsonl"}
	m.ParseFlags([]string{"serve", "--config", "../../examples/edgeseg.yaml"})
	if err := m.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "events: sink") {
		t.Fatalf("unwritable sink: %v", err)
	}
	m.Close()
}

// TestNavigationsGetWholePages: a range of a page that may be personalized
// would be a range of the origin's bytes, spliced by the client into a
// personalized body; a navigation asking for one gets the whole page, and a
// personalized page does not offer ranges.
func TestNavigationsGetWholePages(t *testing.T) {
	page := `<!doctype html><html><body><div id="hero" data-edgeseg-slot="hero">default</div>` + strings.Repeat("<p>text</p>", 200) + `</body></html>`
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		http.ServeContent(w, r, "page.html", time.Time{}, strings.NewReader(page))
	})
	for _, cached := range []bool{false, true} {
		s := startStack(t, origin, func(y string) string {
			if cached {
				y = strings.Replace(y, "    paths: []                # e.g.", `    paths: ["/*"]            # e.g.`, 1)
				y = strings.Replace(y, "    default_ttl: 0s", "    default_ttl: 1m", 1)
			}
			return y
		})
		b := s.browser(uaIPhone)
		for i := 0; i < 2; i++ {
			b.header.Set("Range", "bytes=0-99")
			resp, body := b.page("/")
			if resp.StatusCode != 200 || !strings.Contains(body, "Shop on the go") || !strings.HasSuffix(body, "</html>") {
				t.Fatalf("cached %v: navigation %d with a range: %d, %d bytes:\n%.200s", cached, i, resp.StatusCode, len(body), body)
			}
			if ar := resp.Header.Get("Accept-Ranges"); ar != "" {
				t.Errorf("cached %v: a personalized page offers ranges (Accept-Ranges: %s)", cached, ar)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestNavigationsAreNotRevalidatedIntoStaleVariants: a browser revalidating
// a page it got personalized for an earlier state must get the whole page,
// not a 304 that keeps the old variant on screen.
func TestNavigationsAreNotRevalidatedIntoStaleVariants(t *testing.T) {
	var assets atomic.Int64
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/app.js" {
			assets.Add(1)
		}
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Cache-Control", "public, max-age=600")
		if r.Header.Get("If-None-Match") != "" {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<div id="hero" data-edgeseg-slot="hero">default</div>`)
	})
	// The same with the origin cache, which answers revalidations itself.
	for _, cached := range []bool{false, true} {
		s := startStack(t, origin, func(y string) string {
			if cached {
				y = strings.Replace(y, "    paths: []                # e.g.", `    paths: ["/*"]            # e.g.`, 1)
			}
			return y
		})
		b := s.browser(uaIPhone)
		for i := 0; i < 2; i++ { // the second from the cache, when there is one
			b.header.Set("If-None-Match", `W/"v1"`)
			resp, body := b.page("/")
			if resp.StatusCode != 200 || !strings.Contains(body, "Shop on the go") {
				t.Fatalf("cached %v: conditional navigation %d: %d %q", cached, i, resp.StatusCode, body)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "private, no-cache" {
				t.Fatalf("cached %v: tracked page Cache-Control %q", cached, cc)
			}
			time.Sleep(20 * time.Millisecond) // let the cache admit the entry (asynchronous)
		}
		// Assets keep conditional requests (and their 304s).
		before := assets.Load()
		for i := 0; i < 3; i++ {
			req, _ := http.NewRequest("GET", s.url+"/app.js", nil)
			req.Header.Set("Sec-Fetch-Dest", "script")
			if i > 0 {
				req.Header.Set("If-None-Match", `"v1"`)
			}
			want := 304
			if i == 0 {
				want = 200 // fills the cache, when there is one
			}
			if resp, body := b.do(req); resp.StatusCode != want || want == 304 && body != "" {
				t.Fatalf("cached %v: asset request %d: %d %q", cached, i, resp.StatusCode, body)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if n := assets.Load() - before; cached && n != 1 || !cached && n != 3 {
			t.Errorf("cached %v: the origin was asked for the asset %d times for 3", cached, n)
		}
	}
}

// TestReportFindsTrueUplift simulates visitors through the real proxy:
// segment "a" has a block that truly converts better (1 in 3 against 1 in
// 10 for its holdout), segment "b" a block that makes no difference (1 in
// 5 in both arms). The report must call the first significant and not the
// second. Segment "c" has no holdout: its block's conversion rate is
// reported, and the uplift, which needs a holdout, is not.
func TestReportFindsTrueUplift(t *testing.T) {
	dir := t.TempDir()
	tpl := filepath.Join(dir, "templates", "hero")
	os.MkdirAll(tpl, 0o755)
	os.WriteFile(filepath.Join(tpl, "a.hbs"), []byte("<b>block a</b>"), 0o644)
	os.WriteFile(filepath.Join(tpl, "b.hbs"), []byte("<b>block b</b>"), 0o644)
	os.WriteFile(filepath.Join(tpl, "c.hbs"), []byte("<b>block c</b>"), 0o644)
	sink := filepath.Join(dir, "events.jsonl")
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<html><body><div id="hero" data-edgeseg-slot="hero">default</div></body></html>`)
	})
	s := startStack(t, origin, func(string) string {
		return `
origin: {url: "http://127.0.0.1:1"}
profile:
  secure: false
  keys: [{id: k, secret: "0123456789abcdef0123456789abcdef"}]
signals: {query: [seg]}
behavior:
  events:
    - {match: "GET /checkout/complete", event: purchase, conversion: true}
segments:
  - {name: a, rule: 'query("seg") == "a"', holdout: 0.5}
  - {name: b, rule: 'query("seg") == "b"', holdout: 0.5}
  - {name: c, rule: 'query("seg") == "c"', holdout: 0}
templates: {dir: "` + filepath.Join(dir, "templates") + `"}
events: {sink: "` + sink + `"}
`
	})
	seen := map[string]map[bool]int{"a": {}, "b": {}}
	for i := 0; i < 600; i++ {
		seg := "a"
		if i%2 == 1 {
			seg = "b"
		}
		b := s.browser(uaDesktop)
		_, body := b.page("/?seg=" + seg)
		block := strings.Contains(body, "block "+seg)
		n := seen[seg][block]
		seen[seg][block]++
		convert := false
		switch {
		case seg == "a" && block:
			convert = n%3 == 0
		case seg == "a":
			convert = n%10 == 0
		default:
			convert = n%5 == 0
		}
		if convert {
			b.page("/checkout/complete")
		}
	}
	for i := 0; i < 60; i++ { // c: one in four converts
		b := s.browser(uaDesktop)
		if _, body := b.page("/?seg=c"); !strings.Contains(body, "block c") {
			t.Fatalf("segment c without its block: %s", body)
		}
		if i%4 == 0 {
			b.page("/checkout/complete")
		}
	}
	s.m.Close() // flush events
	m := NewMain()
	var out bytes.Buffer
	m.Stdout, m.Stderr = &out, io.Discard
	m.ParseFlags([]string{"report", "--events", sink, "--format", "json"})
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Uplift []struct {
			Segment     string   `json:"segment"`
			Significant bool     `json:"significant"`
			P           float64  `json:"p"`
			Verdict     string   `json:"verdict"`
			BlockN      int      `json:"block_visitors"`
			HoldoutN    int      `json:"holdout_visitors"`
			BlockRate   *float64 `json:"block_rate"`
			Uplift      *float64 `json:"uplift"`
		} `json:"uplift"`
	}
	if err := jsonUnmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	got := map[string]bool{}
	for _, u := range rep.Uplift {
		got[u.Segment] = u.Significant
		t.Logf("%s: block %d holdout %d p=%.4g %s", u.Segment, u.BlockN, u.HoldoutN, u.P, u.Verdict)
		if want := map[string]int{"a": 300, "b": 300, "c": 60}[u.Segment]; u.BlockN+u.HoldoutN != want {
			t.Errorf("%s: %d visitors in the report, %d simulated", u.Segment, u.BlockN+u.HoldoutN, want)
		}
		if u.Segment == "c" && (u.BlockRate == nil || *u.BlockRate != 0.25 || u.Uplift != nil) {
			t.Errorf("c: block rate %v, uplift %v; want 0.25 and none", u.BlockRate, u.Uplift)
		}
	}
	if !got["a"] || got["b"] {
		t.Fatalf("significance: a=%v (want true) b=%v (want false)\n%s", got["a"], got["b"], out.String())
	}
	// The text report reads the same file.
	out.Reset()
	m = NewMain()
	m.Stdout, m.Stderr = &out, io.Discard
	m.ParseFlags([]string{"report", sink})
	if err := m.Run(context.Background()); err != nil || !strings.Contains(out.String(), "significant uplift") ||
		!regexp.MustCompile(`(?m)^c +hero +15/60 25\.00% +0/0 n/a +n/a +n/a +n/a +1\.0000 +no holdout`).MatchString(out.String()) {
		t.Fatalf("text report: %v\n%s", err, out.String())
	}
	// The same events compressed, as log rotation leaves them, on
	// standard input: the same report.
	raw, err := os.ReadFile(sink)
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	var piped bytes.Buffer
	m = NewMain()
	m.Stdin, m.Stdout, m.Stderr = &gz, &piped, io.Discard
	m.ParseFlags([]string{"report", "--events", "-"})
	if err := m.Run(context.Background()); err != nil || piped.String() != out.String() {
		t.Fatalf("compressed on standard input: %v\n%s", err, piped.String())
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// TestCachedPagesArePersonalizedPerVisitor: with the origin cache on, the
// origin is asked once, and each visitor still gets their own blocks.
func TestCachedPagesArePersonalizedPerVisitor(t *testing.T) {
	d, err := NewDemoOrigin("../../examples/site")
	if err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int64
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" {
			hits.Add(1)
		}
		d.ServeHTTP(w, r)
	})
	s := startStack(t, origin, func(y string) string {
		return strings.Replace(y, "    paths: []                # e.g.", `    paths: ["/"]             # e.g.`, 1)
	})
	for i := 0; i < 3; i++ {
		mobile, desktop := s.browser(uaIPhone), s.browser(uaDesktop)
		mobile.header.Set("Accept-Encoding", "gzip")
		if _, body := mobile.page("/"); !strings.Contains(body, "Shop on the go") {
			t.Fatalf("mobile visitor %d did not get the mobile hero", i)
		}
		if _, body := desktop.page("/"); strings.Contains(body, "data-edgeseg-segment") {
			t.Fatalf("desktop visitor %d got a segment's hero", i)
		}
		time.Sleep(50 * time.Millisecond) // let the cache admit the entry (asynchronous)
	}
	// gzip and identity are two entries (Vary: Accept-Encoding); an
	// admission the cache drops under load may cost one more each.
	if n := hits.Load(); n > 4 {
		t.Fatalf("origin asked %d times for 6 requests of a cacheable page", n)
	}
}

// TestStreamedPagesAreCachedToo: application servers send pages chunked,
// without a length; a cacheable one is kept like any other, and one larger
// than cache.origin.max_object_bytes is still served whole and personalized,
// through the buffered rewrite and the streamed one.
func TestStreamedPagesAreCachedToo(t *testing.T) {
	d, err := NewDemoOrigin("../../examples/site")
	if err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int64
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		rec := httptest.NewRecorder()
		d.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if r.URL.Query().Get("big") != "" { // past max_object_bytes, below the rewrite limit
			body = bytes.Replace(body, []byte("</body>"), []byte("<!--"+strings.Repeat("x", 80<<10)+"--></body>"), 1)
		}
		w.Header().Set("Content-Type", rec.Header().Get("Content-Type"))
		w.Header().Set("Cache-Control", "public, max-age=60")
		half := len(body) / 2
		w.Write(body[:half])
		w.(http.Flusher).Flush() // chunked from here
		w.Write(body[half:])
	})
	for _, tc := range []struct{ stream, memory string }{{"true", "256MiB"}, {"false", "256MiB"}, {"false", "64KiB"}} {
		// With 64KiB for all rewrites, the big page cannot be rewritten:
		// it must still arrive whole.
		personalized := tc.memory != "64KiB"
		t.Run("rewrite.stream="+tc.stream+",max_buffered_bytes="+tc.memory, func(t *testing.T) {
			s := startStack(t, origin, func(y string) string {
				y = strings.Replace(y, "    paths: []                # e.g.", `    paths: ["/"]             # e.g.`, 1)
				y = strings.Replace(y, "max_object_bytes: 1MiB", "max_object_bytes: 64KiB", 1)
				y = strings.Replace(y, "max_buffered_bytes: 256MiB", "max_buffered_bytes: "+tc.memory, 1)
				return strings.Replace(y, "  stream: true ", "  stream: "+tc.stream+" ", 1)
			})
			for _, path := range []string{"/", "/?big=1"} {
				before := hits.Load()
				for i := 0; i < 3; i++ {
					resp, body := s.browser(uaIPhone).page(path)
					if resp.StatusCode != 200 || (personalized || path == "/") != strings.Contains(body, "Shop on the go") || !strings.Contains(body, "</html>") {
						t.Fatalf("%s, visitor %d: %d, personalized %v, whole %v", path, i, resp.StatusCode,
							strings.Contains(body, "Shop on the go"), strings.Contains(body, "</html>"))
					}
					if path != "/" && !strings.Contains(body, strings.Repeat("x", 80<<10)) {
						t.Fatalf("%s: body cut short (%d bytes)", path, len(body))
					}
					time.Sleep(50 * time.Millisecond) // let the cache admit the entry (asynchronous)
				}
				n := hits.Load() - before
				if path == "/" && n > 2 || path != "/" && n != 3 {
					t.Errorf("%s: the origin was asked %d times for 3 requests", path, n)
				}
			}
			// A crawler's page is passed through, not rewritten: whole too.
			_, body := s.browser("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)").page("/?big=1")
			if !strings.Contains(body, strings.Repeat("x", 80<<10)+"--></body>") {
				t.Errorf("the page passed through was cut short (%d bytes)", len(body))
			}
		})
	}
}

func TestPersonalizeOffIsAPlainProxy(t *testing.T) {
	s := startStack(t, nil, nil, "EDGESEG_PERSONALIZE=false")
	b := s.browser(uaIPhone)
	resp, body := b.page("/")
	if strings.Contains(body, "data-edgeseg-segment") || profileCookie(resp) != nil || resp.Header.Get("Cache-Control") != "public, max-age=60" {
		t.Fatalf("personalize: false still personalizes: %v", resp.Header)
	}
}

// TestDuplicateProfileCookies: a browser holding the cookie twice (set for
// two paths or domains) is served with whichever copy verifies.
func TestDuplicateProfileCookies(t *testing.T) {
	s := startStack(t, nil, nil)
	good := s.browser(uaDesktop).profile("/category/sale")
	req, _ := http.NewRequest("GET", s.url+"/", nil)
	req.Header.Set("User-Agent", uaDesktop)
	req.Header.Set("Sec-Fetch-Dest", "document")
	req.Header.Set("Cookie", "edgeseg=garbage; edgeseg="+good.Value)
	raw := s.browser(uaDesktop)
	resp, _ := raw.do(req)
	next := profileCookie(resp)
	if resp.StatusCode != 200 || next == nil {
		t.Fatalf("status %d cookie %v", resp.StatusCode, next)
	}
	// The verified copy was used: the new cookie continues the same visitor.
	if id(t, next.Value) != id(t, good.Value) {
		t.Fatal("duplicate cookies: the valid profile was dropped")
	}
}

// id reads the visitor id from a profile cookie (the payload is readable,
// only signed).
func id(t *testing.T, jwt string) string {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		ID string `json:"id"`
	}
	json.Unmarshal(raw, &c)
	return c.ID
}

func TestClientEvents(t *testing.T) {
	sink, edit := withSink(t, func(y string) string {
		y = strings.Replace(y, "client_events: false", "client_events: true", 1)
		return strings.Replace(y, "client_events_per_minute: 60", "client_events_per_minute: 5", 1)
	})
	s := startStack(t, nil, edit)
	b := s.browser(uaDesktop)
	b.page("/") // get a profile
	post := func(body string, hdr map[string]string) *http.Response {
		req, _ := http.NewRequest("POST", s.url+"/_edgeseg/event", strings.NewReader(body))
		req.Header.Set("Content-Type", "text/plain")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		for k, v := range hdr {
			if v == "" {
				req.Header.Del(k)
			} else {
				req.Header.Set(k, v)
			}
		}
		resp, _ := b.do(req)
		return resp
	}
	if r := post(`{"event":"scroll_75"}`, nil); r.StatusCode != 204 || profileCookie(r) == nil {
		t.Fatalf("mapped event: %d cookie %v", r.StatusCode, profileCookie(r))
	}
	for _, tc := range []struct {
		name, body string
		hdr        map[string]string
		status     int
	}{
		{"cross-site", `{"event":"scroll_75"}`, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"foreign origin", `{"event":"scroll_75"}`, map[string]string{"Sec-Fetch-Site": "", "Origin": "https://evil.example"}, 403},
		{"no origin at all", `{"event":"scroll_75"}`, map[string]string{"Sec-Fetch-Site": ""}, 403},
		{"unknown event", `{"event":"drop_tables"}`, nil, 400},
		{"garbage", `{not json`, nil, 400},
		{"too large", `{"event":"scroll_75","value":"` + strings.Repeat("x", 2000) + `"}`, nil, 413},
	} {
		if r := post(tc.body, tc.hdr); r.StatusCode != tc.status {
			t.Errorf("%s: %d, want %d", tc.name, r.StatusCode, tc.status)
		}
	}
	req, _ := http.NewRequest("GET", s.url+"/_edgeseg/event", nil)
	if r, _ := b.do(req); r.StatusCode != 405 {
		t.Errorf("GET: %d", r.StatusCode)
	}
	// The conversion is logged; then the per-minute limit (5) answers 429.
	if r := post(`{"event":"newsletter_signup"}`, nil); r.StatusCode != 204 {
		t.Fatalf("conversion event: %d", r.StatusCode)
	}
	limited := false
	for i := 0; i < 10; i++ {
		if r := post(`{"event":"scroll_75"}`, nil); r.StatusCode == 429 {
			limited = r.Header.Get("Retry-After") != ""
			break
		}
	}
	if !limited {
		t.Error("client events not rate-limited")
	}
	// Without consent nothing is kept.
	g := s.browser(uaDesktop)
	g.header.Set("Sec-GPC", "1")
	req, _ = http.NewRequest("POST", s.url+"/_edgeseg/event", strings.NewReader(`{"event":"scroll_75"}`))
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Sec-GPC", "1")
	if r, _ := g.do(req); r.StatusCode != 204 || profileCookie(r) != nil {
		t.Errorf("no consent: %d cookie %v", r.StatusCode, profileCookie(r))
	}
	// A visitor with a profile who withdraws consent: the event is not
	// kept, and the profile cookie goes.
	b.header.Set("Sec-GPC", "1")
	if r := post(`{"event":"scroll_75"}`, map[string]string{"Sec-GPC": "1"}); r.StatusCode != 204 || profileCookie(r) == nil || profileCookie(r).Value != "" {
		t.Errorf("consent withdrawn: %d, Set-Cookie %q", r.StatusCode, r.Header.Values("Set-Cookie"))
	}
	s.m.Close()
	raw, _ := os.ReadFile(sink)
	if !strings.Contains(string(raw), `"event":"signup"`) {
		t.Errorf("client conversion not logged:\n%s", raw)
	}
}

// TestDataLayer: with templates.data_layer on, the page gets
// window.edgeseg before </head>, carrying the page's CSP nonce, of its
// headers or of a <meta http-equiv> in its head; a page whose CSP would
// block it (scripts by hash only, a <meta> policy of its own) goes
// without, whole or streamed.
func TestDataLayer(t *testing.T) {
	const page = `<html><head><title>t</title></head><body><p>no slots</p></body></html>`
	metaPage := func(policy string) string {
		return strings.Replace(page, "<title>", `<meta http-equiv="Content-Security-Policy" content="`+policy+`"><title>`, 1)
	}
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		page := page
		switch {
		case strings.HasPrefix(r.URL.Path, "/hashes"):
			w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=' 'unsafe-inline'")
		case strings.HasPrefix(r.URL.Path, "/meta-nonce"):
			page = metaPage("script-src &#39;nonce-r4nd0m+/=&#39;")
		case strings.HasPrefix(r.URL.Path, "/no-connect"):
			page = metaPage("script-src 'nonce-r4nd0m+/='; connect-src https://api.example.com")
		case strings.HasPrefix(r.URL.Path, "/meta-blocks"):
			w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'self' 'nonce-r4nd0m+/='")
			page = metaPage("script-src 'nonce-other'")
		default:
			w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'self' 'nonce-r4nd0m+/='")
		}
		if strings.HasSuffix(r.URL.Path, "/streamed") {
			w.Write([]byte(page[:20]))
			w.(http.Flusher).Flush()
			w.Write([]byte(page[20:]))
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(page)))
		fmt.Fprint(w, page)
	})
	s := startStack(t, origin, func(y string) string { return strings.Replace(y, "data_layer: false", "data_layer: true", 1) })
	const want = `<title>t</title><script nonce="r4nd0m+/=">window.edgeseg={"holdouts":[],"segments":["mobile"]};</script></head>`
	for _, path := range []string{"/", "/streamed"} {
		_, body := s.browser(uaIPhone).page(path)
		if !strings.Contains(body, want) {
			t.Errorf("%s: data layer:\n%s", path, body)
		}
		if _, body = s.browser(uaIPhone).page("/hashes" + path); body != page {
			t.Errorf("%s: a page whose CSP blocks the data layer got:\n%s", path, body)
		}
		_, body = s.browser(uaIPhone).page("/meta-nonce" + path)
		if !strings.Contains(body, want) {
			t.Errorf("%s: data layer under a <meta> policy:\n%s", path, body)
		}
		if _, body = s.browser(uaIPhone).page("/meta-blocks" + path); body != metaPage("script-src 'nonce-other'") {
			t.Errorf("%s: a page whose <meta> policy blocks the data layer got:\n%s", path, body)
		}
	}
	// A prefetched page's beacon goes after the page, with the nonce the
	// data layer has, and not where the data layer may not go.
	b := s.browser(uaIPhone)
	b.header = http.Header{"Sec-Purpose": {"prefetch"}}
	for _, path := range []string{"/meta-nonce", "/meta-nonce/streamed"} {
		_, body := b.page(path)
		page, beacon, _ := strings.Cut(body, "</html>")
		if !strings.Contains(page, want) || !strings.HasPrefix(beacon, `<script nonce="r4nd0m+/=">(function(){var n="`) ||
			!strings.HasSuffix(beacon, "})();</script>") {
			t.Errorf("%s: a prefetched page's data layer and beacon:\n%s", path, body)
		}
	}
	if _, body := b.page("/hashes"); body != page {
		t.Errorf("a prefetched page whose CSP blocks scripts got:\n%s", body)
	}
	// One whose CSP keeps it from reaching its own origin: the data
	// layer, but no beacon, which could not be sent.
	for _, path := range []string{"/no-connect", "/no-connect/streamed"} {
		if _, body := b.page(path); !strings.Contains(body, `window.edgeseg=`) || strings.Contains(body, "sendBeacon") {
			t.Errorf("%s: a prefetched page whose CSP keeps it from connecting got:\n%s", path, body)
		}
	}
	_, metrics := s.browser(uaIPhone).page("/_edgeseg/metrics")
	if !strings.Contains(metrics, `edgeseg_data_layer_skipped_total{reason="csp"} 5`) ||
		!strings.Contains(metrics, `edgeseg_prefetch_beacons_skipped_total{reason="csp"} 3`) {
		t.Errorf("skips not counted:\n%s", metrics)
	}
}

// TestTemplateReloadUnderLoad: editors rewrite a block while visitors load
// pages; every response is a whole page with a whole block (some version
// of it), and a broken edit keeps the last good one.
func TestTemplateReloadUnderLoad(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("../../examples/templates")); err != nil {
		t.Fatal(err)
	}
	s := startStack(t, nil, func(y string) string {
		return strings.Replace(y, "dir: "+mustAbs(t, "../../examples/templates")+" ", "dir: "+dir+" ", 1)
	})
	block := filepath.Join(dir, "hero", "mobile.hbs")
	var stop atomic.Bool
	var bad, total atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				b := s.browser(uaIPhone)
				resp, body := b.page("/")
				total.Add(1)
				hero := body[strings.Index(body, `id="hero"`):]
				hero = hero[:strings.Index(hero, "</section>")]
				whole := strings.Contains(hero, "Shop on the go") || strings.Contains(hero, "Welcome to the Demo Shop") ||
					strings.Contains(hero, "<h1>version ") && strings.Contains(hero, "</h1>")
				if resp.StatusCode != 200 || !whole || !strings.HasSuffix(strings.TrimSpace(body), "</html>") {
					bad.Add(1)
				}
			}
		}()
	}
	// Each edit is waited for (it is loaded after the watcher's debounce;
	// slower under the race detector) before the next is made.
	served := func(v int) bool {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if _, body := s.browser(uaIPhone).page("/"); strings.Contains(body, fmt.Sprintf("<h1>version %d</h1>", v)) {
				return true
			}
			time.Sleep(50 * time.Millisecond)
		}
		return false
	}
	for v := 1; v <= 8; v++ {
		os.WriteFile(block, []byte(fmt.Sprintf("<h1>version %d</h1>", v)), 0o644)
		if !served(v) {
			t.Fatalf("version %d never served", v)
		}
	}
	os.WriteFile(block, []byte("{{#if broken"), 0o644)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.stderr.String(), "previous version keeps serving") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	if bad.Load() > 0 || total.Load() < 20 {
		t.Fatalf("%d of %d responses were broken or half-rendered", bad.Load(), total.Load())
	}
	if _, body := s.browser(uaIPhone).page("/"); !strings.Contains(body, "<h1>version 8</h1>") {
		t.Fatalf("a broken edit replaced the last good version:\n%s\n%s", body[strings.Index(body, `id="hero"`):][:300], s.stderr.String()[max(0, len(s.stderr.String())-1500):])
	}
	if !strings.Contains(s.stderr.String(), "previous version keeps serving") {
		t.Error("the broken edit was not logged")
	}
}

// TestNoTransformPagesAreServedAsSent: an origin response with
// Cache-Control: no-transform is not rewritten (RFC 9111), nor is a page
// sent as a download (Content-Disposition: attachment), but the visit
// still counts in the profile and the skip is counted.
func TestNoTransformPagesAreServedAsSent(t *testing.T) {
	page := `<!doctype html><html><head></head><body><div data-edgeseg-slot="hero"><p>default</p></div></body></html>`
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		switch r.URL.Path {
		case "/fixed":
			w.Header().Set("Cache-Control", "max-age=60, No-Transform")
		case "/report":
			// An HTML file sent as a download, clicked through like a page.
			w.Header().Set("Content-Disposition", `Attachment; filename="report.html"`)
		}
		io.WriteString(w, page)
	})
	s := startStack(t, origin, noHoldouts)
	b := s.browser(uaIPhone)
	if _, body := b.page("/open"); !strings.Contains(body, "Shop on the go") {
		t.Fatalf("ordinary page not personalized:\n%s", body)
	}
	for _, path := range []string{"/fixed", "/report"} {
		resp, body := b.page(path)
		if body != page {
			t.Fatalf("%s changed:\n%s", path, body)
		}
		if profileCookie(resp) == nil {
			t.Errorf("the visit to %s was not counted in the profile", path)
		}
	}
	_, metrics := s.browser(uaIPhone).page("/_edgeseg/metrics")
	for _, reason := range []string{"no_transform", "attachment"} {
		if !strings.Contains(metrics, `edgeseg_rewrite_skipped_total{reason="`+reason+`"} 1`) {
			t.Errorf("%s skip not counted:\n%s", reason, grepLines(metrics, "skipped"))
		}
	}
}

// TestPrefetchesAreNotVisits: a page fetched ahead of a navigation that may
// never happen (speculation rules, <link rel=prefetch>) is personalized,
// since it may be the page shown, but counts as no page view, exposure or
// conversion, and sets no cookie.
func TestPrefetchesAreNotVisits(t *testing.T) {
	sink, edit := withSink(t, noHoldouts)
	s := startStack(t, nil, edit)
	b := s.browser(uaDesktop)
	resp, _ := b.page("/category/sale")
	before := profileCookie(resp)
	if before == nil {
		t.Fatal("no profile cookie on an ordinary page view")
	}
	for _, h := range []map[string]string{
		{"Sec-Purpose": "prefetch;prerender", "Sec-Fetch-Dest": "document"}, // speculation rules
		{"Sec-Purpose": "prefetch", "Sec-Fetch-Dest": "empty"},              // <link rel=prefetch>
		{"Purpose": "prefetch"},
	} {
		b.header = http.Header{}
		for k, v := range h {
			b.header.Set(k, v)
		}
		resp, body := b.page("/?utm_campaign=promo")
		if !strings.Contains(body, "Deals picked for you") {
			t.Errorf("%v: prefetched page not personalized", h)
		}
		if c := profileCookie(resp); c != nil {
			t.Errorf("%v: a prefetch set the profile cookie", h)
		}
		resp, _ = b.page("/checkout/complete")
		if profileCookie(resp) != nil {
			t.Errorf("%v: a prefetched checkout counted", h)
		}
	}
	s.m.Close() // drains the event queue
	raw, _ := os.ReadFile(sink)
	if strings.Contains(string(raw), `"type":"conversion"`) || strings.Contains(string(raw), `"path":"/"`) ||
		strings.Count(string(raw), `"type":"visit"`) != 1 {
		t.Fatalf("prefetches recorded as exposures, conversions or visits (one visit, the first page's):\n%s", raw)
	}
}

// TestPagesNotNavigatedTo: a site that loads its pages with fetch() and a
// library that swaps them in (Turbo, htmx, pjax, Unpoly) gets them
// personalized; a page that takes the place of the one shown counts as a
// page view, a part swapped into it does not (but its exposures do), nor
// does a page in a frame; a hovered link's prefetch counts as nothing, nor
// does a HEAD request, and a fetch() by any other script is passed as sent.
func TestPagesNotNavigatedTo(t *testing.T) {
	sink, edit := withSink(t, noHoldouts)
	s := startStack(t, nil, edit)
	codec := exampleCodec(t)
	// The page as a click loads it: its exposures are one page's worth.
	if _, body := s.browser(uaDesktop).page("/?utm_campaign=promo"); !strings.Contains(body, "Deals picked for you") {
		t.Fatal("the page is not personalized when navigated to")
	}
	const turboAccept = "text/vnd.turbo-stream.html, text/html, application/xhtml+xml"
	fetched := map[string]string{"Sec-Fetch-Dest": "empty", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "same-origin"}
	for _, c := range []struct {
		name         string
		header       map[string]string
		personalized bool
		pageView     bool
	}{
		{"Turbo Drive", map[string]string{"Accept": turboAccept, "X-Turbo-Request-Id": "6f1c2a9e-1b7d-4c1e-9a55-0d8f3f0f9a11"}, true, true},
		{"Turbo frame", map[string]string{"Accept": turboAccept, "X-Turbo-Request-Id": "0b9e", "Turbo-Frame": "hero"}, true, false},
		{"Turbo prefetch", map[string]string{"Accept": turboAccept, "X-Turbo-Request-Id": "77aa", "X-Sec-Purpose": "prefetch"}, true, false},
		{"htmx boosted", map[string]string{"Accept": "*/*", "HX-Request": "true", "HX-Boosted": "true", "HX-Current-URL": "http://shop.example/"}, true, true},
		{"htmx history restore", map[string]string{"Accept": "*/*", "HX-Request": "true", "HX-History-Restore-Request": "true"}, true, true},
		{"htmx fragment", map[string]string{"Accept": "*/*", "HX-Request": "true", "HX-Target": "hero"}, true, false},
		{"pjax", map[string]string{"Accept": "text/html, */*; q=0.01", "X-PJAX": "true", "X-PJAX-Container": "#main"}, true, true},
		{"Livewire", map[string]string{"Accept": "*/*", "X-Livewire-Navigate": ""}, true, true},
		{"Unpoly", map[string]string{"Accept": "text/html", "X-Up-Version": "3.9.0", "X-Up-Target": "main"}, true, false},
		{"iframe", map[string]string{"Accept": "text/html", "Sec-Fetch-Dest": "iframe", "Sec-Fetch-Mode": "navigate"}, true, false},
		{"other fetch", map[string]string{"Accept": "text/html"}, false, false},
		{"Turbo frame as a script", map[string]string{"Accept": turboAccept, "Turbo-Frame": "hero", "Sec-Fetch-Dest": "script"}, false, false},
		{"Turbo Drive POST", map[string]string{"Accept": turboAccept, "X-Turbo-Request-Id": "1"}, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := s.browser(uaDesktop)
			resp, _ := b.page("/category/sale")
			ck := profileCookie(resp)
			if ck == nil {
				t.Fatal("no profile cookie on an ordinary page view")
			}
			before, st, _ := codec.Decode([]byte(ck.Value), time.Now())
			if st != profile.OK {
				t.Fatalf("profile cookie: %v", st)
			}
			b.header = http.Header{}
			for k, v := range fetched {
				b.header.Set(k, v)
			}
			for k, v := range c.header {
				b.header.Set(k, v)
			}
			method := "GET"
			if strings.HasSuffix(c.name, "POST") {
				method = "POST"
			}
			req, _ := http.NewRequest(method, s.url+"/?utm_campaign=promo", nil)
			req.Header.Set("User-Agent", b.ua)
			for k, v := range b.header {
				req.Header[k] = v
			}
			resp, body := b.do(req)
			if got := strings.Contains(body, "Deals picked for you"); got != c.personalized {
				t.Errorf("personalized: %v, want %v", got, c.personalized)
			}
			if got := strings.Contains(resp.Header.Get("Vary"), "Cookie"); got != c.personalized {
				t.Errorf("Vary: %q", resp.Header.Get("Vary"))
			}
			ck = profileCookie(resp)
			if !c.pageView {
				if ck != nil {
					t.Fatalf("counted as a page view (cookie set)")
				}
				return
			}
			if ck == nil {
				t.Fatal("not counted as a page view (no cookie)")
			}
			after, st, _ := codec.Decode([]byte(ck.Value), time.Now())
			if st != profile.OK || after.PageViews != before.PageViews+1 {
				t.Errorf("page views %d, then %d (%v)", before.PageViews, after.PageViews, st)
			}
		})
	}

	// A part of a page that is a mapped behavior event still counts as one.
	b := s.browser(uaDesktop)
	b.page("/category/sale")
	b.header = http.Header{}
	for k, v := range fetched {
		b.header.Set(k, v)
	}
	b.header.Set("Turbo-Frame", "order")
	b.header.Set("X-Turbo-Request-Id", "c0ffee")
	resp, _ := b.page("/checkout/complete")
	if profileCookie(resp) == nil {
		t.Error("a purchase loaded in a Turbo frame did not count")
	}

	// A page framed by another site comes without the profile cookie (it
	// is SameSite=Lax): filled, but its visitor is a stranger on every
	// request, and its exposures would be of no one.
	b = s.browser(uaDesktop)
	b.header = http.Header{}
	b.header.Set("Sec-Fetch-Dest", "iframe")
	b.header.Set("Sec-Fetch-Site", "cross-site")
	if resp, body := b.page("/?utm_campaign=promo"); !strings.Contains(body, "Deals picked for you") || profileCookie(resp) != nil {
		t.Errorf("a page framed elsewhere: personalized %v, cookie %v", strings.Contains(body, "Deals picked for you"), profileCookie(resp))
	}

	// A HEAD request (a link checker, an uptime monitor) shows no page: it
	// is no page view for a visitor with the cookie, and makes no visitor
	// of one without.
	for _, returning := range []bool{true, false} {
		b = s.browser(uaDesktop)
		if returning {
			b.page("/category/sale")
		}
		req, _ := http.NewRequest("HEAD", s.url+"/?utm_campaign=promo", nil)
		req.Header.Set("User-Agent", b.ua)
		req.Header.Set("Accept", "text/html")
		if resp, _ := b.do(req); resp.StatusCode != http.StatusOK || profileCookie(resp) != nil {
			t.Errorf("HEAD (returning %v): %s, cookie %v", returning, resp.Status, profileCookie(resp))
		}
	}

	s.m.Close() // drains the event queue
	raw, _ := os.ReadFile(sink)
	// Exposures on /, by visitor: the first page's, then Turbo Drive's,
	// the Turbo frame's, htmx's boosted, restored and fragment pages',
	// pjax's, Livewire's, Unpoly's and the iframe's; not the prefetch's, the page
	// framed elsewhere's, nor those of fetches passed as sent.
	var order []string
	perVisitor := map[string]int{}
	for l := range strings.Lines(string(raw)) {
		var e struct{ Type, Path, Visitor string }
		if json.Unmarshal([]byte(l), &e) != nil || e.Type != "exposure" || e.Path != "/" {
			continue
		}
		if perVisitor[e.Visitor] == 0 {
			order = append(order, e.Visitor)
		}
		perVisitor[e.Visitor]++
	}
	if len(order) != 10 {
		t.Errorf("exposures on / from %d visitors, want 10:\n%s", len(order), raw)
	}
	for _, v := range order {
		if perVisitor[v] != perVisitor[order[0]] {
			t.Errorf("visitor %s: %d exposures on /, the first page had %d", v, perVisitor[v], perVisitor[order[0]])
		}
	}
	if !strings.Contains(string(raw), `"type":"conversion"`) {
		t.Errorf("no conversion from the purchase in a frame:\n%s", raw)
	}
}

// TestCookieSecureOverHTTPS: with profile.secure off (the example config,
// for the demo on plain http), the profile cookie is still Secure on a
// visit that reached the site over HTTPS, as the proxy in front says.
func TestCookieSecureOverHTTPS(t *testing.T) {
	s := startStack(t, nil, nil)
	for _, c := range []struct {
		header, value string
		secure        bool
	}{
		{"", "", false},
		{"X-Forwarded-Proto", "https", true},
		{"X-Forwarded-Proto", "http", false},
		{"Forwarded", `for=203.0.113.9;proto="https"`, true},
		{"Forwarded", "for=203.0.113.9;proto=http, for=10.0.0.1;proto=https", false},
	} {
		b := s.browser(uaDesktop)
		if c.header != "" {
			b.header.Set(c.header, c.value)
		}
		resp, _ := b.page("/")
		ck := profileCookie(resp)
		if ck == nil || ck.Secure != c.secure {
			t.Errorf("%s: %s: cookie %v, want Secure %v", c.header, c.value, ck, c.secure)
		}
	}
}

// TestPlaceholderSecretsAreLoud: serving with the example config's
// published secrets says so at error level, naming each; a secret of one's
// own does not.
func TestPlaceholderSecretsAreLoud(t *testing.T) {
	s := startStack(t, nil, nil)
	logs := s.stderr.String()
	for _, k := range []string{`"key":"profile.keys[0]"`, `"key":"preview.secret"`} {
		if !strings.Contains(logs, k) || !strings.Contains(logs, "published placeholder") {
			t.Errorf("no error about %s:\n%s", k, logs)
		}
	}
	own := startStack(t, nil, func(y string) string {
		y = strings.Replace(y, `secret: "demo-secret-change-me-0123456789abcdef"`, `secret: "a-secret-of-our-own-0123456789abcdef"`, 1)
		return strings.Replace(y, `secret: "demo-preview-secret-change-me-0123456789"`, `secret: "another-secret-of-ours-0123456789"`, 1)
	})
	if strings.Contains(own.stderr.String(), "published placeholder") {
		t.Errorf("own secrets reported as placeholders:\n%s", own.stderr.String())
	}
}
