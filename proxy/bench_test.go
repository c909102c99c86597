package proxy

import (
	"bytes"
	"cmp"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/edgeseg/edgeseg/config"
	"github.com/edgeseg/edgeseg/templates"
	"github.com/edgeseg/edgeseg/templates/inject"
)

// benchStack is origin → edgeseg → client over in-memory listeners, so a
// benchmark measures the request path, not the kernel's loopback.
type benchStack struct {
	client *fasthttp.HostClient
	dial   func() (net.Conn, error) // a connection of its own to edgeseg
	close  func()
}

func newBenchStack(b *testing.B, page string, personalize bool) *benchStack {
	b.Helper()
	body, err := os.ReadFile("../bench/testdata/" + page)
	if err != nil {
		b.Fatal(err)
	}
	return newBenchStackFor(b, body, personalize, false, "", nil)
}

// newBenchStackFor serves body from the origin, streamed (without a
// Content-Length) when chunked, labelled with Content-Encoding enc unless
// that is empty; mutate, when set, changes the bench config first.
func newBenchStackFor(b testing.TB, body []byte, personalize, chunked bool, enc string, mutate func(*config.Config)) *benchStack {
	b.Helper()
	return newBenchStackTyped(b, "text/html; charset=utf-8", body, personalize, chunked, enc, mutate)
}

// newBenchStackTyped is newBenchStackFor with the page's Content-Type.
func newBenchStackTyped(b testing.TB, contentType string, body []byte, personalize, chunked bool, enc string, mutate func(*config.Config)) *benchStack {
	b.Helper()
	oln := fasthttputil.NewInmemoryListener()
	osrv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType(contentType)
		if enc != "" {
			ctx.Response.Header.Set("Content-Encoding", enc)
		}
		if chunked {
			ctx.SetBodyStream(bytes.NewReader(body), -1)
			return
		}
		// A static file's validators, as nginx sends them.
		ctx.Response.Header.Set("ETag", `"6755a3c1-1400"`)
		ctx.Response.Header.Set("Last-Modified", "Sun, 08 Dec 2024 13:45:05 GMT")
		ctx.SetBody(body)
	}}
	go osrv.Serve(oln)
	s := newBenchStackDial(b, oln.Dial, personalize, mutate)
	closeProxy := s.close
	s.close = func() { closeProxy(); osrv.Shutdown() }
	return s
}

// newBenchStackDial starts edgeseg with the bench config in front of the
// origin dial reaches.
func newBenchStackDial(b testing.TB, dial func() (net.Conn, error), personalize bool, mutate func(*config.Config)) *benchStack {
	b.Helper()
	cfg, err := config.Load("../bench/edgeseg.yaml", nil)
	if err != nil {
		b.Fatal(err)
	}
	if mutate != nil {
		mutate(cfg)
	}
	nop := zerolog.Nop()
	org, _ := NewOrigin(cfg.Origin)
	org.client.Dial = func(string) (net.Conn, error) { return dial() }
	var p *Personalizer
	if personalize {
		p = newBenchPersonalizer(b, cfg)
	}
	h, err := New(Options{Config: cfg, Origin: org, Log: &nop, Personalizer: p})
	if err != nil {
		b.Fatal(err)
	}
	pln := fasthttputil.NewInmemoryListener()
	srv := NewServer(cfg, h, &nop)
	go srv.Serve(pln)
	c := &fasthttp.HostClient{Addr: "edgeseg", Dial: func(string) (net.Conn, error) { return pln.Dial() }, MaxConns: 64}
	return &benchStack{client: c, dial: pln.Dial, close: func() { srv.Shutdown() }}
}

// benchPersonalizer is newBenchPersonalizer with the bench config.
func benchPersonalizer(t testing.TB) *Personalizer {
	t.Helper()
	cfg, err := config.Load("../bench/edgeseg.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	return newBenchPersonalizer(t, cfg)
}

func newBenchPersonalizer(b testing.TB, cfg *config.Config) *Personalizer {
	b.Helper()
	nop := zerolog.Nop()
	pl, err := NewPipeline(cfg, os.Getenv)
	if err != nil {
		b.Fatal(err)
	}
	store, _, err := templates.NewStore(cfg.Templates.Dir, cfg.Cache.Blocks, nil, &nop)
	if err != nil {
		b.Fatal(err)
	}
	p, err := NewPersonalizer(PersonalizerOptions{Pipeline: pl, Templates: store, AssignCache: cfg.Cache.Assignment, PlanCache: cfg.Cache.Plans, Log: &nop, Metrics: metrics.NewSet()})
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkPersonalizeSteps is what personalization adds to a request,
// without the network: steps 2–6 before the origin, filling the slots of a
// 5 KB page, and step 9 (the re-signed profile cookie). Returning visitors
// take turns, as under load, each sending back the cookie they were given
// last; 10,000 of them keep the caches as cold as the bench/ runs do.
func BenchmarkPersonalizeSteps(b *testing.B) {
	for _, n := range []int{1, 10_000} {
		b.Run(fmt.Sprintf("visitors=%d", n), func(b *testing.B) { benchSteps(b, n) })
	}
}

func benchSteps(b *testing.B, visitors int) {
	cfg, err := config.Load("../bench/edgeseg.yaml", nil)
	if err != nil {
		b.Fatal(err)
	}
	html, err := os.ReadFile("../bench/testdata/page-5k.html")
	if err != nil {
		b.Fatal(err)
	}
	p := newBenchPersonalizer(b, cfg)
	var ctx fasthttp.RequestCtx
	cookies := make([][]byte, visitors)
	ck := fasthttp.AcquireCookie()
	var sp inject.Splice
	step := func(i int) {
		ctx.Request.Reset()
		navRequest(&ctx.Request, "/page-5k.html?utm_campaign=promo", "")
		if cookies[i] != nil {
			ctx.Request.Header.SetCookieBytesKV([]byte("edgeseg"), cookies[i])
		}
		ctx.Response.Reset()
		v := p.begin(&ctx, time.Now())
		ctx.Response.Header.SetContentType("text/html; charset=utf-8")
		changed := p.personalize(&ctx, v, html, &sp)
		if !changed || sp.Len() <= len(html) {
			b.Fatal("not personalized")
		}
		p.commit(&ctx, v, changed)
		p.end(v)
		if c := ctx.Response.Header.PeekCookie("edgeseg"); len(c) > 0 && ck.ParseBytes(c) == nil {
			cookies[i] = append(cookies[i][:0], ck.Value()...)
		}
	}
	for i := range cookies {
		step(i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		step(i)
		if i++; i == visitors {
			i = 0
		}
	}
}

// request builds a page navigation; cookie is the visitor's profile.
func navRequest(req *fasthttp.Request, uri, cookie string) {
	req.SetRequestURI("http://shop.test" + uri)
	req.Header.Set("Accept", "text/html")
	req.Header.Set("Sec-Fetch-Dest", "document")
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36")
	if cookie != "" {
		req.Header.SetCookie("edgeseg", cookie)
	}
}

func benchHandler(b *testing.B, page string, personalize, returning bool) {
	s := newBenchStack(b, page, personalize)
	defer s.close()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	cookie := ""
	if returning {
		navRequest(req, "/?utm_campaign=promo", "")
		if err := s.client.Do(req, resp); err != nil {
			b.Fatal(err)
		}
		c := fasthttp.AcquireCookie()
		c.ParseBytes(resp.Header.PeekCookie("edgeseg"))
		cookie = string(c.Value())
	}
	navRequest(req, "/?utm_campaign=promo", cookie)
	if err := s.client.Do(req, resp); err != nil {
		b.Fatal(err)
	}
	if personalize && !strings.Contains(string(resp.Body()), "Deals picked for you") {
		b.Fatalf("not personalized: %d %s", resp.StatusCode(), resp.Body()[:200])
	}
	b.SetBytes(int64(len(resp.Body())))
	b.ReportAllocs()
	b.ResetTimer()
	ck := fasthttp.AcquireCookie()
	for b.Loop() {
		resp.Reset()
		if err := s.client.Do(req, resp); err != nil {
			b.Fatal(err)
		}
		// A browser sends back the cookie it was last given.
		if returning {
			if c := resp.Header.PeekCookie("edgeseg"); len(c) > 0 && ck.ParseBytes(c) == nil {
				req.Header.SetCookieBytesKV([]byte("edgeseg"), ck.Value())
			}
		}
	}
}

// The whole request path, origin to client, per page size. Allocations
// include the in-process origin server and client (fasthttp: near zero).
func BenchmarkHandlerPassThrough5k(b *testing.B)   { benchHandler(b, "page-5k.html", false, false) }
func BenchmarkHandlerPassThrough60k(b *testing.B)  { benchHandler(b, "page-60k.html", false, false) }
func BenchmarkHandlerPassThrough500k(b *testing.B) { benchHandler(b, "page-500k.html", false, false) }
func BenchmarkHandlerPersonalized5k(b *testing.B)  { benchHandler(b, "page-5k.html", true, true) }
func BenchmarkHandlerPersonalized60k(b *testing.B) { benchHandler(b, "page-60k.html", true, true) }
func BenchmarkHandlerPersonalized500k(b *testing.B) {
	benchHandler(b, "page-500k.html", true, true)
}

// BenchmarkHandlerNewVisitor60k: no cookie, a profile minted per request.
func BenchmarkHandlerNewVisitor60k(b *testing.B) { benchHandler(b, "page-60k.html", true, false) }

func benchInject(b *testing.B, page string) {
	html, err := os.ReadFile("../bench/testdata/" + page)
	if err != nil {
		b.Fatal(err)
	}
	block := inject.Block{HTML: []byte("<h1>Deals picked for you</h1>"), Segment: "deal-seekers"}
	lookup := func(_ []byte, _ inject.Place) (inject.Block, bool) { return block, true }
	var out []byte
	b.SetBytes(int64(len(html)))
	b.ReportAllocs()
	for b.Loop() {
		out, _ = inject.Slots(out[:0], html, lookup, nil)
	}
}

func BenchmarkInject5k(b *testing.B)   { benchInject(b, "page-5k.html") }
func BenchmarkInject60k(b *testing.B)  { benchInject(b, "page-60k.html") }
func BenchmarkInject500k(b *testing.B) { benchInject(b, "page-500k.html") }

// benchUnmarked runs found over the 60 KB page with its slot markers
// renamed: a page without slots.
func benchUnmarked(b *testing.B, found func([]byte) bool) {
	html, err := os.ReadFile("../bench/testdata/page-60k.html")
	if err != nil {
		b.Fatal(err)
	}
	html = []byte(strings.ReplaceAll(string(html), "data-edgeseg-slot", "data-other-attr"))
	b.SetBytes(int64(len(html)))
	b.ReportAllocs()
	for b.Loop() {
		if found(html) {
			b.Fatal("found slots")
		}
	}
}

// BenchmarkPlanNoSlots is the cost a page without slots paid on a plan
// cache miss before MayHaveSlots: one scan (a hit costs a hash of the
// bytes). A page with slots that changes per request still pays it.
func BenchmarkPlanNoSlots(b *testing.B) {
	benchUnmarked(b, func(html []byte) bool { return inject.Scan(html).Slots() != 0 })
}

// BenchmarkMayHaveSlots is what the same page pays now that a page without
// a slot marker is not scanned.
func BenchmarkMayHaveSlots(b *testing.B) { benchUnmarked(b, inject.MayHaveSlots) }

// BenchmarkHandlerStreamed60k is a 60 KB page the origin streams, for a
// visitor with blocks: with its slots (filled by the plan of the page
// kept for its path as it passes) and with none (passed on untokenized
// while edgeseg watches for a marker); each also with templates.data_layer
// on, whose script goes before </head>.
func BenchmarkHandlerStreamed60k(b *testing.B) { benchStreamed(b, "page-60k.html") }

// BenchmarkHandlerStreamed500k is BenchmarkHandlerStreamed60k with the
// 500 KB page, whose last slot is at its end.
func BenchmarkHandlerStreamed500k(b *testing.B) { benchStreamed(b, "page-500k.html") }

func benchStreamed(b *testing.B, file string) {
	page, err := os.ReadFile("../bench/testdata/" + file)
	if err != nil {
		b.Fatal(err)
	}
	unmarked := []byte(strings.ReplaceAll(string(page), "data-edgeseg-slot", "data-other-attr"))
	dataLayer := func(c *config.Config) { c.Templates.DataLayer = true }
	for _, c := range []struct {
		name   string
		ctype  string
		body   []byte
		want   bool
		mutate func(*config.Config)
	}{
		{"slots", "", page, true, nil},
		{"no-slots", "", unmarked, false, nil},
		{"slots+data_layer", "", page, true, dataLayer},
		{"no-slots+data_layer", "", unmarked, false, dataLayer},
		// The encoding declared by the page's <meta> only, as nginx's
		// default_type sends a static page.
		{"slots+meta_charset", "text/html", page, true, nil},
	} {
		b.Run(c.name, func(b *testing.B) {
			s := newBenchStackTyped(b, cmp.Or(c.ctype, "text/html; charset=utf-8"), c.body, true, true, "", c.mutate)
			defer s.close()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			navRequest(req, "/?utm_campaign=promo", "")
			if err := s.client.Do(req, resp); err != nil {
				b.Fatal(err)
			}
			if got := bytes.Contains(resp.Body(), []byte("Deals picked for you")); got != c.want {
				b.Fatalf("personalized %v, want %v", got, c.want)
			}
			timeDo(b, s, req, resp, len(c.body))
		})
	}
}

// BenchmarkHandlerChunked60k is the 60 KB page, personalized, from an
// origin that sends it chunked but all at once, as an application server
// that renders a page before sending it does: it has arrived whole when
// its head is read, and is rewritten whole, its slot plan reused, and sent
// with a length ("arrived-whole", as edgeseg's origin connections tell
// it), rather than rewritten as it streams, tokenized on every request and
// sent in chunks ("streamed", an origin connection that cannot tell).
func BenchmarkHandlerChunked60k(b *testing.B) {
	page, err := os.ReadFile("../bench/testdata/page-60k.html")
	if err != nil {
		b.Fatal(err)
	}
	var raw []byte
	raw = append(raw, "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n"...)
	for p := page; len(p) > 0; {
		n := min(len(p), 16<<10)
		raw = fmt.Appendf(raw, "%x\r\n%s\r\n", n, p[:n])
		p = p[n:]
	}
	raw = append(raw, "0\r\n\r\n"...)
	oln := rawInmemory(b, eachRequest(func(c net.Conn, req *http.Request) {
		req.Body.Close()
		c.Write(raw)
	}))
	for _, whole := range []bool{true, false} {
		name, dial := "streamed", oln.Dial
		if whole {
			name = "arrived-whole"
			dial = func() (net.Conn, error) {
				c, err := oln.Dial()
				if err != nil {
					return nil, err
				}
				return newOriginConn(c, 0, true), nil
			}
		}
		b.Run(name, func(b *testing.B) {
			s := newBenchStackDial(b, dial, true, nil)
			defer s.close()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			navRequest(req, "/?utm_campaign=promo", "")
			if err := s.client.Do(req, resp); err != nil {
				b.Fatal(err)
			}
			if !bytes.Contains(resp.Body(), []byte("Deals picked for you")) {
				b.Fatal("not personalized")
			}
			if got := resp.Header.ContentLength() >= 0; got != whole {
				b.Fatalf("sent with a length: %v", got)
			}
			timeDo(b, s, req, resp, len(page))
		})
	}
}

// BenchmarkHandlerCompressed60k is the 60 KB page from an origin that
// compresses it, personalized for a browser that takes it compressed: with
// a length, the page is decoded and the result re-encoded once
// (cache.codings), not per request; streamed (chunked, as nginx's gzip
// module sends), it is decoded and re-encoded as it passes, every time.
func BenchmarkHandlerCompressed60k(b *testing.B) {
	page, err := os.ReadFile("../bench/testdata/page-60k.html")
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name, enc string
		body      []byte
		chunked   bool
	}{{"gzip", "gzip", gzipped(page), false}, {"br", "br", brotlied(page), false},
		{"gzip-streamed", "gzip", gzipped(page), true}, {"br-streamed", "br", brotlied(page), true}} {
		b.Run(c.name, func(b *testing.B) {
			s := newBenchStackFor(b, c.body, true, c.chunked, c.enc, nil)
			defer s.close()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			navRequest(req, "/?utm_campaign=promo", "")
			req.Header.Set("Accept-Encoding", "gzip, deflate, br")
			if err := s.client.Do(req, resp); err != nil {
				b.Fatal(err)
			}
			body, err := resp.BodyUncompressed()
			if err != nil || string(resp.Header.ContentEncoding()) != c.enc || !bytes.Contains(body, []byte("Deals picked for you")) {
				b.Fatalf("not personalized in %s: %v", c.enc, err)
			}
			timeDo(b, s, req, resp, len(page))
		})
	}
}

// BenchmarkHandlerPersonalizedParallel60k runs many visitors at once, as
// a loaded server does: allocations here include buffer churn that a
// sequential benchmark hides.
func BenchmarkHandlerPersonalizedParallel60k(b *testing.B) {
	s := newBenchStack(b, "page-60k.html", true)
	defer s.close()
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		cookie := ""
		for pb.Next() {
			navRequest(req, "/?utm_campaign=promo", cookie)
			resp.Reset()
			if err := s.client.Do(req, resp); err != nil {
				b.Fatal(err)
			}
			if c := resp.Header.PeekCookie("edgeseg"); len(c) > 0 {
				ck := fasthttp.AcquireCookie()
				ck.ParseBytes(c)
				cookie = string(ck.Value())
				fasthttp.ReleaseCookie(ck)
			}
		}
	})
}

// timeDo times s answering req again and again, for a page of n bytes.
func timeDo(b *testing.B, s *benchStack, req *fasthttp.Request, resp *fasthttp.Response, n int) {
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		resp.Reset()
		if err := s.client.Do(req, resp); err != nil {
			b.Fatal(err)
		}
	}
}
