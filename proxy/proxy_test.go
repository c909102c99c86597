package proxy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/edgeseg/edgeseg/cache"
	"github.com/edgeseg/edgeseg/config"
	"github.com/edgeseg/edgeseg/segments"
	"github.com/edgeseg/edgeseg/templates/inject"
)

// echoOrigin answers with what it received, so tests can see the request as
// the origin saw it.
func echoOrigin() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Origin-Method", r.Method)
		w.Header().Set("X-Origin-URI", r.RequestURI)
		w.Header().Set("X-Origin-Host", r.Host)
		for k, v := range r.Header {
			w.Header().Set("X-Echo-"+k, strings.Join(v, "|"))
		}
		fmt.Fprintf(w, "%s %d %x", r.Method, len(body), sha256.Sum256(body))
	})
}

func TestMethodsAndBodies(t *testing.T) {
	p := startProxy(t, echoOrigin(), nil)
	for _, method := range []string{"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND"} {
		t.Run(method, func(t *testing.T) {
			body := strings.Repeat(method, 1000)
			if method == "GET" {
				body = ""
			}
			req, _ := http.NewRequest(method, p.url+"/echo?a=1&b=%2F", strings.NewReader(body))
			resp, got := p.do(req)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			want := fmt.Sprintf("%s %d %x", method, len(body), sha256.Sum256([]byte(body)))
			if got != want {
				t.Fatalf("origin saw %q, want %q", got, want)
			}
			if u := resp.Header.Get("X-Origin-Uri"); u != "/echo?a=1&b=%2F" {
				t.Fatalf("origin saw URI %q", u)
			}
			if ct := resp.Header.Get("X-Echo-Content-Type"); ct != "" {
				t.Fatalf("a body sent without a Content-Type reached the origin with %q", ct)
			}
		})
	}
}

func TestChunkedRequestBody(t *testing.T) {
	p := startProxy(t, echoOrigin(), nil)
	pr, pw := io.Pipe()
	go func() {
		for i := 0; i < 10; i++ {
			fmt.Fprintf(pw, "chunk-%d;", i)
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", p.url+"/upload", pr)
	req.ContentLength = -1
	_, got := p.do(req)
	var want strings.Builder
	for i := 0; i < 10; i++ {
		fmt.Fprintf(&want, "chunk-%d;", i)
	}
	if exp := fmt.Sprintf("POST %d %x", want.Len(), sha256.Sum256([]byte(want.String()))); got != exp {
		t.Fatalf("got %q want %q", got, exp)
	}
}

func TestPathsPassVerbatim(t *testing.T) {
	tlsOrigin := httptest.NewTLSServer(echoOrigin())
	t.Cleanup(tlsOrigin.Close)
	for _, p := range []*testProxy{
		startProxy(t, echoOrigin(), nil),
		startProxyURL(t, tlsOrigin.URL, func(c *config.Config) { c.Origin.InsecureSkipVerify = true }, tlsOrigin),
	} {
		for _, path := range []string{"/a//b/../c", "/%7Euser/x%20y", "/q?x=%3Cscript%3E&&y", "/ünï"} {
			status, rest := p.raw("GET " + path + " HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n")
			if !strings.Contains(status, "200") {
				t.Fatalf("%s, origin %s: %s", path, p.cfg.Origin.URL, status)
			}
			if !strings.Contains(rest, "X-Origin-Uri: "+path+"\r\n") {
				t.Errorf("%s, origin %s: origin saw a different URI:\n%s", path, p.cfg.Origin.URL, rest)
			}
		}
	}
}

func TestHeadersBothWays(t *testing.T) {
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, h := range []string{"Connection", "Keep-Alive", "X-Drop-Me", "Proxy-Authorization", "Te", "Upgrade", "Trailer"} {
			if v := r.Header.Get(h); v != "" {
				w.Header().Add("X-Leaked", h+"="+v)
			}
		}
		w.Header().Set("X-Seen-XFF", r.Header.Get("X-Forwarded-For"))
		w.Header().Set("X-Seen-Proto", r.Header.Get("X-Forwarded-Proto"))
		w.Header().Set("X-Seen-Fwd-Host", r.Header.Get("X-Forwarded-Host"))
		w.Header().Set("X-Seen-Custom", r.Header.Get("X-Custom"))
		w.Header().Set("X-Seen-Cookie", r.Header.Get("Cookie"))
		w.Header().Set("X-Seen-Host", r.Host)
		w.Header().Set("X-Seen-AE", r.Header.Get("Accept-Encoding"))
		w.Header().Set("Connection", "X-Secret")
		w.Header().Set("X-Secret", "hop")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-Kept", "end-to-end")
		w.Header().Add("Set-Cookie", "a=1; Path=/")
		w.Header().Add("Set-Cookie", "b=2; Path=/; HttpOnly")
		w.Header().Set("Server", "origin-server")
		fmt.Fprint(w, "ok")
	})
	p := startProxy(t, origin, func(c *config.Config) { c.Server.Via = true })
	req, _ := http.NewRequest("GET", p.url+"/h", nil)
	req.Host = "shop.example"
	req.Header.Set("Connection", "keep-alive, X-Drop-Me")
	req.Header.Set("X-Drop-Me", "1")
	req.Header.Set("Keep-Alive", "300")
	req.Header.Set("Proxy-Authorization", "Basic Zm9vOmJhcg==")
	req.Header.Set("Te", "trailers")
	req.Header.Set("X-Custom", "kept")
	req.Header.Set("Cookie", "x=1; y=2")
	req.Header.Set("X-Forwarded-For", "6.6.6.6") // forged: peer is not trusted
	req.Header.Set("Accept-Encoding", "zstd, br;q=0.9, gzip")
	resp, _ := p.do(req)
	if l := resp.Header.Values("X-Leaked"); len(l) > 0 {
		t.Errorf("hop-by-hop headers reached the origin: %v", l)
	}
	checks := map[string]string{
		"X-Seen-Xff":      "127.0.0.1",
		"X-Seen-Proto":    "http",
		"X-Seen-Fwd-Host": "shop.example",
		"X-Seen-Custom":   "kept",
		"X-Seen-Cookie":   "x=1; y=2",
		"X-Seen-Host":     "shop.example",
		"X-Seen-Ae":       "zstd, br;q=0.9, gzip", // not personalizing: no page is rewritten
		"X-Kept":          "end-to-end",
		"Server":          "origin-server",
		"Via":             "1.1 edgeseg",
	}
	for k, want := range checks {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	for _, h := range []string{"X-Secret", "Keep-Alive"} {
		if v := resp.Header.Get(h); v != "" {
			t.Errorf("hop-by-hop response header %s=%q reached the client", h, v)
		}
	}
	if sc := resp.Header.Values("Set-Cookie"); len(sc) != 2 {
		t.Errorf("Set-Cookie = %v, want both origin cookies", sc)
	}
}

func TestForwardedForTrustedProxy(t *testing.T) {
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen-XFF", r.Header.Get("X-Forwarded-For"))
		w.Header().Set("X-Seen-Proto", r.Header.Get("X-Forwarded-Proto"))
	})
	p := startProxy(t, origin, func(c *config.Config) { c.Server.TrustedProxies = []string{"127.0.0.0/8"} })
	req, _ := http.NewRequest("GET", p.url+"/", nil)
	req.Header.Set("X-Forwarded-For", "203.0.113.9, 10.0.0.1")
	req.Header.Set("X-Forwarded-Proto", "https")
	resp, _ := p.do(req)
	if got := resp.Header.Get("X-Seen-Xff"); got != "203.0.113.9, 10.0.0.1, 127.0.0.1" {
		t.Errorf("XFF = %q", got)
	}
	if got := resp.Header.Get("X-Seen-Proto"); got != "https" {
		t.Errorf("proto = %q", got)
	}
}

// TestProxyHeadersOnlyFromTrustedPeers: what only a proxy may tell the
// origin (the client's address, scheme, port, a URL override) is dropped
// when a visitor sends it, and passed on from a trusted load balancer.
func TestProxyHeadersOnlyFromTrustedPeers(t *testing.T) {
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, k := range proxyOnlyHeaders {
			if v := r.Header.Get(k); v != "" {
				w.Header().Set("X-Seen-"+k, v)
			}
		}
		w.Header().Set("X-Seen-Other", r.Header.Get("X-Custom"))
	})
	for _, trusted := range []bool{false, true} {
		p := startProxy(t, origin, func(c *config.Config) {
			if trusted {
				c.Server.TrustedProxies = []string{"127.0.0.0/8"}
			}
		})
		req, _ := http.NewRequest("GET", p.url+"/", nil)
		for _, k := range proxyOnlyHeaders {
			req.Header.Set(k, "forged")
		}
		req.Header.Set("X-Custom", "kept")
		resp, _ := p.do(req)
		for _, k := range proxyOnlyHeaders {
			if got := resp.Header.Get("X-Seen-" + k); (got == "forged") != trusted {
				t.Errorf("trusted peer %v: %s reached the origin as %q", trusted, k, got)
			}
		}
		if resp.Header.Get("X-Seen-Other") != "kept" {
			t.Errorf("trusted peer %v: another header was dropped", trusted)
		}
	}
}

func TestChunkedOriginResponse(t *testing.T) {
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		for i := 0; i < 5; i++ {
			fmt.Fprintf(w, "part-%d\n", i)
			w.(http.Flusher).Flush()
			time.Sleep(5 * time.Millisecond)
		}
	})
	p := startProxy(t, origin, nil)
	resp, body := p.get("/stream")
	if want := "part-0\npart-1\npart-2\npart-3\npart-4\n"; body != want {
		t.Fatalf("body %q", body)
	}
	if resp.ContentLength != -1 || len(resp.TransferEncoding) == 0 {
		t.Errorf("want chunked to the client, got CL=%d TE=%v", resp.ContentLength, resp.TransferEncoding)
	}
}

func TestCompressedBodiesPassUntouched(t *testing.T) {
	payload := bytes.Repeat([]byte("<p>hello compressed world</p>"), 200)
	bodies := map[string][]byte{"gzip": gzipped(payload), "br": brotlied(payload)}
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		enc := strings.TrimPrefix(r.URL.Path, "/")
		w.Header().Set("Content-Type", "application/javascript")
		w.Header().Set("Content-Encoding", enc)
		w.Header().Set("ETag", `"v1"`)
		w.Write(bodies[enc])
	})
	p := startProxy(t, origin, nil)
	for enc, want := range bodies {
		req, _ := http.NewRequest("GET", p.url+"/"+enc, nil)
		req.Header.Set("Accept-Encoding", "gzip, br")
		resp, got := p.do(req)
		if got != string(want) {
			t.Errorf("%s: body changed in transit", enc)
		}
		if resp.Header.Get("Content-Encoding") != enc || resp.Header.Get("Etag") != `"v1"` {
			t.Errorf("%s: headers changed: %v", enc, resp.Header)
		}
	}
}

// rememberingCodec is a codec keeping what it codes in a cache of its own,
// whose metrics go to set (nil: none).
func rememberingCodec(t *testing.T, set *metrics.Set) (*codec, *cache.Checked[[]byte]) {
	t.Helper()
	memo, err := cache.NewChecked[[]byte]("codings", config.Default().Cache.Codings, set)
	if err != nil {
		t.Fatal(err)
	}
	cd := newCodec(5, 4, 1)
	if err := cd.remember(memo, config.Default().Cache.Codings.MaxItems); err != nil {
		t.Fatal(err)
	}
	return cd, memo
}

// TestCodecLevels: a page is compressed at the quick level until the
// memo keeps it, and then at the kept level for every visitor it goes to;
// a streamed page always at the quick level; without a memo, every page
// at the quick level.
func TestCodecLevels(t *testing.T) {
	page := []byte(strings.Repeat("<p>Deals picked for you, every day of the week</p>\n", 400))
	at := func(c coding, level int) []byte {
		var b bytes.Buffer
		if c == codingBrotli {
			w := brotli.NewWriterLevel(&b, level)
			w.Write(page)
			w.Close()
		} else {
			w, _ := gzip.NewWriterLevel(&b, level)
			w.Write(page)
			w.Close()
		}
		return b.Bytes()
	}
	for _, c := range []struct {
		coding      coding
		kept, quick int
	}{{codingGzip, 9, 1}, {codingBrotli, 6, 1}} {
		if bytes.Equal(at(c.coding, c.kept), at(c.coding, c.quick)) {
			t.Fatalf("coding %d: levels %d and %d give the same bytes: the test cannot tell them apart", c.coding, c.kept, c.quick)
		}
		remembering, memo := rememberingCodec(t, nil)
		remembering.gzipLevel, remembering.brotliLevel = [2]int{9, 1}, [2]int{6, 1}
		forgetting := newCodec(9, 6, 1)
		for i, want := range []int{c.quick, c.kept, c.kept} { // made, kept, from the memo
			got, err := remembering.encode(nil, page, c.coding)
			if err != nil || !bytes.Equal(got, at(c.coding, want)) {
				t.Errorf("coding %d, time %d: not compressed at level %d (%v)", c.coding, i+1, want, err)
			}
			memo.Wait()
			if got, _ := forgetting.encode(nil, page, c.coding); !bytes.Equal(got, at(c.coding, c.quick)) {
				t.Errorf("coding %d without a memo, time %d: not at the quick level", c.coding, i+1)
			}
		}
		var streamed bytes.Buffer
		w := remembering.newStreamEncoder(&streamed, c.coding, levelQuick)
		w.Write(page)
		w.Close()
		remembering.putStreamCoders(nil, w, levelQuick)
		if !bytes.Equal(streamed.Bytes(), at(c.coding, c.quick)) {
			t.Errorf("coding %d streamed: not at the quick level", c.coding)
		}
	}
}

// TestCodecRoundTrip: every coding round-trips, the decoded size limit
// holds, and with a memo the second time round (answered from it, other
// dst contents kept) gives the same bytes as the first.
func TestCodecRoundTrip(t *testing.T) {
	remembering, memo := rememberingCodec(t, nil)
	html := bytes.Repeat([]byte("<div data-edgeseg-slot=\"x\">ä</div>"), 500)
	other := bytes.Repeat([]byte("<p>another page</p>"), 300)
	for _, cd := range []*codec{newCodec(5, 4, 1), remembering} {
		for round := 0; round < 2; round++ {
			for _, c := range []coding{codingIdentity, codingGzip, codingBrotli, codingDeflate} {
				for _, page := range [][]byte{html, other} {
					enc, err := cd.encode([]byte("kept"), page, c)
					if err != nil || !bytes.HasPrefix(enc, []byte("kept")) {
						t.Fatal(err)
					}
					enc = enc[len("kept"):]
					dec, err := cd.decode([]byte("kept"), enc, c, 1<<20)
					if err != nil || !bytes.Equal(dec, append([]byte("kept"), page...)) {
						t.Fatalf("coding %d, round %d: round trip failed: %v", c, round, err)
					}
					if _, err := cd.decode(nil, enc, c, 100); err != errTooLarge {
						t.Fatalf("coding %d, round %d: limit not enforced: %v", c, round, err)
					}
				}
			}
			memo.Wait()
		}
	}
	var m strings.Builder
	set := metrics.NewSet()
	cd, memo2 := rememberingCodec(t, set)
	// A body is kept the second time it is coded, and answered from the
	// memo the third; bodies coded once are not kept.
	for i := range 20 {
		cd.encode(nil, fmt.Appendf(nil, "%s<p>%d</p>", html, i), codingGzip)
	}
	enc, _ := cd.encode(nil, html, codingGzip)
	cd.decode(nil, enc, codingGzip, 1<<20)
	memo2.Wait()
	if n := memo2.Cost(); n != 0 {
		t.Errorf("bodies coded once kept: %d bytes", n)
	}
	cd.encode(nil, html, codingGzip)
	cd.decode(nil, enc, codingGzip, 1<<20)
	memo2.Wait()
	cd.encode(nil, html, codingGzip)
	cd.decode(nil, enc, codingGzip, 1<<20)
	set.WritePrometheus(&m)
	if !strings.Contains(m.String(), `edgeseg_cache_hits_total{cache="codings"} 2`) {
		t.Errorf("memo not used:\n%s", m.String())
	}
	// raw deflate, as some servers send it
	var raw bytes.Buffer
	fw, _ := newRawDeflate(&raw)
	fw.Write(html)
	fw.Close()
	if dec, err := cd.decode(nil, raw.Bytes(), codingDeflate, 1<<20); err != nil || !bytes.Equal(dec, html) {
		t.Fatalf("raw deflate: %v", err)
	}
	for range 2 {
		if _, err := cd.decode(nil, []byte("not gzip at all"), codingGzip, 1<<20); err == nil {
			t.Fatal("garbage decoded as gzip")
		}
		memo2.Wait()
	}
}

func TestHeadAndEmptyStatuses(t *testing.T) {
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(204)
		case "/304":
			w.Header().Set("ETag", `"abc"`)
			w.WriteHeader(304)
		case "/head":
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("Content-Length", "12345")
			if r.Method != "HEAD" {
				w.Write(make([]byte, 12345))
			}
		case "/redirect":
			http.Redirect(w, r, "/elsewhere?x=1", http.StatusFound)
		case "/404":
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(404)
			fmt.Fprint(w, "<h1>not here</h1>")
		case "/500":
			w.WriteHeader(500)
			fmt.Fprint(w, "boom")
		}
	})
	p := startProxy(t, origin, nil)
	for _, tc := range []struct {
		method, path string
		status       int
		body         string
		header       [2]string
	}{
		{"GET", "/204", 204, "", [2]string{}},
		{"GET", "/304", 304, "", [2]string{"Etag", `"abc"`}},
		{"HEAD", "/head", 200, "", [2]string{"Content-Length", "12345"}},
		{"GET", "/redirect", 302, "", [2]string{"Location", "/elsewhere?x=1"}},
		{"GET", "/404", 404, "<h1>not here</h1>", [2]string{}},
		{"GET", "/500", 500, "boom", [2]string{}},
	} {
		t.Run(tc.method+tc.path, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, p.url+tc.path, nil)
			resp, body := p.do(req)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.body != "" && body != tc.body {
				t.Errorf("body %q", body)
			}
			if tc.header[0] != "" && resp.Header.Get(tc.header[0]) != tc.header[1] {
				t.Errorf("%s = %q, want %q", tc.header[0], resp.Header.Get(tc.header[0]), tc.header[1])
			}
			if tc.status == 302 && !strings.Contains(body, "elsewhere") {
				t.Errorf("redirect body lost: %q", body)
			}
		})
	}
}

// TestLargeBodiesStream checks that a response and a request body many
// times larger than any buffer pass through without the proxy allocating
// memory in proportion.
func TestLargeBodiesStream(t *testing.T) {
	const size = 64 << 20
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			n, _ := io.Copy(io.Discard, r.Body)
			fmt.Fprint(w, n)
			return
		}
		w.Header().Set("Content-Type", r.URL.Query().Get("type"))
		w.Header().Set("Content-Length", fmt.Sprint(size))
		for sent := 0; sent < size; sent += len(chunk) {
			w.Write(chunk)
		}
	})
	p := startProxy(t, origin, func(c *config.Config) { c.Server.MaxBodyBytes = 128 << 20 })
	measure := func(f func()) uint64 {
		runtime.GC()
		var a, b runtime.MemStats
		runtime.ReadMemStats(&a)
		f()
		runtime.ReadMemStats(&b)
		return b.TotalAlloc - a.TotalAlloc
	}
	for _, typ := range []string{"application/octet-stream", "text/html"} {
		alloc := measure(func() {
			resp, err := p.client.Get(p.url + "/big?type=" + typ)
			if err != nil {
				t.Fatal(err)
			}
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || n != size {
				t.Fatalf("%s: got %d bytes, err %v", typ, n, err)
			}
		})
		// The origin and the client in this process allocate a little too;
		// a buffered body would cost at least size.
		if alloc > size/4 {
			t.Errorf("%s: %d MiB allocated for a %d MiB body: not streamed", typ, alloc>>20, size>>20)
		}
	}
	alloc := measure(func() {
		req, _ := http.NewRequest("POST", p.url+"/upload", io.LimitReader(zeroReader{}, size))
		req.ContentLength = size
		_, body := p.do(req)
		if body != fmt.Sprint(size) {
			t.Fatalf("origin received %s bytes", body)
		}
	})
	if alloc > size/4 {
		t.Errorf("upload: %d MiB allocated for a %d MiB body: not streamed", alloc>>20, size>>20)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestOriginDown(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	p := startProxyURL(t, "http://"+addr, nil, nil)
	resp, body := p.get("/")
	if resp.StatusCode != 502 || !strings.Contains(body, "Bad Gateway") {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	if !strings.Contains(p.logs.String(), `"cause":"connection refused"`) {
		t.Errorf("log does not name the cause:\n%s", p.logs.String())
	}
	p.mustServe()
}

// TestOriginReadTimeoutIsPerRead: origin.read_timeout bounds each wait for
// the origin, not the whole response: a body that keeps coming for longer
// than it arrives whole; one whose origin stalls longer is cut short.
func TestOriginReadTimeoutIsPerRead(t *testing.T) {
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		for i := range 4 {
			fmt.Fprintf(w, "part-%d\n", i)
			w.(http.Flusher).Flush()
			if r.URL.Path == "/stalls" && i == 1 {
				time.Sleep(700 * time.Millisecond)
			}
			time.Sleep(150 * time.Millisecond)
		}
	})
	p := startProxy(t, origin, func(c *config.Config) { c.Origin.ReadTimeout = 400 * time.Millisecond })
	if _, body := p.get("/keeps-coming"); body != "part-0\npart-1\npart-2\npart-3\n" {
		t.Errorf("a body arriving for longer than the read timeout: %q", body)
	}
	resp, err := p.client.Get(p.url + "/stalls")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Error("an origin that stalled past the read timeout: the body looked complete")
	}
}

// TestIPv6Origin: an origin at an IPv6 address is reached, WebSocket
// upgrades included.
func TestIPv6Origin(t *testing.T) {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	o := httptest.NewUnstartedServer(echoOrigin())
	o.Listener.Close()
	o.Listener = ln
	o.Start()
	t.Cleanup(o.Close)
	p := startProxyURL(t, o.URL, nil, o)
	if resp, _ := p.get("/v6"); resp.StatusCode != http.StatusOK {
		t.Fatalf("IPv6 origin: %d\n%s", resp.StatusCode, p.logs.String())
	}
	if c, err := p.h.origin.open(); err != nil {
		t.Errorf("upgrade dial to an IPv6 origin: %v", err)
	} else {
		c.Close()
	}
}

func TestOriginSlow(t *testing.T) {
	release := make(chan struct{})
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-time.After(3 * time.Second):
		}
	})
	p := startProxy(t, origin, func(c *config.Config) { c.Origin.ReadTimeout = 200 * time.Millisecond })
	defer close(release)
	start := time.Now()
	resp, _ := p.get("/slow")
	if resp.StatusCode != 504 {
		t.Fatalf("status %d, want 504", resp.StatusCode)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v: timeout not applied", d)
	}
	if !strings.Contains(p.logs.String(), `"cause":"timeout"`) {
		t.Errorf("log does not name the cause")
	}
}

// resetOrigin is a raw TCP origin that sends headers announcing a body of
// length bytes (chunked when length is -1), then sent bytes of it, then
// resets the connection.
func resetOrigin(t *testing.T, contentType string, length, sent int) string {
	return rawServer(t, func(c net.Conn) {
		buf := make([]byte, 4096)
		c.Read(buf)
		body := bytes.Repeat([]byte("x"), sent)
		if length < 0 {
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n\r\n", contentType)
			if sent > 0 {
				fmt.Fprintf(c, "%x\r\n%s\r\n", sent, body)
			}
		} else {
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n", contentType, length)
			c.Write(body)
		}
		time.Sleep(20 * time.Millisecond)
		c.(*net.TCPConn).SetLinger(0)
	})
}

// rawServer serves each connection on loopback with handle, which may
// leave it open, and returns the server's URL.
func rawServer(t *testing.T, handle func(net.Conn)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go serveConns(ln, handle)
	return "http://" + ln.Addr().String()
}

// rawInmemory is rawServer on an in-memory listener.
func rawInmemory(tb testing.TB, handle func(net.Conn)) *fasthttputil.InmemoryListener {
	ln := fasthttputil.NewInmemoryListener()
	tb.Cleanup(func() { ln.Close() })
	go serveConns(ln, handle)
	return ln
}

// eachRequest returns a connection handler that reads requests off a
// connection until it ends and has answer write each one's raw response.
func eachRequest(answer func(c net.Conn, req *http.Request)) func(net.Conn) {
	return func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			answer(c, req)
		}
	}
}

// serveConns hands each connection ln accepts to handle, on a goroutine
// of its own, and closes it after; until ln is closed.
func serveConns(ln net.Listener, handle func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			handle(c)
		}()
	}
}

// TestOriginResetMidBody: an origin that breaks off before fasthttp would
// have sent anything (its write buffer is not full; a chunked body has
// not begun; a body within origin.buffer_bytes is read whole first) gets
// the visitor a clean 502; one that breaks off later, a body that ends in
// an error, never one that looks complete.
func TestOriginResetMidBody(t *testing.T) {
	for _, tc := range []struct {
		name         string
		length, sent int
		clean        bool
	}{
		{"length, within the write buffer", 100000, 5000, true},
		{"length, nothing sent", 100000, 0, true},
		{"chunked, nothing sent", -1, 0, true},
		{"length, within origin.buffer_bytes", 1 << 20, 200 << 10, true}, // read whole first
		{"length, past origin.buffer_bytes", 2 << 20, 200 << 10, false},
		{"chunked, first chunk sent", -1, 5000, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startProxyURL(t, resetOrigin(t, "application/octet-stream", tc.length, tc.sent), nil, nil)
			resp, err := p.client.Get(p.url + "/file")
			if tc.clean {
				if err != nil {
					t.Fatalf("no answer: %v", err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusBadGateway || err != nil || !strings.HasPrefix(string(body), "502 Bad Gateway") {
					t.Fatalf("%d %q (%v), want a clean 502", resp.StatusCode, body, err)
				}
				if !strings.Contains(p.logs.String(), "origin failed before anything was sent on") {
					t.Errorf("no log line for the reset")
				}
			} else {
				var n int64
				if err == nil {
					n, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err == nil {
					t.Fatalf("client got a complete-looking body (%d bytes) from a reset origin", n)
				}
				if !strings.Contains(p.logs.String(), "origin failed mid-body") {
					t.Errorf("no log line for the reset")
				}
			}
			p.mustServe()
		})
	}
}

// TestVisitorLeavingMidBody: a visitor that leaves while a chunked body
// streams to it (an everyday thing: a click away, a closed tab) is not
// logged as the origin failing, though the write that finds it gone is
// made while edgeseg waits on the origin: a body passed through,
// compressed here (rewrite.ask_uncompressed), or a page filled as it
// streams.
func TestVisitorLeavingMidBody(t *testing.T) {
	// Parts smaller than a chunk to the visitor: each goes out from
	// inside the read that waits for the next.
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 1024)
	var ended atomic.Int32 // origin handlers that have returned
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer ended.Add(1)
		w.Header().Set("Content-Type", "text/plain")
		if r.URL.Path == "/page" {
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte(`<!doctype html><html><head><title>t</title></head><body><section data-edgeseg-slot="hero"><h1>Welcome</h1></section><pre>`))
		}
		for i := 0; i < 2000 && r.Context().Err() == nil; i++ {
			w.Write(chunk)
			w.(http.Flusher).Flush()
			time.Sleep(2 * time.Millisecond) // edgeseg waits, and writes meanwhile
		}
	})
	for _, c := range []struct{ path, ae string }{{"/log.txt", "identity"}, {"/log.txt", "gzip"}, {"/page", "gzip"}} {
		t.Run(c.path+" "+c.ae, func(t *testing.T) {
			before := ended.Load()
			p := startProxy(t, origin, func(c *config.Config) { c.Rewrite.AskUncompressed = true })
			conn, err := net.Dial("tcp", p.addr)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(conn, "GET %s?utm_campaign=promo HTTP/1.1\r\nHost: shop.test\r\nAccept: text/html\r\n"+
				"Sec-Fetch-Dest: document\r\nAccept-Encoding: %s\r\n"+
				"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36\r\n\r\n", c.path, c.ae)
			if _, err := io.ReadFull(conn, make([]byte, 1000)); err != nil {
				t.Fatal(err)
			}
			conn.(*net.TCPConn).SetLinger(0) // gone at once: a reset
			conn.Close()
			// edgeseg closes its origin connection once the body has failed.
			deadline := time.Now().Add(5 * time.Second)
			for ended.Load() == before && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if ended.Load() == before {
				t.Fatal("the origin was still sending 5 s after the visitor left")
			}
			if logs := p.logs.String(); strings.Contains(logs, "origin failed") {
				t.Errorf("a visitor leaving logged as the origin failing:\n%s", logs)
			}
			p.mustServe()
		})
	}
}

func TestHealth(t *testing.T) {
	p := startProxy(t, echoOrigin(), nil)
	resp, body := p.get("/_edgeseg/health")
	if resp.StatusCode != 200 || body != "ok\n" {
		t.Fatalf("health %d %q", resp.StatusCode, body)
	}
	p.origin.Close()
	p.h.origin.lastSeen.Store(0)
	resp, _ = p.get("/_edgeseg/health")
	if resp.StatusCode != 503 {
		t.Fatalf("health with origin down: %d", resp.StatusCode)
	}
	resp, _ = p.get("/_edgeseg/nope")
	if resp.StatusCode != 404 {
		t.Fatalf("unknown reserved path: %d", resp.StatusCode)
	}
}

func TestBadRequests(t *testing.T) {
	p := startProxy(t, echoOrigin(), nil)
	for _, tc := range []struct {
		name, req, status string
	}{
		{"absolute URI to another host", "GET http://evil.example/steal HTTP/1.1\r\nHost: shop.test\r\n\r\n", "400"},
		{"absolute URI with userinfo", "GET http://a@shop.test/ HTTP/1.1\r\nHost: shop.test\r\n\r\n", "400"},
		{"Host with userinfo", "GET / HTTP/1.1\r\nHost: user:pass@shop.test\r\n\r\n", "400"},
		{"GET *", "GET * HTTP/1.1\r\nHost: shop.test\r\n\r\n", "400"},
		{"OPTIONS *x", "OPTIONS *x HTTP/1.1\r\nHost: shop.test\r\n\r\n", "400"},
		{"CONNECT", "CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n", "400"},
		{"CL and TE", "POST /x HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "400"},
		{"two CLs", "POST /x HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", "400"},
		{"bad CL", "POST /x HTTP/1.1\r\nHost: shop.test\r\nContent-Length: -5\r\n\r\n", "400"},
		{"garbage", "\x00\x01\x02 nonsense\r\n\r\n", "400"},
		{"no host", "GET / HTTP/1.1\r\n\r\n", "400"},
		{"huge header", "GET / HTTP/1.1\r\nHost: shop.test\r\nCookie: " + strings.Repeat("a", 40<<10) + "\r\n\r\n", "431"},
		{"bad chunk", "POST /x HTTP/1.1\r\nHost: shop.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", "400"},
		// each name listed costs a pass over every header
		{"Connection listing many names", "GET / HTTP/1.1\r\nHost: shop.test\r\nConnection: " + strings.Repeat("x-a,", 40) + "close\r\n\r\n", "400"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _ := p.raw(tc.req)
			if !strings.Contains(status, " "+tc.status+" ") {
				t.Fatalf("got %q, want %s", status, tc.status)
			}
			p.mustServe()
		})
	}
	// An absolute URI naming the host asked for is fine and sent as origin-form.
	status, rest := p.raw("GET http://shop.test/ok?x=1 HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n")
	if !strings.Contains(status, "200") || !strings.Contains(rest, "X-Origin-Uri: /ok?x=1") {
		t.Fatalf("absolute URI to own host: %s\n%s", status, rest)
	}
	// OPTIONS * goes on (Go's server, the origin here, answers it itself).
	if status, _ := p.raw("OPTIONS * HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n"); !strings.Contains(status, " 200 ") {
		t.Fatalf("OPTIONS *: %s", status)
	}
	// A folded line (obs-fold) is joined to the one before, as RFC 9112
	// allows, and forwarded.
	status, rest = p.raw("GET / HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\nX-Folded: a\r\n b\r\n\r\n")
	if !strings.Contains(status, "200") || !strings.Contains(rest, "X-Folded: a b") {
		t.Fatalf("folded header: %s\n%s", status, rest)
	}
	// A few names in Connection are removed, as ever.
	status, rest = p.raw("GET / HTTP/1.1\r\nHost: shop.test\r\nConnection: x-a, x-b ,close\r\nX-A: 1\r\nX-B: 2\r\nX-C: 3\r\n\r\n")
	if !strings.Contains(status, "200") || strings.Contains(rest, "X-A:") || strings.Contains(rest, "X-B:") || !strings.Contains(rest, "X-C: 3") {
		t.Fatalf("Connection names: %s\n%s", status, rest)
	}
	// 16 KiB of cookies, as real sites send, fit the default limit.
	status, _ = p.raw("GET / HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\nCookie: " + strings.Repeat("c", 16<<10) + "\r\n\r\n")
	if !strings.Contains(status, "200") {
		t.Fatalf("16KiB cookie refused: %s", status)
	}
}

func TestPanicRecovered(t *testing.T) {
	p := startProxy(t, echoOrigin(), nil)
	p.h.testHookBeforeOrigin = func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/panic" {
			panic("test panic")
		}
	}
	resp, _ := p.get("/panic")
	if resp.StatusCode != 502 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	logs := p.logs.String()
	if !strings.Contains(logs, "test panic") || !strings.Contains(logs, "goroutine") {
		t.Errorf("panic not logged with its stack")
	}
	resp, _ = p.get("/fine")
	if resp.StatusCode != 200 {
		t.Fatalf("proxy stopped serving after a panic: %d", resp.StatusCode)
	}
	// A panic after the origin answered keeps the origin's page.
	p.h.testHookAfterRespond = func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/late-panic" {
			panic("late panic")
		}
	}
	resp, body := p.get("/late-panic")
	if resp.StatusCode != 200 || !strings.HasPrefix(body, "GET 0 ") {
		t.Fatalf("panic after the origin answered: %d %q", resp.StatusCode, body)
	}
}

func TestLoadShedding(t *testing.T) {
	release := make(chan struct{})
	holding := make(chan struct{}, 1)
	var once sync.Once
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		holding <- struct{}{}
		<-release
	})
	p := startProxy(t, origin, func(c *config.Config) {
		c.Server.MaxConcurrency = 1
		c.Server.QueueTimeout = 50 * time.Millisecond
	})
	defer once.Do(func() { close(release) })
	done := make(chan int)
	go func() {
		resp, err := p.client.Get(p.url + "/hold")
		if err == nil {
			resp.Body.Close()
			done <- resp.StatusCode
		} else {
			done <- 0
		}
	}()
	<-holding // the only slot is taken
	resp, _ := p.get("/second")
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("over capacity: status %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	once.Do(func() { close(release) })
	if s := <-done; s != 200 {
		t.Fatalf("held request: %d", s)
	}
}

func TestGracefulShutdown(t *testing.T) {
	started := make(chan struct{})
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(300 * time.Millisecond)
		fmt.Fprint(w, "finished")
	})
	p := startProxy(t, origin, nil)
	got := make(chan string, 1)
	go func() {
		resp, err := p.client.Get(p.url + "/slow")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	<-started
	if err := p.srv.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "finished" {
		t.Fatalf("in-flight request cut short: %q", s)
	}
	if _, err := net.DialTimeout("tcp", p.addr, 200*time.Millisecond); err == nil {
		t.Fatal("still accepting after shutdown")
	}
}

// switchProtocols takes over an origin handler's connection and answers
// 101 Switching Protocols to WebSocket on it.
func switchProtocols(w http.ResponseWriter) (net.Conn, *bufio.ReadWriter, bool) {
	c, brw, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return nil, nil, false
	}
	fmt.Fprint(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	brw.Flush()
	return c, brw, true
}

func TestWebSocketRelay(t *testing.T) {
	// The origin switches protocols and echoes lines back in upper case.
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" || !strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade") {
			http.Error(w, "upgrade required", http.StatusUpgradeRequired)
			return
		}
		c, brw, ok := switchProtocols(w)
		if !ok {
			return
		}
		defer c.Close()
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			brw.WriteString(strings.ToUpper(line))
			brw.Flush()
		}
	})
	p := startProxy(t, origin, func(c *config.Config) { c.Server.UpgradeIdleTimeout = 300 * time.Millisecond })
	c := p.dial(t, 5*time.Second)
	fmt.Fprint(c, "GET /ws HTTP/1.1\r\nHost: shop.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\nhello\n")
	buf := make([]byte, 4096)
	var got []byte
	for !bytes.Contains(got, []byte("HELLO\n")) {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("read: %v (got %q)", err, got)
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.HasPrefix(got, []byte("HTTP/1.1 101")) {
		t.Fatalf("no 101: %q", got)
	}
	fmt.Fprint(c, "again\n")
	n, _ := c.Read(buf)
	if string(buf[:n]) != "AGAIN\n" {
		t.Fatalf("second message: %q", buf[:n])
	}
	// Idle past the timeout: the relay closes.
	start := time.Now()
	if _, err := c.Read(buf); err == nil {
		t.Fatal("relay still open after idle timeout")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("idle close took %v", d)
	}
}

// TestUpgradeOriginGoing: when the origin's end of a relayed connection
// closes (an app server restarted, a socket dropped without a close frame),
// the visitor's is closed at once, not left open until
// server.upgrade_idle_timeout, so a browser's WebSocket learns of it and
// reconnects. Likewise the origin's end when the visitor goes.
func TestUpgradeOriginGoing(t *testing.T) {
	originGone := make(chan struct{}, 1)
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, brw, ok := switchProtocols(w)
		if !ok {
			return
		}
		defer c.Close()
		if r.URL.Path == "/drop" {
			return
		}
		if _, err := brw.ReadByte(); err != nil { // waits for the visitor to go
			originGone <- struct{}{}
		}
	})
	p := startProxy(t, origin, func(c *config.Config) { c.Server.UpgradeIdleTimeout = time.Minute })
	req := "Host: shop.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

	c := p.dial(t, 10*time.Second)
	fmt.Fprint(c, "GET /drop HTTP/1.1\r\n"+req)
	start := time.Now()
	got, err := io.ReadAll(c)
	if err != nil || !bytes.HasPrefix(got, []byte("HTTP/1.1 101")) {
		t.Fatalf("origin dropped: %v %q", err, got)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the visitor's connection closed %v after the origin's", d)
	}

	c = p.dial(t, 10*time.Second)
	fmt.Fprint(c, "GET /stay HTTP/1.1\r\n"+req)
	if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	c.Close()
	select {
	case <-originGone:
	case <-time.After(3 * time.Second):
		t.Error("the origin's connection still open 3s after the visitor left")
	}
}

// TestMalformedHeaderLinesStopAtTheEdge: header lines that parsers read
// differently are refused by edgeseg itself, never forwarded for the origin
// to read its own way.
func TestMalformedHeaderLinesStopAtTheEdge(t *testing.T) {
	var reached atomic.Int32
	p := startProxyURL(t, rawOrigin(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", &reached), nil, nil)
	for _, tc := range []struct{ name, line string }{
		// fasthttp reads "X A" as a name; another parser may read "X".
		{"space in a name", "X A: b"},
		{"space before the colon", "Content-Length : 0"},
		{"tab in a name", "X\tA: b"},
		{"no colon", "Garbage"},
		{"control byte in a value", "X-A: a\x01b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _ := p.raw("GET / HTTP/1.1\r\nHost: shop.test\r\n" + tc.line + "\r\n\r\n")
			if !strings.Contains(status, " 400 ") {
				t.Fatalf("got %q, want 400", status)
			}
		})
	}
	if n := reached.Load(); n != 0 {
		t.Fatalf("%d malformed requests reached the origin", n)
	}
	status, _ := p.raw("GET / HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\nX-Fine: a\r\n\r\n")
	if !strings.Contains(status, " 200 ") || reached.Load() != 1 {
		t.Fatalf("a well-formed request: %q, %d at the origin", status, reached.Load())
	}
}

// rawOrigin answers every request with response, verbatim, then closes
// the connection. It counts the requests it reads in reached, if not nil.
func rawOrigin(t *testing.T, response string, reached *atomic.Int32) string {
	return rawServer(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for { // the request's head
			line, err := br.ReadString('\n')
			if err != nil || line == "\r\n" {
				break
			}
		}
		if reached != nil {
			reached.Add(1)
		}
		io.WriteString(c, response)
	})
}

// TestUnaskedSwitchingProtocols: a 101 from the origin to a request that
// asked for no upgrade is answered 502 at once (relayed, the visitor would
// wait on a protocol nobody speaks), and the connection it came on, which
// fasthttp pooled, is not used again: what followed the 101 there, here
// bytes that look like a response, never reaches another visitor.
func TestUnaskedSwitchingProtocols(t *testing.T) {
	origin := rawServer(t, eachRequest(func(c net.Conn, req *http.Request) {
		if req.URL.Path == "/switch" {
			io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			// After fasthttp's read of the 101, before (the origin answers a
			// connection's requests in turn) the answer to the next request
			// on this connection.
			time.Sleep(50 * time.Millisecond)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled")
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	}))
	p := startProxyURL(t, origin, nil, nil)
	start := time.Now()
	status, _ := p.raw("GET /switch HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	if !strings.Contains(status, " 502 ") || time.Since(start) > 2*time.Second {
		t.Fatalf("unasked 101: %q after %v", status, time.Since(start))
	}
	for i := range 3 {
		status, rest := p.raw("GET /next HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		if !strings.Contains(status, " 200 ") || !strings.HasSuffix(rest, "\r\n\r\nok") {
			t.Fatalf("request %d after: %q %q", i, status, rest)
		}
	}
}

// TestStrayBytesAfterAnAnswer: an origin that sends more than its answer's
// framing says (a Content-Length counted in characters: "héllo" is 6 bytes)
// leaves the rest on the connection; if it arrives after the answer was
// read, fasthttp pools the connection and the next request on it would
// read those bytes as its answer's head and fail with a 502. The next
// request, a GET, goes out again on another connection instead. (A POST
// cannot: the origin has it, and may act on it.)
func TestStrayBytesAfterAnAnswer(t *testing.T) {
	origin := rawServer(t, eachRequest(func(c net.Conn, req *http.Request) {
		if req.URL.Path == "/short" {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhéllo")
			time.Sleep(20 * time.Millisecond) // after edgeseg has read the answer
			io.WriteString(c, "<p>more</p>")
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	}))
	p := startProxyURL(t, origin, nil, nil)
	if status, rest := p.raw("GET /short HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"); !strings.Contains(status, " 200 ") || !strings.HasSuffix(rest, "\r\n\r\nh\xc3\xa9ll") {
		t.Fatalf("the short answer: %s %q", status, rest)
	}
	for i := range 3 {
		if status, rest := p.raw("GET /next HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"); !strings.Contains(status, " 200 ") || !strings.HasSuffix(rest, "\r\n\r\nok") {
			t.Fatalf("request %d after: %s %q", i, status, rest)
		}
	}
	// Hidden from visitors, the origin's bug is told to its operators.
	if !strings.Contains(p.logs.String(), "the origin sent bytes past the end of an answer") {
		t.Error("not logged")
	}
	if _, m := p.get("/_edgeseg/metrics"); !strings.Contains(m, `edgeseg_origin_errors_total{cause="stray bytes"} 1`) {
		t.Errorf("not counted:\n%s", m)
	}
}

// TestOddOriginResponses: what an old or careless origin sends reaches the
// visitor as valid HTTP/1.1.
func TestOddOriginResponses(t *testing.T) {
	page := `<html><body><div data-edgeseg-slot="hero">default</div></body></html>`
	for _, tc := range []struct {
		name, response string
		wantHeader     string // in the visitor's response
		notHeader      string // must not be
	}{
		{
			// An HTTP/1.0 origin ending its body by closing: the visitor
			// gets it chunked, which an "HTTP/1.0" status line would
			// forbid, so the status line is edgeseg's own.
			name:       "HTTP/1.0 origin",
			response:   "HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n" + page,
			wantHeader: "Transfer-Encoding: chunked",
		},
		{
			name:       "space in a header name",
			response:   "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX A: b\r\nX-Kept: 1\r\nContent-Length: " + strconv.Itoa(len(page)) + "\r\n\r\n" + page,
			wantHeader: "X-Kept: 1",
			notHeader:  "X A",
		},
		{
			// Browsers sniff a body sent without a Content-Type; one
			// added on the way (fasthttp's text/plain) would show the
			// page's source.
			name:       "no Content-Type",
			response:   "HTTP/1.1 200 OK\r\nX-Kept: 1\r\nContent-Length: " + strconv.Itoa(len(page)) + "\r\n\r\n" + page,
			wantHeader: "X-Kept: 1",
			notHeader:  "Content-Type",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, personalize := range []bool{false, true} {
				p := startProxyURL(t, rawOrigin(t, tc.response, nil), func(c *config.Config) { c.Personalize = personalize }, nil)
				status, rest := p.raw("GET / HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n")
				if status != "HTTP/1.1 200 OK" {
					t.Fatalf("personalize=%v: status line %q", personalize, status)
				}
				head, body, _ := strings.Cut(rest, "\r\n\r\n")
				if !strings.Contains(head, tc.wantHeader) || (tc.notHeader != "" && strings.Contains(head, tc.notHeader)) {
					t.Errorf("personalize=%v: headers\n%s", personalize, head)
				}
				if !strings.Contains(body, "default</div>") {
					t.Errorf("personalize=%v: body %q", personalize, body)
				}
			}
		})
	}
}

func TestUpgradeOriginDown(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	p := startProxyURL(t, "http://"+addr, nil, nil)
	status, _ := p.raw("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	if !strings.Contains(status, "502") {
		t.Fatalf("got %q", status)
	}
}

// TestUpgradesNotRelayed: an Upgrade to h2c (HTTP/2 in the clear, which
// would open a tunnel of requests edgeseg never sees) and any Upgrade in
// HTTP/1.0 (RFC 9110 §7.8) go on as plain requests, their Upgrade removed;
// a WebSocket upgrade is still relayed to the origin.
func TestUpgradesNotRelayed(t *testing.T) {
	var upgrade atomic.Value
	p := startProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upgrade.Store(r.Header.Get("Upgrade") + "|" + r.Header.Get("Connection"))
		if r.Header.Get("Upgrade") == "websocket" {
			if c, _, ok := switchProtocols(w); ok {
				c.Close()
			}
			return
		}
		io.WriteString(w, "plain")
	}), nil)
	for _, tc := range []struct{ name, req, status, origin string }{
		{"h2c", "GET /x HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings, close\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n", "200", "|"},
		{"h2c among others", "GET /x HTTP/1.1\r\nHost: a\r\nConnection: close, Upgrade\r\nUpgrade: foo/1, H2C\r\n\r\n", "200", "|"},
		{"HTTP/1.0", "GET /x HTTP/1.0\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", "200", "|"},
		{"websocket", "GET /x HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", "101", "websocket|Upgrade"},
	} {
		upgrade.Store("")
		status, rest := p.raw(tc.req)
		if !strings.Contains(status, " "+tc.status+" ") || tc.status == "200" && !strings.HasSuffix(rest, "plain") {
			t.Errorf("%s: %s %q, want %s", tc.name, status, rest, tc.status)
		}
		if got := upgrade.Load(); got != tc.origin {
			t.Errorf("%s: origin saw Upgrade|Connection %q, want %q", tc.name, got, tc.origin)
		}
	}
}

func TestMakePrivateAndVary(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "private"},
		{"public, max-age=600", "private, max-age=600"},
		{"max-age=60, s-maxage=600", "private, max-age=60"},
		{"private, max-age=5", "private, max-age=5"},
		{"no-store", "no-store"},
	} {
		var h fasthttp.ResponseHeader
		if tc.in != "" {
			h.Set("Cache-Control", tc.in)
		}
		makePrivate(&h)
		if got := string(h.Peek("Cache-Control")); got != tc.want {
			t.Errorf("makePrivate(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	var h fasthttp.ResponseHeader
	h.Set("Vary", "Accept-Encoding")
	addVary(&h, "Cookie")
	addVary(&h, "cookie")
	if got := string(h.Peek("Vary")); got != "Accept-Encoding, Cookie" {
		t.Errorf("Vary = %q", got)
	}
	for _, etag := range []string{`"abc"`, `"` + strings.Repeat("0123456789", 20) + `"`, `W/"weak"`} {
		var e fasthttp.ResponseHeader
		e.Set("ETag", etag)
		e.Set("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT")
		markPersonalized(&e)
		want := "W/" + strings.TrimPrefix(etag, "W/")
		if string(e.Peek("ETag")) != want || len(e.Peek("Last-Modified")) != 0 || string(e.Peek("Cache-Control")) != "private, no-cache" {
			t.Errorf("markPersonalized(ETag %s): %s", etag, e.String())
		}
	}
}

// TestScratchBuffersKeepTheirCapacity: stripping headers must hand back
// the buffer it was given, not a consumed remainder of it (a nil slice
// after "Connection: keep-alive" made every request regrow its buffers).
func TestScratchBuffersKeepTheirCapacity(t *testing.T) {
	for _, conn := range []string{"", "keep-alive", "close, X-Foo", "Upgrade"} {
		var h fasthttp.ResponseHeader
		if conn != "" {
			h.Set("Connection", conn)
		}
		buf := make([]byte, 0, 4096)
		out := stripHopHeaders(&h, buf)
		if cap(out) != 4096 || len(out) != 0 {
			t.Errorf("Connection %q: got len %d cap %d, want the 4096-byte buffer back", conn, len(out), cap(out))
		}
	}
}

// TestFreeListsAreBounded: body buffers kept for reuse stay within
// maxFreeBodyBytes however large a burst of pages was, buffers past 1 MiB
// and scratch buffers past maxScratchBytes are not kept, and the byte
// count follows buffers out of and back into the list.
func TestFreeListsAreBounded(t *testing.T) {
	h := &Handler{bufs: newBodyBuffers(), scratch: newScratchBuffers()}
	for range 200 {
		b := make([]byte, 0, 1<<20) // 200 MiB offered in all
		h.bufs.put(&b)
	}
	if n := h.bufs.held.Load(); n > maxFreeBodyBytes || n != int64(len(h.bufs.ch))<<20 {
		t.Fatalf("kept %d bytes in %d buffers; want at most %d, as counted", n, len(h.bufs.ch), maxFreeBodyBytes)
	}
	huge := make([]byte, 0, 2<<20)
	h.bufs.put(&huge)
	kept := len(h.bufs.ch)
	for range kept {
		if b := h.bufs.get(); cap(*b) != 1<<20 || len(*b) != 0 {
			t.Fatalf("got a buffer of len %d cap %d", len(*b), cap(*b))
		}
	}
	if n := h.bufs.held.Load(); n != 0 {
		t.Fatalf("%d bytes counted with the list empty", n)
	}
	if b := h.bufs.get(); cap(*b) == 2<<20 {
		t.Fatal("a buffer past 1 MiB was kept")
	}
	big, small := make([]byte, 0, maxScratchBytes+1), make([]byte, 0, 512)
	h.scratch.put(&big)
	h.scratch.put(&small)
	if len(h.scratch.ch) != 1 || cap(*h.scratch.get()) != 512 {
		t.Fatal("scratch list keeps what it should not, or lost what it should keep")
	}
}

// TestPlanCacheChecksTheWholeHash: a cached slot plan is used only for the
// page it was made for. Another page of the same length filed under the
// same key, as a collision of the 64-bit key would file it, is scanned
// afresh, so slots are filled where they are and nowhere else. The hash is
// seeded per process, so such collisions cannot be aimed at.
func TestPlanCacheChecksTheWholeHash(t *testing.T) {
	p := benchPersonalizer(t)
	page := []byte(`<p>aaaa</p><div data-edgeseg-slot="hero">x</div>`)
	other := []byte(`<div data-edgeseg-slot="hero">x</div><p>aaaa</p>`)
	fill := func(plan *inject.Plan) string {
		out, _ := plan.Apply(nil, page, func(_ []byte, _ inject.Place) (inject.Block, bool) {
			return inject.Block{HTML: []byte("Y"), Segment: "s"}, true
		}, nil)
		return string(out)
	}
	want := fill(inject.Scan(page))
	k := p.keys.Sum(page)

	p.plans.Set(cache.Key128{Lo: k.Lo, Hi: k.Hi ^ 1}, inject.Scan(other), 100)
	p.plans.Wait()
	if got := fill(p.planFor(page, false, cache.Key128{Lo: 1})); got != want {
		t.Fatalf("another page's plan was applied:\n got %s\nwant %s", got, want)
	}
	// Had the check matched, that plan would have been used: the check is
	// what tells the pages apart.
	p.plans.Set(k, inject.Scan(other), 100)
	p.plans.Wait()
	if got := fill(p.planFor(page, false, cache.Key128{Lo: 1})); got == want {
		t.Fatal("test is vacuous: the misfiled plan gives the right output anyway")
	}
	if q := benchPersonalizer(t); q.keys.Sum(page) == k {
		t.Fatal("two processes share a plan hash seed")
	}
}

// countingListener counts Write calls on the connections it accepts.
type countingListener struct {
	net.Listener
	writes atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, writes: &l.writes}, nil
}

type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// TestWriteBufferSendsPagesInOneWrite: a response smaller than
// server.write_buffer_bytes reaches the visitor in a single write (a
// syscall per 16 KiB cost pass-through a third of its CPU on 60 KB
// pages); with a smaller buffer it takes several.
func TestWriteBufferSendsPagesInOneWrite(t *testing.T) {
	page := strings.Repeat("<p>lorem ipsum</p>\n", 60000/19)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Content-Length", strconv.Itoa(len(page)))
		io.WriteString(w, page)
	}))
	defer origin.Close()
	for _, tc := range []struct {
		buf      config.ByteSize
		oneWrite bool
	}{{64 << 10, true}, {16 << 10, false}} {
		cfg := testConfig(origin.URL)
		cfg.Server.WriteBufferBytes = tc.buf
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		nop := zerolog.Nop()
		org, _ := NewOrigin(cfg.Origin)
		h, err := New(Options{Config: cfg, Origin: org, Log: &nop})
		if err != nil {
			t.Fatal(err)
		}
		inner, _ := net.Listen("tcp", "127.0.0.1:0")
		ln := &countingListener{Listener: inner}
		srv := NewServer(cfg, h, &nop)
		go srv.Serve(ln)
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n")
		resp, err := io.ReadAll(c)
		c.Close()
		srv.Shutdown()
		if err != nil || !bytes.HasSuffix(resp, []byte(page)) {
			t.Fatalf("buffer %v: response of %d bytes, %v", tc.buf, len(resp), err)
		}
		if n := ln.writes.Load(); (n == 1) != tc.oneWrite {
			t.Errorf("buffer %v: the %d-byte page took %d writes", tc.buf, len(page), n)
		}
	}
}

// TestConnectionLimit: past server.max_connections a new connection gets
// 503 with Retry-After and is closed; idle keep-alive connections count;
// a closed one frees its place.
func TestConnectionLimit(t *testing.T) {
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	p := startProxy(t, origin, func(c *config.Config) { c.Server.MaxConnections = 2 })
	// Two keep-alive connections, each served once and left open.
	var held []net.Conn
	for i := 0; i < 2; i++ {
		c := p.dial(t, 5*time.Second)
		fmt.Fprintf(c, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("connection %d: %v %v", i, resp, err)
		}
		io.Copy(io.Discard, resp.Body)
		held = append(held, c)
	}
	status, rest := p.raw("GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
	if !strings.Contains(status, "503") || !strings.Contains(rest, "Retry-After: 1") || !strings.Contains(rest, "Connection: close") {
		t.Fatalf("third connection: %q\n%s", status, rest)
	}
	held[0].Close()
	// The server notices the close on its next read; the place comes back.
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := p.client.Get(p.url + "/_edgeseg/metrics")
		var body string
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
		}
		if err == nil && resp.StatusCode == 200 {
			for _, want := range []string{"edgeseg_connections_refused_total ", "edgeseg_connections_open 2"} {
				if !strings.Contains(body, want) {
					t.Fatalf("metrics lack %q:\n%s", want, body)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a closed connection's place never came back: %v", err)
		}
		p.client.CloseIdleConnections()
		time.Sleep(20 * time.Millisecond)
	}
}

// TestUnmarkedPagesSkipTheScan: a page without a slot marker gets a plan
// without being scanned, and when a head snippet is wanted later (the
// data layer turned on by a reload) that plan is not reused: the page is
// scanned for its </head>.
func TestUnmarkedPagesSkipTheScan(t *testing.T) {
	p := benchPersonalizer(t)
	page := []byte(`<html><head><title>t</title></head><body><p class="no-slots">x</p></body></html>`)
	plan := p.planFor(page, false, cache.Key128{Lo: 1})
	if plan.HeadsKnown() || plan.Slots() != 0 {
		t.Fatalf("unmarked page was scanned: heads known %v, %d slots", plan.HeadsKnown(), plan.Slots())
	}
	// Kept from its second request on.
	again := p.planFor(page, false, cache.Key128{Lo: 1})
	p.plans.Wait()
	if again == plan || p.planFor(page, false, cache.Key128{Lo: 1}) != again {
		t.Fatal("the unmarked page's plan was not cached on its second request")
	}
	withHead := p.planFor(page, true, cache.Key128{Lo: 1})
	out, _ := withHead.Apply(nil, page, func(_ []byte, _ inject.Place) (inject.Block, bool) { return inject.Block{}, false }, &inject.Options{HeadSnippet: []byte("<script>dl</script>")})
	if !withHead.HeadsKnown() || !bytes.Contains(out, []byte("<script>dl</script></head>")) {
		t.Fatalf("head snippet not placed:\n%s", out)
	}
}

// TestPagesSeenOnceAreNotKept: a page that differs on every request (a
// CSRF token) never enters the plan cache, where it would only push out
// plans used again; a page requested twice does.
func TestPagesSeenOnceAreNotKept(t *testing.T) {
	p := benchPersonalizer(t)
	page := tokenPage
	// Each at a path of its own, so that none reuses the plan of another
	// (TestPageReferences).
	for i := range 100 {
		if plan := p.planFor(page(i), false, cache.Key128{Lo: uint64(100 + i)}); plan.Slots() != 1 {
			t.Fatalf("page %d: %d slots", i, plan.Slots())
		}
	}
	p.plans.Wait()
	if n := p.plans.Cost(); n != 0 {
		t.Fatalf("pages seen once kept: %d bytes of plans", n)
	}
	p.planFor(page(7), false, cache.Key128{Lo: 107})
	p.plans.Wait()
	if n := p.plans.Cost(); n == 0 {
		t.Fatal("a page seen twice was not kept")
	}
}

// TestPageReferences: at a path seen before, new bytes are kept as the
// path's Reference (not in the plan cache), and the pages after them that
// differ only in a token reuse its plan; at another path they do not.
func TestPageReferences(t *testing.T) {
	p := benchPersonalizer(t)
	page := tokenPage
	home, other := cache.Key128{Lo: 1}, cache.Key128{Lo: 2}
	first := p.planFor(page(1), false, home)  // a path never seen: scanned
	second := p.planFor(page(2), false, home) // new bytes at a known path: the reference
	p.refs.Wait()
	if first == second || second.Slots() != 1 {
		t.Fatalf("the first two pages: %p %p, %d slots", first, second, second.Slots())
	}
	for i := 3; i < 10; i++ {
		if plan := p.planFor(page(i), false, home); plan != second {
			t.Fatalf("page %d did not reuse the path's plan", i)
		}
	}
	if n := p.m.plansReused.Get(); n != 7 {
		t.Fatalf("%d plans reused, want 7", n)
	}
	if plan := p.planFor(page(10), false, other); plan == second {
		t.Fatal("a page at another path reused the plan")
	}
	p.plans.Wait()
	if n := p.plans.Cost(); n != 0 {
		t.Fatalf("pages seen once kept in the plan cache: %d bytes", n)
	}
}

// TestMetricsOnlyForAllowedPeers: metrics name segments and their sizes,
// so only server.metrics_allow may read them, and never through a proxy.
func TestMetricsOnlyForAllowedPeers(t *testing.T) {
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	metrics := func(p *testProxy, hdr string) int {
		req, _ := http.NewRequest(http.MethodGet, p.url+"/_edgeseg/metrics", nil)
		if hdr != "" {
			k, v, _ := strings.Cut(hdr, ": ")
			req.Header.Set(k, v)
		}
		resp, body := p.do(req)
		if resp.StatusCode == 200 && !strings.Contains(body, "edgeseg_requests_total") && !strings.Contains(body, "edgeseg_request_duration_seconds") {
			t.Fatalf("200 without metrics:\n%s", body)
		}
		return resp.StatusCode
	}
	p := startProxy(t, origin, nil) // default: loopback and private ranges
	for _, c := range []struct {
		hdr  string
		want int
	}{
		{"", 200},
		{"X-Forwarded-For: 203.0.113.9", 404},
		{"Forwarded: for=203.0.113.9", 404},
	} {
		if got := metrics(p, c.hdr); got != c.want {
			t.Errorf("loopback peer, %q: %d, want %d", c.hdr, got, c.want)
		}
	}
	// The process's own metrics are there too, by their usual names, for
	// the dashboards that read them.
	_, body := p.get("/_edgeseg/metrics")
	want := []string{"go_goroutines ", "go_gc_duration_seconds", "go_memstats_heap_inuse_bytes "}
	if runtime.GOOS == "linux" {
		want = append(want, "process_resident_memory_bytes ", "process_cpu_seconds_total ", "process_open_fds ")
	}
	for _, name := range want {
		if !strings.Contains(body, "\n"+name) {
			t.Errorf("no %s in the metrics", name)
		}
	}
	q := startProxy(t, origin, func(c *config.Config) { c.Server.MetricsAllow = []string{"10.0.0.0/8"} })
	if got := metrics(q, ""); got != 404 {
		t.Errorf("peer outside metrics_allow: %d, want 404", got)
	}
}

// TestShutdownBeforeServe: a shutdown that comes before Serve has started
// (a SIGTERM right after start) still ends it.
func TestShutdownBeforeServe(t *testing.T) {
	cfg := testConfig("http://127.0.0.1:1")
	nop := zerolog.Nop()
	org, err := NewOrigin(cfg.Origin)
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Options{Config: cfg, Origin: org, Log: &nop})
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(cfg, h, &nop)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Shutdown(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Serve kept serving after Shutdown")
	}
}

// TestHTTP10ClientsGetLengths: an HTTP/1.0 client cannot read chunked
// framing, so a body the origin streams without a length reaches it
// whole, with a Content-Length.
func TestHTTP10ClientsGetLengths(t *testing.T) {
	body := strings.Repeat("console.log(1);\n", 2000)
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		for i := 0; i < len(body); i += 4000 {
			io.WriteString(w, body[i:min(i+4000, len(body))])
			w.(http.Flusher).Flush()
		}
	})
	p := startProxy(t, origin, nil)
	status, rest := p.raw("GET /app.js HTTP/1.0\r\nHost: a\r\n\r\n")
	head, got, _ := strings.Cut(rest, "\r\n\r\n")
	if !strings.Contains(status, "200") || strings.Contains(strings.ToLower(head), "transfer-encoding") ||
		!strings.Contains(head, fmt.Sprintf("Content-Length: %d", len(body))) || got != body {
		t.Fatalf("HTTP/1.0: %s\n%s\n(%d bytes of body, want %d)", status, head, len(got), len(body))
	}
	// HTTP/1.1 clients still get it streamed.
	_, rest = p.raw("GET /app.js HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	if head, _, _ := strings.Cut(rest, "\r\n\r\n"); !strings.Contains(strings.ToLower(head), "transfer-encoding: chunked") {
		t.Fatalf("HTTP/1.1 no longer streamed:\n%s", head)
	}
	// Nothing has been sent when the origin breaks off: a clean 502, not
	// a 200 cut short.
	broken := startProxyURL(t, rawOrigin(t, "HTTP/1.1 200 OK\r\nContent-Type: text/javascript\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", nil), nil, nil)
	if status, _ := broken.raw("GET /app.js HTTP/1.0\r\nHost: a\r\n\r\n"); !strings.Contains(status, " 502 ") {
		t.Errorf("HTTP/1.0, origin broke off: %q", status)
	}
}

// TestHTTP10ClientsGetLargeBodiesUntilClose: a body of unknown length too
// large to hold (past rewrite.max_body_bytes) reaches an HTTP/1.0 client
// as HTTP/1.0 frames one, without a length and ended by closing the
// connection, not chunked (which it would keep as part of the body). So
// does an event stream, which is never held.
func TestHTTP10ClientsGetLargeBodiesUntilClose(t *testing.T) {
	body := strings.Repeat("0123456789abcdef", 256<<10) // 4 MiB
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/events" {
			w.Header().Set("Content-Type", "text/event-stream")
			for i := range 3 {
				fmt.Fprintf(w, "data: %d\n\n", i)
				w.(http.Flusher).Flush()
				time.Sleep(20 * time.Millisecond)
			}
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		for i := 0; i < len(body); i += 64 << 10 {
			io.WriteString(w, body[i:i+64<<10])
			w.(http.Flusher).Flush()
		}
	})
	p := startProxy(t, origin, func(c *config.Config) { c.Rewrite.MaxBodyBytes = 1 << 20 })
	for _, tc := range []struct{ path, want string }{
		{"/big.bin", body},
		{"/events", "data: 0\n\ndata: 1\n\ndata: 2\n\n"},
	} {
		status, rest := p.raw("GET " + tc.path + " HTTP/1.0\r\nHost: a\r\n\r\n")
		head, got, _ := strings.Cut(rest, "\r\n\r\n")
		lower := strings.ToLower(head)
		if !strings.Contains(status, " 200 ") || strings.Contains(lower, "transfer-encoding") || strings.Contains(lower, "content-length") ||
			!strings.Contains(lower, "connection: close") || !strings.Contains(head, "Server: edgeseg") || got != tc.want {
			t.Errorf("%s: %s\n%s\n(%d bytes of body, want %d)", tc.path, status, head, len(got), len(tc.want))
		}
	}
	// The origin connection went back to the pool: the next request is
	// answered.
	if status, _ := p.raw("GET /big.bin HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"); !strings.Contains(status, " 200 ") {
		t.Errorf("after: %s", status)
	}
}

// TestRequestVersions: edgeseg serves HTTP/1.0 and HTTP/1.1, takes a later
// HTTP/1 minor version for 1.1 (RFC 9112 §2.3), refuses another major
// version with 505, and asks the origin in its own version, HTTP/1.1, so an
// HTTP/1.0 request does not cost the origin connection.
func TestRequestVersions(t *testing.T) {
	var proto atomic.Value
	var calls atomic.Int32
	p := startProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		proto.Store(r.Proto)
		io.WriteString(w, "ok")
	}), nil)
	for _, tc := range []struct{ version, status, origin string }{
		{"HTTP/1.1", "200", "HTTP/1.1"},
		{"HTTP/1.0", "200", "HTTP/1.1"},
		{"HTTP/1.2", "200", "HTTP/1.1"},
		{"HTTP/2.0", "505", ""},
		{"HTTP/3.0", "505", ""},
		{"HTTP/0.9", "505", ""},
	} {
		proto.Store("")
		before := calls.Load()
		status, rest := p.raw("GET /x " + tc.version + "\r\nHost: a\r\nConnection: close\r\n\r\n")
		if !strings.Contains(status, " "+tc.status+" ") || tc.status == "505" && !strings.Contains(rest, "edgeseg speaks HTTP/1.0 and HTTP/1.1") {
			t.Errorf("%s: %s %q, want %s", tc.version, status, rest, tc.status)
		}
		if got := proto.Load(); got != tc.origin || tc.origin == "" && calls.Load() != before {
			t.Errorf("%s: origin asked with %q (%d requests), want %q", tc.version, got, calls.Load()-before, tc.origin)
		}
	}
}

// TestHostHeader: origin.host_header decides the Host the origin sees;
// when it is not the visitor's, the origin's redirects to itself are made
// relative, so the visitor stays on edgeseg, cookies for its own domain
// become the visitor host's, and nothing else is touched.
func TestHostHeader(t *testing.T) {
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen-Host", r.Host)
		host, _, _ := net.SplitHostPort(r.Host)
		if host == "" {
			host = r.Host
		}
		w.Header().Add("Set-Cookie", "sid=1; Domain="+host+"; Path=/; HttpOnly")
		w.Header().Add("Set-Cookie", "pref=2; Path=/")
		switch r.URL.Path {
		case "/own":
			w.Header().Set("Location", "http://"+r.Host+"/login?next=%2F#top")
			w.Header().Set("Content-Location", "http://"+r.Host+"/own.html")
		case "/own-bare":
			w.Header().Set("Location", "HTTPS://"+strings.ToUpper(r.Host))
		case "/own-query":
			w.Header().Set("Location", "http://"+r.Host+"?a=1")
		case "/other":
			w.Header().Set("Location", "https://elsewhere.example/x")
		case "/lookalike":
			w.Header().Set("Location", "http://"+r.Host+"1/x") // another port
		case "/relative":
			w.Header().Set("Location", "/already")
		}
		w.WriteHeader(http.StatusFound)
	})
	o := httptest.NewServer(origin)
	t.Cleanup(o.Close)
	originHost := strings.TrimPrefix(o.URL, "http://")
	for _, tc := range []struct {
		hostHeader string
		visitor    string // Host the visitor sends; "" for edgeseg's address
		seen       string // Host the origin saw; "" for the visitor's
		want       map[string]string
	}{
		{"", "", "", map[string]string{
			"/own": "http://{visitor}/login?next=%2F#top", "/own-bare": "HTTPS://{VISITOR}", "/other": "https://elsewhere.example/x", "/relative": "/already"}},
		{"origin", "", originHost, map[string]string{
			"/own": "/login?next=%2F#top", "/own-bare": "/", "/own-query": "/?a=1", "/other": "https://elsewhere.example/x",
			"/lookalike": "http://" + originHost + "1/x", "/relative": "/already"}},
		{"cms.internal", "", "cms.internal", map[string]string{
			"/own": "/login?next=%2F#top", "/own-bare": "/", "/other": "https://elsewhere.example/x"}},
		// The visitor asked for the host the origin is told: a redirect to
		// it may be one to https, and is left as it is.
		{"cms.internal", "cms.internal", "cms.internal", map[string]string{
			"/own": "http://cms.internal/login?next=%2F#top", "/own-bare": "HTTPS://CMS.INTERNAL"}},
	} {
		t.Run(tc.hostHeader+"/"+tc.visitor, func(t *testing.T) {
			p := startProxyURL(t, o.URL, func(c *config.Config) { c.Origin.HostHeader = tc.hostHeader }, o)
			visitor := tc.visitor
			if visitor == "" {
				visitor = p.addr
			}
			seen := tc.seen
			if seen == "" {
				seen = visitor
			}
			for path, want := range tc.want {
				want = strings.NewReplacer("{visitor}", visitor, "{VISITOR}", strings.ToUpper(visitor)).Replace(want)
				req, _ := http.NewRequest(http.MethodGet, p.url+path, nil)
				req.Host = visitor
				resp, _ := p.do(req)
				if got := resp.Header.Get("Location"); got != want {
					t.Errorf("%s: Location %q, want %q", path, got, want)
				}
				if got := resp.Header.Get("X-Seen-Host"); got != seen {
					t.Errorf("%s: the origin saw Host %q, want %q", path, got, seen)
				}
				sid := "sid=1; Domain=" + strings.Split(seen, ":")[0] + "; Path=/; HttpOnly"
				if tc.hostHeader != "" && tc.visitor == "" && !strings.HasPrefix(seen, "127.0.0.1") {
					sid = "sid=1; Path=/; HttpOnly" // a domain the browser would refuse for the visitor's host
				}
				if got := resp.Header.Values("Set-Cookie"); len(got) != 2 || got[0] != sid || got[1] != "pref=2; Path=/" {
					t.Errorf("%s: Set-Cookie %q, want %q and pref", path, got, sid)
				}
				if path == "/own" {
					wantCL := "/own.html"
					if tc.hostHeader == "" || tc.visitor != "" {
						wantCL = "http://" + seen + "/own.html"
					}
					if got := resp.Header.Get("Content-Location"); got != wantCL {
						t.Errorf("Content-Location %q, want %q", got, wantCL)
					}
				}
			}
		})
	}
}

func TestWithoutForeignDomain(t *testing.T) {
	for _, tc := range []struct{ v, host, want string }{
		{"a=1; Domain=cms.internal; Path=/", "shop.example", "a=1; Path=/"},
		{"a=1; Path=/; domain=.CMS.internal", "shop.example", "a=1; Path=/"},
		{"a=1;Domain=cms.internal;Secure", "shop.example", "a=1; Secure"},
		{"a=1; Domain=shop.example", "shop.example", ""},
		{"a=1; Domain=.example", "www.shop.example", ""},
		{"a=1; Domain=hop.example", "shop.example", "a=1"},
		{"a=1; Domain=", "shop.example", ""},
		{"a=1; Path=/", "shop.example", ""},
		{"domain=x; Path=/", "shop.example", ""}, // a cookie named domain
		{"a=1", "shop.example", ""},
	} {
		got := withoutForeignDomain([]byte(tc.v), []byte(tc.host))
		if string(got) != tc.want || (tc.want == "") != (got == nil) {
			t.Errorf("%q for %s: %q, want %q", tc.v, tc.host, got, tc.want)
		}
	}
}

// TestCodecRefusesUnknownCodings: a coding it cannot undo is an error from
// a codec with a memo too, not a lookup out of bounds.
func TestCodecRefusesUnknownCodings(t *testing.T) {
	cd, _ := rememberingCodec(t, nil)
	if _, err := cd.decode(nil, []byte("x"), codingUnknown, 1<<20); err == nil {
		t.Error("decoded an unknown coding")
	}
	if _, err := cd.encode(nil, []byte("x"), codingUnknown); err == nil {
		t.Error("encoded an unknown coding")
	}
}

// TestOriginClosesIdleConnections: an origin may close a keep-alive
// connection while it sits idle in edgeseg's pool (a reload, a keep-alive
// timeout shorter than edgeseg's, as Node's 5 s is). A request that would
// go out on such a connection goes out on another, whatever its method:
// the origin never saw it. Here the origin drops every idle connection at
// once, as a reload does, and visitors must not see a single 502.
func TestOriginClosesIdleConnections(t *testing.T) {
	const n = 16
	var (
		first   sync.WaitGroup
		posts   atomic.Int32
		warming atomic.Bool
	)
	first.Add(n)
	warming.Store(true)
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if warming.Load() && r.URL.Path == "/warm" {
			// Hold every request until all n are in: n connections.
			first.Done()
			first.Wait()
		}
		if r.Method == http.MethodPost {
			want := "order=1"
			if r.URL.Path == "/logout" {
				want = ""
			}
			if b, _ := io.ReadAll(r.Body); string(b) != want {
				t.Errorf("POST %s body %q", r.URL.Path, b)
			}
			posts.Add(1)
		}
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok "+r.Method)
	}))
	t.Cleanup(o.Close)
	p := startProxyURL(t, o.URL, nil, o)
	p.client.Transport.(*http.Transport).MaxIdleConnsPerHost = 2 * n

	many := func(method, path string) {
		t.Helper()
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var body io.Reader
				if path == "/cart/add" {
					body = strings.NewReader("order=1")
					if i%2 == 1 {
						body = struct{ io.Reader }{body} // no length: sent chunked
					}
				}
				if path == "/logout" {
					// No Content-Length, as curl -X POST sends (browsers send 0).
					status, rest := p.raw("POST /logout HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
					if !strings.Contains(status, " 200 ") || !strings.HasSuffix(rest, "ok POST") {
						t.Errorf("POST /logout: %s %q", status, rest)
					}
					return
				}
				req, _ := http.NewRequest(method, p.url+path, body)
				resp, err := p.client.Do(req)
				if err != nil {
					t.Errorf("%s %s: %v", method, path, err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(b) != "ok "+method {
					t.Errorf("%s %s: %d %q", method, path, resp.StatusCode, b)
				}
			}()
		}
		wg.Wait()
	}
	// Connections idle for longer than idleCheck are looked at before use:
	// any request goes out on another. Ones just used are not (a system
	// call per request), until a request fails on one: it is sent again,
	// being idempotent, and for a while every connection is looked at. A
	// request with a body, which cannot be sent again, is looked at before
	// its body is read, however briefly the connection was idle; one
	// without a body (a logout button's form), before its head goes out.
	for round, tc := range []struct {
		method string
		idle   time.Duration
	}{
		{http.MethodGet, 0},
		{http.MethodGet, idleCheck + 50*time.Millisecond},
		{http.MethodPost, idleCheck + 50*time.Millisecond},
		{http.MethodPost, 0},
		{"POST without a body", 0},
		{http.MethodGet, 0},
	} {
		if tc.idle == 0 {
			time.Sleep(closingsLookout) // no look-out from an earlier round
		}
		warming.Store(true)
		if round > 0 {
			first.Add(n)
		}
		many(http.MethodGet, "/warm") // n connections to the origin, now idle
		warming.Store(false)
		o.CloseClientConnections()
		time.Sleep(tc.idle)
		switch tc.method {
		case http.MethodGet:
			many(http.MethodGet, "/page")
		case http.MethodPost:
			many(http.MethodPost, "/cart/add")
		default:
			many(http.MethodPost, "/logout")
		}
	}
	if got := posts.Load(); got != 3*n {
		t.Errorf("origin saw %d POSTs, want %d: each exactly once", got, 3*n)
	}
	if t.Failed() {
		for _, l := range strings.Split(p.logs.String(), "\n") {
			if strings.Contains(l, "origin request failed") {
				t.Log(l)
				break
			}
		}
	}
}

// TestSlowUploads: server.read_timeout bounds each read of a request body,
// as nginx's client_body_timeout does, not the whole upload: a large file
// sent over a slow link reaches the origin whole, however long it takes; a
// visitor that stops sending mid-body gets 408.
func TestSlowUploads(t *testing.T) {
	p := startProxy(t, echoOrigin(), func(c *config.Config) { c.Server.ReadTimeout = 300 * time.Millisecond })
	// fasthttp reads up to 8 KiB of a body with a length before the
	// handler, within the request's deadline; the rest streams.
	const size = 8<<10 + 8*1000
	want := fmt.Sprintf("POST %d %x", size, sha256.Sum256(bytes.Repeat([]byte("u"), size)))
	for _, length := range []int64{size, -1} {
		pr, pw := io.Pipe()
		go func() {
			pw.Write(bytes.Repeat([]byte("u"), 8<<10))
			for range 8 {
				time.Sleep(100 * time.Millisecond)
				pw.Write(bytes.Repeat([]byte("u"), 1000))
			}
			pw.Close()
		}()
		req, _ := http.NewRequest("POST", p.url+"/upload", pr)
		req.ContentLength = length
		resp, got := p.do(req)
		if resp.StatusCode != 200 || got != want {
			t.Errorf("length %d, sent over 800ms: %d %q, want %q", length, resp.StatusCode, got, want)
		}
	}

	// One that stops sending is answered 408.
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n"+strings.Repeat("u", 20000))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	status, _ := bufio.NewReader(c).ReadString('\n')
	if !strings.Contains(status, "408") || time.Since(start) > 2*time.Second {
		t.Errorf("a stalled upload: %q after %v, want 408 after ~300ms", status, time.Since(start))
	}
}

// TestRequestLoops: an origin.url that leads back to edgeseg (the site's
// public name once it points at edgeseg, or two replicas pointing at each
// other) is answered 508 on the request's second pass through edgeseg,
// once, rather than sent round until connections run out. edgeseg names
// itself in CDN-Loop (RFC 8586) after what proxies before it put there.
func TestRequestLoops(t *testing.T) {
	var seen []string
	var mu sync.Mutex
	p := startProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = r.Header.Values("CDN-Loop")
		mu.Unlock()
		io.WriteString(w, "ok")
	}), nil)
	for _, tc := range []struct {
		sent string
		want []string
	}{
		{"", []string{"edgeseg"}},
		{"cloudflare", []string{"cloudflare", "edgeseg"}},
		{"Edgeseg; v=1, cloudflare", []string{"Edgeseg; v=1, cloudflare", "edgeseg"}}, // one edgeseg in front
	} {
		req, _ := http.NewRequest(http.MethodGet, p.url+"/x", nil)
		if tc.sent != "" {
			req.Header.Set("CDN-Loop", tc.sent)
		}
		if resp, body := p.do(req); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("CDN-Loop %q: %d %q", tc.sent, resp.StatusCode, body)
		}
		mu.Lock()
		if !slices.Equal(seen, tc.want) {
			t.Errorf("CDN-Loop %q: origin got %q, want %q", tc.sent, seen, tc.want)
		}
		mu.Unlock()
	}

	// Two edgeseg, each the other's origin.
	free := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}
	addrA, addrB := free(), free()
	a := startProxyURL(t, "http://"+addrB, func(c *config.Config) { c.Listen = addrA }, nil)
	b := startProxyURL(t, "http://"+addrA, func(c *config.Config) { c.Listen = addrB }, nil)
	start := time.Now()
	resp, body := a.get("/page")
	if resp.StatusCode != fasthttp.StatusLoopDetected || !strings.Contains(body, "Loop Detected") {
		t.Fatalf("looping request: %d %q", resp.StatusCode, body)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the loop took %v to end", d)
	}
	if n := strings.Count(a.logs.String(), "has passed through edgeseg before"); n != 1 {
		t.Errorf("edgeseg that saw the request come back logged the loop %d times, want 1", n)
	}
	if strings.Contains(b.logs.String(), "has passed through edgeseg before") {
		t.Error("the other edgeseg logged a loop too")
	}
	if v := a.h.metrics.set.GetOrCreateCounter(`edgeseg_origin_errors_total{cause="loop"}`).Get(); v != 1 {
		t.Errorf("loop errors counted: %d, want 1", v)
	}
}

// TestHTTP10WithoutHost: an HTTP/1.0 request may come without a Host (load
// balancers' health checks send "OPTIONS / HTTP/1.0" so): the origin is
// asked under its own name, not refused with a 502.
func TestHTTP10WithoutHost(t *testing.T) {
	var seen atomic.Value
	p := startProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.Host)
		io.WriteString(w, "ok")
	}), nil)
	originHost := strings.TrimPrefix(p.origin.URL, "http://")
	for _, req := range []string{"GET /x HTTP/1.0\r\n\r\n", "OPTIONS / HTTP/1.0\r\nUser-Agent: check\r\n\r\n"} {
		status, rest := p.raw(req)
		if !strings.Contains(status, " 200 ") || !strings.HasSuffix(rest, "ok") {
			t.Fatalf("%q: %s %q", req, status, rest)
		}
		if got := seen.Load(); got != originHost {
			t.Errorf("%q: origin asked for host %q, want its own, %q", req, got, originHost)
		}
	}
	// A Host sent is kept.
	if status, _ := p.raw("GET /x HTTP/1.0\r\nHost: shop.example\r\n\r\n"); !strings.Contains(status, " 200 ") || seen.Load() != "shop.example" {
		t.Errorf("HTTP/1.0 with a Host: %s, origin asked for %q", status, seen.Load())
	}
}

// TestRefusedRequestsGetTheirAnswer: a request refused while the visitor is
// still sending it (a body over server.max_body_bytes, announced by its
// Content-Length; a head over server.max_header_bytes) gets its 413 or 431,
// then the end of the connection, not a reset: edgeseg drains what the
// visitor goes on sending for a while before it closes (lingering close).
// Closed at once, with input unread, the connection was reset: the upload
// failed with "connection reset", and the answer could be lost with it.
func TestRefusedRequestsGetTheirAnswer(t *testing.T) {
	var reached atomic.Int32
	p := startProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		io.Copy(io.Discard, r.Body)
	}), func(c *config.Config) { c.Server.MaxBodyBytes = 1 << 20 })
	for _, tc := range []struct {
		name, head string
		body       int
		status     string
	}{
		{"body too large", "POST /upload HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 8388608\r\n\r\n", 8 << 20, "413"},
		{"head too large", "GET / HTTP/1.1\r\nHost: shop.test\r\nCookie: " + strings.Repeat("c", 40<<10) + "\r\n\r\n", 0, "431"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := p.dial(t, 10*time.Second)
			sent := make(chan error, 1)
			go func() {
				_, err := io.WriteString(c, tc.head)
				for left := tc.body; err == nil && left > 0; left -= 64 << 10 {
					_, err = c.Write(make([]byte, 64<<10))
				}
				sent <- err
			}()
			got, err := io.ReadAll(c)
			if err != nil {
				t.Errorf("reading the answer: %v (have %.40q)", err, got)
			}
			if !bytes.HasPrefix(got, []byte("HTTP/1.1 "+tc.status+" ")) {
				t.Errorf("answer %.60q, want %s", got, tc.status)
			}
			if err := <-sent; err != nil {
				t.Errorf("sending the request: %v", err)
			}
		})
	}
	if n := reached.Load(); n != 0 {
		t.Errorf("the origin got %d refused requests", n)
	}
	p.mustServe()
}

// TestIgnoredSlotMarkersAreCounted: a page served with slot markers that
// cannot be filled (self-closing, never closed, text only), whole or as it streams,
// counts them by reason, so
// a slot that keeps its default whatever the segment can be told from one
// that no segment reached; the page goes out as the origin sent it.
func TestIgnoredSlotMarkersAreCounted(t *testing.T) {
	page := `<!doctype html><html><head><title data-edgeseg-slot="hero">t</title></head><body><section data-edgeseg-slot="hero"/><p>x</p>` +
		`<div data-edgeseg-slot="sidebar">never closed</body></html>`
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if r.URL.Path == "/streamed" {
			// sent in two parts: rewritten as it streams
			io.WriteString(w, page[:40])
			w.(http.Flusher).Flush()
			time.Sleep(200 * time.Millisecond)
			io.WriteString(w, page[40:])
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(page)))
		io.WriteString(w, page)
	}))
	t.Cleanup(o.Close)
	h, ln := personalizingServer(t, o.URL, nil)
	for _, path := range []string{"/", "/", "/streamed"} {
		conn := sendNav(t, ln.Dial, path+"?utm_campaign=promo", nil)
		raw, err := io.ReadAll(conn)
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		head, body, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
		if bytes.Contains(head, []byte("Transfer-Encoding: chunked")) {
			body, _ = dechunk(t, body)
		} else if path == "/streamed" {
			t.Logf("%s arrived whole: rewritten whole, not as it streams", path)
		}
		if string(body) != page {
			t.Fatalf("%s: page changed:\n%s\n\n%s", path, head, body)
		}
	}
	for reason, want := range map[string]uint64{inject.IgnoredSelfClosing: 3, inject.IgnoredNoEnd: 3, inject.IgnoredText: 3, inject.IgnoredVoid: 0} {
		if got := h.p.m.ignored[reason].Get(); got != want {
			t.Errorf("%s: %d counted, want %d (one per page served, whole or streamed)", reason, got, want)
		}
	}
}

// tokenPage is a page with one slot that differs from the others only in
// its CSRF token, as an origin's pages do from one request to the next.
func tokenPage(token int) []byte {
	return fmt.Appendf(nil, `<html><head><meta name="csrf-token" content="%04d"></head><body><div data-edgeseg-slot="hero">x</div></body></html>`, token)
}

// TestDataLayerScript: the data layer's script lists the segments shown
// and held out, both always a list, carries the page's CSP nonce, and
// reads as JSON that cannot end the script, whatever the names hold.
func TestDataLayerScript(t *testing.T) {
	seg := func(name string, holdout bool) segments.Member {
		return segments.Member{Segment: &segments.Segment{Name: name}, Holdout: holdout}
	}
	for _, tc := range []struct {
		members []segments.Member
		nonce   string
		want    string
	}{
		{nil, "", `<script>window.edgeseg={"holdouts":[],"segments":[]};</script>`},
		{[]segments.Member{seg("deal-seekers", false)}, "", `<script>window.edgeseg={"holdouts":[],"segments":["deal-seekers"]};</script>`},
		{[]segments.Member{seg("a", false), seg("b", true), seg("c", false)}, "r4nd0m+/=",
			`<script nonce="r4nd0m+/=">window.edgeseg={"holdouts":["b"],"segments":["a","c"]};</script>`},
		{[]segments.Member{seg("</script><b>\"\\\n&", false)}, "",
			`<script>window.edgeseg={"holdouts":[],"segments":["\u003c/script\u003e\u003cb\u003e\"\\\n\u0026"]};</script>`},
	} {
		v := &Visit{members: tc.members}
		got := string(v.dataLayer(nil, []byte(tc.nonce)))
		if got != tc.want {
			t.Errorf("dataLayer = %s\nwant        %s", got, tc.want)
		}
		js := strings.TrimSuffix(got[strings.Index(got, "edgeseg=")+len("edgeseg="):], ";</script>")
		var dl struct{ Holdouts, Segments []string }
		if err := json.Unmarshal([]byte(js), &dl); err != nil || dl.Holdouts == nil || dl.Segments == nil {
			t.Errorf("%s: not the JSON of two lists: %v", js, err)
		}
		var shown []string
		for _, m := range tc.members {
			if !m.Holdout {
				shown = append(shown, m.Segment.Name)
			}
		}
		if len(shown) > 0 && !slices.Equal(dl.Segments, shown) {
			t.Errorf("%s: segments %q, want %q", js, dl.Segments, shown)
		}
	}
	// Random names read back as they were.
	rng := rand.New(rand.NewPCG(7, 8))
	for range 2000 {
		name := make([]byte, rng.IntN(12))
		for i := range name {
			name[i] = byte(rng.IntN(128))
		}
		b := appendJSONName(nil, string(name))
		var back string
		if err := json.Unmarshal(b, &back); err != nil || back != string(name) {
			t.Fatalf("%q: appended as %s, read back %q (%v)", name, b, back, err)
		}
		if bytes.ContainsAny(b, "<>&") {
			t.Fatalf("%q: appended as %s", name, b)
		}
	}
}

// TestOriginAnswersBeforeTheBody: an origin that answers an upload before
// reading it all (a 413, a redirect) and closes the connection has its
// answer relayed, not a 502, whether the body has a length or is chunked;
// the connection is not used again. An origin that closes without an
// answer still fails the request.
func TestOriginAnswersBeforeTheBody(t *testing.T) {
	p := startProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/upload": // the body unread: net/http closes the connection
			// after the answer (half a second later, resetting it)
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
		case "/form":
			http.Redirect(w, r, "/thanks", http.StatusSeeOther)
		case "/drop":
			c, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			c.(*net.TCPConn).SetLinger(0) // reset, without a word
			c.Close()
		default:
			n, _ := io.Copy(io.Discard, r.Body)
			fmt.Fprintf(w, "ok %d", n)
		}
	}), nil)
	body := bytes.Repeat([]byte("x"), 8<<20)
	post := func(path string, chunked bool) int {
		t.Helper()
		var r io.Reader = bytes.NewReader(body)
		if chunked {
			r = io.MultiReader(r) // no length: sent chunked
		}
		req, _ := http.NewRequest(http.MethodPost, p.url+path, r)
		resp, _ := p.do(req)
		return resp.StatusCode
	}
	for _, chunked := range []bool{false, true} {
		for _, tc := range []struct {
			path   string
			status int
		}{{"/upload", 413}, {"/form", 303}, {"/upload", 413}} {
			if got := post(tc.path, chunked); got != tc.status {
				t.Errorf("POST %s (chunked %v): %d, want the origin's %d", tc.path, chunked, got, tc.status)
			}
			// The next request, on whatever connection the pool gives it.
			if got := post("/echo", false); got != 200 {
				t.Errorf("POST /echo after %s: %d", tc.path, got)
			}
			if resp, got := p.get("/echo"); resp.StatusCode != 200 || got != "ok 0" {
				t.Errorf("GET /echo after %s: %d %q", tc.path, resp.StatusCode, got)
			}
		}
	}
	if got := post("/drop", false); got != http.StatusBadGateway {
		t.Errorf("an origin that reset the upload without an answer: %d, want 502", got)
	}
}

// TestAdminListen: with server.admin_listen, metrics and purge are
// answered there, to whoever reaches it, and no longer on the main address,
// even to a peer metrics_allow names (behind a TCP load balancer, every
// visitor); health is answered on both.
func TestAdminListen(t *testing.T) {
	var hits atomic.Int64
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Cache-Control", "max-age=600")
		fmt.Fprint(w, "page")
	})
	p := startProxy(t, origin, func(c *config.Config) {
		c.Server.AdminListen = "127.0.0.1:0"
		c.Cache.Origin.Paths = []string{"/*"}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	admin := NewAdminServer(p.cfg, p.h, &zerolog.Logger{})
	go admin.Serve(ln)
	defer admin.Shutdown()
	adminURL := "http://" + ln.Addr().String()
	ask := func(method, url string) (int, string) {
		req, _ := http.NewRequest(method, url, nil)
		resp, body := p.do(req)
		return resp.StatusCode, body
	}

	for _, path := range []string{"/_edgeseg/metrics", "/_edgeseg/purge?all=1"} {
		if code, _ := ask("POST", p.url+path); code != http.StatusNotFound {
			t.Errorf("%s on the main address: %d, want 404", path, code)
		}
	}
	if code, _ := ask("GET", p.url+"/_edgeseg/health"); code != http.StatusOK {
		t.Errorf("health on the main address: %d", code)
	}
	for _, path := range []string{"/_edgeseg/metrics", "/metrics"} {
		if code, body := ask("GET", adminURL+path); code != http.StatusOK || !strings.Contains(body, "edgeseg_requests_total") {
			t.Errorf("%s on the admin address: %d\n%.300s", path, code, body)
		}
	}
	if code, _ := ask("GET", adminURL+"/_edgeseg/health"); code != http.StatusOK {
		t.Errorf("health on the admin address: %d", code)
	}
	p.get("/cached")
	p.h.ocache.Wait()
	if code, _ := ask("POST", adminURL+"/_edgeseg/purge?all=1"); code != http.StatusOK {
		t.Fatalf("purge on the admin address: %d", code)
	}
	before := hits.Load()
	p.get("/cached")
	if hits.Load() != before+1 {
		t.Error("the purge on the admin address did not empty the cache")
	}
	if code, _ := ask("GET", adminURL+"/"); code != http.StatusNotFound {
		t.Errorf("a page on the admin address: %d, want 404", code)
	}
}

// TestRequestIDs: with server.request_id_header, every request reaches the
// origin named, and its access line says the same name: the id a trusted
// proxy sent, when it is one, else a new one, never the same twice.
func TestRequestIDs(t *testing.T) {
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.Header.Get("X-Request-ID"))
	})
	ask := func(p *testProxy, sent string) string {
		req, _ := http.NewRequest("GET", p.url+"/", nil)
		if sent != "" {
			req.Header.Set("X-Request-ID", sent)
		}
		resp, body := p.do(req)
		if got := resp.Header.Get("X-Request-ID"); got != body {
			t.Errorf("the visitor got id %q, the origin %q", got, body)
		}
		return body
	}
	trusting := startProxy(t, origin, func(c *config.Config) {
		c.Server.RequestIDHeader = "X-Request-ID"
		c.Server.TrustedProxies = []string{"127.0.0.1"}
	})
	if got := ask(trusting, "lb-7f3a"); got != "lb-7f3a" {
		t.Errorf("a trusted proxy's id: the origin got %q", got)
	}
	if !strings.Contains(trusting.logs.String(), `"request_id":"lb-7f3a"`) {
		t.Errorf("not in the access line:\n%s", trusting.logs.String())
	}
	for _, bad := range []string{"two words", strings.Repeat("x", 201), "caf\xc3\xa9"} {
		if got := ask(trusting, bad); got == bad || got == "" {
			t.Errorf("id %q from a trusted proxy: the origin got %q", bad, got)
		}
	}

	p := startProxy(t, origin, func(c *config.Config) { c.Server.RequestIDHeader = "X-Request-ID" })
	seen := map[string]bool{}
	for range 100 {
		id := ask(p, "visitor-chosen")
		if id == "visitor-chosen" || id == "" || seen[id] {
			t.Fatalf("request id %q (seen before: %v)", id, seen[id])
		}
		seen[id] = true
		if !strings.Contains(p.logs.String(), `"request_id":"`+id+`"`) {
			t.Fatalf("%s not in the access lines", id)
		}
	}

	// A request refused before the origin is asked has one too.
	for _, refused := range []struct{ request, status, cause string }{
		{"GET / HTTP/1.1\r\nHost: user@a\r\nConnection: close\r\n\r\n", " 400 ", "Host"},
		{"GET / HTTP/2.0\r\nHost: a\r\nConnection: close\r\n\r\n", " 505 ", "unsupported HTTP version"},
		{"GET / HTTP/1.1\r\nHost: a\r\nNo colon here\r\n\r\n", " 400 ", "unreadable request"}, // refused by fasthttp's own parser
	} {
		status, rest := p.raw(refused.request)
		m := regexp.MustCompile(`(?i)\r?\nX-Request-Id: (\S+)\r\n`).FindStringSubmatch("\r\n" + rest)
		if !strings.Contains(status, refused.status) || m == nil {
			t.Errorf("a refused request: %s\n%s", status, rest)
			continue
		}
		line := regexp.MustCompile(`\{[^\n]*"request_id":"` + regexp.QuoteMeta(m[1]) + `"[^\n]*\}`).FindString(p.logs.String())
		if !strings.Contains(line, `"cause":"`) || !strings.Contains(line, refused.cause) {
			t.Errorf("the access line of %q: %q, want its cause %q", refused.request, line, refused.cause)
		}
	}

	off := startProxy(t, origin, nil)
	if got := ask(off, ""); got != "" {
		t.Errorf("off: the origin got an id %q", got)
	}
}

// TestUntrustedForwarderWarned: requests from a private address that carry
// X-Forwarded-For, with trusted_proxies not naming it (a load balancer
// left out of the config), are warned of once; with it named, not at all.
func TestUntrustedForwarderWarned(t *testing.T) {
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	const warning = "server.trusted_proxies does not name it"
	for _, tc := range []struct {
		trusted []string
		want    int
	}{{nil, 1}, {[]string{"127.0.0.1"}, 0}} {
		p := startProxy(t, origin, func(c *config.Config) { c.Server.TrustedProxies = tc.trusted })
		for range 3 {
			req, _ := http.NewRequest("GET", p.url+"/", nil)
			req.Header.Set("X-Forwarded-For", "203.0.113.9")
			p.do(req)
		}
		p.get("/no-forwarded-for")
		if n := strings.Count(p.logs.String(), warning); n != tc.want {
			t.Errorf("trusted %v: warned %d times, want %d\n%s", tc.trusted, n, tc.want, p.logs.String())
		}
	}
}
