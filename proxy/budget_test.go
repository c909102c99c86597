package proxy

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/edgeseg/edgeseg/cache"
	"github.com/edgeseg/edgeseg/config"
)

// TestRewriteBudget: rewrites in flight hold at most
// rewrite.max_buffered_bytes. A page arriving when it is spent, or that
// would pass it while being read, is served as the origin sent it, whole;
// once memory is given back pages are personalized again, and every path
// gives back all it took.
func TestRewriteBudget(t *testing.T) {
	page, err := os.ReadFile("../bench/testdata/page-5k.html")
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat(page, 6) // 30 KB: read in several growths
	gz := gzipped(page)
	// With Content-Length: pages are buffered (a streamed one is not).
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		body := page
		switch r.URL.Path {
		case "/gz":
			w.Header().Set("Content-Encoding", "gzip")
			body = gz
		case "/big":
			body = big
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}))
	defer origin.Close()

	h, get := personalizingStack(t, origin.URL, func(c *config.Config) { c.Rewrite.MaxBufferedBytes = 1 << 20 })
	settled := func() { t.Helper(); budgetSettled(t, h) }

	for _, path := range []string{"/", "/gz", "/big"} {
		if ok, _ := get(path); !ok {
			t.Fatalf("%s not personalized with memory to spare", path)
		}
		settled()
	}

	// Spent: pages pass through, whole.
	h.buffered.take(1 << 20)
	for _, c := range []struct {
		path string
		want []byte
	}{{"/", page}, {"/gz", page}, {"/big", big}} {
		ok, body := get(c.path)
		if ok || !bytes.Equal(body, c.want) {
			t.Fatalf("%s with no memory left: personalized %v, origin's page %v", c.path, ok, bytes.Equal(body, c.want))
		}
	}
	h.buffered.give(1 << 20)
	settled()

	// Nearly spent: the 30 KB page runs out while being read, and what was
	// read goes out ahead of the rest, nothing lost.
	// (An empty free list: the read starts from a new, small buffer.)
	for len(h.bufs.ch) > 0 {
		h.bufs.get()
	}
	h.buffered.take(1<<20 - 12<<10)
	ok, body := get("/big")
	if ok || !bytes.Equal(body, big) {
		t.Fatalf("page cut off by the budget: personalized %v, whole %v (%d of %d bytes)", ok, bytes.Equal(body, big), len(body), len(big))
	}
	h.buffered.give(1<<20 - 12<<10)
	settled()

	if ok, _ := get("/"); !ok {
		t.Fatal("not personalized again once memory was given back")
	}
	settled()
	var m strings.Builder
	h.metrics.set.WritePrometheus(&m)
	if !strings.Contains(m.String(), `edgeseg_rewrite_skipped_total{reason="memory"} 4`) {
		t.Errorf("skips for memory not counted:\n%s", m.String())
	}
}

// budgetSettled waits for h's rewrites to give back all they took of
// rewrite.max_buffered_bytes once their responses are done.
func budgetSettled(t *testing.T, h *Handler) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for h.buffered.used.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("rewrites still hold %d bytes after their responses", h.buffered.used.Load())
		}
		time.Sleep(time.Millisecond)
	}
}

// personalizingServer starts edgeseg as personalizingStack does and returns
// it with its listener, for tests that speak to it over a connection of
// their own.
func personalizingServer(t *testing.T, originURL string, mutate func(*config.Config)) (*Handler, *fasthttputil.InmemoryListener) {
	t.Helper()
	ln := fasthttputil.NewInmemoryListener()
	return personalizingServerOn(t, ln, originURL, mutate), ln
}

// personalizingServerOn is personalizingServer serving on ln.
func personalizingServerOn(t *testing.T, ln net.Listener, originURL string, mutate func(*config.Config)) *Handler {
	t.Helper()
	cfg, err := config.Load("../bench/edgeseg.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Origin.URL = originURL
	if mutate != nil {
		mutate(cfg)
	}
	nop := zerolog.Nop()
	org, err := NewOrigin(cfg.Origin)
	if err != nil {
		t.Fatal(err)
	}
	oc, err := cache.NewOrigin(cfg.Cache.Origin, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Options{Config: cfg, Origin: org, Log: &nop, Personalizer: newBenchPersonalizer(t, cfg), OriginCache: oc})
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(cfg, h, &nop)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	return h
}

// personalizingStack starts edgeseg, with the bench config (deal-seekers
// for ?utm_campaign=promo), in front of originURL, and returns it with a
// client that fetches a path as a deal seeker's navigation: whether the
// deal-seekers hero is in the page, and the page, decoded.
func personalizingStack(t *testing.T, originURL string, mutate func(*config.Config)) (*Handler, func(path string) (bool, []byte)) {
	t.Helper()
	h, ln := personalizingServer(t, originURL, mutate)
	get := promoGetter(t, ln)
	return h, func(path string) (bool, []byte) {
		t.Helper()
		b, _ := get(path)
		return bytes.Contains(b, []byte("Deals picked for you")), b
	}
}

// promoGetter returns a function that asks ln for path as a page
// navigation from a deal seeker (utm_campaign=promo), accepting gzip, and
// returns the page uncompressed and whether it was sent chunked (as it
// streamed).
func promoGetter(t *testing.T, ln *fasthttputil.InmemoryListener) func(path string) ([]byte, bool) {
	client := &fasthttp.HostClient{Addr: "edgeseg", Dial: func(string) (net.Conn, error) { return ln.Dial() }}
	return func(path string) ([]byte, bool) {
		t.Helper()
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		navRequest(req, path+sep+"utm_campaign=promo", "")
		req.Header.Set("Accept-Encoding", "gzip")
		if err := client.Do(req, resp); err != nil {
			t.Fatal(err)
		}
		b, err := resp.BodyUncompressed()
		if err != nil {
			t.Fatal(err)
		}
		return append([]byte(nil), b...), resp.Header.ContentLength() < 0
	}
}

// TestRewriteBudgetCountsGrowth: the bytes made for a page (its blocks,
// here many and larger than its slots' content) count against
// rewrite.max_buffered_bytes beside the page read, and when they are not
// there the page goes out as the origin sent it.
func TestRewriteBudgetCountsGrowth(t *testing.T) {
	page := []byte("<!doctype html><html><body>" + strings.Repeat(`<div data-edgeseg-slot="hero"></div>`, 64) + "</body></html>")
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(page)))
		w.Write(page)
	}))
	defer origin.Close()
	h, get := personalizingStack(t, origin.URL, func(c *config.Config) { c.Rewrite.MaxBufferedBytes = 1 << 20 })
	ok, body := get("/")
	if !ok || len(body) < 2*len(page) {
		t.Fatalf("with memory to spare: personalized %v, %d bytes from %d", ok, len(body), len(page))
	}
	// What reading the page takes (a 4 KiB buffer), and 1 KiB more: not
	// the blocks made for it.
	for len(h.bufs.ch) > 0 {
		h.bufs.get()
	}
	left := 5 << 10
	h.buffered.take(1<<20 - left)
	ok, body = get("/")
	if ok || !bytes.Equal(body, page) {
		t.Fatalf("outgrowing the budget: personalized %v, origin's page %v", ok, bytes.Equal(body, page))
	}
	h.buffered.give(1<<20 - left)
	deadline := time.Now().Add(2 * time.Second)
	for h.buffered.used.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("rewrites still hold %d bytes after their responses", h.buffered.used.Load())
		}
		time.Sleep(time.Millisecond)
	}
}
