package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/VictoriaMetrics/metrics"
	"github.com/edgeseg/edgeseg/cache"
	"github.com/edgeseg/edgeseg/config"
)

// fuzzPage is the origin's page: three slots of the example templates
// between a head and a tail that must reach the visitor whatever happens.
const fuzzPage = `<!doctype html><html><head><title>shop</title></head><body><header>top of page</header>
<section data-edgeseg-slot="hero"><h1>Welcome</h1></section>
<aside data-edgeseg-slot="sidebar"><p>Popular</p></aside>
<div data-edgeseg-slot="footer-offer"><p>Free shipping on orders over $50.</p></div>
<footer>end of page</footer></body></html>`

// Origin response variants, chosen per input by one byte.
const (
	fuzzTypeMask   = 3      // text/html utf-8, text/html, windows-1252, JSON
	fuzzCodingMask = 3 << 2 // identity, gzip, br, gzip that is not
	fuzzChunked    = 1 << 4
	fuzzCaching    = 1 << 5 // the input's Cache-Control and Vary
	fuzzNotFound   = 1 << 6
	fuzzSetCookie  = 1 << 7
)

// fuzzStack is the example configuration, with every request-reading
// feature on, in front of an origin whose answer the input chooses.
type fuzzStack struct {
	h      *Handler
	panics *metrics.Counter
	dial   func() (net.Conn, error)
	close  func()
}

// newFuzzOrigin serves the origin whose answer each request's
// X-Fuzz-Variant picks.
func newFuzzOrigin() (ln *fasthttputil.InmemoryListener, stop func()) {
	oln := fasthttputil.NewInmemoryListener()
	page := []byte(fuzzPage)
	bodies := [4][]byte{page, gzipped(page), brotlied(page), []byte("\x1f\x8b not gzip " + fuzzPage)}
	osrv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		variant, _ := strconv.ParseUint(string(ctx.Request.Header.Peek("X-Fuzz-Variant")), 16, 8)
		ctx.SetContentType([4]string{"text/html; charset=utf-8", "text/html", "text/html; charset=windows-1252", "application/json"}[variant&fuzzTypeMask])
		coding := (variant & fuzzCodingMask) >> 2
		if coding != 0 {
			ctx.Response.Header.Set("Content-Encoding", [4]string{"", "gzip", "br", "gzip"}[coding])
		}
		// The answer depends on the variant: say so, or the origin cache
		// rightly serves one variant's page for another.
		ctx.Response.Header.Set("Vary", "X-Fuzz-Variant")
		if variant&fuzzCaching != 0 {
			ctx.Response.Header.SetBytesV("Cache-Control", ctx.Request.Header.Peek("X-Fuzz-Cache-Control"))
			ctx.Response.Header.Add("Vary", string(ctx.Request.Header.Peek("X-Fuzz-Vary")))
		}
		if variant&fuzzNotFound != 0 {
			ctx.SetStatusCode(fasthttp.StatusNotFound)
		}
		if variant&fuzzSetCookie != 0 {
			ctx.Response.Header.Set("Set-Cookie", "session=abc; Path=/")
		}
		if variant&fuzzChunked != 0 {
			ctx.SetBodyStream(bytes.NewReader(bodies[coding]), -1)
			return
		}
		ctx.SetBody(bodies[coding])
	}}
	go osrv.Serve(oln) //nolint:errcheck
	return oln, func() { _ = osrv.Shutdown() }
}

// newFuzzStack is the handler in front of the origin listening on oln;
// mutate, when set, changes its config last.
func newFuzzStack(t testing.TB, oln *fasthttputil.InmemoryListener, mutate func(*config.Config)) *fuzzStack {
	cfg, err := config.Load("../examples/edgeseg.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Origin.URL = "http://origin.test"
	cfg.Origin.HostHeader = "origin" // the origin's redirects and cookies are turned towards the visitor
	cfg.Templates.Watch = false
	cfg.Server.TrustedProxies = []string{"0.0.0.0/0", "::/0"}
	cfg.Signals.GeoCountryHeader = "CF-IPCountry"
	cfg.Signals.GeoRegionHeader = "CF-Region"
	cfg.Signals.Cookies = []string{"plan"}
	cfg.Signals.Headers = []string{"X-Tier"}
	cfg.Signals.Query = []string{"ref"}
	cfg.Consent.Cookie = "cookie_consent"
	cfg.Consent.RespectDNT = true
	cfg.Identity.Cookie = "site_jwt"
	cfg.Identity.Algorithms = []string{"HS256"}
	cfg.Identity.Keys = []config.IdentityKey{{ID: "site", Secret: "site-login-secret-0123456789abcdef0123"}}
	cfg.Identity.Claims = []string{"tier"}
	cfg.Events.ClientEvents = true
	cfg.Templates.DataLayer = true
	cfg.Templates.DebugHeader = true
	cfg.Cache.Origin.Paths = []string{"/cached/*"}
	cfg.Cache.Origin.DefaultTTL = time.Minute
	cfg.Log.Level = "error"
	if mutate != nil {
		mutate(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	nop := zerolog.Nop()
	org, err := NewOrigin(cfg.Origin)
	if err != nil {
		t.Fatal(err)
	}
	// As edgeseg dials the origin: connections that tell when a chunked
	// page has arrived whole, and when a read would wait.
	org.client.Dial = func(string) (net.Conn, error) {
		c, err := oln.Dial()
		if err != nil {
			return nil, err
		}
		return newOriginConn(c, cfg.Origin.ReadTimeout, true), nil
	}
	set := metrics.NewSet()
	oc, err := cache.NewOrigin(cfg.Cache.Origin, set)
	if err != nil {
		t.Fatal(err)
	}
	p := newBenchPersonalizer(t, cfg)
	h, err := New(Options{Config: cfg, Origin: org, Log: &nop, Personalizer: p, OriginCache: oc, Metrics: set})
	if err != nil {
		t.Fatal(err)
	}
	pln := fasthttputil.NewInmemoryListener()
	srv := NewServer(cfg, h, &nop)
	go srv.Serve(pln) //nolint:errcheck
	return &fuzzStack{h: h, panics: h.metrics.panics, dial: pln.Dial, close: func() { _ = srv.Shutdown() }}
}

// send writes req on a new connection to the handler and returns what
// comes back, within a deadline.
func (st *fuzzStack) send(t *testing.T, req []byte) *bufio.Reader {
	c, err := st.dial()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	return bufio.NewReader(c)
}

// fuzzHeaders turns arbitrary text into header lines, without the ones
// that would make the exchange wait for bytes that never come (a body
// length, Expect) or end the head early.
func fuzzHeaders(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimRight(strings.ReplaceAll(line, "\r", ""), " \t")
		name, _, _ := strings.Cut(strings.ToLower(line), ":")
		name = strings.TrimSpace(name)
		switch {
		case line == "", name == "content-length", name == "transfer-encoding", name == "expect", name == "x-fuzz-variant":
			continue
		}
		b.WriteString(line)
		b.WriteString("\r\n")
	}
	return b.String()
}

// FuzzRequest sends hostile requests (request target, headers, cookies,
// method, HTTP/1.1 or 1.0, and body) through the whole handler to an origin whose answer the
// input also picks (type, compression, framing, caching headers, status).
// Whatever arrives: no panic, no 5xx, an answer within the deadline, and a
// page that reaches the visitor whole, personalized or not.
func FuzzRequest(f *testing.F) {
	seeds := []struct {
		method  byte
		variant byte
		target  string
		headers string
		body    string
	}{
		{0, 0, "/?utm_campaign=promo&utm_source=google&utm_medium=cpc", "User-Agent: Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148\nAccept: text/html\nSec-Fetch-Dest: document\nReferer: https://www.google.com/search?q=x", ""},
		{0, 1 << 2, "/category/sale", "Cookie: edgeseg=eyJhbGciOiJIUzI1NiIsImtpZCI6ImRlbW8tMSJ9.e30.AAAA; cookie_consent=granted\nAccept-Encoding: gzip, br\nAccept-Language: de-CH;q=0.9,*;q=0.1", ""},
		{0, 2<<2 | fuzzChunked, "/cached/page?edgeseg_preview=garbage.token.here", "Accept-Encoding: br;q=1, gzip;q=0\nForwarded: for=\"[::1]:80\";proto=https, for=unknown\nX-Forwarded-For: 1.2.3.4, ,,\nCF-IPCountry: \xff\xfe", ""},
		{0, 3<<2 | fuzzCaching, "/cached/x", "X-Fuzz-Cache-Control: max-age=99999999999999999999, s-maxage=-1, no-cache=\"set-cookie\nX-Fuzz-Vary: *, Accept-Language,,\nCookie: edgeseg=\"\"; edgeseg=; edgeseg=a.b.c", ""},
		{0, 2 | fuzzSetCookie, "/product/luxury/9?ref=%ff%fe", "Sec-GPC: 1\nDNT: 1\nSec-Purpose: prefetch\nCookie: site_jwt=eyJhbGciOiJub25lIn0.eyJ0aWVyIjoiZ29sZCJ9.", ""},
		{2, 0, "/_edgeseg/event", "Origin: http://shop.test\nContent-Type: application/json", `{"event": "scroll_75", "x": [1,2,{"y":"\u0000"}]}`},
		{1, fuzzNotFound, "//a/../b?%%", "Sec-CH-UA-Mobile: ?1\nSec-CH-UA-Platform: \"\"\nUser-Agent: " + strings.Repeat("(", 500), ""},
		{0, 0, "/_edgeseg/explain?edgeseg_preview=x", "Cookie: " + strings.Repeat("edgeseg=x; ", 200), ""},
		{4, 2<<2 | fuzzChunked, "/?utm_campaign=promo", "Accept: text/html\nConnection: keep-alive, Upgrade\nUpgrade: h2c", ""},
		{6, fuzzChunked, "/form", "Content-Type: application/x-www-form-urlencoded", "a=1"},
	}
	for _, s := range seeds {
		f.Add(s.method, s.variant, s.target, s.headers, s.body)
	}
	oln, stop := newFuzzOrigin()
	defer stop()
	st := newFuzzStack(f, oln, nil)
	defer st.close()
	f.Fuzz(func(t *testing.T, method, variant byte, target, headers, body string) {
		if !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \r\n\t") || len(target) > 4096 {
			return // not a request line; fasthttp's own refusal is covered elsewhere
		}
		m := [4]string{"GET", "HEAD", "POST", "GET"}[method&3]
		version := "HTTP/1.1"
		if method&4 != 0 {
			version = "HTTP/1.0" // a body of unknown length comes whole or until close
		}
		var req bytes.Buffer
		fmt.Fprintf(&req, "%s %s %s\r\nHost: shop.test\r\n", m, target, version)
		req.WriteString(fuzzHeaders(headers))
		// Last, so that no folded line of the input continues it.
		fmt.Fprintf(&req, "X-Fuzz-Variant: %02x\r\n", variant)
		if m == "POST" {
			fmt.Fprintf(&req, "Content-Length: %d\r\n\r\n%s", len(body), body)
		} else {
			req.WriteString("\r\n")
		}
		before := st.panics.Get()
		answer := st.send(t, req.Bytes())
		resp := fasthttp.AcquireResponse()
		defer fasthttp.ReleaseResponse(resp)
		resp.SkipBody = m == "HEAD"
		if err := resp.Read(answer); err != nil {
			t.Fatalf("no answer to\n%q\n: %v", req.String(), err)
		}
		if n := st.panics.Get(); n != before {
			t.Fatalf("panic serving\n%q", req.String())
		}
		status := resp.StatusCode()
		if status >= 500 {
			t.Fatalf("%d for\n%q\n%s", status, req.String(), resp.Body())
		}
		if version == "HTTP/1.0" && len(resp.Header.Peek(fasthttp.HeaderTransferEncoding)) > 0 {
			t.Fatalf("chunked to HTTP/1.0 for\n%q", req.String())
		}
		// A page from the origin reaches the visitor whole.
		if m == "HEAD" || status != fasthttp.StatusOK && status != fasthttp.StatusNotFound || bytes.HasPrefix(resp.Header.Peek("Server"), []byte("edgeseg")) {
			return
		}
		if variant&fuzzCodingMask == 3<<2 {
			// The origin's broken gzip, passed on as it came.
			if !bytes.Equal(resp.Body(), []byte("\x1f\x8b not gzip "+fuzzPage)) {
				t.Fatalf("a body that does not decode was changed for\n%q\n%q", req.String(), resp.Body())
			}
			return
		}
		page, err := resp.BodyUncompressed()
		if err != nil {
			t.Fatalf("%s body for\n%q\n: %v", resp.Header.ContentEncoding(), req.String(), err)
		}
		if !bytes.HasPrefix(page, []byte("<!doctype html><html><head>")) || !bytes.Contains(page, []byte("<header>top of page</header>")) ||
			!bytes.HasSuffix(page, []byte("<footer>end of page</footer></body></html>")) {
			t.Fatalf("page not whole for\n%q\n%q", req.String(), page)
		}
	})
}

// FuzzOriginResponse puts the handler in front of an origin that answers
// with whatever the input holds: any status line, any headers (framing
// and coding included), any body. Whatever it sends: no panic, no 500,
// an answer within the deadline; an answer fasthttp itself can read
// reaches the visitor with its status, and a page in it reaches the
// visitor whole.
func FuzzOriginResponse(f *testing.F) {
	for _, s := range []struct {
		status  uint16
		headers string
		body    byte
	}{
		{200, "Content-Type: text/html; charset=utf-8", 1},
		{200, "Content-Type: text/html\nContent-Encoding: gzip\nContent-Length: 5", 2},
		{200, "Content-Type: text/html\nTransfer-Encoding: chunked", 3},
		{200, "Content-Type: text/html\nTransfer-Encoding: chunked\nContent-Length: 10", 1},
		{200, "Content-Type: text/html\nContent-Encoding: gzip, br", 2},
		{304, "Content-Type: text/html\nContent-Length: 7", 1},
		{204, "Content-Type: text/html", 1},
		{103, "Link: </a.css>; rel=preload", 1},
		{200, "Content-Type: text/html\nContent-Length: 99999999999999999999", 0},
		{200, "Content-Type: text/html; charset=\xff\nContent-Encoding: \xff\nVary: *\nCache-Control: max-age=60", 1},
		{999, "Content-Type:\nLocation: //evil\nSet-Cookie: edgeseg=forged", 0},
		{404, "Content-Type: text/html", 1},
		{200, "Content-Type: application/json\nTransfer-Encoding: chunked", 3},
		{500, "Content-Type: text/plain\nCache-Control: no-transform\nContent-Length: 300", 1},
	} {
		f.Add(s.status, s.headers, s.body, []byte("<html><body><div data-edgeseg-slot=\"hero\">x</div>"), false)
		f.Add(s.status, s.headers, s.body, []byte{}, true)
		f.Add(s.status, s.headers, s.body|4, []byte{}, false) // the head's lines ending in bare LFs
	}
	var answer atomic.Pointer[[]byte]
	oln := rawInmemory(f, func(c net.Conn) {
		var req fasthttp.Request
		if req.Read(bufio.NewReader(c)) != nil {
			return
		}
		_, _ = c.Write(*answer.Load())
	})
	// Each answer goes to edgeseg as configured by default, and to one
	// asking the origin for pages uncompressed to compress them itself.
	stacks := []*fuzzStack{newFuzzStack(f, oln, nil), newFuzzStack(f, oln, func(c *config.Config) { c.Rewrite.AskUncompressed = true })}
	for _, st := range stacks {
		defer st.close()
	}
	page := []byte(fuzzPage)
	chunked := func(b []byte) []byte {
		var buf bytes.Buffer
		for len(b) > 0 {
			n := min(len(b), 100)
			fmt.Fprintf(&buf, "%x\r\n%s\r\n", n, b[:n])
			b = b[n:]
		}
		buf.WriteString("0\r\n\r\n")
		return buf.Bytes()
	}
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, status uint16, headers string, which byte, body []byte, cached bool) {
		switch which % 4 {
		case 1:
			body = page
		case 2:
			body = gzipped(page)
		case 3:
			body = chunked(page)
		}
		// The answer's head, its lines ended with CRLF, or with bare LFs
		// (which&4), which edgeseg reads as CRLF.
		head := func(eol string) []byte {
			var raw bytes.Buffer
			fmt.Fprintf(&raw, "HTTP/1.1 %d Fuzz%s", status, eol)
			for _, line := range strings.Split(headers, "\n") {
				if line = strings.TrimRight(line, "\r"); line != "" {
					raw.WriteString(line + eol)
				}
			}
			raw.WriteString("Connection: close" + eol + eol)
			return raw.Bytes()
		}
		b := append(head("\r\n"), body...)
		sent := b
		if which&4 != 0 {
			sent = append(head("\n"), body...)
		}
		answer.Store(&sent)

		// What fasthttp's client makes of it on its own (within a bound: a
		// Content-Length is a size to allocate for it), its head in CRLF.
		var want fasthttp.Response
		wantErr := want.ReadLimitBody(bufio.NewReader(bytes.NewReader(b)), 1<<20)

		for _, st := range stacks {
			checkOriginAnswer(t, st, b, &want, wantErr, cached, &n, page)
		}
	})
}

// checkOriginAnswer is FuzzOriginResponse's check of one stack's answer
// to a page request, the origin sending b (which fasthttp reads as want,
// or fails to with wantErr).
func checkOriginAnswer(t *testing.T, st *fuzzStack, b []byte, want *fasthttp.Response, wantErr error, cached bool, n *atomic.Int64, page []byte) {
	t.Helper()
	path := "/page"
	if cached {
		path = fmt.Sprintf("/cached/%d", n.Add(1)) // a fresh key: no answer of an earlier input
	}
	req := "GET " + path + " HTTP/1.1\r\nHost: shop.test\r\nAccept: text/html\r\nAccept-Encoding: gzip\r\n" +
		"User-Agent: Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148\r\n\r\n"
	before := st.panics.Get()
	br := st.send(t, []byte(req))
	var resp fasthttp.Response
	if err := resp.Header.Read(br); err != nil {
		t.Fatalf("no answer for an origin sending\n%q\n: %v", b, err)
	}
	var bodyErr error
	if hasBody(resp.StatusCode()) {
		bodyErr = resp.ReadBody(br, 1<<20)
	}
	if bodyErr != nil && wantErr == nil {
		t.Fatalf("body cut short (%v) for an origin sending\n%q", bodyErr, b)
	}
	if st.panics.Get() != before {
		t.Fatalf("panic for an origin sending\n%q", b)
	}
	got := resp.StatusCode()
	if got == fasthttp.StatusInternalServerError && want.StatusCode() != got {
		t.Fatalf("500 for an origin sending\n%q\n%s", b, resp.Body())
	}
	if wantErr != nil || want.StatusCode() < 200 {
		return // not an answer: a 502 is right
	}
	if got != want.StatusCode() {
		t.Fatalf("status %d, the origin's was %d, for an origin sending\n%q\n(fasthttp reads it: %v)\n%s", got, want.StatusCode(), b, wantErr, resp.Body())
	}
	originBody, err := want.BodyUncompressed()
	if err != nil {
		return
	}
	filled := got == fasthttp.StatusOK && isHTML(want.Header.ContentType())
	if len(want.Header.ContentEncoding()) == 0 && len(resp.Header.ContentEncoding()) > 0 && !filled {
		// Compressed here (rewrite.ask_uncompressed), not filled.
		if body, err := resp.BodyUncompressed(); err != nil || !bytes.Equal(body, originBody) {
			t.Fatalf("compressed here, the body decodes (%v) to\n%q\nnot the origin's\n%q\nfor an origin sending\n%q", err, body, originBody, b)
		}
	}
	if !bytes.Equal(originBody, page) || got != fasthttp.StatusOK {
		return
	}
	visitorBody, err := resp.BodyUncompressed()
	if err != nil {
		t.Fatalf("the page does not decode (%v) for an origin sending\n%q", err, b)
	}
	if !bytes.HasPrefix(visitorBody, []byte("<!doctype html><html><head>")) || !bytes.HasSuffix(visitorBody, []byte("<footer>end of page</footer></body></html>")) {
		t.Fatalf("page not whole for an origin sending\n%q\n%q", b, visitorBody)
	}
}

// FuzzCookieDomain: dropping a foreign Domain from a Set-Cookie value
// keeps the cookie's name and value and every other attribute.
func FuzzCookieDomain(f *testing.F) {
	f.Add("a=1; Domain=cms.internal; Path=/", "shop.example")
	f.Add("a=1;Domain=;domain=x;;", "x")
	f.Add("a=1; Domain=.example", "www.shop.example")
	f.Fuzz(func(t *testing.T, v, host string) {
		got := withoutForeignDomain([]byte(v), []byte(host))
		if got == nil {
			return
		}
		nameValue, _, _ := strings.Cut(v, ";")
		if !strings.HasPrefix(string(got), strings.TrimRight(nameValue, " ")) || len(got) >= len(v) {
			t.Fatalf("%q for %q became %q", v, host, got)
		}
		if strings.Contains(strings.ToLower(string(got)), "domain=") && strings.Count(strings.ToLower(v), "domain=") == 1 {
			t.Fatalf("%q for %q kept its Domain: %q", v, host, got)
		}
	})
}
