package proxy

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/edgeseg/edgeseg/config"
)

// TestAskUncompressed: with rewrite.ask_uncompressed, a page to fill is
// asked of the origin uncompressed and compressed here in the coding the
// visitor prefers (gzip, else brotli), filled or not, buffered or
// streamed, as is a navigation to JSON; a visitor with nothing to fill,
// and a form posted, are asked for as before and get the origin's bytes.
func TestAskUncompressed(t *testing.T) {
	page := []byte("<!doctype html><html><head><title>t</title></head><body>" +
		`<section data-edgeseg-slot="hero"><h1>Welcome to our shop</h1></section>` +
		strings.Repeat("<p>catalog line</p>\n", 200) + "</body></html>")
	plain := []byte("<!doctype html><html><body>" + strings.Repeat("<p>no slot here</p>\n", 200) + "</body></html>")
	var mu sync.Mutex
	asked := map[string]string{} // path: the Accept-Encoding the origin got
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked[r.URL.Path] = r.Header.Get("Accept-Encoding")
		mu.Unlock()
		body, ctype := page, "text/html; charset=utf-8"
		switch r.URL.Path {
		case "/plain":
			body = plain
		case "/data":
			body, ctype = []byte(`{"items":[`+strings.Repeat(`"x",`, 300)+`"y"]}`), "application/json"
		}
		w.Header().Set("Content-Type", ctype)
		w.Header().Set("ETag", `"v1"`)
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			w.Header().Set("Content-Encoding", "gzip")
			w.Header().Set("Vary", "Accept-Encoding")
			body = gzipped(body)
		}
		if r.URL.Path == "/stream" {
			half := len(body) / 2
			w.Write(body[:half])
			w.(http.Flusher).Flush()
			time.Sleep(20 * time.Millisecond) // arrives in two parts: rewritten as it streams
			w.Write(body[half:])
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}))
	defer origin.Close()
	_, ln := personalizingServer(t, origin.URL, func(c *config.Config) { c.Rewrite.AskUncompressed = true })
	client := &fasthttp.HostClient{Addr: "edgeseg", Dial: func(string) (net.Conn, error) { return ln.Dial() }}

	for _, c := range []struct {
		name, path, ae string
		promo, post    bool
		origin         string // the Accept-Encoding the origin gets
		enc            string // the response's Content-Encoding
		filled         bool
	}{
		{"filled, gzip", "/", "gzip, deflate, br, zstd", true, false, "identity", "gzip", true},
		{"streamed", "/stream", "gzip, deflate, br, zstd", true, false, "identity", "gzip", true},
		{"nothing to fill", "/plain", "gzip, deflate, br, zstd", true, false, "identity", "gzip", false},
		{"brotli only", "/", "br", true, false, "identity", "br", true},
		{"gzip refused", "/", "gzip;q=0, br;q=0", true, false, "identity", "", true},
		{"no segment", "/", "gzip, deflate, br, zstd", false, false, "gzip, deflate, br", "gzip", false},
		{"not HTML", "/data", "gzip, br", true, false, "identity", "gzip", false},
		{"a form posted", "/", "gzip, br", true, true, "gzip, br", "gzip", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			uri := c.path
			if c.promo {
				uri += "?utm_campaign=promo"
			}
			navRequest(req, uri, "")
			req.Header.Set("Accept-Encoding", c.ae)
			if c.post {
				req.Header.SetMethod(fasthttp.MethodPost)
				req.SetBodyString("a=1")
			}
			if err := client.Do(req, resp); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			got := asked[c.path]
			mu.Unlock()
			if got != c.origin {
				t.Errorf("the origin was asked with Accept-Encoding %q, want %q", got, c.origin)
			}
			if streamed := resp.Header.ContentLength() < 0; streamed != (c.path == "/stream") {
				t.Errorf("sent chunked %v, want %v", streamed, c.path == "/stream")
			}
			if enc := string(resp.Header.ContentEncoding()); enc != c.enc {
				t.Fatalf("Content-Encoding %q, want %q", enc, c.enc)
			}
			body, err := resp.BodyUncompressed()
			if err != nil {
				t.Fatal(err)
			}
			if filled := bytes.Contains(body, []byte("Deals picked for you")); filled != c.filled {
				t.Fatalf("filled %v, want %v", filled, c.filled)
			}
			if !c.filled && c.path == "/plain" && !bytes.Equal(body, plain) {
				t.Fatalf("the page without slots is not the origin's:\n%.200q", body)
			}
			vary := string(resp.Header.Peek("Vary"))
			if c.origin == "identity" {
				if !strings.Contains(vary, "Accept-Encoding") {
					t.Errorf("Vary %q lacks Accept-Encoding", vary)
				}
				if et := string(resp.Header.Peek("ETag")); c.enc != "" && et != `W/"v1"` {
					t.Errorf("ETag %q of a page compressed here, want it weak", et)
				}
			}
		})
	}
}

// TestAskUncompressedPassedThrough: what edgeseg asked of the origin
// uncompressed and passes through unfilled (an error page, a page past
// rewrite.max_body_bytes, SVG, a feed, JSON kept by cache.origin) is
// compressed here when it is text worth compressing, with a length when
// it arrived whole, was read whole (its Content-Length within
// origin.buffer_bytes) or is kept, and chunked when not;
// what the origin compressed anyway, marked no-transform, a range, an
// image and a tiny body go out as the origin sent them.
func TestAskUncompressedPassedThrough(t *testing.T) {
	page := []byte("<!doctype html><html><head><title>t</title></head><body>" +
		`<section data-edgeseg-slot="hero"><h1>Welcome to our shop</h1></section>` +
		strings.Repeat("<p>catalog line</p>\n", 200) + "</body></html>")
	big := bytes.Repeat(page, 20)   // past max_body_bytes below
	huge := bytes.Repeat(page, 300) // past origin.buffer_bytes too
	img := bytes.Repeat([]byte{0x89, 'P', 'N', 'G', 0, 1, 2, 3}, 512)
	type answer struct {
		status      int
		ctype, cc   string
		body        []byte
		chunked, gz bool
		rng         bool
		identity    bool // says Content-Encoding: identity
	}
	answers := map[string]answer{
		"/missing":     {status: 404, ctype: "text/html; charset=utf-8", body: page},
		"/broken":      {status: 500, ctype: "text/html", body: page, chunked: true},
		"/big":         {status: 200, ctype: "text/html", body: big},
		"/huge":        {status: 200, ctype: "text/html", body: huge},
		"/feed.xml":    {status: 200, ctype: "application/rss+xml", body: big, chunked: true},
		"/logo.svg":    {status: 200, ctype: "image/svg+xml", body: page},
		"/gz":          {status: 200, ctype: "application/json", body: page, gz: true},
		"/keep":        {status: 200, ctype: "text/html", cc: "public, no-transform", body: page},
		"/part":        {status: 206, ctype: "text/html", body: page, rng: true},
		"/img":         {status: 200, ctype: "image/png", body: img},
		"/tiny":        {status: 200, ctype: "application/json", body: []byte(`{"ok":true}`)},
		"/identity":    {status: 200, ctype: "text/css", body: page, identity: true},
		"/kept/a.json": {status: 200, ctype: "application/json", body: page}, // cache.origin keeps it
		"/kept/b.json": {status: 200, ctype: "application/json", body: page, chunked: true},
	}
	var mu sync.Mutex
	asked := map[string]int{}
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked[r.URL.Path]++
		mu.Unlock()
		a, ok := answers[r.URL.Path]
		if !ok || r.Header.Get("Accept-Encoding") != "identity" {
			http.Error(w, "unexpected request "+r.URL.Path+" with Accept-Encoding "+r.Header.Get("Accept-Encoding"), http.StatusTeapot)
			return
		}
		body := a.body
		w.Header().Set("Content-Type", a.ctype)
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Accept-Ranges", "bytes")
		w.Header().Set("Content-Digest", "sha-256=:AAAA:")
		if a.cc != "" {
			w.Header().Set("Cache-Control", a.cc)
		}
		if a.gz {
			body = gzipped(body)
			w.Header().Set("Content-Encoding", "gzip")
		}
		if a.identity {
			w.Header().Set("Content-Encoding", "identity")
		}
		if a.rng {
			w.Header().Set("Content-Range", "bytes 0-"+strconv.Itoa(len(body)-1)+"/"+strconv.Itoa(len(body)+10))
		}
		if !a.chunked {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		w.WriteHeader(a.status)
		w.Write(body)
	}))
	defer origin.Close()
	h, ln := personalizingServer(t, origin.URL, func(c *config.Config) {
		c.Rewrite.AskUncompressed = true
		c.Rewrite.MaxBodyBytes = 64 << 10
		c.Cache.Origin.Paths = []string{"/kept/*"}
		c.Cache.Origin.DefaultTTL = time.Minute
	})
	client := &fasthttp.HostClient{Addr: "edgeseg", Dial: func(string) (net.Conn, error) { return ln.Dial() }, MaxResponseBodySize: 4 << 20}

	for _, c := range []struct {
		path, ae, enc string
		chunked       bool
	}{
		{"/missing", "gzip, deflate, br", "gzip", false},
		{"/missing", "br", "br", false},
		{"/broken", "gzip, deflate, br", "gzip", true},
		{"/big", "gzip, deflate, br", "gzip", false}, // read whole
		{"/huge", "gzip, deflate, br", "gzip", true},
		{"/feed.xml", "br", "br", true},
		{"/logo.svg", "gzip", "gzip", false},
		{"/gz", "gzip", "gzip", false}, // the origin's own
		{"/keep", "gzip", "", false},
		{"/part", "gzip", "", false},
		{"/img", "gzip", "", false},
		{"/tiny", "gzip", "", false},
		{"/identity", "gzip", "gzip", false},
		{"/kept/a.json", "gzip", "gzip", false}, // a miss
		{"/kept/a.json", "gzip", "gzip", false}, // a hit, from memory
		{"/kept/b.json", "br", "br", false},     // read whole into the cache
		{"/kept/b.json", "br", "br", false},
	} {
		t.Run(c.path+" "+c.ae, func(t *testing.T) {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			navRequest(req, c.path+"?utm_campaign=promo", "")
			req.Header.Set("Accept-Encoding", c.ae)
			if err := client.Do(req, resp); err != nil {
				t.Fatal(err)
			}
			h.ocache.Wait() // what the cache took is in it for the next request
			a := answers[c.path]
			if resp.StatusCode() != a.status {
				t.Fatalf("status %d, want %d: %.200q", resp.StatusCode(), a.status, resp.Body())
			}
			if enc := string(resp.Header.ContentEncoding()); enc != c.enc {
				t.Fatalf("Content-Encoding %q, want %q", enc, c.enc)
			}
			if chunked := resp.Header.ContentLength() < 0; chunked != c.chunked {
				t.Errorf("sent chunked %v, want %v", chunked, c.chunked)
			}
			body, err := resp.BodyUncompressed()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(body, a.body) {
				t.Fatalf("the body (%d bytes) is not the origin's (%d)", len(body), len(a.body))
			}
			compressedHere := c.enc != "" && !a.gz
			if compressedHere && len(resp.Body()) >= len(a.body)/2 {
				t.Errorf("compressed to %d bytes of %d", len(resp.Body()), len(a.body))
			}
			vary := string(resp.Header.Peek("Vary"))
			if strings.Contains(vary, "Accept-Encoding") != compressedHere {
				t.Errorf("Vary %q, compressed here %v", vary, compressedHere)
			}
			if et, want := string(resp.Header.Peek("ETag")), map[bool]string{true: `W/"v1"`, false: `"v1"`}[compressedHere]; et != want {
				t.Errorf("ETag %q, want %q", et, want)
			}
			// Ranges and digests of the origin's bytes do not hold of
			// bytes compressed here.
			for _, name := range []string{"Accept-Ranges", "Content-Digest"} {
				if kept := len(resp.Header.Peek(name)) > 0; kept == compressedHere {
					t.Errorf("%s kept %v, compressed here %v", name, kept, compressedHere)
				}
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if asked["/kept/a.json"] != 1 || asked["/kept/b.json"] != 1 {
		t.Errorf("kept answers were asked of the origin %d and %d times, want once each", asked["/kept/a.json"], asked["/kept/b.json"])
	}
}

// TestCompressedHereAsItArrives: a body compressed here goes out as the
// origin sends it, each part flushed when the origin pauses, so a visitor
// reads the first part while the origin is still at work on the next;
// and one the origin breaks off is cut short, its encoding unfinished,
// not ended as if whole.
func TestCompressedHereAsItArrives(t *testing.T) {
	first := []byte(`{"first":[` + strings.Repeat(`"part one",`, 100) + `"end"],`)
	second := []byte(`"second":[` + strings.Repeat(`"part two",`, 100) + `"end"]}`)
	var next chan struct{} // closed by the test once it has read the first part
	var waited atomic.Bool // the origin gave up waiting for that
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(first)
		w.(http.Flusher).Flush()
		select {
		case <-next:
		case <-time.After(5 * time.Second):
			waited.Store(true)
		}
		if r.URL.Path == "/broken" {
			panic(http.ErrAbortHandler) // the connection closed mid-body
		}
		w.Write(second)
	}))
	defer origin.Close()
	_, ln := personalizingServer(t, origin.URL, func(c *config.Config) { c.Rewrite.AskUncompressed = true })

	for _, path := range []string{"/ok", "/broken"} {
		t.Run(path, func(t *testing.T) {
			next = make(chan struct{})
			resp := gzipNavigation(t, ln, path)
			defer resp.Body.Close()
			if ce := resp.Header.Get("Content-Encoding"); ce != "gzip" {
				t.Fatalf("Content-Encoding %q, want gzip", ce)
			}
			zr, err := gzip.NewReader(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(first))
			if _, err := io.ReadFull(zr, got); err != nil || !bytes.Equal(got, first) {
				t.Fatalf("first part: %v, %.80q", err, got)
			}
			if waited.Load() {
				t.Fatal("the first part reached the visitor only with the rest")
			}
			close(next) // the origin sends the rest only now
			rest, err := io.ReadAll(zr)
			if path == "/broken" {
				if err == nil {
					t.Fatalf("a body the origin broke off read as whole (%d more bytes)", len(rest))
				}
				return
			}
			if err != nil || !bytes.Equal(rest, second) {
				t.Fatalf("second part: %v, %.80q", err, rest)
			}
		})
	}
}

// gzipNavigation navigates to path?utm_campaign=promo (a deal seeker's
// page) through the edgeseg listening on ln, accepting gzip, and returns
// the response with its body unread, undecoded.
func gzipNavigation(t *testing.T, ln interface{ Dial() (net.Conn, error) }, path string) *http.Response {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{
		DisableCompression: true,
		DialContext:        func(context.Context, string, string) (net.Conn, error) { return ln.Dial() },
	}}
	req, _ := http.NewRequest("GET", "http://shop.test"+path+"?utm_campaign=promo", nil)
	req.Header.Set("Accept", "text/html")
	req.Header.Set("Sec-Fetch-Dest", "document")
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36")
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestPreferredCoding(t *testing.T) {
	for _, c := range []struct {
		ae   string
		want coding
	}{
		{"gzip, deflate, br, zstd", codingGzip},
		{"br, gzip", codingGzip},
		{"br", codingBrotli},
		{"gzip;q=0, br", codingBrotli},
		{"gzip; q=0.000, br;q=0.5", codingBrotli},
		{"GZIP;Q=0.1", codingGzip},
		{"x-gzip", codingGzip},
		{"*", codingGzip},
		{"*;q=0", codingIdentity},
		{"gzip;q=0, *", codingBrotli},
		{"deflate", codingIdentity},
		{"identity", codingIdentity},
		{"", codingIdentity},
		{"gzip;q=0, gzip", codingGzip},
		{"br;q=", codingBrotli},
		{",,;;=,gzip ; q = 0 ", codingIdentity},
	} {
		if got := preferredCoding([]byte(c.ae)); got != c.want {
			t.Errorf("preferredCoding(%q) = %d, want %d", c.ae, got, c.want)
		}
	}
}

// FuzzPreferredCoding: any Accept-Encoding gives a coding edgeseg can
// write, one the header accepts.
func FuzzPreferredCoding(f *testing.F) {
	for _, s := range []string{"gzip, deflate, br, zstd", "gzip;q=0, br", "*;q=0", "x-gzip;q=0.5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ae string) {
		switch c := preferredCoding([]byte(ae)); c {
		case codingIdentity:
		case codingGzip, codingBrotli:
			if !accepts([]byte(ae), c.name()) {
				t.Fatalf("%q: chose %s, which it does not accept", ae, c.name())
			}
		default:
			t.Fatalf("%q: coding %d", ae, c)
		}
	})
}

func TestCompressible(t *testing.T) {
	for _, c := range []struct {
		ct   string
		want bool
	}{
		{"text/html; charset=utf-8", true},
		{"TEXT/CSS", true},
		{" text/plain ", true},
		{"text/event-stream", false},
		{"application/json", true},
		{"application/problem+json; charset=utf-8", true},
		{"application/javascript", true},
		{"application/rss+xml", true},
		{"image/svg+xml", true},
		{"application/wasm", true},
		{"Application/LD+JSON", true},
		{"application/vnd.api+zip", false},
		{"image/png", false},
		{"application/pdf", false},
		{"application/octet-stream", false},
		{"application/zip", false},
		{"text/", false},
		{"text", false},
		{"", false},
	} {
		if got := compressible([]byte(c.ct)); got != c.want {
			t.Errorf("compressible(%q) = %v, want %v", c.ct, got, c.want)
		}
	}
	ct := []byte("Application/JSON; charset=utf-8")
	if n := testing.AllocsPerRun(100, func() { compressible(ct) }); n != 0 {
		t.Errorf("compressible allocates %v times", n)
	}
}

// TestStreamCodersCountAgainstTheBudget: an encoder (or decoder) a
// streamed body keeps holds far more than the bytes in flight, so it
// counts against rewrite.max_buffered_bytes while kept, and is given back
// at the end; with no memory for one, a body that would be compressed
// here goes out as sent, and a page that would be filled as it streams
// goes out as sent, whole and unfilled.
func TestStreamCodersCountAgainstTheBudget(t *testing.T) {
	part := func(name string) []byte {
		return []byte(strings.Repeat("<p>"+name+" part, a line of the catalog</p>\n", 100))
	}
	head := []byte(`<!doctype html><html><head><title>t</title></head><body><section data-edgeseg-slot="hero"><h1>Welcome</h1></section>`)
	var next chan struct{}
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		first, second := part("first"), part("second")
		if r.URL.Path == "/page" {
			w.Header().Set("Content-Type", "text/html")
			first, second = append(head, first...), append(second, "</body></html>"...)
		} else {
			w.Header().Set("Content-Type", "application/json")
		}
		w.Write(first)
		w.(http.Flusher).Flush()
		select {
		case <-next:
		case <-time.After(5 * time.Second):
		}
		w.Write(second)
	}))
	defer origin.Close()
	h, ln := personalizingServer(t, origin.URL, func(c *config.Config) {
		c.Rewrite.AskUncompressed = true
		c.Rewrite.MaxBufferedBytes = 4 << 20
	})
	get := func(path string, during func()) (*http.Response, []byte) {
		t.Helper()
		next = make(chan struct{})
		resp := gzipNavigation(t, ln, path)
		defer resp.Body.Close()
		during() // the origin is between its two parts
		close(next)
		var r io.Reader = resp.Body
		var err error
		if resp.Header.Get("Content-Encoding") == "gzip" {
			if r, err = gzip.NewReader(resp.Body); err != nil {
				t.Fatal(err)
			}
		}
		body, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}
	settled := func() { t.Helper(); budgetSettled(t, h) }

	for _, path := range []string{"/feed.json", "/page"} {
		resp, body := get(path, func() {
			if held := h.buffered.used.Load(); held < 1<<20 {
				t.Errorf("%s: its encoder counts %d bytes while the body streams", path, held)
			}
		})
		if resp.Header.Get("Content-Encoding") != "gzip" || !bytes.Contains(body, []byte("second part")) {
			t.Fatalf("%s: Content-Encoding %q, whole %v", path, resp.Header.Get("Content-Encoding"), bytes.Contains(body, []byte("second part")))
		}
		if filled := bytes.Contains(body, []byte("Deals picked for you")); filled != (path == "/page") {
			t.Errorf("%s: filled %v", path, filled)
		}
		settled()
	}

	h.buffered.take(4<<20 - 512<<10) // less left than an encoder holds
	for _, path := range []string{"/feed.json", "/page"} {
		resp, body := get(path, func() {})
		if ce := resp.Header.Get("Content-Encoding"); ce != "" {
			t.Errorf("%s: Content-Encoding %q with no memory for an encoder", path, ce)
		}
		if !bytes.HasSuffix(body, part("second")) && !bytes.HasSuffix(body, []byte("second part, a line of the catalog</p>\n</body></html>")) {
			t.Errorf("%s: not whole: %.80q", path, body[max(0, len(body)-80):])
		}
		if bytes.Contains(body, []byte("Deals picked for you")) {
			t.Errorf("%s: filled with no memory for its encoder", path)
		}
	}
	h.buffered.give(4<<20 - 512<<10)
	settled()
	var m strings.Builder
	h.metrics.set.WritePrometheus(&m)
	if !strings.Contains(m.String(), `edgeseg_rewrite_skipped_total{reason="memory"} 3`) {
		t.Errorf("skips for memory not counted as 3 (the page's stream, then its compression, and the feed's):\n%s", m.String())
	}
}

// FuzzCompressible: the check reads any Content-Type as the media type's
// grammar says, compared without regard to case.
func FuzzCompressible(f *testing.F) {
	for _, s := range []string{"text/html; charset=utf-8", "Application/LD+JSON", "image/svg+xml", "text/event-stream", "a/b+c+json", "/", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ct string) {
		mt, _, _ := strings.Cut(ct, ";")
		typ, sub, ok := strings.Cut(strings.TrimSpace(mt), "/")
		is := strings.EqualFold
		want := false
		switch {
		case !ok || sub == "":
		case is(typ, "text"):
			want = !is(sub, "event-stream")
		case is(typ, "application") || is(typ, "image"):
			if i := strings.LastIndexByte(sub, '+'); i >= 0 {
				want = is(sub[i:], "+json") || is(sub[i:], "+xml")
			} else {
				want = slices.ContainsFunc([]string{"json", "javascript", "x-javascript", "ecmascript", "xml", "wasm"}, func(s string) bool { return is(sub, s) })
			}
		}
		if got := compressible([]byte(ct)); got != want {
			t.Fatalf("compressible(%q) = %v, want %v", ct, got, want)
		}
	})
}
