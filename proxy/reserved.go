package proxy

import (
	"fmt"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
)

// serveReserved answers edgeseg's own endpoints under ReservedPrefix.
func (h *Handler) serveReserved(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.Set("Cache-Control", "no-store")
	switch string(ctx.Path()) {
	case ReservedPrefix + "health":
		h.serveHealth(ctx)
	case ReservedPrefix + "metrics":
		if !h.mayReadMetrics(ctx) {
			h.plainError(ctx, fasthttp.StatusNotFound, "404 Not Found")
			return
		}
		h.serveMetrics(ctx)
	case ReservedPrefix + "purge":
		if !h.mayReadMetrics(ctx) {
			h.plainError(ctx, fasthttp.StatusNotFound, "404 Not Found")
			return
		}
		h.servePurge(ctx)
	default:
		if h.p != nil && h.p.serveReserved(ctx) {
			return
		}
		h.plainError(ctx, fasthttp.StatusNotFound, "404 Not Found")
	}
}

// ServeAdmin answers on server.admin_listen: metrics, purge and health, to
// whoever reaches that address.
func (h *Handler) ServeAdmin(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.Set("Cache-Control", "no-store")
	switch string(ctx.Path()) {
	case ReservedPrefix + "health":
		h.serveHealth(ctx)
	case ReservedPrefix + "metrics", "/metrics":
		h.serveMetrics(ctx)
	case ReservedPrefix + "purge":
		h.servePurge(ctx)
	default:
		h.plainError(ctx, fasthttp.StatusNotFound, "404 Not Found: "+ReservedPrefix+"metrics, "+ReservedPrefix+"purge and "+ReservedPrefix+"health are here")
	}
}

// serveMetrics writes the metrics in Prometheus's text format.
func (h *Handler) serveMetrics(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.SetContentType("text/plain; version=0.0.4; charset=utf-8")
	h.metrics.set.WritePrometheus(ctx)
	// The process's own: memory, CPU, descriptors, goroutines, GC.
	metrics.WriteGoMetrics(ctx)
	metrics.WriteProcMetrics(ctx)
	metrics.WriteFDMetrics(ctx)
}

// servePurge empties the origin cache of a page, POST
// /_edgeseg/purge?path=/category/sale (the path and query as visitors
// request them; for every host, scheme and variant), or of everything
// (?all=1). Only for those who may read metrics, and each replica has its
// own cache: purge each.
func (h *Handler) servePurge(ctx *fasthttp.RequestCtx) {
	if h.ocache == nil {
		h.plainError(ctx, fasthttp.StatusNotFound, "404 Not Found")
		return
	}
	if !ctx.IsPost() {
		h.plainError(ctx, fasthttp.StatusMethodNotAllowed, "405 Method Not Allowed: POST to purge")
		ctx.Response.Header.Set("Allow", "POST")
		return
	}
	args := ctx.QueryArgs()
	now := time.Now()
	switch path := args.Peek("path"); {
	case args.Has("all"):
		h.ocache.PurgeAll(now)
		h.log.Info().Msg("origin cache purged")
	case len(path) > 0 && path[0] == '/':
		req := fasthttp.AcquireRequest()
		defer fasthttp.ReleaseRequest(req)
		req.SetRequestURIBytes(path)
		h.ocache.Purge(req, now)
		h.log.Info().Bytes("path", path).Msg("page purged from the origin cache")
	default:
		h.plainError(ctx, fasthttp.StatusBadRequest, "400 Bad Request: give path=/… (the page to purge) or all=1")
		return
	}
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString("purged\n")
}

// serveHealth answers 200 while the origin answered within the health
// window. When it has not (an idle proxy), it asks the origin once with a
// HEAD request; concurrent health checks share that probe's outcome.
func (h *Handler) serveHealth(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.SetContentType("text/plain; charset=utf-8")
	if time.Since(h.origin.LastSeen()) <= h.healthWindow {
		ctx.SetBodyString("ok\n")
		return
	}
	if h.probing.CompareAndSwap(false, true) {
		_ = h.probe()
		h.probing.Store(false)
	}
	if time.Since(h.origin.LastSeen()) <= h.healthWindow {
		ctx.SetBodyString("ok\n")
		return
	}
	ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
	ctx.SetBodyString("origin not answering\n")
}

// CheckOrigin connects to the origin once (with the TLS handshake for an
// https one), sending no request, and says why it could not, with what to
// set when the config can mend it.
func (h *Handler) CheckOrigin() error {
	err := h.origin.connect()
	if err == nil {
		return nil
	}
	_, cause := h.origin.failure(err)
	if fix := originFailureFix(cause); fix != "" {
		return fmt.Errorf("%s: %w: %s", cause, err, fix)
	}
	return fmt.Errorf("%s: %w", cause, err)
}

// probe sends HEAD / to the origin, for the name it answers to; any
// answer counts as alive.
func (h *Handler) probe() error {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(fasthttp.MethodHead)
	req.SetRequestURI("/")
	host := h.origin.host
	if h.hostHeader != "" {
		host = h.hostHeader // the name the origin answers to
	}
	req.Header.SetHost(host)
	req.Header.Set("User-Agent", "edgeseg-health")
	err := h.origin.Do(req, resp)
	if err != nil {
		h.log.Debug().Err(err).Msg("health probe failed")
	}
	return err
}

// mayReadMetrics reports a metrics request from an allowed address that no
// proxy relayed: behind a load balancer every visitor arrives from its
// (often private) address, with X-Forwarded-For.
func (h *Handler) mayReadMetrics(ctx *fasthttp.RequestCtx) bool {
	if h.adminOnly {
		return false // served on server.admin_listen instead
	}
	rh := &ctx.Request.Header
	if len(rh.Peek("X-Forwarded-For")) > 0 || len(rh.Peek("Forwarded")) > 0 {
		return false
	}
	return h.metricsAllow.contains(ctx.RemoteIP())
}
