package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/edgeseg/edgeseg/cache"
	"github.com/edgeseg/edgeseg/config"
)

// ReservedPrefix is the path prefix edgeseg answers itself; nothing under it
// reaches the origin.
const ReservedPrefix = "/_edgeseg/"

// Options wire a Handler. Config and Origin are required.
type Options struct {
	Config *config.Config
	Origin *Origin
	// Log receives error lines, and access lines unless AccessLog is set.
	// If nil, nothing is logged.
	Log *zerolog.Logger
	// AccessLog, if set, receives the access lines (one per request).
	AccessLog *zerolog.Logger
	// Metrics receives the request path's metrics and is served at
	// /_edgeseg/metrics. If nil, a private set is used.
	Metrics *metrics.Set
	// Personalizer runs the personalization steps. If nil, edgeseg is a
	// plain reverse proxy.
	Personalizer *Personalizer
	// OriginCache keeps unpersonalized origin responses for configured
	// paths. If nil, every request goes to the origin.
	OriginCache *cache.Origin
}

// Handler is edgeseg's request path: fasthttp hands it every request, and it
// forwards each to the origin, personalizing page navigations on the way.
// It is safe for concurrent use.
type Handler struct {
	origin       *Origin
	log          zerolog.Logger
	access       zerolog.Logger // access lines
	metrics      *proxyMetrics
	trusted      netSet
	metricsAllow netSet
	adminOnly    bool        // server.admin_listen: metrics and purge are served there, not here
	requestIDs   *requestIDs // server.request_id_header; nil when off
	// warnedForwarder: the log has said a proxy not in trusted_proxies
	// sent X-Forwarded-For (warnUntrustedForwarder).
	warnedForwarder atomic.Bool
	via             bool
	name            string // server.name, for a Server header fasthttp does not add
	hostHeader      string
	originAt        [][]byte // with hostHeader: the origin's own URL prefixes, made relative in redirects
	rewriteLimit    int
	maxBody         int         // server.max_body_bytes
	writeBuffer     int         // server.write_buffer_bytes: what fasthttp holds before it sends
	bufferBytes     int         // origin.buffer_bytes: bodies up to this are read whole
	chunkData       int         // the most data a chunk to the visitor carries: maxChunk(writeBuffer)
	streamPages     bool        // rewrite.stream
	askIdentity     bool        // rewrite.ask_uncompressed
	buffered        *byteBudget // bytes rewrites in flight hold, at most rewrite.max_buffered_bytes
	codec           *codec
	upgradeIdle     time.Duration
	upgradeWait     time.Duration // origin.read_timeout: what the origin's answer to an upgrade may take
	originWrite     time.Duration // origin.write_timeout: what writing an upgrade's request may take
	own             []string      // ownCookieNames of the config, when not personalizing
	readTimeout     time.Duration // server.read_timeout: what each read of a request body may wait
	dialTimeout     time.Duration
	healthWindow    time.Duration
	accessLog       bool
	accessSample    uint64
	accessCount     atomic.Uint64
	sem             chan struct{}
	queueTimeout    time.Duration
	p               *Personalizer
	ocache          *cache.Origin
	refreshes       chan struct{} // kept pages being fetched anew in the background, at most maxRefreshes
	probing         atomic.Bool
	// testHookBeforeOrigin, when set by tests, runs just before the origin
	// request (to inject panics and delays).
	testHookBeforeOrigin func(*fasthttp.RequestCtx)
	testHookAfterRespond func(*fasthttp.RequestCtx)
	// bufs holds body buffers, scratch small buffers for header work: kept
	// apart, a header never takes a page-sized buffer nor a page a small
	// one it must grow.
	bufs    *freeList
	scratch *freeList
	peeks   *freeList // for restArrived
	splices sync.Pool // *pooledSplice
	streams sync.Pool // *rewriteStream
}

// New builds a Handler from opts.
func New(opts Options) (*Handler, error) {
	cfg := opts.Config
	if cfg == nil || opts.Origin == nil {
		return nil, errors.New("proxy: Config and Origin are required")
	}
	h := &Handler{
		origin:       opts.Origin,
		log:          zerolog.Nop(),
		metrics:      newProxyMetrics(opts.Metrics),
		via:          cfg.Server.Via,
		name:         cfg.Server.Name,
		hostHeader:   cfg.Origin.HostHeader,
		rewriteLimit: int(cfg.Rewrite.MaxBodyBytes),
		maxBody:      int(cfg.Server.MaxBodyBytes),
		writeBuffer:  max(int(cfg.Server.WriteBufferBytes), 4096),
		bufferBytes:  int(cfg.Origin.BufferBytes),
		chunkData:    maxChunk(max(int(cfg.Server.WriteBufferBytes), 4096)),
		streamPages:  cfg.Rewrite.Stream,
		askIdentity:  cfg.Rewrite.AskUncompressed,
		buffered:     &byteBudget{max: int64(cfg.Rewrite.MaxBufferedBytes)},
		codec:        newCodec(cfg.Rewrite.GzipLevel, cfg.Rewrite.BrotliLevel, cfg.Rewrite.QuickLevel),
		upgradeIdle:  cfg.Server.UpgradeIdleTimeout,
		upgradeWait:  cfg.Origin.ReadTimeout,
		originWrite:  cfg.Origin.WriteTimeout,
		readTimeout:  cfg.Server.ReadTimeout,
		dialTimeout:  cfg.Origin.DialTimeout,
		healthWindow: cfg.Origin.HealthWindow,
		accessLog:    cfg.Log.Access,
		accessSample: uint64(max(cfg.Log.AccessSample, 1)),
		sem:          make(chan struct{}, cfg.Server.MaxConcurrency),
		queueTimeout: cfg.Server.QueueTimeout,
		p:            opts.Personalizer,
		own:          ownCookieNames(cfg),
		ocache:       opts.OriginCache,
		refreshes:    make(chan struct{}, maxRefreshes),
		bufs:         newBodyBuffers(),
		scratch:      newScratchBuffers(),
		peeks:        newPeekBuffers(),
	}
	if h.hostHeader == "origin" {
		h.hostHeader = opts.Origin.host
	}
	if h.hostHeader != "" {
		h.originAt = originPrefixes(h.hostHeader, opts.Origin.host)
	}
	if opts.Log != nil {
		h.log = *opts.Log
	}
	h.access = h.log
	if opts.AccessLog != nil {
		h.access = *opts.AccessLog
	}
	memo, err := cache.NewChecked[[]byte]("codings", cfg.Cache.Codings, h.metrics.set)
	if err != nil {
		return nil, fmt.Errorf("proxy: cache.codings: %w", err)
	}
	if err := h.codec.remember(memo, cfg.Cache.Codings.MaxItems); err != nil {
		return nil, fmt.Errorf("proxy: cache.codings: %w", err)
	}
	for _, s := range cfg.Server.TrustedProxies {
		n, err := config.ParseCIDR(s)
		if err != nil {
			return nil, fmt.Errorf("proxy: server.trusted_proxies: %w", err)
		}
		h.trusted = append(h.trusted, n)
	}
	buffered := h.buffered
	h.metrics.set.GetOrCreateGauge("edgeseg_rewrite_buffered_bytes", func() float64 { return float64(buffered.used.Load()) })
	// An origin that sends past its answers' ends does so on every such
	// answer: counted each time, said at most once a minute.
	var strayWarned atomic.Int64
	opts.Origin.OnStrayBytes(func() {
		h.metrics.originError("stray bytes")
		if now := time.Now().UnixNano(); now-strayWarned.Load() >= int64(time.Minute) {
			strayWarned.Store(now)
			h.log.Warn().Str("origin", opts.Origin.Addr()).Msg("the origin sent bytes past the end of an answer (a Content-Length counted in characters, a body after a HEAD, 204 or 304 answer): the next request on that connection went out again on another if it could, else got 502; see edgeseg_origin_errors_total{cause=\"stray bytes\"}")
		}
	})
	h.adminOnly = cfg.Server.AdminListen != ""
	if cfg.Server.RequestIDHeader != "" {
		h.requestIDs = newRequestIDs(cfg.Server.RequestIDHeader)
	}
	for _, s := range cfg.Server.MetricsAllow {
		n, err := config.ParseCIDR(s)
		if err != nil {
			return nil, fmt.Errorf("proxy: server.metrics_allow: %w", err)
		}
		h.metricsAllow = append(h.metricsAllow, n)
	}
	return h, nil
}

// exchange is what one request carries through the path: timings and
// what the access log reports. It lives on the stack of ServeHTTP.
type exchange struct {
	start        time.Time
	originTime   time.Duration
	personalized bool
	cause        string
	visit        *Visit
	cache        string // origin cache: hit, miss, coalesced, or ""
	responded    bool   // the origin's answer is in ctx.Response
	streamed     bool   // a streamed page personalized as it is sent: it owns the visit
	// prefix is what the origin cache read of a body it could not keep (a
	// streamed page past cache.origin.max_object_bytes): the body starts
	// with it, then goes on in the origin's stream.
	prefix []byte
	// proxyHeaders: the visitor's request carries headers only a proxy
	// may send (proxyOnlyHeaders), dropped unless the peer is trusted.
	proxyHeaders bool
	hops         int // edgeseg proxies the request has passed (CDN-Loop)
	// compress is the coding a page asked of the origin uncompressed
	// (rewrite.ask_uncompressed) goes to the visitor in; asked says the
	// origin was asked so.
	compress coding
	asked    bool
	// requestID names the request to the origin and in the access line
	// (server.request_id_header).
	requestID string
	// peerTrusted: the peer is in server.trusted_proxies, its
	// X-Forwarded-* believed.
	peerTrusted bool
}

// ServeHTTP is the request path, top to bottom (see ../shared/DESIGN.md):
// reserved paths, request checks, admission, the personalization steps
// before the origin (consent, profile, signals, behavior, segments), the
// origin, then the response: streamed through untouched, or — for a page
// navigation answered with 200 HTML that has slots to fill — buffered,
// decoded, personalized and re-encoded.
func (h *Handler) ServeHTTP(ctx *fasthttp.RequestCtx) {
	x := exchange{start: time.Now()}
	defer h.finish(ctx, &x)
	defer h.recoverPanic(ctx, &x)

	x.peerTrusted = len(h.trusted) > 0 && h.trusted.contains(ctx.RemoteIP())
	if h.requestIDs != nil {
		x.requestID = h.requestIDs.id(&ctx.Request.Header, x.peerTrusted)
	}
	if !supportedVersion(&ctx.Request.Header) {
		h.refuse(ctx, &x, fasthttp.StatusHTTPVersionNotSupported, "unsupported HTTP version", "505 HTTP Version Not Supported: edgeseg speaks HTTP/1.0 and HTTP/1.1")
		return
	}
	// 1. edgeseg's own endpoints.
	if bytes.HasPrefix(ctx.Path(), []byte(ReservedPrefix)) {
		h.serveReserved(ctx)
		return
	}
	if msg := h.checkRequest(ctx, &x); msg != "" {
		h.refuse(ctx, &x, fasthttp.StatusBadRequest, msg, msg)
		return
	}
	if n := ctx.Request.Header.ContentLength(); n > h.maxBody {
		// Refused before the origin hears of it, as nginx's
		// client_max_body_size refuses: otherwise the origin would get
		// the head and the body's start before the upload broke off.
		h.refuse(ctx, &x, fasthttp.StatusRequestEntityTooLarge, "request body too large", "413 Request Entity Too Large")
		return
	}
	if x.hops >= maxHops {
		// The origin sent edgeseg's request back to it (or through
		// another replica): answering ends the loop at once.
		x.cause = "request loop"
		h.metrics.originError("loop")
		h.log.Error().Str("origin", h.origin.Addr()).Bytes("path", ctx.Path()).
			Msg("request loop: this request has passed through edgeseg before; origin.url must lead to the site's own server, not to edgeseg")
		h.plainError(ctx, fasthttp.StatusLoopDetected, "508 Loop Detected: the origin leads back to edgeseg")
		return
	}
	if !h.admit(ctx) {
		h.metrics.shed.Inc()
		x.cause = "overloaded"
		h.plainError(ctx, fasthttp.StatusServiceUnavailable, "edgeseg is overloaded; retry shortly")
		ctx.Response.Header.Set("Retry-After", "1")
		return
	}
	defer h.release()

	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	var body bodyReader
	upgrade := isUpgrade(&ctx.Request.Header)
	h.prepareRequest(ctx, req, &body, x.peerTrusted, x.proxyHeaders, upgrade)
	if x.requestID != "" {
		req.Header.Set(h.requestIDs.header, x.requestID)
	}

	if upgrade {
		h.serveUpgrade(ctx, req, &x)
		return
	}

	// 2–6. consent, profile, signals, behavior, segments.
	// The visit is released by finish, after the access log has read it.
	x.visit = h.p.begin(ctx, x.start)
	h.p.adjustRequest(x.visit, req)
	if h.askIdentity && ctx.IsGet() && x.visit.mayFill() {
		x.compress, x.asked = preferredCoding(req.Header.Peek("Accept-Encoding")), true
		req.Header.Set("Accept-Encoding", "identity")
	}

	// 7. the origin.
	if h.testHookBeforeOrigin != nil {
		h.testHookBeforeOrigin(ctx)
	}
	resp := fasthttp.AcquireResponse()
	body.resp = resp
	t0 := time.Now()
	err := h.fetch(req, resp, &x)
	x.originTime = time.Since(t0)
	h.metrics.originLatency.Update(x.originTime.Seconds())
	if err != nil {
		fasthttp.ReleaseResponse(resp)
		if body.err != nil {
			// The visitor's body broke (bad chunking, too large), not the origin.
			status, cause := requestBodyFailure(body.err)
			h.refuse(ctx, &x, status, cause, fmt.Sprintf("%d %s", status, fasthttp.StatusMessage(status)))
			return
		}
		status, cause := h.origin.failure(err)
		x.cause = cause
		h.metrics.originError(cause)
		ev := h.log.Warn().Err(err).Str("cause", cause).Bytes("path", ctx.Path())
		if fix := originFailureFix(cause); fix != "" {
			ev = ev.Str("fix", fix)
		}
		ev.Msg("origin request failed")
		h.plainError(ctx, status, originErrorText(status))
		return
	}

	// 8. the response: personalized or passed through.
	h.respond(ctx, resp, &x)
	x.responded = true
	if h.testHookAfterRespond != nil {
		h.testHookAfterRespond(ctx)
	}

	// 9. profile cookie, caching headers, exposure events.
	if x.visit != nil {
		h.p.commit(ctx, x.visit, x.personalized)
	}
}

// fetch is step 7: the origin, or for configured paths the origin cache.
// A fresh kept page answers at once; one past its freshness, within
// stale-while-revalidate, too, while it is fetched anew in the background.
// A cacheable miss is fetched once however many visitors ask at once; the
// leader buffers a cacheable body (within cache.origin.max_object_bytes)
// and stores it, and everyone is answered from memory; an origin that
// fails may be answered for with a page within stale-if-error. Otherwise
// resp's body is the origin's stream.
func (h *Handler) fetch(req *fasthttp.Request, resp *fasthttp.Response, x *exchange) error {
	oc := h.ocache
	if !oc.Cacheable(req) {
		return h.origin.Do(req, resp)
	}
	now := time.Now()
	if r, revalidate, ok := oc.Get(req, now); ok {
		x.cache = "hit"
		fromCache(r, req, resp, now)
		if revalidate {
			x.cache = "updating"
			h.refresh(req)
		}
		return nil
	}
	var doErr error
	leader := false
	r, _ := oc.Fetch(req, func() *cache.Response {
		leader = true
		doErr = h.origin.Do(req, resp)
		if st := h.stale(req, resp, doErr, x, now); st != nil {
			doErr = nil
			return st // for those waiting too
		}
		if doErr != nil {
			return nil
		}
		var cr *cache.Response
		cr, x.prefix, doErr = h.keep(req, resp, now)
		return cr
	})
	switch {
	case leader:
		if x.cache == "" {
			x.cache = "miss"
		}
		return doErr
	case r != nil:
		x.cache = "coalesced"
		r.CopyTo(resp, time.Now())
		return nil
	}
	// The request we waited for could not be cached: ask ourselves.
	x.cache = "miss"
	err := h.origin.Do(req, resp)
	if h.stale(req, resp, err, x, time.Now()) != nil {
		return nil
	}
	return err
}

// fromCache puts r in resp, or a 304 when req's conditional headers match
// it: requests that keep them (not navigations that may be personalized,
// which lose them) are answered as the origin would.
func fromCache(r *cache.Response, req *fasthttp.Request, resp *fasthttp.Response, now time.Time) {
	r.CopyTo(resp, now)
	if r.NotModified(req) {
		resp.SetStatusCode(fasthttp.StatusNotModified)
	}
}

// keep stores resp, the origin's answer to req, in the origin cache when
// it may be kept, reading its body (within cache.origin.max_object_bytes
// and the rewrite budget) and setting it back in resp from memory. When
// the body ran past either, prefix is what was read of it, and resp's
// stream goes on from there; when it may not be kept, resp is untouched.
func (h *Handler) keep(req *fasthttp.Request, resp *fasthttp.Response, now time.Time) (r *cache.Response, prefix []byte, err error) {
	oc := h.ocache
	ttl := oc.Freshness(resp, now)
	n := resp.Header.ContentLength()
	if ttl <= 0 || n > oc.MaxObject() {
		return nil, nil, nil
	}
	// Pages being read to be kept count against the rewrite budget, so
	// many misses at once (a flood of distinct URLs) cannot hold
	// max_concurrency × max_object_bytes; once read, the cache's own bound
	// takes over.
	hold := h.buffered.hold()
	defer hold.release()
	limit, grow := n, hold.take
	if n >= 0 {
		if !hold.take(n) {
			h.metrics.cacheNoBudget.Inc()
			return nil, nil, nil
		}
		grow = nil
	} else {
		// Sent without a length (chunked, or until the origin closes): kept
		// if it ends within the bound, else sent on from where reading
		// stopped.
		limit = oc.MaxObject()
	}
	body, err := readLimited(nil, resp.BodyStream(), limit, grow)
	if errors.Is(err, errTooLarge) || errors.Is(err, errNoBudget) {
		if errors.Is(err, errNoBudget) {
			h.metrics.cacheNoBudget.Inc()
		}
		return nil, body, nil
	}
	_ = resp.CloseBodyStream()
	if n < 0 {
		n = len(body)
	}
	if err != nil || len(body) != n {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return nil, nil, err
	}
	resp.SetBodyStream(cache.NewMemoryBody(body), n)
	r = oc.Capture(req, resp, body, ttl, now)
	oc.Store(req, r)
	return r, nil, nil
}

// maxRefreshes bounds the kept pages fetched anew in the background at once.
const maxRefreshes = 64

// refresh fetches req's page anew for the origin cache, in the background,
// once however many ask at once (with a miss in the foreground too), and
// at most maxRefreshes pages at a time: past that, a later request for the
// page will ask again.
func (h *Handler) refresh(req *fasthttp.Request) {
	select {
	case h.refreshes <- struct{}{}:
	default:
		return
	}
	r := fasthttp.AcquireRequest()
	req.CopyTo(r)
	// The page itself is wanted, not whether one visitor's copy is current:
	// a 304 would leave the stale page in place and be asked for again.
	r.Header.Del("If-None-Match")
	r.Header.Del("If-Modified-Since")
	go func() {
		defer func() { <-h.refreshes }()
		defer fasthttp.ReleaseRequest(r)
		defer func() {
			if p := recover(); p != nil {
				h.metrics.panics.Inc()
				h.log.Error().Interface("panic", p).Bytes("stack", debug.Stack()).Msg("panic refreshing a kept page")
			}
		}()
		h.ocache.Fetch(r, func() *cache.Response {
			resp := fasthttp.AcquireResponse()
			defer fasthttp.ReleaseResponse(resp) // closes a body not kept
			if err := h.origin.Do(r, resp); err != nil {
				_, cause := originFailure(err)
				h.metrics.originError(cause)
				h.log.Warn().Err(err).Str("cause", cause).Bytes("path", r.URI().Path()).Msg("refreshing a kept page failed; it is served until its stale-while-revalidate ends")
				return nil
			}
			kept, _, _ := h.keep(r, resp, time.Now())
			return kept
		})
	}()
}

// stale puts in resp, in place of what the origin answered, a kept copy
// past its freshness, when the origin failed (err, or a 500, 502, 503 or
// 504) and cache.origin.stale_if_error allows it; it returns the copy, or
// nil when the origin's answer stands.
func (h *Handler) stale(req *fasthttp.Request, resp *fasthttp.Response, err error, x *exchange, now time.Time) *cache.Response {
	switch {
	case err != nil:
	case resp.StatusCode() == fasthttp.StatusInternalServerError, resp.StatusCode() == fasthttp.StatusBadGateway,
		resp.StatusCode() == fasthttp.StatusServiceUnavailable, resp.StatusCode() == fasthttp.StatusGatewayTimeout:
	default:
		return nil
	}
	st, ok := h.ocache.Stale(req, now)
	if !ok {
		return nil
	}
	if err != nil {
		_, cause := originFailure(err)
		h.metrics.originError(cause) // masked for the visitor, not for ops
		h.log.Warn().Err(err).Str("cause", cause).Bytes("path", req.URI().Path()).Msg("origin request failed; answering with the page kept past its freshness")
	} else {
		h.log.Warn().Int("status", resp.StatusCode()).Bytes("path", req.URI().Path()).Msg("origin answered with an error; answering with the page kept past its freshness")
	}
	resp.Reset() // the failed answer, its body stream closed
	st.CopyTo(resp, now)
	x.cache = "stale"
	return st
}

// checkRequest returns why a request must be refused, or "", and notes in
// x whether it carries headers only a proxy may send.
func (h *Handler) checkRequest(ctx *fasthttp.RequestCtx, x *exchange) string {
	if ctx.IsConnect() {
		return "CONNECT is not supported: edgeseg is a reverse proxy"
	}
	// Absolute-form request targets may only name the host being asked for:
	// edgeseg must never be usable as an open forward proxy.
	uri := ctx.Request.Header.RequestURI()
	if len(uri) > 0 && uri[0] != '/' && uri[0] != '*' {
		host, ok := absoluteHost(uri)
		if !ok || !bytes.EqualFold(host, ctx.Request.Header.Host()) {
			return "absolute request URI names another host"
		}
	}
	// "*" is a target for OPTIONS only (RFC 9112 §3.2.4), and only alone.
	if len(uri) > 0 && uri[0] == '*' && (len(uri) != 1 || !ctx.IsOptions()) {
		return "request target * is for OPTIONS only"
	}
	// A Host is a name and a port (RFC 9110 §7.2). One with userinfo,
	// "user:pass@shop.example", fasthttp would turn into an Authorization
	// header of its own on the request to the origin.
	if bytes.IndexByte(ctx.Request.Header.Host(), '@') >= 0 {
		return "Host names userinfo"
	}
	head := scanRequestHead(ctx.Request.Header.RawHeaders())
	x.proxyHeaders = head.proxyOnly
	x.hops = head.hops
	// A request with both Content-Length and Transfer-Encoding is a
	// smuggling attempt or a broken client: refuse it rather than pick one
	// (RFC 9112 §6.3). fasthttp keeps the chunked framing and records the
	// raw headers, so look for the other.
	if ctx.Request.Header.ContentLength() == -1 && head.contentLength {
		return "both Content-Length and Transfer-Encoding"
	}
	if head.badName {
		return "invalid header name"
	}
	if head.connNames > maxConnectionNames {
		return "Connection lists too many header names"
	}
	return ""
}

// supportedVersion reports whether the request line's version is one
// edgeseg serves. fasthttp reads any "HTTP/d.d"; a later HTTP/1 minor
// version is taken as HTTP/1.1 (RFC 9112 §2.3), another major version
// refused: HTTP/2 and HTTP/3 do not arrive as text request lines.
func supportedVersion(h *fasthttp.RequestHeader) bool {
	v := h.Protocol()
	if h.IsHTTP11() || bytes.Equal(v, []byte("HTTP/1.0")) {
		return true
	}
	if len(v) == len("HTTP/1.x") && bytes.HasPrefix(v, []byte("HTTP/1.")) && v[7] >= '2' && v[7] <= '9' {
		h.SetProtocol("HTTP/1.1")
		return true
	}
	return false
}

// absoluteHost returns the authority of an absolute-form URI.
func absoluteHost(uri []byte) ([]byte, bool) {
	i := bytes.Index(uri, []byte("://"))
	if i <= 0 {
		return nil, false
	}
	rest := uri[i+3:]
	if j := bytes.IndexAny(rest, "/?#"); j >= 0 {
		rest = rest[:j]
	}
	if bytes.IndexByte(rest, '@') >= 0 || len(rest) == 0 {
		return nil, false
	}
	return rest, true
}

// admit takes a concurrency slot, waiting up to the queue timeout.
func (h *Handler) admit(ctx *fasthttp.RequestCtx) bool {
	select {
	case h.sem <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(h.queueTimeout)
	defer t.Stop()
	select {
	case h.sem <- struct{}{}:
		return true
	case <-t.C:
		return false
	}
}

func (h *Handler) release() { <-h.sem }

// prepareRequest copies the visitor's request into req as the origin should
// see it: origin-form target, body streamed, hop-by-hop headers stripped,
// then Host, X-Forwarded-*, Via and a filtered Accept-Encoding set; for an
// upgrade to relay (isUpgrade), Connection and Upgrade set again.
func (h *Handler) prepareRequest(ctx *fasthttp.RequestCtx, req *fasthttp.Request, body *bodyReader, peerTrusted, proxyHeaders, upgrade bool) {
	ctx.Request.Header.CopyTo(&req.Header)
	// A proxy sends its own HTTP version (RFC 9110 §6.2): HTTP/1.1, so an
	// HTTP/1.0 visitor's request keeps the origin connection alive too.
	if !req.Header.IsHTTP11() {
		req.Header.SetProtocol("HTTP/1.1")
	}
	// A body sent without a Content-Type goes on without one; fasthttp
	// would add application/octet-stream.
	req.Header.SetNoDefaultContentType(true)
	uri := ctx.Request.Header.RequestURI()
	if len(uri) > 0 && uri[0] != '/' && uri[0] != '*' {
		// absolute-form, already checked against Host: send origin-form.
		if i := bytes.Index(uri, []byte("://")); i >= 0 {
			rest := uri[i+3:]
			if j := bytes.IndexAny(rest, "/?"); j >= 0 {
				if rest[j] == '?' {
					req.Header.SetRequestURIBytes(append([]byte{'/'}, rest[j:]...))
				} else {
					req.Header.SetRequestURIBytes(rest[j:])
				}
			} else {
				req.Header.SetRequestURI("/")
			}
		}
	}
	if s := ctx.RequestBodyStream(); s != nil {
		body.r, body.ctx, body.timeout = s, ctx, h.readTimeout
		req.SetBodyStream(body, ctx.Request.Header.ContentLength())
	} else if body := ctx.Request.Body(); len(body) > 0 {
		req.SetBodyRaw(body)
	}

	scratch := h.scratch.get()
	*scratch = stripHopHeaders(&req.Header, *scratch)
	if upgrade {
		req.Header.Set("Connection", "Upgrade")
		req.Header.SetBytesV("Upgrade", ctx.Request.Header.Peek("Upgrade"))
	}
	switch {
	case h.hostHeader != "":
		req.Header.SetHost(h.hostHeader)
	case len(req.Header.Host()) == 0:
		// HTTP/1.0 without a Host (load balancers' health checks send
		// such): the origin is asked under its own name, as nginx's
		// proxy_pass asks, rather than the request refused.
		req.Header.SetHost(h.origin.host)
	}
	h.setForwarded(ctx, req, peerTrusted, proxyHeaders)
	req.Header.Add(cdnLoop, loopPseudonym)
	if h.p != nil && mayBeRewritten(&ctx.Request.Header) {
		*scratch = filterAcceptEncoding(&req.Header, *scratch)
	}
	*scratch = dropCookies(&req.Header, h.ownCookies(), *scratch)
	h.scratch.put(scratch)
}

// ownCookies names the cookies requests to the origin go without: those of
// the current config when personalizing (it may have been reloaded), else
// those of the config edgeseg started with.
func (h *Handler) ownCookies() []string {
	if h.p != nil {
		return h.p.ownCookies()
	}
	return h.own
}

// bodyReader passes the visitor's streamed request body to the origin and
// remembers why it failed, so a broken upload is answered 400/413 rather
// than blamed on the origin. Each read may wait server.read_timeout for the
// visitor, as nginx's client_body_timeout allows, not the whole upload:
// fasthttp's deadline for the request, set before its head, would cut off
// a large upload over a slow link.
type bodyReader struct {
	r       io.Reader
	err     error
	ctx     *fasthttp.RequestCtx
	timeout time.Duration
	// resp is the origin's response to the request, which knows the
	// connection the request goes out on; looked is the connection
	// looked at before its first read (originConn.lookBeforeBody).
	resp   *fasthttp.Response
	looked *originConn
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if c := connOf(b.resp); c != b.looked && c != nil { // connOf(nil) is nil
		b.looked = c
		if err := c.lookBeforeBody(); err != nil {
			return 0, err // nothing read: the request goes out on another
		}
	}
	if b.timeout > 0 {
		_ = b.ctx.SetReadDeadline(time.Now().Add(b.timeout))
	}
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

func requestBodyFailure(err error) (int, string) {
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		return fasthttp.StatusRequestEntityTooLarge, "request body too large"
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return fasthttp.StatusRequestTimeout, "request body timeout"
	}
	return fasthttp.StatusBadRequest, "bad request body"
}

// isUpgrade reports a request to switch protocols (WebSocket and others).
func isUpgrade(h *fasthttp.RequestHeader) bool {
	// An Upgrade in HTTP/1.0 is ignored (RFC 9110 §7.8). One to h2c, HTTP/2
	// in the clear, is not relayed either: the tunnel would carry requests
	// edgeseg never sees to an origin that trusts edgeseg's X-Forwarded-*
	// headers, and RFC 9113 has withdrawn it. Such a request goes on as a
	// plain one, its Upgrade stripped with the other hop-by-hop headers.
	if !h.IsHTTP11() || !h.ConnectionUpgrade() {
		return false
	}
	up := h.Peek("Upgrade")
	if len(up) == 0 {
		return false
	}
	for rest := up; len(rest) > 0; {
		var item []byte
		item, rest = cache.NextListItem(rest)
		if proto, _, _ := bytes.Cut(item, []byte("/")); bytes.EqualFold(bytes.TrimSpace(proto), []byte("h2c")) {
			return false
		}
	}
	return true
}

// respond copies the origin's answer to the visitor. The body is streamed
// unless the page is one to personalize; the origin response is released
// here or, when streamed, by the stream's Close.
func (h *Handler) respond(ctx *fasthttp.RequestCtx, resp *fasthttp.Response, x *exchange) {
	resp.Header.CopyTo(&ctx.Response.Header)
	// A response the origin sent without a Content-Type goes on without
	// one (browsers sniff it); the copy above took the origin response's
	// setting, under which fasthttp would write text/plain.
	ctx.Response.Header.SetNoDefaultContentType(true)
	// The status line is edgeseg's: an HTTP/1.0 origin's version must not
	// reach a visitor who may be sent a chunked body.
	ctx.Response.Header.SetProtocol(nil)
	dropInvalidHeaderNames(&ctx.Response.Header)
	scratch := h.scratch.get()
	*scratch = stripHopHeaders(&ctx.Response.Header, *scratch)
	h.scratch.put(scratch)
	if h.via {
		addVia(&ctx.Response.Header)
	}
	if h.originAt != nil {
		// The origin was told another Host: what it says of itself is
		// turned towards the visitor's.
		h.relocate(&ctx.Response.Header, ctx.Request.Header.Host())
		hostOnlyCookies(&ctx.Response.Header, ctx.Request.Header.Host())
	}

	if ctx.IsHead() || !hasBody(resp.StatusCode()) {
		if ctx.IsHead() {
			if fill, _ := h.p.wouldFill(x.visit, resp); fill {
				// The head a GET of this page would get (RFC 9110 §9.3.2):
				// kept out of shared caches, varying by cookie; its length,
				// known only once the page is filled, left out.
				markPersonalized(&ctx.Response.Header)
				ctx.Response.Header.Del(fasthttp.HeaderContentLength)
			}
		}
		ctx.Response.SkipBody = true
		fasthttp.ReleaseResponse(resp) // closes the (empty) body stream
		return
	}

	if x.visit != nil && h.p.wantsBody(x.visit, ctx, resp) {
		h.rewrite(ctx, resp, x) // sets the body: personalized, untouched or streamed
		return
	}
	h.stream(ctx, resp, x.prefix, x)
}

// stream hands resp's body (after prefix, bytes already read from it) to the
// visitor as it arrives.
func (h *Handler) stream(ctx *fasthttp.RequestCtx, resp *fasthttp.Response, prefix []byte, x *exchange) {
	n := resp.Header.ContentLength()
	events := bytes.HasPrefix(resp.Header.ContentType(), []byte("text/event-stream"))
	var first *[]byte
	hold := budgetHold{b: h.buffered} // a body read whole: what it holds
	defer hold.release()
	_, inMemory := resp.BodyStream().(*cache.MemoryBody) // from the origin cache: cannot fail
	if n < 0 && !ctx.Request.Header.IsHTTP11() {
		// An HTTP/1.0 visitor cannot read chunked framing: a body of
		// unknown length is sent whole, with a length, or when too large
		// to hold (or an event stream) ended by closing the connection.
		if !events {
			if prefix = h.sendWhole(ctx, resp, prefix, x); prefix == nil {
				return
			}
		}
		h.sendUntilClose(ctx, resp, prefix)
		return
	}
	if len(prefix) == 0 && n != 0 && !events && !inMemory {
		// fasthttp sends nothing, head included, before the first chunk of
		// a body of unknown length, or before its write buffer is full (or
		// the body ends) for one with a length; if the body fails before
		// then, the visitor gets a closed connection and no answer at all.
		// So that much is read here first, where a failure (an app server
		// crashing after its headers, framing that does not parse) can
		// still be answered with a clean 502. An event stream's head goes
		// out at once, so it is not held for this; a body in memory is not
		// read twice. A body up to origin.buffer_bytes is read whole, so
		// that its origin connection is free before a slow visitor reads it.
		want := min(n, h.writeBuffer)
		if n > want && n <= h.bufferBytes {
			if hold.takeWithin(n, h.buffered.max/2) {
				want = n
			} else {
				h.metrics.unbuffered.Inc()
			}
		}
		var err error
		if first, err = h.firstBytes(resp, want); err != nil {
			fasthttp.ReleaseResponse(resp)
			h.originBrokeOff(ctx, x, err)
			return
		}
		prefix = *first
	}
	if n < 0 {
		n = -1 // chunked to the visitor, whatever framing the origin used
	}
	s := newOriginStream(resp, prefix, h.bufs, &h.log, ctx.Path())
	s.first = first
	if c := h.compressHere(ctx, resp, x); c != codingIdentity {
		whole := prefix
		if inMemory {
			whole = resp.BodyStream().(*cache.MemoryBody).Bytes()
		}
		if n < 0 || len(whole) != n {
			whole = nil
		}
		if h.sendCompressed(ctx, s, c, whole) {
			return
		}
	}
	if first != nil && n >= 0 && len(prefix) == n && atEnd(resp) {
		// The whole body is in memory: its origin connection goes back
		// to the pool now, not once the visitor has read it.
		s.first, s.prefix = nil, nil
		_ = s.Close()
		h.sendBuf(ctx, first, hold.handOver())
		return
	}
	if events {
		ctx.Response.ImmediateHeaderFlush = true
	}
	if n < 0 && !events {
		// An event stream is left to fasthttp's 4 KB reads: its messages
		// are small, and it may stay open for hours, holding its buffer.
		s.client = clientOf(ctx)
		ctx.Response.SetBodyStream(chunkedOrigin{s, h.chunkData}, -1)
		return
	}
	ctx.Response.SetBodyStream(s, n)
}

// atEnd reports whether resp's body has been read to its end, so that
// closing it gives its connection back to the pool: fasthttp keeps a
// connection only when its body stream has said io.EOF, which a reader
// that took exactly the Content-Length's bytes has not yet been told.
func atEnd(resp *fasthttp.Response) bool {
	r := resp.BodyStream()
	if r == nil {
		return true
	}
	n, err := r.Read(nil)
	return n == 0 && errors.Is(err, io.EOF)
}

// sendUntilClose sends an HTTP/1.0 visitor resp's body (after prefix) as
// HTTP/1.0 frames a body of unknown length: without one, ended by closing
// the connection. fasthttp sends such a body chunked, which that visitor
// would take for part of it, so the connection is taken over once the
// handler returns, as an upgrade's is, and the head written then, with
// what the rest of the request path adds to it (the profile cookie); the
// access log counts the head only.
func (h *Handler) sendUntilClose(ctx *fasthttp.RequestCtx, resp *fasthttp.Response, prefix []byte) {
	s := newOriginStream(resp, prefix, h.bufs, &h.log, ctx.Path())
	hdr := &ctx.Response.Header
	hdr.Del(fasthttp.HeaderTransferEncoding)
	hdr.SetContentLength(-2) // no length; Connection: close
	if len(hdr.Server()) == 0 && h.name != "" {
		hdr.SetServer(h.name)
	}
	log := h.log
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) {
		defer s.Close()
		_, err := c.Write(hdr.Header())
		if err == nil {
			_, err = io.Copy(c, s)
		}
		if err != nil {
			log.Debug().Err(err).Msg("HTTP/1.0 body ended early")
		}
	})
}

// firstBytes reads the first bytes of resp's body into a buffer from
// h.bufs: want of them (fewer at the end of the body), or when want is
// negative whatever the first read gives, up to a write buffer's worth at
// least: a page the origin has sent whole by then goes out in one piece.
func (h *Handler) firstBytes(resp *fasthttp.Response, want int) (*[]byte, error) {
	bp := h.bufs.get()
	b := (*bp)[:0]
	if want < 0 {
		b = slices.Grow(b, h.writeBuffer)
	} else {
		b = slices.Grow(b, want) // one allocation, not a doubling's copies
	}
	r := resp.BodyStream() // nil for a body set whole: nothing to read ahead
	// A reader may return nothing and no error; not for ever.
	end := cap(b) // a read of unknown want ends the loop once it gives bytes
	if want >= 0 {
		end = want
	}
	for empty := 0; r != nil && empty < 100; {
		n, err := r.Read(b[len(b):end])
		b = b[:len(b)+n]
		if errors.Is(err, io.EOF) || err == nil && (want < 0 && n > 0 || len(b) == want) {
			break
		}
		if err != nil {
			*bp = b
			h.bufs.put(bp)
			return nil, err
		}
		if n == 0 {
			empty++
		}
	}
	*bp = b
	return bp, nil
}

// originBrokeOff answers a visitor whose origin failed after its head but
// before anything was sent on: a clean 502 (or 504), not a truncated page.
func (h *Handler) originBrokeOff(ctx *fasthttp.RequestCtx, x *exchange, err error) {
	status, cause := originFailure(err)
	if status == fasthttp.StatusRequestEntityTooLarge {
		status = fasthttp.StatusBadGateway
	}
	x.cause = cause
	h.metrics.originError(cause)
	h.log.Warn().Err(err).Str("cause", cause).Bytes("path", ctx.Path()).Msg("origin failed before anything was sent on")
	h.plainError(ctx, status, originErrorText(status))
}

// sendWhole reads a body of unknown length whole for an HTTP/1.0 client,
// which cannot read chunked framing (the only one fasthttp has for such
// bodies), and answers with its length. A body past
// rewrite.max_body_bytes or rewrite.max_buffered_bytes cannot be: what was
// read is returned, to go out first, and the rest is streamed. nil means
// answered: with the body, or with a 502 when the origin broke off, as
// nothing was sent yet.
func (h *Handler) sendWhole(ctx *fasthttp.RequestCtx, resp *fasthttp.Response, prefix []byte, x *exchange) []byte {
	limit := h.rewriteLimit - len(prefix) // a prefix was read within the limit already
	hold := h.buffered.hold()
	bp := h.bufs.get()
	if limit < 0 || !hold.take(cap(*bp)) {
		h.bufs.put(bp)
		return append([]byte{}, prefix...)
	}
	body, err := readLimited(append((*bp)[:0], prefix...), resp.BodyStream(), limit, hold.take)
	*bp = body
	if errors.Is(err, errTooLarge) || errors.Is(err, errNoBudget) {
		rest := append([]byte{}, body...)
		h.bufs.put(bp)
		hold.release()
		return rest
	}
	_ = resp.CloseBodyStream()
	fasthttp.ReleaseResponse(resp)
	if err != nil {
		h.bufs.put(bp)
		hold.release()
		h.originBrokeOff(ctx, x, err)
		return nil
	}
	h.sendBuf(ctx, bp, hold.handOver())
	return nil
}

// hasBody reports whether a response with status may carry a body.
func hasBody(status int) bool {
	return status >= 200 && status != fasthttp.StatusNoContent && status != fasthttp.StatusNotModified
}

// plainError answers with a short text page edgeseg wrote itself.
// refuse answers a request edgeseg will not serve, for cause (the access
// log's), and closes the connection once it has drained what the visitor
// may still be sending of it (lingerOnClose).
func (h *Handler) refuse(ctx *fasthttp.RequestCtx, x *exchange, status int, cause, msg string) {
	h.metrics.badRequests.Inc()
	x.cause = cause
	h.plainError(ctx, status, msg)
	ctx.SetConnectionClose()
	lingerOnClose(ctx)
}

func (h *Handler) plainError(ctx *fasthttp.RequestCtx, status int, msg string) {
	ctx.Response.ResetBody()
	ctx.Response.Header.Reset()
	ctx.Response.SetStatusCode(status)
	ctx.Response.Header.SetContentType("text/plain; charset=utf-8")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.Response.SetBodyString(msg + "\n")
}

// failedText answers a request edgeseg itself failed to serve (a bug,
// caught), before anything was sent.
const failedText = "502 Bad Gateway: edgeseg failed to serve this request."

func originErrorText(status int) string {
	switch status {
	case fasthttp.StatusGatewayTimeout:
		return "504 Gateway Timeout: the site did not answer in time."
	case fasthttp.StatusServiceUnavailable:
		return "503 Service Unavailable: the site is busy; retry shortly."
	case fasthttp.StatusRequestEntityTooLarge:
		return "413 Request Entity Too Large"
	}
	return "502 Bad Gateway: the site could not be reached."
}

// recoverPanic turns a panic anywhere in the request path into a logged
// error and an answer: the origin's page when one was already set up
// (personalization panics are caught closer to where they happen and fall
// back to the origin's bytes), otherwise a 502. fasthttp does not recover
// handler panics itself (fasthttp#471).
func (h *Handler) recoverPanic(ctx *fasthttp.RequestCtx, x *exchange) {
	r := recover()
	if r == nil {
		return
	}
	h.metrics.panics.Inc()
	x.cause = "panic"
	h.log.Error().Str("panic", fmt.Sprint(r)).Bytes("path", ctx.Path()).Bytes("stack", debug.Stack()).Msg("recovered panic in request path")
	if ctx.Hijacked() || x.responded {
		return // the origin's page is already the answer: keep it
	}
	h.plainError(ctx, fasthttp.StatusBadGateway, failedText)
}

// finish writes the access log line and request metrics, then releases
// the visit.
func (h *Handler) finish(ctx *fasthttp.RequestCtx, x *exchange) {
	if !x.streamed {
		defer h.p.end(x.visit)
	}
	if x.requestID != "" {
		// The visitor gets the id too, to quote when asking about the
		// request. (Written with the response, after this handler.)
		ctx.Response.Header.Set(h.requestIDs.header, x.requestID)
	}
	d := time.Since(x.start)
	status := ctx.Response.StatusCode()
	h.metrics.latency.Update(d.Seconds())
	h.metrics.request(status, x.personalized)
	if !h.accessLog {
		return
	}
	if status < 400 && h.accessSample > 1 && h.accessCount.Add(1)%h.accessSample != 0 {
		return
	}
	lvl := zerolog.InfoLevel
	if status >= 500 {
		lvl = zerolog.WarnLevel
	}
	e := h.access.WithLevel(lvl)
	if e == nil {
		return
	}
	e = e.Bytes("method", ctx.Method()).Bytes("path", ctx.Path()).Int("status", status).
		Dur("duration", d).Dur("origin", x.originTime).Bool("personalized", x.personalized).
		Str("remote", ctx.RemoteIP().String())
	if x.cause != "" {
		e = e.Str("cause", x.cause)
	}
	if x.requestID != "" {
		e = e.Str("request_id", x.requestID)
	}
	if x.cache != "" {
		e = e.Str("cache", x.cache)
	}
	if x.streamed {
		e = e.Bool("streamed", true)
	}
	if x.visit != nil {
		e = x.visit.logFields(e)
	}
	e.Msg("request")
}

// freeList keeps buffers for reuse. Unlike a sync.Pool it survives
// garbage collections: with many requests in flight, a pool emptied by
// every GC made each request grow fresh 64 KiB buffers, which in turn made
// the next GC come sooner. It keeps no buffer larger than maxCap and at
// most maxHeld bytes of capacity in all, so a burst of large pages does
// not pin memory for good.
type freeList struct {
	ch      chan *[]byte
	held    atomic.Int64 // capacity of the buffers in ch
	maxCap  int
	maxHeld int64
	newCap  int // capacity of a buffer made when the list is empty
}

// maxFreeBodyBytes bounds the capacity of the body buffers kept for reuse;
// maxScratchBytes the size of a scratch buffer worth keeping.
const (
	maxFreeBodyBytes = 64 << 20
	maxScratchBytes  = 16 << 10
)

// newBodyBuffers is the free list of response bodies: none past 1 MiB kept.
func newBodyBuffers() *freeList {
	return &freeList{ch: make(chan *[]byte, 1024), newCap: 4096, maxCap: 1 << 20, maxHeld: maxFreeBodyBytes}
}

// newPeekBuffers is the free list of buffers for a look at what has
// arrived of a large chunked page (restArrived): a few, of maxRestPeek.
func newPeekBuffers() *freeList {
	return &freeList{ch: make(chan *[]byte, 8), newCap: maxRestPeek, maxCap: maxRestPeek, maxHeld: 8 * maxRestPeek}
}

// newScratchBuffers is the free list of header scratch buffers.
func newScratchBuffers() *freeList {
	return &freeList{ch: make(chan *[]byte, 256), newCap: 512, maxCap: maxScratchBytes, maxHeld: 256 * maxScratchBytes}
}

// get returns an empty buffer.
func (l *freeList) get() *[]byte {
	select {
	case b := <-l.ch:
		l.held.Add(-int64(cap(*b)))
		return b
	default:
	}
	b := make([]byte, 0, l.newCap)
	return &b
}

// put offers b back for reuse; it is dropped when too large or when the
// list holds enough.
func (l *freeList) put(b *[]byte) {
	n := int64(cap(*b))
	if n > int64(l.maxCap) {
		return
	}
	if l.held.Add(n) > l.maxHeld {
		l.held.Add(-n)
		return
	}
	*b = (*b)[:0]
	select {
	case l.ch <- b:
	default: // the list is full
		l.held.Add(-n)
	}
}
