package proxy

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/edgeseg/edgeseg/config"
)

func TestOriginCache(t *testing.T) {
	var hits atomic.Int64
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.URL.Path {
		case "/cached", "/other":
			w.Header().Set("Cache-Control", "public, max-age=60")
			w.Header().Set("ETag", `"c1"`)
		case "/smax":
			w.Header().Set("Cache-Control", "max-age=0, s-maxage=60")
		case "/expires":
			w.Header().Set("Expires", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat))
		case "/expired":
			w.Header().Set("Expires", "Thu, 01 Jan 1970 00:00:00 GMT")
		case "/nostore":
			w.Header().Set("Cache-Control", "no-store")
		case "/private":
			w.Header().Set("Cache-Control", "private, max-age=60")
		case "/cookie":
			w.Header().Set("Cache-Control", "max-age=60")
			w.Header().Set("Set-Cookie", "session=secret")
		case "/vary":
			w.Header().Set("Cache-Control", "max-age=60")
			w.Header().Set("Vary", "Accept-Language")
			fmt.Fprint(w, r.Header.Get("Accept-Language"))
			return
		case "/big":
			w.Header().Set("Cache-Control", "max-age=60")
			fmt.Fprint(w, strings.Repeat("b", 300<<10))
			return
		case "/aged": // from a cache before the origin: half its lifetime spent
			w.Header().Set("Cache-Control", "max-age=60")
			w.Header().Set("Age", "30")
		case "/stale": // spent already
			w.Header().Set("Cache-Control", "max-age=60")
			w.Header().Set("Age", "90")
		case "/chunked": // no length: net/http sends it chunked after a flush
			w.Header().Set("Cache-Control", "max-age=60")
			w.(http.Flusher).Flush()
		case "/slow":
			w.Header().Set("Cache-Control", "max-age=60")
			time.Sleep(500 * time.Millisecond) // long enough for every caller to be waiting
		}
		fmt.Fprintf(w, "body of %s", r.URL.Path)
	})
	p := startProxy(t, origin, func(c *config.Config) {
		c.Cache.Origin.Paths = []string{"/cached", "/smax", "/expires", "/expired", "/nostore", "/private", "/cookie", "/vary", "/big", "/slow", "/none", "/chunked", "/aged", "/stale"}
		c.Cache.Origin.MaxObjectBytes = 256 << 10
	})
	count := func(path string, n int) int64 {
		before := hits.Load()
		for i := 0; i < n; i++ {
			resp, body := p.get(path)
			if resp.StatusCode != 200 || (path != "/vary" && path != "/big" && body != "body of "+path) {
				t.Fatalf("%s: %d %q", path, resp.StatusCode, body[:min(len(body), 40)])
			}
			if path == "/cookie" && resp.Header.Get("Set-Cookie") == "" {
				t.Fatalf("Set-Cookie lost")
			}
			p.h.ocache.Wait()
		}
		return hits.Load() - before
	}
	for _, tc := range []struct {
		path string
		want int64 // origin requests for 3 proxied requests
	}{
		{"/cached", 1}, {"/smax", 1}, {"/expires", 1}, {"/chunked", 1}, {"/aged", 1}, {"/stale", 3},
		{"/expired", 3}, {"/nostore", 3}, {"/private", 3}, {"/cookie", 3}, {"/none", 3}, {"/big", 3},
		{"/other", 3}, // not a configured path
	} {
		if got := count(tc.path, 3); got != tc.want {
			t.Errorf("%s: %d origin requests for 3, want %d", tc.path, got, tc.want)
		}
	}
	// A GET with a body goes to the origin, cached page or not.
	before := hits.Load()
	if status, _ := p.raw("GET /cached HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello"); !strings.Contains(status, "200") || hits.Load() != before+1 {
		t.Errorf("a GET with a body: %q, %d origin requests", status, hits.Load()-before)
	}
	// Past max_object_bytes and chunked: not kept, served whole.
	if _, body := p.get("/big"); len(body) != 300<<10 {
		t.Errorf("/big: %d bytes, want %d", len(body), 300<<10)
	}
	if resp, _ := p.get("/cached"); resp.Header.Get("Age") == "" {
		t.Error("cache hit without Age")
	}
	// A revalidation the hit can answer gets a 304, without a body.
	req, _ := http.NewRequest("GET", p.url+"/cached", nil)
	req.Header.Set("If-None-Match", `"c1"`)
	before = hits.Load()
	if resp, body := p.do(req); resp.StatusCode != 304 || body != "" || resp.Header.Get("ETag") != `"c1"` || hits.Load() != before {
		t.Errorf("revalidating a hit: %d %q %v, %d origin requests", resp.StatusCode, body, resp.Header, hits.Load()-before)
	}
	req.Header.Set("If-None-Match", `"c0"`)
	if resp, body := p.do(req); resp.StatusCode != 200 || body != "body of /cached" {
		t.Errorf("revalidating a hit with another tag: %d %q", resp.StatusCode, body)
	}
	if resp, _ := p.get("/aged"); resp.Header.Get("Age") != "30" && resp.Header.Get("Age") != "31" {
		t.Errorf("hit of a response 30 s old when stored: Age %q", resp.Header.Get("Age"))
	}
	// Vary: one entry per language.
	langs := map[string]string{}
	before = hits.Load()
	for i := 0; i < 4; i++ {
		for _, l := range []string{"de", "fr"} {
			req, _ := http.NewRequest("GET", p.url+"/vary", nil)
			req.Header.Set("Accept-Language", l)
			_, body := p.do(req)
			langs[l] = body
			p.h.ocache.Wait()
		}
	}
	if langs["de"] != "de" || langs["fr"] != "fr" || hits.Load()-before > 3 {
		t.Errorf("vary: %v, %d origin requests for 8", langs, hits.Load()-before)
	}
	// Concurrent misses reach the origin once.
	before = hits.Load()
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := p.client.Get(p.url + "/slow")
			if err == nil {
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	// One, or two if a caller arrived only after the first fetch was
	// stored but before the cache admitted it (admission is asynchronous).
	if got := hits.Load() - before; got > 2 {
		t.Errorf("coalescing: %d origin requests for 20 concurrent misses", got)
	}
}

// TestOriginCacheEvictsByCost: a cache full of large pages stays within
// its byte bound.
func TestOriginCacheEvictsByCost(t *testing.T) {
	page := strings.Repeat("p", 100<<10)
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		fmt.Fprint(w, page)
	})
	p := startProxy(t, origin, func(c *config.Config) {
		c.Cache.Origin.Paths = []string{"/p/*"}
		c.Cache.Origin.MaxBytes = 1 << 20
		c.Cache.Origin.MaxItems = 100
	})
	for i := 0; i < 60; i++ {
		p.get(fmt.Sprintf("/p/%d", i))
	}
	p.h.ocache.Wait()
	if cost := p.h.ocache.Cache().Cost(); cost > 1<<20 {
		t.Fatalf("cache holds %d bytes, bound 1 MiB", cost)
	}
}

// TestOriginCacheFillsWithinTheRewriteBudget: pages read to be kept count
// against rewrite.max_buffered_bytes; past it they are served whole, not
// kept, and counted.
func TestOriginCacheFillsWithinTheRewriteBudget(t *testing.T) {
	page := strings.Repeat("p", 100<<10)
	var hits atomic.Int64
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Cache-Control", "max-age=600")
		if r.URL.Path == "/chunked" {
			w.(http.Flusher).Flush()
		} else {
			w.Header().Set("Content-Length", strconv.Itoa(len(page)))
		}
		fmt.Fprint(w, page)
	})
	p := startProxy(t, origin, func(c *config.Config) {
		c.Cache.Origin.Paths = []string{"/*"}
		c.Cache.Origin.MaxObjectBytes = 256 << 10
		c.Rewrite.MaxBufferedBytes = 64 << 10
	})
	for _, path := range []string{"/length", "/chunked"} {
		before := hits.Load()
		for i := 0; i < 3; i++ {
			if resp, body := p.get(path); resp.StatusCode != 200 || body != page {
				t.Fatalf("%s: %d, %d bytes", path, resp.StatusCode, len(body))
			}
			p.h.ocache.Wait()
		}
		if n := hits.Load() - before; n != 3 {
			t.Errorf("%s: %d origin requests for 3: kept past the budget", path, n)
		}
	}
	if n := p.h.metrics.cacheNoBudget.Get(); n != 6 {
		t.Errorf("edgeseg_origin_cache_skipped_total{reason=\"memory\"} = %d, want 6", n)
	}
}

// TestOriginCacheUnderConcurrentMisses: many visitors at once on cached
// paths, pages with and without a length, within and past the size kept,
// each URL with a body of its own: everyone gets their page whole.
func TestOriginCacheUnderConcurrentMisses(t *testing.T) {
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		size := 1 << 10
		if strings.HasPrefix(r.URL.Path, "/big") {
			size = 80 << 10 // past max_object_bytes
		}
		body := strings.Repeat(r.URL.Path+"?"+r.URL.RawQuery+";", size/len(r.URL.Path))
		w.Header().Set("Cache-Control", "max-age=60")
		if strings.HasSuffix(r.URL.Path, "/chunked") {
			w.(http.Flusher).Flush()
		} else {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		time.Sleep(time.Millisecond) // long enough for misses to coalesce
		fmt.Fprint(w, body)
	})
	p := startProxy(t, origin, func(c *config.Config) {
		c.Cache.Origin.Paths = []string{"/*"}
		c.Cache.Origin.MaxObjectBytes = 64 << 10
		c.Cache.Origin.IgnoreQuery = []string{"utm_*"}
	})
	paths := []string{"/small/length", "/small/chunked", "/big/length", "/big/chunked"}
	var wg sync.WaitGroup
	errs := make(chan string, 1000)
	for g := 0; g < 24; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				path := paths[(g+i)%len(paths)]
				query := fmt.Sprintf("v=%d", i%3)
				resp, err := p.client.Get(p.url + path + "?" + query + "&utm_source=" + strconv.Itoa(g))
				if err != nil {
					errs <- err.Error()
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				// Pages differing only in an ignored parameter share an
				// entry: the body is the one of whoever came first.
				want := path + "?" + query + "&utm_source="
				size := 1 << 10
				if strings.HasPrefix(path, "/big") {
					size = 80 << 10
				}
				n := size / len(path)
				if err != nil || resp.StatusCode != 200 || strings.Count(string(body), want) != n || !strings.HasSuffix(string(body), ";") {
					errs <- fmt.Sprintf("%s?%s: %d, %d bytes, %d copies of the line (want %d), err %v", path, query, resp.StatusCode, len(body), strings.Count(string(body), want), n, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestOriginCacheServesStaleWhenTheOriginFails: with stale_if_error, a page
// past its freshness answers for an origin that errs or is gone, unless it
// was sent with a directive that forbids it; without, the error stands.
func TestOriginCacheServesStaleWhenTheOriginFails(t *testing.T) {
	var failing atomic.Bool
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, "down for maintenance")
			return
		}
		switch r.URL.Path {
		case "/revalidate":
			w.Header().Set("Cache-Control", "max-age=1, must-revalidate")
		case "/shared":
			w.Header().Set("Cache-Control", "s-maxage=1")
		default:
			w.Header().Set("Cache-Control", "max-age=1")
		}
		fmt.Fprintf(w, "body of %s", r.URL.Path)
	})
	o := httptest.NewServer(origin)
	defer o.Close()
	for _, window := range []time.Duration{time.Minute, 0} {
		failing.Store(false)
		p := startProxyURL(t, o.URL, func(c *config.Config) {
			c.Cache.Origin.Paths = []string{"/*"}
			c.Cache.Origin.StaleIfError = window
		}, nil)
		for _, path := range []string{"/page", "/revalidate", "/shared"} {
			if resp, body := p.get(path); resp.StatusCode != 200 || body != "body of "+path {
				t.Fatalf("%s: %d %q", path, resp.StatusCode, body)
			}
		}
		p.h.ocache.Wait()
		time.Sleep(1100 * time.Millisecond) // past max-age=1
		failing.Store(true)
		for _, tc := range []struct {
			path  string
			stale bool
		}{{"/page", window > 0}, {"/revalidate", false}, {"/shared", false}} {
			resp, body := p.get(tc.path)
			if tc.stale && (resp.StatusCode != 200 || body != "body of "+tc.path || resp.Header.Get("Age") == "0") {
				t.Errorf("stale_if_error %v, %s: %d %q Age %q, want the stale page", window, tc.path, resp.StatusCode, body, resp.Header.Get("Age"))
			}
			if !tc.stale && (resp.StatusCode != 503 || body != "down for maintenance") {
				t.Errorf("stale_if_error %v, %s: %d %q, want the origin's 503", window, tc.path, resp.StatusCode, body)
			}
		}
	}
	// An origin that is gone altogether.
	failing.Store(false)
	p := startProxyURL(t, o.URL, func(c *config.Config) {
		c.Cache.Origin.Paths = []string{"/*"}
		c.Cache.Origin.StaleIfError = time.Minute
	}, nil)
	p.get("/page")
	p.h.ocache.Wait()
	time.Sleep(1100 * time.Millisecond)
	o.Close()
	if resp, body := p.get("/page"); resp.StatusCode != 200 || body != "body of /page" {
		t.Errorf("origin gone: %d %q, want the stale page", resp.StatusCode, body)
	}
	if !strings.Contains(p.logs.String(), "answering with the page kept past its freshness") {
		t.Error("a stale answer is not logged")
	}
}

// TestSignedInVisitorsBypassTheCache: an origin that marks pages cacheable
// though they name the signed-in user; with the session cookie in
// bypass_cookies, nobody gets another's page.
func TestSignedInVisitorsBypassTheCache(t *testing.T) {
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60") // by mistake
		who := "anonymous"
		if c, err := r.Cookie("sessionid"); err == nil {
			who = c.Value
		}
		fmt.Fprintf(w, "hello %s", who)
	})
	p := startProxy(t, origin, func(c *config.Config) {
		c.Cache.Origin.Paths = []string{"/*"}
		c.Cache.Origin.BypassCookies = []string{"sessionid"}
	})
	get := func(cookie string) string {
		req, _ := http.NewRequest("GET", p.url+"/account", nil)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		_, body := p.do(req)
		p.h.ocache.Wait()
		return body
	}
	for _, tc := range []struct{ cookie, want string }{
		{"", "hello anonymous"},
		{"_ga=1; sessionid=alice", "hello alice"},
		{"", "hello anonymous"},
		{"sessionid=bob", "hello bob"},
		{"_ga=2", "hello anonymous"},
	} {
		if got := get(tc.cookie); got != tc.want {
			t.Errorf("Cookie %q: %q, want %q", tc.cookie, got, tc.want)
		}
	}
}

// TestOriginCacheRevalidatesInTheBackground: past its freshness, within
// stale-while-revalidate (the config's or the origin's directive), a kept
// page answers at once while one request fetches it anew behind it; a page
// that forbids it waits for the origin.
func TestOriginCacheRevalidatesInTheBackground(t *testing.T) {
	var version, fetches atomic.Int64
	var slow atomic.Bool
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		if slow.Load() {
			time.Sleep(300 * time.Millisecond)
		}
		// Version 1 goes stale at once; version 2, the refresh, stays
		// fresh while the test looks for it, however slowly it runs (a
		// refresh gone stale again would be fetched once more).
		maxAge := "max-age=1"
		if version.Load() > 1 {
			maxAge = "max-age=60"
		}
		switch r.URL.Path {
		case "/directive":
			w.Header().Set("Cache-Control", maxAge+", stale-while-revalidate=60")
		case "/revalidate":
			w.Header().Set("Cache-Control", maxAge+", must-revalidate")
		default:
			w.Header().Set("Cache-Control", maxAge)
		}
		fmt.Fprintf(w, "version %d", version.Load())
	})
	for _, tc := range []struct {
		name, path string
		window     time.Duration // the config's
		background bool
	}{
		{"config", "/page", time.Minute, true},
		{"directive", "/directive", 0, true},
		{"off", "/page", 0, false},
		{"forbidden", "/revalidate", time.Minute, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			version.Store(1)
			slow.Store(false)
			p := startProxy(t, origin, func(c *config.Config) {
				c.Cache.Origin.Paths = []string{"/*"}
				c.Cache.Origin.StaleWhileRevalidate = tc.window
			})
			if _, body := p.get(tc.path); body != "version 1" {
				t.Fatalf("first: %q", body)
			}
			p.h.ocache.Wait()
			time.Sleep(1100 * time.Millisecond) // past max-age=1
			version.Store(2)
			slow.Store(true)
			before := fetches.Load()
			start := time.Now()
			_, body := p.get(tc.path)
			took := time.Since(start)
			if tc.background {
				if body != "version 1" || took > 250*time.Millisecond {
					t.Fatalf("within the window: %q after %v, want version 1 at once", body, took)
				}
				// The refresh lands behind it: the next visitors get version 2.
				deadline := time.Now().Add(3 * time.Second)
				for {
					p.h.ocache.Wait()
					if _, body = p.get(tc.path); body == "version 2" || time.Now().After(deadline) {
						break
					}
					time.Sleep(50 * time.Millisecond)
				}
				if body != "version 2" {
					t.Fatalf("the page was not fetched anew: %q", body)
				}
				// One refresh for all the visitors while it is in flight
				// (polls every 50 ms, the origin 300 ms slow): not one
				// each. A second is let: under load, the cache may drop
				// a store (ristretto's sets are lossy), and the page is
				// then fetched again.
				if n := fetches.Load() - before; n < 1 || n > 2 {
					t.Errorf("%d origin requests to refresh, want 1", n)
				}
				return
			}
			if body != "version 2" || took < 250*time.Millisecond {
				t.Fatalf("outside the window: %q after %v, want version 2 from the origin", body, took)
			}
		})
	}
}

// TestBackgroundRefreshIsUnconditional: a revalidation (If-None-Match)
// answered from a page past its freshness triggers a refresh that asks for
// the page itself; were it conditional, the origin's 304 would leave the
// stale page in place, and every request after would ask again.
func TestBackgroundRefreshIsUnconditional(t *testing.T) {
	var fetches atomic.Int64
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Header().Set("Cache-Control", "max-age=1")
		w.Header().Set("ETag", `"same"`)
		if r.Header.Get("If-None-Match") == `"same"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		fmt.Fprint(w, "the page")
	})
	p := startProxy(t, origin, func(c *config.Config) {
		c.Cache.Origin.Paths = []string{"/*"}
		c.Cache.Origin.StaleWhileRevalidate = time.Minute
	})
	p.get("/asset")
	p.h.ocache.Wait()
	time.Sleep(1100 * time.Millisecond)
	before := fetches.Load()
	for i := 0; i < 5; i++ {
		req, _ := http.NewRequest("GET", p.url+"/asset", nil)
		req.Header.Set("If-None-Match", `"same"`)
		if resp, _ := p.do(req); resp.StatusCode != 304 {
			t.Fatalf("revalidation %d: %d", i, resp.StatusCode)
		}
		time.Sleep(100 * time.Millisecond) // the refresh lands
		p.h.ocache.Wait()
	}
	if n := fetches.Load() - before; n != 1 {
		t.Errorf("%d origin requests for 5 revalidations past freshness, want 1 (the refresh)", n)
	}
}

// TestPurge: ops empty the cache of a page, every variant of it, or of
// everything; nobody else may.
func TestPurge(t *testing.T) {
	var hits atomic.Int64
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("Vary", "Accept-Language")
		fmt.Fprintf(w, "%s %s", r.URL.RequestURI(), r.Header.Get("Accept-Language"))
	})
	p := startProxy(t, origin, func(c *config.Config) {
		c.Cache.Origin.Paths = []string{"/*"}
	})
	get := func(uri, lang string) {
		req, _ := http.NewRequest("GET", p.url+uri, nil)
		req.Header.Set("Accept-Language", lang)
		p.do(req)
		p.h.ocache.Wait()
	}
	fill := func() {
		for _, uri := range []string{"/a?x=1", "/b"} {
			for _, lang := range []string{"de", "fr"} {
				get(uri, lang)
			}
		}
	}
	asks := func(uri string) int64 { // origin requests for both variants of uri
		before := hits.Load()
		get(uri, "de")
		get(uri, "fr")
		return hits.Load() - before
	}
	purge := func(query string) int {
		req, _ := http.NewRequest("POST", p.url+"/_edgeseg/purge?"+query, nil)
		resp, _ := p.do(req)
		return resp.StatusCode
	}
	fill()
	if n := asks("/a?x=1"); n != 0 {
		t.Fatalf("not cached: %d origin requests", n)
	}
	if s := purge("path=" + url.QueryEscape("/a?x=1")); s != 200 {
		t.Fatalf("purge: %d", s)
	}
	if n := asks("/a?x=1"); n != 2 {
		t.Errorf("purged page: %d origin requests for its two variants, want 2", n)
	}
	if n := asks("/a?x=1"); n != 0 {
		t.Errorf("after the purge the page is kept again: %d origin requests", n)
	}
	if n := asks("/b"); n != 0 {
		t.Errorf("another page was purged too: %d origin requests", n)
	}
	if s := purge("all=1"); s != 200 {
		t.Fatalf("purge all: %d", s)
	}
	if n := asks("/b"); n != 2 {
		t.Errorf("after purging all: %d origin requests, want 2", n)
	}
	for _, tc := range []struct {
		method, query, forwarded string
		want                     int
	}{
		{"GET", "all=1", "", 405},
		{"POST", "", "", 400},
		{"POST", "path=a", "", 400},
		{"POST", "all=1", "203.0.113.9", 404}, // relayed: not ops
	} {
		req, _ := http.NewRequest(tc.method, p.url+"/_edgeseg/purge?"+tc.query, nil)
		if tc.forwarded != "" {
			req.Header.Set("X-Forwarded-For", tc.forwarded)
		}
		if resp, _ := p.do(req); resp.StatusCode != tc.want {
			t.Errorf("%s ?%s (forwarded %q): %d, want %d", tc.method, tc.query, tc.forwarded, resp.StatusCode, tc.want)
		}
	}
	if n := asks("/b"); n != 0 {
		t.Errorf("a refused purge purged: %d origin requests", n)
	}
}

// TestSchemesAreKeptApart: a page asked for over http may link to http://
// pages; it must not answer a visitor on https, as nginx's default cache
// key ($scheme$proxy_host$request_uri) keeps them apart too.
func TestSchemesAreKeptApart(t *testing.T) {
	var hits atomic.Int64
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Cache-Control", "max-age=600")
		fmt.Fprintf(w, `<a href="%s://shop.test/next">next</a>`, r.Header.Get("X-Forwarded-Proto"))
	})
	p := startProxy(t, origin, func(c *config.Config) {
		c.Cache.Origin.Paths = []string{"/*"}
		c.Server.TrustedProxies = []string{"127.0.0.1"} // the load balancer says which scheme
	})
	get := func(proto string) string {
		req, _ := http.NewRequest("GET", p.url+"/page", nil)
		req.Header.Set("X-Forwarded-Proto", proto)
		_, body := p.do(req)
		p.h.ocache.Wait()
		return body
	}
	for i := 0; i < 2; i++ {
		if body := get("http"); !strings.Contains(body, `"http://`) {
			t.Fatalf("http visitor %d got %q", i, body)
		}
		if body := get("https"); !strings.Contains(body, `"https://`) {
			t.Fatalf("https visitor %d got %q", i, body)
		}
	}
	if n := hits.Load(); n != 2 {
		t.Fatalf("%d origin requests for 2 pages asked for twice each, want 2", n)
	}
	// A purge names no scheme: both go.
	req, _ := http.NewRequest("POST", p.url+"/_edgeseg/purge?path=/page", nil)
	if resp, _ := p.do(req); resp.StatusCode != 200 {
		t.Fatalf("purge: %d", resp.StatusCode)
	}
	get("http")
	get("https")
	if n := hits.Load(); n != 4 {
		t.Errorf("after the purge: %d origin requests in all, want 4", n)
	}
}

// TestForwardedHostCannotPoisonTheCache: behind a load balancer that
// passes on a visitor's X-Forwarded-Host, an origin that builds links from
// it must not have one visitor's page (links to evil.example) kept for all.
func TestForwardedHostCannotPoisonTheCache(t *testing.T) {
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		fmt.Fprintf(w, `<script src="//%s/app.js"></script>`, r.Header.Get("X-Forwarded-Host"))
	})
	p := startProxy(t, origin, func(c *config.Config) {
		c.Cache.Origin.Paths = []string{"/*"}
		c.Server.TrustedProxies = []string{"127.0.0.1"}
	})
	get := func(fwdHost string) string {
		req, _ := http.NewRequest("GET", p.url+"/page", nil)
		req.Host = "shop.test"
		if fwdHost != "" {
			req.Header.Set("X-Forwarded-Host", fwdHost)
		}
		_, body := p.do(req)
		p.h.ocache.Wait()
		return body
	}
	get("evil.example") // the attacker's request fills the cache first
	for _, fwd := range []string{"shop.test", ""} {
		if body := get(fwd); strings.Contains(body, "evil.example") {
			t.Fatalf("X-Forwarded-Host %q: got the attacker's page %q", fwd, body)
		}
	}
}

// TestCacheHitsArePersonalizedWhereKept: a kept page is personalized from
// the cache's own bytes, without a copy, and they stay as the origin sent
// them: deal seekers, hit after hit, get their block and around it the
// origin's page to the byte, plain and gzip (from the third hit on,
// filled where the codings memo keeps it decoded); other visitors take
// turns with them and get the origin's page.
func TestCacheHitsArePersonalizedWhereKept(t *testing.T) {
	page := []byte(`<!doctype html><html><head><title>t</title></head><body>` +
		`<div data-edgeseg-slot="hero">Great prices every day</div>` + strings.Repeat("<p>Products</p>", 400) + `</body></html>`)
	var hits atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=60")
		if r.URL.Path == "/gzip" {
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			zw.Write(page)
			zw.Close()
			return
		}
		w.Write(page)
	}))
	defer origin.Close()
	h, ln := personalizingServer(t, origin.URL, func(c *config.Config) { c.Cache.Origin.Paths = []string{"/plain", "/gzip"} })
	client := &fasthttp.HostClient{Addr: "edgeseg", Dial: func(string) (net.Conn, error) { return ln.Dial() }}
	get := func(uri string) []byte {
		t.Helper()
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		navRequest(req, uri, "")
		req.Header.Set("Accept-Encoding", "gzip")
		if err := client.Do(req, resp); err != nil {
			t.Fatal(err)
		}
		b, err := resp.BodyUncompressed()
		if err != nil || resp.StatusCode() != 200 {
			t.Fatalf("%s: %d, %v", uri, resp.StatusCode(), err)
		}
		h.ocache.Wait()
		return append([]byte(nil), b...)
	}
	slot := bytes.Index(page, []byte(`<div data-edgeseg-slot="hero"`))
	after := page[bytes.Index(page, []byte("</div>")):]
	for i := 0; i < 4; i++ {
		for _, path := range []string{"/plain", "/gzip"} {
			// The page around the slot is the origin's, to the byte.
			if got := get(path + "?utm_campaign=promo"); !bytes.Contains(got, []byte("Deals picked for you")) ||
				!bytes.HasPrefix(got, page[:slot]) || !bytes.HasSuffix(got, after) {
				t.Fatalf("%s, a deal seeker, round %d: not their page:\n%.300s", path, i, got)
			}
			if got := get(path); !bytes.Equal(got, page) {
				t.Fatalf("%s, another visitor, round %d: not the origin's page:\n%.300s", path, i, got)
			}
		}
	}
	// Each query string is a page of its own: two per path.
	if n := hits.Load(); n > 4 {
		t.Errorf("%d origin requests for 16 page views of 4 kept pages", n)
	}
}

// TestCoalescedMissesKeepTheirVary: before a page's first answer says it
// varies on Accept-Encoding, a visitor who did not ask for gzip may wait
// on the fetch of one who did; the gzip page is not theirs, and they get
// the page as they asked for it.
func TestCoalescedMissesKeepTheirVary(t *testing.T) {
	page := "<!doctype html><html><body>" + strings.Repeat("<p>Products</p>", 100) + "</body></html>"
	var hits atomic.Int64
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		time.Sleep(300 * time.Millisecond) // long enough for the others to be waiting
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=60")
		w.Header().Set("Vary", "Accept-Encoding")
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			io.WriteString(zw, page)
			zw.Close()
			return
		}
		io.WriteString(w, page)
	})
	p := startProxy(t, origin, func(c *config.Config) { c.Cache.Origin.Paths = []string{"/"} })
	get := func(enc string) (string, string) {
		req, _ := http.NewRequest("GET", p.url+"/", nil)
		req.Header.Set("Accept-Encoding", enc) // set: the client leaves the body as sent
		resp, body := p.do(req)
		return resp.Header.Get("Content-Encoding"), body
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if ce, _ := get("gzip"); ce != "gzip" {
			t.Errorf("the visitor who asked for gzip: Content-Encoding %q", ce)
		}
	}()
	time.Sleep(50 * time.Millisecond) // the gzip request leads
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ce, body := get("identity"); ce != "" || body != page {
				t.Errorf("a visitor who did not ask for gzip: Content-Encoding %q, %d bytes", ce, len(body))
			}
		}()
	}
	wg.Wait()
	if n := hits.Load(); n < 2 {
		t.Errorf("%d origin requests: the plain page was never asked for", n)
	}
}
