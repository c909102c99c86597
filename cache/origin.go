package cache

import (
	"bytes"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/cespare/xxhash/v2"
	"github.com/valyala/fasthttp"
	"golang.org/x/sync/singleflight"

	"github.com/edgeseg/edgeseg/config"
)

// Response is a cached origin response: unpersonalized, immutable, shared
// by every request that hits it.
type Response struct {
	Status  int
	Headers [][2][]byte
	Body    []byte
	Expires time.Time
	Stored  time.Time
	age     time.Duration // how old it was when stored (the origin's Age)
	vary    [][]byte      // request headers the response varies on
	key     uint64        // of the request it answered, with vary's values
	// staleOK: the origin allows it to answer past its freshness (no
	// must-revalidate, proxy-revalidate, s-maxage); for how long, when the
	// origin fails or while it is fetched anew, its stale-if-error and
	// stale-while-revalidate say, or the config (the longer).
	staleOK           bool
	staleIfError      time.Duration
	staleRevalidating time.Duration
}

// CopyTo fills resp with r, with an Age header. The body is given as a
// stream, as the origin client gives every body (it is shared, and read
// only).
func (r *Response) CopyTo(resp *fasthttp.Response, now time.Time) {
	resp.SetStatusCode(r.Status)
	for _, kv := range r.Headers {
		resp.Header.SetBytesKV(kv[0], kv[1])
	}
	resp.Header.Set("Age", strconv.Itoa(int((r.age+now.Sub(r.Stored))/time.Second)))
	resp.SetBodyStream(NewMemoryBody(r.Body), len(r.Body))
}

// A MemoryBody is a kept page's body as a response's body stream: read as
// any other, or taken whole without a copy.
type MemoryBody struct {
	bytes.Reader
	b []byte
}

// NewMemoryBody returns b as a body stream. b must not change after.
func NewMemoryBody(b []byte) *MemoryBody {
	m := &MemoryBody{b: b}
	m.Reset(b)
	return m
}

// Bytes returns the whole body, however much was read of it. It is
// shared: not to be written to.
func (m *MemoryBody) Bytes() []byte { return m.b }

// NotModified reports whether req's conditional headers match r, so a 304
// can answer it (RFC 9110 §13.2.2): If-None-Match by weak comparison of
// entity tags, else If-Modified-Since against Last-Modified.
func (r *Response) NotModified(req *fasthttp.Request) bool {
	if r.Status != fasthttp.StatusOK {
		return false
	}
	if inm := req.Header.Peek("If-None-Match"); len(inm) > 0 {
		etag := weakTag(r.header("ETag"))
		if len(etag) == 0 {
			return false
		}
		for _, t := range bytes.Split(inm, []byte(",")) {
			if t = bytes.TrimSpace(t); string(t) == "*" || bytes.Equal(weakTag(t), etag) {
				return true
			}
		}
		return false
	}
	ims := req.Header.Peek("If-Modified-Since")
	lm := r.header("Last-Modified")
	if len(ims) == 0 || len(lm) == 0 {
		return false
	}
	since, err1 := fasthttp.ParseHTTPDate(ims)
	modified, err2 := fasthttp.ParseHTTPDate(lm)
	return err1 == nil && err2 == nil && !modified.After(since)
}

// header returns the value of r's header name.
func (r *Response) header(name string) []byte {
	for _, kv := range r.Headers {
		if bytes.EqualFold(kv[0], []byte(name)) {
			return kv[1]
		}
	}
	return nil
}

// weakTag is an entity tag without its weakness mark, for weak comparison.
func weakTag(t []byte) []byte {
	return bytes.TrimPrefix(bytes.TrimSpace(t), []byte("W/"))
}

// Origin caches unpersonalized origin responses for configured paths,
// honouring the origin's Cache-Control, Expires and Vary, and coalesces
// concurrent misses for one key into one origin request. It is safe for
// concurrent use.
type Origin struct {
	c          *Cache[uint64, *Response]
	varies     *Cache[uint64, [][]byte] // Vary header names by URL
	paths      []string
	ignore     []string // query parameters left out of keys; a trailing * is a prefix
	bypass     []string // cookies that keep a request away from the cache; likewise
	maxObject  int
	defaultTTL time.Duration
	maxTTL     time.Duration // cache.origin.ttl: the longest freshness given, 0 for no bound
	stale      time.Duration // cache.origin.stale_if_error
	revalidate time.Duration // cache.origin.stale_while_revalidate
	group      singleflight.Group
	hits       *metrics.Counter
	misses     *metrics.Counter
	coalesced  *metrics.Counter
	staleHits  *metrics.Counter
	updating   *metrics.Counter

	// purged holds when each purged URL (by urlKey) was purged, and
	// purgedAll when everything was: what was stored before then answers
	// no more, whatever its variant. A map, not a cache that may drop
	// entries; bounded by maxPurges.
	purgeMu   sync.RWMutex
	purged    map[uint64]time.Time
	purgedAll time.Time
	purges    atomic.Bool // any purge yet: lookups skip the lock until then
}

// maxPurges bounds the purged request targets remembered; past
// it, a purge empties the whole cache instead.
const maxPurges = 100_000

// NewOrigin builds the origin cache from cfg, or returns nil when no path
// is configured.
func NewOrigin(cfg config.OriginCache, set *metrics.Set) (*Origin, error) {
	if len(cfg.Paths) == 0 {
		return nil, nil
	}
	c, err := New[uint64, *Response]("origin", cfg.CacheSize, set)
	if err != nil {
		return nil, err
	}
	v, err := New[uint64, [][]byte]("origin_vary", config.CacheSize{MaxItems: cfg.MaxItems, MaxBytes: 1 << 20}, nil)
	if err != nil {
		return nil, err
	}
	if set == nil {
		set = metrics.NewSet()
	}
	return &Origin{c: c, varies: v, paths: cfg.Paths, ignore: cfg.IgnoreQuery, bypass: cfg.BypassCookies,
		maxObject: int(cfg.MaxObjectBytes), defaultTTL: cfg.DefaultTTL, maxTTL: cfg.TTL, stale: cfg.StaleIfError, revalidate: cfg.StaleWhileRevalidate,
		hits:      set.GetOrCreateCounter(`edgeseg_origin_cache_requests_total{result="hit"}`),
		misses:    set.GetOrCreateCounter(`edgeseg_origin_cache_requests_total{result="miss"}`),
		coalesced: set.GetOrCreateCounter(`edgeseg_origin_cache_requests_total{result="coalesced"}`),
		staleHits: set.GetOrCreateCounter(`edgeseg_origin_cache_requests_total{result="stale"}`),
		updating:  set.GetOrCreateCounter(`edgeseg_origin_cache_requests_total{result="updating"}`)}, nil
}

// MaxObject is the largest body stored.
func (o *Origin) MaxObject() int { return o.maxObject }

// Cacheable reports whether req may be answered from the cache: a GET for a
// configured path, without a body, credentials, a range, a bypass cookie
// or a client asking caches not to store, nor a fragment's request.
func (o *Origin) Cacheable(req *fasthttp.Request) bool {
	if o == nil || !req.Header.IsGet() || len(req.Header.Peek("Authorization")) > 0 || len(req.Header.Peek("Range")) > 0 {
		return false
	}
	if swapRequest(&req.Header) {
		return false
	}
	if n := req.Header.ContentLength(); n > 0 || n == -1 {
		return false // a GET with a body (-1: chunked): odd, and its answer not keyed by it
	}
	if cc := req.Header.Peek("Cache-Control"); bytes.Contains(cc, []byte("no-store")) {
		return false
	}
	if len(o.bypass) > 0 && o.hasBypassCookie(req.Header.Peek("Cookie")) {
		return false
	}
	path := string(req.URI().Path())
	for _, p := range o.paths {
		if p == path || strings.HasSuffix(p, "*") && strings.HasPrefix(path, p[:len(p)-1]) {
			return true
		}
	}
	return false
}

// swapRequest reports a request from a library that swaps HTML into a
// page (a Turbo frame, htmx, pjax, Unpoly, Livewire's wire:navigate),
// which sites answer with the part asked for, or without the page's
// layout, at the page's own URL and often without a Vary naming the
// header: kept, that answer would be served as the page to the next
// visitor who navigates to it.
func swapRequest(h *fasthttp.RequestHeader) bool {
	for k := range h.All() { // by name: Livewire sends its header empty
		for _, name := range [...]string{"Turbo-Frame", "HX-Request", "X-PJAX", "X-Up-Version", "X-Up-Target", "X-Livewire-Navigate"} {
			if bytes.EqualFold(k, []byte(name)) {
				return true
			}
		}
	}
	return false
}

// urlKey hashes host and request target.
func (o *Origin) urlKey(req *fasthttp.Request) uint64 {
	h := xxhash.New()
	o.writeURL(h, req)
	return h.Sum64()
}

// key hashes the URL and the values of the request headers the response
// varies on.
func (o *Origin) key(req *fasthttp.Request, vary [][]byte) uint64 {
	h := xxhash.New()
	o.writeURL(h, req)
	for _, name := range vary {
		_, _ = h.Write([]byte{0})
		_, _ = h.Write(name)
		_, _ = h.Write([]byte{'='})
		_, _ = h.Write(req.Header.PeekBytes(name))
	}
	return h.Sum64()
}

// writeURL writes to h what the origin builds a page's own URLs from:
// the scheme and host edgeseg tells it (X-Forwarded-Proto, Host and
// X-Forwarded-Host, the last one passed on from a trusted load balancer),
// and the request target. A page asked for over http may link to http://
// pages, and one built for another forwarded host to that host's: neither
// may answer a visitor it was not made for (web cache poisoning through
// an unkeyed header).
func (o *Origin) writeURL(h *xxhash.Digest, req *fasthttp.Request) {
	_, _ = h.Write(req.Header.Peek("X-Forwarded-Proto"))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write(req.Header.Host())
	_, _ = h.Write([]byte{0})
	_, _ = h.Write(req.Header.Peek("X-Forwarded-Host"))
	_, _ = h.Write([]byte{0})
	o.writeTarget(h, req)
}

// writeTarget writes the request target to h, without the query
// parameters cache.origin.ignore_query names.
func (o *Origin) writeTarget(h *xxhash.Digest, req *fasthttp.Request) {
	uri := req.Header.RequestURI()
	path, query, ok := bytes.Cut(uri, []byte{'?'})
	if !ok || len(o.ignore) == 0 {
		_, _ = h.Write(uri)
		return
	}
	_, _ = h.Write(path)
	_, _ = h.Write([]byte{'?'})
	for len(query) > 0 {
		var pair []byte
		pair, query, _ = bytes.Cut(query, []byte{'&'})
		if name, _, _ := bytes.Cut(pair, []byte{'='}); !matchName(o.ignore, name) {
			_, _ = h.Write(pair)
			_, _ = h.Write([]byte{'&'})
		}
	}
}

// hasBypassCookie reports whether a Cookie header names a cookie of
// bypass_cookies.
func (o *Origin) hasBypassCookie(cookies []byte) bool {
	for len(cookies) > 0 {
		var pair []byte
		pair, cookies, _ = bytes.Cut(cookies, []byte{';'})
		if name, _, _ := bytes.Cut(bytes.TrimSpace(pair), []byte{'='}); matchName(o.bypass, name) {
			return true
		}
	}
	return false
}

// matchName reports whether name is one of patterns, where a trailing *
// matches any name it prefixes.
func matchName(patterns []string, name []byte) bool {
	for _, p := range patterns {
		if prefix, ok := strings.CutSuffix(p, "*"); ok && bytes.HasPrefix(name, []byte(prefix)) || string(name) == p {
			return true
		}
	}
	return false
}

// lookup returns what is kept for req, fresh or not, unless it was purged.
func (o *Origin) lookup(req *fasthttp.Request) (*Response, bool) {
	vary, _ := o.varies.Get(o.urlKey(req))
	r, ok := o.c.Get(o.key(req, vary))
	if ok && o.purges.Load() {
		pk := o.targetKey(req)
		o.purgeMu.RLock()
		at, purged := o.purged[pk]
		all := o.purgedAll
		o.purgeMu.RUnlock()
		if purged && !r.Stored.After(at) || !r.Stored.After(all) {
			return nil, false
		}
	}
	return r, ok
}

// Purge makes every page kept for the request target of req (path and
// query, ignore_query applied), whatever its host, scheme or variant,
// answer no more: the next request for it goes to the origin. A page being
// fetched as it is purged is not kept either.
func (o *Origin) Purge(req *fasthttp.Request, now time.Time) {
	o.purgeMu.Lock()
	defer o.purgeMu.Unlock()
	o.purges.Store(true)
	if len(o.purged) >= maxPurges {
		o.purgedAll, o.purged = now, nil
		return
	}
	if o.purged == nil {
		o.purged = map[uint64]time.Time{}
	}
	o.purged[o.targetKey(req)] = now
}

// targetKey hashes req's request target alone, as purges name pages.
func (o *Origin) targetKey(req *fasthttp.Request) uint64 {
	h := xxhash.New()
	o.writeTarget(h, req)
	return h.Sum64()
}

// PurgeAll makes everything kept answer no more; it goes as it is
// replaced or evicted.
func (o *Origin) PurgeAll(now time.Time) {
	o.purgeMu.Lock()
	defer o.purgeMu.Unlock()
	o.purges.Store(true)
	o.purgedAll, o.purged = now, nil
}

// Get returns what may answer req at now: a fresh kept response, or one
// past its freshness but within stale-while-revalidate of it (the
// origin's, or cache.origin's), with revalidate set: answer with it, and
// fetch the page anew for those to come.
func (o *Origin) Get(req *fasthttp.Request, now time.Time) (r *Response, revalidate, ok bool) {
	r, ok = o.lookup(req)
	if ok && now.Before(r.Expires) {
		o.hits.Inc()
		return r, false, true
	}
	o.misses.Inc()
	if ok && r.staleOK && now.Before(r.Expires.Add(max(o.revalidate, r.staleRevalidating))) {
		o.updating.Inc()
		return r, true, true
	}
	return nil, false, false
}

// Stale returns a kept response for req that is past its freshness but
// within stale-if-error of it (the origin's, or cache.origin's), to answer
// in place of an origin that failed.
func (o *Origin) Stale(req *fasthttp.Request, now time.Time) (*Response, bool) {
	r, ok := o.lookup(req)
	if !ok || !r.staleOK || !now.Before(r.Expires.Add(max(o.stale, r.staleIfError))) {
		return nil, false
	}
	o.staleHits.Inc()
	return r, true
}

// Fetch coalesces concurrent misses for req's key: fetch runs once and its
// result (a Response to store, or nil when the answer could not be cached)
// is shared. shared reports that this caller waited for another's fetch.
// Before a URL's first answer names what it varies on, its misses wait on
// one fetch whatever their headers; a waiter the answer does not fit (the
// leader asked for gzip, this caller did not) gets nil, to ask itself.
func (o *Origin) Fetch(req *fasthttp.Request, fetch func() *Response) (r *Response, shared bool) {
	vary, _ := o.varies.Get(o.urlKey(req))
	k := strconv.FormatUint(o.key(req, vary), 16)
	v, _, sh := o.group.Do(k, func() (any, error) { return fetch(), nil })
	if sh {
		o.coalesced.Inc()
	}
	r, _ = v.(*Response)
	if sh && r != nil && len(r.vary) > 0 && o.key(req, r.vary) != r.key {
		return nil, sh
	}
	return r, sh
}

// Freshness says how long resp may be cached by a shared cache, at most
// cache.origin.ttl when set, or 0 when it must not be: no-store, private,
// no-cache, Set-Cookie, Vary: *, a status other than 200, or no freshness
// and no default TTL.
func (o *Origin) Freshness(resp *fasthttp.Response, now time.Time) time.Duration {
	d := o.freshness(resp, now)
	if o.maxTTL > 0 {
		d = min(d, o.maxTTL)
	}
	return d
}

// freshness is Freshness before cache.origin.ttl bounds it.
func (o *Origin) freshness(resp *fasthttp.Response, now time.Time) time.Duration {
	if resp.StatusCode() != fasthttp.StatusOK || hasSetCookie(&resp.Header) {
		return 0
	}
	if v := resp.Header.Peek("Vary"); bytes.Contains(v, []byte("*")) {
		return 0
	}
	cc := strings.ToLower(string(resp.Header.Peek("Cache-Control")))
	var maxAge, sMaxAge time.Duration = -1, -1
	for _, d := range strings.Split(cc, ",") {
		d = strings.TrimSpace(d)
		name, val, _ := strings.Cut(d, "=")
		switch name {
		case "no-store", "private", "no-cache":
			return 0
		case "max-age":
			maxAge = deltaSeconds(val, maxAge)
		case "s-maxage":
			sMaxAge = deltaSeconds(val, sMaxAge)
		}
	}
	// What a cache between edgeseg and the origin says of the response's
	// age is time already spent of a max-age (RFC 9111 §4.2.3); Expires is
	// a date, already measured against the clock.
	switch {
	case sMaxAge >= 0:
		return max(0, sMaxAge-age(&resp.Header))
	case maxAge >= 0:
		return max(0, maxAge-age(&resp.Header))
	}
	if exp := resp.Header.Peek("Expires"); len(exp) > 0 {
		t, err := fasthttp.ParseHTTPDate(exp)
		if err != nil {
			return 0 // an invalid Expires means already expired
		}
		if d := t.Sub(now); d > 0 {
			return min(d, maxFreshness)
		}
		return 0
	}
	return max(0, o.defaultTTL-age(&resp.Header))
}

// HasDirective reports whether a comma-separated header value (such as
// Cache-Control) has the directive name, with or without an argument. It
// runs on every personalized page (no-transform): it does not allocate.
func HasDirective(cc []byte, name string) bool {
	_, ok := directive(cc, name)
	return ok
}

// directiveSeconds is the delta-seconds argument of a Cache-Control
// directive (stale-if-error=60), or 0.
func directiveSeconds(cc []byte, name string) time.Duration {
	v, _ := directive(cc, name)
	return max(0, deltaSeconds(string(v), 0))
}

// directive finds the directive name in a comma-separated header value
// and returns its argument (empty when it has none).
func directive(cc []byte, name string) (arg []byte, ok bool) {
	for len(cc) > 0 {
		var d []byte
		d, cc = NextListItem(cc)
		k, v, _ := bytes.Cut(d, []byte{'='})
		if bytes.EqualFold(bytes.TrimSpace(k), []byte(name)) {
			return bytes.TrimSpace(v), true
		}
	}
	return nil, false
}

// NextListItem splits the first item, trimmed, off a comma-separated
// header value (Cache-Control, Vary).
func NextListItem(v []byte) (item, rest []byte) {
	if i := bytes.IndexByte(v, ','); i >= 0 {
		return bytes.TrimSpace(v[:i]), v[i+1:]
	}
	return bytes.TrimSpace(v), nil
}

// age is the response's Age header, or 0 without a valid one.
func age(h *fasthttp.ResponseHeader) time.Duration {
	return max(0, deltaSeconds(string(h.Peek("Age")), 0))
}

// maxFreshness is the largest lifetime a response is given: RFC 9111
// §1.2.2 caps delta-seconds at 2^31, and a time.Duration of seconds
// beyond it soon overflows.
const maxFreshness = (1 << 31) * time.Second

// deltaSeconds parses a max-age or s-maxage value (bare or quoted), or
// returns prev when it is not a number of seconds.
func deltaSeconds(val string, prev time.Duration) time.Duration {
	val = strings.Trim(val, `"`)
	if val == "" || strings.Trim(val, "0123456789") != "" {
		return prev
	}
	n, err := strconv.ParseUint(val, 10, 64)
	if err != nil || n > uint64(maxFreshness/time.Second) {
		return maxFreshness // a number too large to hold is "for ever"
	}
	return time.Duration(n) * time.Second
}

func hasSetCookie(h *fasthttp.ResponseHeader) bool {
	for range h.Cookies() {
		return true
	}
	return false
}

// Capture builds a Response from an origin response whose body is in
// body (already read), fresh for ttl. It copies everything it keeps.
func (o *Origin) Capture(req *fasthttp.Request, resp *fasthttp.Response, body []byte, ttl time.Duration, now time.Time) *Response {
	cc := resp.Header.Peek("Cache-Control")
	r := &Response{Status: resp.StatusCode(), Body: bytes.Clone(body), Expires: now.Add(ttl), Stored: now, age: age(&resp.Header),
		staleOK:           !HasDirective(cc, "must-revalidate") && !HasDirective(cc, "proxy-revalidate") && !HasDirective(cc, "s-maxage"),
		staleIfError:      directiveSeconds(cc, "stale-if-error"),
		staleRevalidating: directiveSeconds(cc, "stale-while-revalidate")}
	for k, v := range resp.Header.All() {
		if bytes.EqualFold(k, []byte("Content-Length")) || bytes.EqualFold(k, []byte("Transfer-Encoding")) || bytes.EqualFold(k, []byte("Age")) {
			continue // framing is the server's; Age is set on every hit
		}
		r.Headers = append(r.Headers, [2][]byte{bytes.Clone(k), bytes.Clone(v)})
	}
	varyAE := false
	for _, name := range bytes.Split(resp.Header.Peek("Vary"), []byte(",")) {
		if name = bytes.TrimSpace(name); len(name) > 0 {
			r.vary = append(r.vary, bytes.Clone(name))
			varyAE = varyAE || bytes.EqualFold(name, []byte("Accept-Encoding"))
		}
	}
	// A compressed answer is one of the page's codings whether or not the
	// origin says so (nginx's gzip_vary is off by default): kept for
	// whoever asks next, it would reach visitors who cannot decode it. So
	// is one asked for uncompressed (rewrite.ask_uncompressed), which
	// visitors who accept compression are better sent compressed.
	if !varyAE && (!identity(resp.Header.ContentEncoding()) || identity(req.Header.Peek("Accept-Encoding"))) {
		r.vary = append(r.vary, []byte("Accept-Encoding"))
	}
	r.key = o.key(req, r.vary)
	return r
}

// identity reports a Content-Encoding or Accept-Encoding of no coding:
// empty, or "identity".
func identity(v []byte) bool {
	v = bytes.TrimSpace(v)
	return len(v) == 0 || bytes.EqualFold(v, []byte("identity"))
}

// Store keeps r for req, by cost (body and headers), within max_bytes.
func (o *Origin) Store(req *fasthttp.Request, r *Response) {
	o.varies.Set(o.urlKey(req), r.vary, int64(16+len(r.vary)*16))
	cost := int64(len(r.Body) + 256)
	for _, kv := range r.Headers {
		cost += int64(len(kv[0]) + len(kv[1]))
	}
	ttl := time.Until(r.Expires)
	if r.staleOK {
		// kept to answer when the origin fails, or while it is asked anew
		ttl += max(o.stale, r.staleIfError, o.revalidate, r.staleRevalidating)
	}
	o.c.SetWithTTL(o.key(req, r.vary), r, cost, ttl)
}

// Wait blocks until pending stores are applied, the pages' and what they
// vary on. For tests.
func (o *Origin) Wait() {
	o.c.Wait()
	o.varies.Wait()
}

// Cache exposes the underlying cache (for tests and metrics).
func (o *Origin) Cache() *Cache[uint64, *Response] { return o.c }
