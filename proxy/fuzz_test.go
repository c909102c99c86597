package proxy

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
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

func newFuzzStack(t testing.TB) *fuzzStack {
	oln := fasthttputil.NewInmemoryListener()
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		_, _ = w.Write(b)
		_ = w.Close()
		return buf.Bytes()
	}
	br := func(b []byte) []byte {
		var buf bytes.Buffer
		w := brotli.NewWriter(&buf)
		_, _ = w.Write(b)
		_ = w.Close()
		return buf.Bytes()
	}
	page := []byte(fuzzPage)
	bodies := [4][]byte{page, gz(page), br(page), []byte("\x1f\x8b not gzip " + fuzzPage)}
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

	cfg, err := config.Load("../examples/edgeseg.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Origin.URL = "http://origin.test"
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
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	nop := zerolog.Nop()
	org, err := NewOrigin(cfg.Origin)
	if err != nil {
		t.Fatal(err)
	}
	org.client.Dial = func(string) (net.Conn, error) { return oln.Dial() }
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
	return &fuzzStack{h: h, panics: h.metrics.panics, dial: pln.Dial, close: func() { _ = srv.Shutdown(); _ = osrv.Shutdown() }}
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
// method and body) through the whole handler to an origin whose answer the
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
	}
	for _, s := range seeds {
		f.Add(s.method, s.variant, s.target, s.headers, s.body)
	}
	st := newFuzzStack(f)
	defer st.close()
	f.Fuzz(func(t *testing.T, method, variant byte, target, headers, body string) {
		if !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \r\n\t") || len(target) > 4096 {
			return // not a request line; fasthttp's own refusal is covered elsewhere
		}
		m := [4]string{"GET", "HEAD", "POST", "GET"}[method&3]
		var req bytes.Buffer
		fmt.Fprintf(&req, "%s %s HTTP/1.1\r\nHost: shop.test\r\n", m, target)
		req.WriteString(fuzzHeaders(headers))
		// Last, so that no folded line of the input continues it.
		fmt.Fprintf(&req, "X-Fuzz-Variant: %02x\r\n", variant)
		if m == "POST" {
			fmt.Fprintf(&req, "Content-Length: %d\r\n\r\n%s", len(body), body)
		} else {
			req.WriteString("\r\n")
		}
		before := st.panics.Get()
		c, err := st.dial()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(req.Bytes()); err != nil {
			t.Fatal(err)
		}
		resp := fasthttp.AcquireResponse()
		defer fasthttp.ReleaseResponse(resp)
		resp.SkipBody = m == "HEAD"
		if err := resp.Read(bufio.NewReader(c)); err != nil {
			t.Fatalf("no answer to\n%q\n: %v", req.String(), err)
		}
		if n := st.panics.Get(); n != before {
			t.Fatalf("panic serving\n%q", req.String())
		}
		status := resp.StatusCode()
		if status >= 500 {
			t.Fatalf("%d for\n%q\n%s", status, req.String(), resp.Body())
		}
		// A page from the origin reaches the visitor whole.
		if m == "HEAD" || status != fasthttp.StatusOK && status != fasthttp.StatusNotFound || bytes.HasPrefix(resp.Header.Peek("Server"), []byte("edgeseg")) {
			return
		}
		page := resp.Body()
		switch string(resp.Header.ContentEncoding()) {
		case "gzip":
			if variant&fuzzCodingMask == 3<<2 {
				break // the origin's broken gzip, passed on as it came
			}
			if page, err = io.ReadAll(mustGzip(t, page)); err != nil {
				t.Fatalf("gzip body for\n%q\n: %v", req.String(), err)
			}
		case "br":
			if page, err = io.ReadAll(brotli.NewReader(bytes.NewReader(page))); err != nil {
				t.Fatalf("br body for\n%q\n: %v", req.String(), err)
			}
		}
		if variant&fuzzCodingMask == 3<<2 {
			if !bytes.Equal(page, []byte("\x1f\x8b not gzip "+fuzzPage)) {
				t.Fatalf("a body that does not decode was changed for\n%q\n%q", req.String(), page)
			}
			return
		}
		if !bytes.HasPrefix(page, []byte("<!doctype html><html><head>")) || !bytes.Contains(page, []byte("<header>top of page</header>")) ||
			!bytes.HasSuffix(page, []byte("<footer>end of page</footer></body></html>")) {
			t.Fatalf("page not whole for\n%q\n%q", req.String(), page)
		}
	})
}

func mustGzip(t *testing.T, b []byte) io.Reader {
	t.Helper()
	r, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("gzip: %v", err)
	}
	return r
}
