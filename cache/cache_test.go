package cache

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/edgeseg/edgeseg/config"
)

func TestFreshness(t *testing.T) {
	o, err := NewOrigin(config.OriginCache{CacheSize: config.CacheSize{MaxItems: 10, MaxBytes: 1 << 20}, Paths: []string{"/"}, MaxObjectBytes: 1 << 20, DefaultTTL: 7 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		status  int
		headers map[string]string
		want    time.Duration
	}{
		{"max-age", 200, map[string]string{"Cache-Control": "public, max-age=60"}, time.Minute},
		{"s-maxage wins", 200, map[string]string{"Cache-Control": "max-age=0, s-maxage=30"}, 30 * time.Second},
		{"quoted", 200, map[string]string{"Cache-Control": `max-age="90"`}, 90 * time.Second},
		{"expires", 200, map[string]string{"Expires": now.Add(time.Hour).Format(http.TimeFormat)}, time.Hour},
		{"expired", 200, map[string]string{"Expires": now.Add(-time.Hour).Format(http.TimeFormat)}, 0},
		{"bad expires", 200, map[string]string{"Expires": "0"}, 0},
		{"default ttl", 200, nil, 7 * time.Second},
		{"no-store", 200, map[string]string{"Cache-Control": "no-store, max-age=60"}, 0},
		{"private", 200, map[string]string{"Cache-Control": "private, max-age=60"}, 0},
		{"no-cache", 200, map[string]string{"Cache-Control": "no-cache"}, 0},
		{"set-cookie", 200, map[string]string{"Cache-Control": "max-age=60", "Set-Cookie": "a=b"}, 0},
		{"vary star", 200, map[string]string{"Cache-Control": "max-age=60", "Vary": "*"}, 0},
		{"404", 404, map[string]string{"Cache-Control": "max-age=60"}, 0},
		{"huge max-age", 200, map[string]string{"Cache-Control": "max-age=99999999999999999999"}, maxFreshness},
		{"max-age past 2^31", 200, map[string]string{"Cache-Control": "max-age=10000000000"}, maxFreshness},
		{"negative max-age", 200, map[string]string{"Cache-Control": "max-age=-5"}, 7 * time.Second},
		{"signed max-age", 200, map[string]string{"Cache-Control": "max-age=+5"}, 7 * time.Second},
		{"far expires", 200, map[string]string{"Expires": "Fri, 31 Dec 9999 23:59:59 GMT"}, maxFreshness},
		// A cache before the origin says how much of the lifetime is spent.
		{"aged max-age", 200, map[string]string{"Cache-Control": "max-age=60", "Age": "45"}, 15 * time.Second},
		{"aged s-maxage", 200, map[string]string{"Cache-Control": "s-maxage=60", "Age": "45"}, 15 * time.Second},
		{"aged past max-age", 200, map[string]string{"Cache-Control": "max-age=60", "Age": "600"}, 0},
		{"aged default", 200, map[string]string{"Age": "2"}, 5 * time.Second},
		{"aged expires", 200, map[string]string{"Expires": now.Add(time.Hour).Format(http.TimeFormat), "Age": "600"}, time.Hour},
		{"bad age", 200, map[string]string{"Cache-Control": "max-age=60", "Age": "-5"}, time.Minute},
		{"huge age", 200, map[string]string{"Cache-Control": "max-age=60", "Age": "99999999999999999999"}, 0},
	} {
		var resp fasthttp.Response
		resp.SetStatusCode(tc.status)
		for k, v := range tc.headers {
			resp.Header.Set(k, v)
		}
		if got := o.Freshness(&resp, now); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestFreshnessBoundedByTTL: cache.origin.ttl caps what the origin allows.
func TestFreshnessBoundedByTTL(t *testing.T) {
	o, _ := NewOrigin(config.OriginCache{CacheSize: config.CacheSize{MaxItems: 10, MaxBytes: 1 << 20, TTL: 30 * time.Second},
		Paths: []string{"/"}, MaxObjectBytes: 1 << 20, DefaultTTL: 7 * time.Second}, nil)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		headers map[string]string
		want    time.Duration
	}{
		{map[string]string{"Cache-Control": "max-age=60"}, 30 * time.Second},
		{map[string]string{"Cache-Control": "max-age=10"}, 10 * time.Second},
		{map[string]string{"Expires": now.Add(time.Hour).Format(http.TimeFormat)}, 30 * time.Second},
		{nil, 7 * time.Second},
		{map[string]string{"Cache-Control": "no-store"}, 0},
	} {
		var resp fasthttp.Response
		for k, v := range tc.headers {
			resp.Header.Set(k, v)
		}
		if got := o.Freshness(&resp, now); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.headers, got, tc.want)
		}
	}
}

// FuzzFreshness: whatever caching headers (and Age) an origin sends, a response is
// kept for no time or for a lifetime between a second and 2^31 seconds
// (or the default TTL), never a negative or overflowed one.
func FuzzFreshness(f *testing.F) {
	for _, s := range [][4]string{
		{"public, max-age=60", "", "", ""},
		{`max-age="90", s-maxage=x`, "", "Accept-Encoding", "30"},
		{"max-age=99999999999999999999", "Thu, 01 Jan 1970 00:00:00 GMT", "", "99999999999999999999"},
		{"", "Fri, 31 Dec 9999 23:59:59 GMT", "", "-1"},
		{"no-store", "", "*", ""},
		{"s-maxage=-1,,max-age", "0", ",", "x"},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	o, err := NewOrigin(config.OriginCache{CacheSize: config.CacheSize{MaxItems: 10, MaxBytes: 1 << 20}, Paths: []string{"/"}, MaxObjectBytes: 1 << 20, DefaultTTL: 7 * time.Second}, nil)
	if err != nil {
		f.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, cc, expires, vary, age string) {
		var resp fasthttp.Response
		resp.Header.Set("Cache-Control", cc)
		resp.Header.Set("Expires", expires)
		resp.Header.Set("Vary", vary)
		resp.Header.Set("Age", age)
		d := o.Freshness(&resp, now)
		if d < 0 || d > maxFreshness {
			t.Fatalf("Cache-Control %q Expires %q: lifetime %v", cc, expires, d)
		}
		if now.Add(d).Before(now) {
			t.Fatalf("Cache-Control %q Expires %q: %v overflows the expiry time", cc, expires, d)
		}
	})
}

func TestCacheable(t *testing.T) {
	o, _ := NewOrigin(config.OriginCache{CacheSize: config.CacheSize{MaxItems: 10, MaxBytes: 1 << 20}, Paths: []string{"/", "/category/*"}, MaxObjectBytes: 1 << 20}, nil)
	for _, tc := range []struct {
		method, uri string
		headers     map[string]string
		want        bool
	}{
		{"GET", "/", nil, true},
		{"GET", "/category/sale", nil, true},
		{"GET", "/product/x", nil, false},
		{"POST", "/", nil, false},
		{"HEAD", "/", nil, false},
		{"GET", "/", map[string]string{"Authorization": "Bearer x"}, false},
		{"GET", "/", map[string]string{"Range": "bytes=0-10"}, false},
		{"GET", "/", map[string]string{"Cache-Control": "no-store"}, false},
		{"GET", "/", map[string]string{"Content-Length": "5"}, false},
		// Parts of pages, which sites answer without the layout at the page's URL.
		{"GET", "/", map[string]string{"Turbo-Frame": "cart", "X-Turbo-Request-Id": "1"}, false},
		{"GET", "/", map[string]string{"HX-Request": "true", "HX-Boosted": "true"}, false},
		{"GET", "/", map[string]string{"X-PJAX": "true"}, false},
		{"GET", "/", map[string]string{"X-Up-Version": "3.9.0", "X-Up-Target": "main"}, false},
		{"GET", "/", map[string]string{"X-Livewire-Navigate": ""}, false},
		{"GET", "/", map[string]string{"X-Turbo-Request-Id": "1"}, true}, // Turbo Drive: the whole page
	} {
		var req fasthttp.Request
		req.Header.SetMethod(tc.method)
		req.SetRequestURI(tc.uri)
		for k, v := range tc.headers {
			req.Header.Set(k, v)
		}
		if got := o.Cacheable(&req); got != tc.want {
			t.Errorf("%s %s %v: %v", tc.method, tc.uri, tc.headers, got)
		}
	}
	var chunked fasthttp.Request
	chunked.SetRequestURI("/")
	chunked.Header.SetContentLength(-1) // a body of unknown length, as prepareRequest streams it
	if o.Cacheable(&chunked) {
		t.Error("a GET with a chunked body is cacheable")
	}
	signedIn, _ := NewOrigin(config.OriginCache{CacheSize: config.CacheSize{MaxItems: 10, MaxBytes: 1 << 20}, Paths: []string{"/"},
		MaxObjectBytes: 1 << 20, BypassCookies: []string{"sessionid", "wordpress_logged_in_*"}}, nil)
	for _, tc := range []struct {
		cookie string
		want   bool
	}{
		{"", true},
		{"_ga=GA1.2; edgeseg=abc", true},
		{"_ga=GA1.2; sessionid=abc", false},
		{"sessionid=abc", false},
		{"a=1;wordpress_logged_in_5f2c=admin%7C123", false},
		{"xsessionid=1; sessionidx=2", true},
		{"note=sessionid", true}, // a value, not a name
	} {
		var req fasthttp.Request
		req.SetRequestURI("/")
		if tc.cookie != "" {
			req.Header.Set("Cookie", tc.cookie)
		}
		if got := signedIn.Cacheable(&req); got != tc.want {
			t.Errorf("Cookie %q: cacheable %v, want %v", tc.cookie, got, tc.want)
		}
	}
	if none, _ := NewOrigin(config.OriginCache{}, nil); none != nil {
		t.Error("an origin cache without paths")
	}
}

// TestIgnoredQueryParametersShareAnEntry: tracking parameters named in
// ignore_query do not split the cache; every other part of the URL does.
func TestIgnoredQueryParametersShareAnEntry(t *testing.T) {
	o, _ := NewOrigin(config.OriginCache{CacheSize: config.CacheSize{MaxItems: 10, MaxBytes: 1 << 20}, Paths: []string{"/"},
		MaxObjectBytes: 1 << 20, IgnoreQuery: []string{"utm_*", "gclid"}}, nil)
	plain, _ := NewOrigin(config.OriginCache{CacheSize: config.CacheSize{MaxItems: 10, MaxBytes: 1 << 20}, Paths: []string{"/"},
		MaxObjectBytes: 1 << 20}, nil)
	key := func(o *Origin, uri string) uint64 {
		var req fasthttp.Request
		req.SetRequestURI(uri)
		req.Header.SetHost("shop.test")
		return o.key(&req, nil)
	}
	base := key(o, "/p?id=1")
	for _, tc := range []struct {
		uri  string
		same bool
	}{
		{"/p?id=1&utm_source=ads&utm_campaign=promo", true},
		{"/p?gclid=Cj0KCQ&id=1", true},
		{"/p?id=1&gclid=", true},
		{"/p?id=2&utm_source=ads", false},
		{"/p?id=1&gclid2=x", false}, // not a prefix pattern
		{"/p?id=1&utm=x", false},    // "utm_*" needs the underscore
		{"/p", false},
		{"/q?id=1", false},
	} {
		if got := key(o, tc.uri) == base; got != tc.same {
			t.Errorf("%s: same entry as /p?id=1: %v, want %v", tc.uri, got, tc.same)
		}
	}
	if key(plain, "/p?id=1&utm_source=ads") == key(plain, "/p?id=1") {
		t.Error("without ignore_query, every parameter is part of the key")
	}
}

// TestCompressedAnswersVaryByAcceptEncoding: an answer the origin
// compressed, or one asked for uncompressed, is kept for the
// Accept-Encoding it was asked with, whether or not its Vary says so.
func TestCompressedAnswersVaryByAcceptEncoding(t *testing.T) {
	now := time.Now()
	for _, c := range []struct {
		name, asked, encoding, vary string
		other                       string // another visitor's Accept-Encoding
		shared                      bool   // the other visitor is given the kept answer
	}{
		{"gzip without Vary", "gzip, br", "gzip", "", "", false},
		{"gzip with Vary", "gzip, br", "gzip", "Accept-Encoding", "", false},
		{"gzip, Vary on another header", "gzip", "gzip", "Cookie", "", false},
		{"asked for identity, without Vary", "identity", "", "", "gzip, br", false},
		{"uncompressed, without Vary", "gzip, br", "", "", "", true},
		{"uncompressed, the same codings asked", "gzip, br", "", "", "gzip, br", true},
		{"gzip, the same codings asked", "gzip, br", "gzip", "", "gzip, br", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			o, _ := NewOrigin(config.OriginCache{CacheSize: config.CacheSize{MaxItems: 10, MaxBytes: 1 << 20}, Paths: []string{"/"}, MaxObjectBytes: 1 << 20}, nil)
			request := func(ae string) *fasthttp.Request {
				var req fasthttp.Request
				req.SetRequestURI("/p")
				req.Header.SetHost("shop.test")
				if ae != "" {
					req.Header.Set("Accept-Encoding", ae)
				}
				return &req
			}
			var resp fasthttp.Response
			resp.Header.Set("Cache-Control", "max-age=60")
			if c.encoding != "" {
				resp.Header.Set("Content-Encoding", c.encoding)
			}
			if c.vary != "" {
				resp.Header.Set("Vary", c.vary)
			}
			kept := request(c.asked)
			o.Store(kept, o.Capture(kept, &resp, []byte("page"), time.Minute, now))
			o.Wait()
			if _, _, ok := o.Get(request(c.asked), now); !ok {
				t.Fatal("not kept for the request it answered")
			}
			if _, _, ok := o.Get(request(c.other), now); ok != c.shared {
				t.Fatalf("given to a visitor asking with %q: %v, want %v", c.other, ok, c.shared)
			}
		})
	}
}

func TestNotModified(t *testing.T) {
	lm := "Sun, 01 Mar 2026 12:00:00 GMT"
	tagged := &Response{Status: 200, Headers: [][2][]byte{{[]byte("ETag"), []byte(`"v1"`)}, {[]byte("Last-Modified"), []byte(lm)}}}
	weak := &Response{Status: 200, Headers: [][2][]byte{{[]byte("Etag"), []byte(`W/"v1"`)}}}
	dated := &Response{Status: 200, Headers: [][2][]byte{{[]byte("Last-Modified"), []byte(lm)}}}
	bare := &Response{Status: 200}
	for _, tc := range []struct {
		name    string
		r       *Response
		headers map[string]string
		want    bool
	}{
		{"same tag", tagged, map[string]string{"If-None-Match": `"v1"`}, true},
		{"weak request tag", tagged, map[string]string{"If-None-Match": `W/"v1"`}, true},
		{"weak stored tag", weak, map[string]string{"If-None-Match": `"v1"`}, true},
		{"in a list", tagged, map[string]string{"If-None-Match": `"v0", "v1"`}, true},
		{"star", tagged, map[string]string{"If-None-Match": "*"}, true},
		{"other tag", tagged, map[string]string{"If-None-Match": `"v2"`}, false},
		{"no stored tag", dated, map[string]string{"If-None-Match": `"v1"`}, false},
		{"tag wins over date", tagged, map[string]string{"If-None-Match": `"v2"`, "If-Modified-Since": lm}, false},
		{"not modified since", dated, map[string]string{"If-Modified-Since": lm}, true},
		{"modified since", dated, map[string]string{"If-Modified-Since": "Sat, 28 Feb 2026 12:00:00 GMT"}, false},
		{"bad date", dated, map[string]string{"If-Modified-Since": "yesterday"}, false},
		{"no date stored", bare, map[string]string{"If-Modified-Since": lm}, false},
		{"unconditional", tagged, nil, false},
	} {
		var req fasthttp.Request
		req.SetRequestURI("/")
		for k, v := range tc.headers {
			req.Header.Set(k, v)
		}
		if got := tc.r.NotModified(&req); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestCacheBoundedByCost(t *testing.T) {
	c, err := New[uint64, []byte]("t", config.CacheSize{MaxItems: 100, MaxBytes: 10 << 10}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(0); i < 100; i++ {
		c.Set(i, make([]byte, 1024), 1024)
	}
	c.Wait()
	if c.Cost() > 10<<10 {
		t.Fatalf("cost %d over the 10 KiB bound", c.Cost())
	}
}

// TestCheckedMissesOnTheOtherHalf: a Checked cache answers only for the
// full 128-bit key; a key sharing the low half (what ristretto sees) misses.
// Hashers draw their own seeds.
func TestCheckedMissesOnTheOtherHalf(t *testing.T) {
	c, err := NewChecked[string]("t", config.CacheSize{MaxItems: 100, MaxBytes: 1 << 20}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := NewHasher()
	k := h.Sum([]byte("utm.source=x"))
	c.Set(k, "mine", 10)
	c.Wait()
	if v, ok := c.Get(k); !ok || v != "mine" {
		t.Fatalf("own key: %q %v", v, ok)
	}
	if v, ok := c.Get(Key128{Lo: k.Lo, Hi: k.Hi + 1}); ok {
		t.Fatalf("a key sharing the low half got %q", v)
	}
	h2, _ := NewHasher()
	if h2.Sum([]byte("utm.source=x")) == k {
		t.Fatal("two hashers share a seed")
	}
	if h.Sum([]byte("utm.source=x")) != k {
		t.Fatal("a hasher is not deterministic")
	}
}

// TestStaleWindows: how long past its freshness a kept page may answer
// while it is fetched anew, or when the origin fails: the config's window
// or the origin's directive, the longer; never when the origin forbids it.
func TestStaleWindows(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name, cc                    string
		cfgRevalidate, cfgError     time.Duration
		after                       time.Duration // past freshness
		wantRevalidating, wantStale bool
	}{
		{"fresh", "max-age=60", time.Minute, time.Minute, -time.Second, false, true},
		{"config windows", "max-age=60", time.Minute, time.Minute, 30 * time.Second, true, true},
		{"past them", "max-age=60", time.Minute, time.Minute, 2 * time.Minute, false, false},
		{"directives", "max-age=60, stale-while-revalidate=120, stale-if-error=300", 0, 0, 90 * time.Second, true, true},
		{"directive past", "max-age=60, stale-while-revalidate=120, stale-if-error=300", 0, 0, 200 * time.Second, false, true},
		{"longer wins", "max-age=60, stale-while-revalidate=10", time.Minute, 0, 30 * time.Second, true, false},
		{"off", "max-age=60", 0, 0, time.Second, false, false},
		{"must-revalidate", "max-age=60, must-revalidate, stale-while-revalidate=120", time.Minute, time.Minute, time.Second, false, false},
		{"s-maxage", "s-maxage=60", time.Minute, time.Minute, time.Second, false, false},
	} {
		o, _ := NewOrigin(config.OriginCache{CacheSize: config.CacheSize{MaxItems: 10, MaxBytes: 1 << 20}, Paths: []string{"/"},
			MaxObjectBytes: 1 << 20, StaleIfError: tc.cfgError, StaleWhileRevalidate: tc.cfgRevalidate}, nil)
		var req fasthttp.Request
		req.SetRequestURI("/")
		var resp fasthttp.Response
		resp.Header.Set("Cache-Control", tc.cc)
		r := o.Capture(&req, &resp, []byte("page"), time.Minute, now)
		o.Store(&req, r)
		o.Wait()
		at := r.Expires.Add(tc.after)
		if _, revalidate, ok := o.Get(&req, at); (ok && revalidate) != tc.wantRevalidating {
			got := ok && revalidate
			t.Errorf("%s: revalidating %v, want %v", tc.name, got, tc.wantRevalidating)
		}
		if _, got := o.Stale(&req, at); got != tc.wantStale && tc.after >= 0 {
			t.Errorf("%s: stale %v, want %v", tc.name, got, tc.wantStale)
		}
	}
}

// TestPurgesAreBounded: past maxPurges purged URLs, a purge empties all.
func TestPurgesAreBounded(t *testing.T) {
	o, _ := NewOrigin(config.OriginCache{CacheSize: config.CacheSize{MaxItems: 10, MaxBytes: 1 << 20}, Paths: []string{"/"}, MaxObjectBytes: 1 << 20}, nil)
	now := time.Now()
	var kept fasthttp.Request
	kept.SetRequestURI("/kept")
	var resp fasthttp.Response
	o.Store(&kept, o.Capture(&kept, &resp, []byte("page"), time.Hour, now))
	o.Wait()
	later := now.Add(time.Second)
	var req fasthttp.Request
	for i := 0; i < maxPurges; i++ {
		req.SetRequestURI("/other/" + strconv.Itoa(i))
		o.Purge(&req, later)
	}
	if _, _, ok := o.Get(&kept, later); !ok {
		t.Fatal("purging other pages purged this one")
	}
	req.SetRequestURI("/one-more")
	o.Purge(&req, later)
	if _, _, ok := o.Get(&kept, later); ok {
		t.Fatal("past maxPurges, a purge did not empty the cache")
	}
	if len(o.purged) != 0 {
		t.Fatalf("%d purged URLs still remembered", len(o.purged))
	}
}

func TestHasDirective(t *testing.T) {
	for _, tc := range []struct {
		cc, name string
		want     bool
	}{
		{"no-transform", "no-transform", true},
		{"public, No-Transform, max-age=60", "no-transform", true},
		{"max-age=60", "max-age", true},
		{" s-maxage = 5 ", "s-maxage", true},
		{"no-transformx", "no-transform", false},
		{`private="no-transform"`, "no-transform", false},
		{"", "no-transform", false},
	} {
		if got := HasDirective([]byte(tc.cc), tc.name); got != tc.want {
			t.Errorf("%q has %s: %v", tc.cc, tc.name, got)
		}
	}
	// It runs on every personalized page.
	cc := []byte("public, max-age=60, no-transform")
	if n := testing.AllocsPerRun(100, func() { HasDirective(cc, "no-transform") }); n != 0 {
		t.Errorf("%v allocations", n)
	}
}
