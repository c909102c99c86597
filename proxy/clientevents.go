package proxy

import (
	"bytes"
	"encoding/json"
	"io"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/valyala/fasthttp"

	"github.com/edgeseg/edgeseg/segments/profile"
)

// maxClientEvent bounds a client event's body.
const maxClientEvent = 1 << 10

// clientEvent is the body pages send (navigator.sendBeacon or fetch).
type clientEvent struct {
	Event string `json:"event"`
	Value string `json:"value"`
}

// serveClientEvent handles POST /_edgeseg/event: engagement the proxy
// cannot see, sent by the page. It is accepted only same-origin, small,
// from a visitor with consent, for an event config maps, and at most
// events.client_events_per_minute per visitor; it updates the profile like
// any behavior event and answers 204.
func (p *Personalizer) serveClientEvent(ctx *fasthttp.RequestCtx) {
	pl := p.pl.Load()
	ec := pl.cfg.Events
	refuse := func(status int, msg string) {
		ctx.SetStatusCode(status)
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString(msg + "\n")
	}
	body, ok := pagePost(ctx, ec.ClientEvents, maxClientEvent, refuse)
	if !ok {
		return
	}
	var ce clientEvent
	if err := json.Unmarshal(body, &ce); err != nil || ce.Event == "" {
		refuse(fasthttp.StatusBadRequest, `want {"event": "name"}`)
		return
	}
	var mapped string
	var conversion bool
	for _, m := range ec.ClientMap {
		if m.Name == ce.Event {
			mapped, conversion = m.Event, m.Conversion
		}
	}
	if mapped == "" {
		refuse(fasthttp.StatusBadRequest, "unknown event")
		return
	}
	now := time.Now()
	consent := pl.consent.From(&ctx.Request.Header)
	if !consent.Granted {
		// Nothing is kept without consent, and what was kept before goes.
		if len(ctx.Request.Header.Cookie(pl.cfg.Profile.Cookie)) > 0 {
			p.clearCookie(ctx, &Visit{p: p, pl: pl}, false)
		}
		ctx.SetStatusCode(fasthttp.StatusNoContent)
		return
	}
	prof, status := p.decodeProfile(&ctx.Request.Header, pl, now)
	if status != profile.OK {
		ctx.SetStatusCode(fasthttp.StatusNoContent) // events only for known visitors
		return
	}
	if !p.allowClientEvent(prof.ID, kindEvent, now, ec.ClientEventsPerMinute) {
		ctx.Response.Header.Set("Retry-After", "60")
		refuse(fasthttp.StatusTooManyRequests, "too many events")
		return
	}
	prof.Observe(profile.Event{Name: mapped}, now, pl.settings)
	v := &Visit{p: p, pl: pl, now: now, consent: consent, prof: prof,
		matched: true, match: profile.Match{Event: mapped, Value: clip(ce.Value, 64)}}
	p.setCookie(ctx, v, false)
	if conversion {
		// The conversion carries the visitor's segments, as for any other.
		if consent.Context {
			pl.extractor.Extract(signalsRequest(ctx, pl, now), &v.ctx)
		}
		v.env.Fill(&v.ctx, prof, nil, now, pl.settings, prof.Last)
		p.assignSegments(v)
		p.emitConversion(v)
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

// pagePost reads the body of what a page posts to edgeseg (a client
// event, a prefetched page's beacon): with the endpoint on, a POST,
// same-origin, of at most max bytes, read at most one byte past it
// whether the body is streamed (chunked) or not, so that a huge body is
// refused without being read. Otherwise it answers by refuse, and ok is
// false.
func pagePost(ctx *fasthttp.RequestCtx, on bool, max int, refuse func(status int, msg string)) (body []byte, ok bool) {
	switch {
	case !on:
		refuse(fasthttp.StatusNotFound, "404 Not Found")
		return nil, false
	case !ctx.IsPost():
		ctx.Response.Header.Set("Allow", "POST")
		refuse(fasthttp.StatusMethodNotAllowed, "POST only")
		return nil, false
	case !sameOrigin(&ctx.Request.Header):
		refuse(fasthttp.StatusForbidden, "same-origin requests only")
		return nil, false
	case ctx.Request.Header.ContentLength() > max:
		refuse(fasthttp.StatusRequestEntityTooLarge, "body too large")
		return nil, false
	}
	if st := ctx.RequestBodyStream(); st != nil {
		body, _ = io.ReadAll(io.LimitReader(st, int64(max)+1))
	} else {
		body = ctx.Request.Body()
	}
	if len(body) > max {
		refuse(fasthttp.StatusRequestEntityTooLarge, "body too large")
		return nil, false
	}
	return body, true
}

// sameOrigin accepts requests the browser marks same-origin, or whose
// Origin names the host asked for.
func sameOrigin(h *fasthttp.RequestHeader) bool {
	if site := h.Peek("Sec-Fetch-Site"); len(site) > 0 {
		return bytes.Equal(site, []byte("same-origin"))
	}
	origin := h.Peek("Origin")
	if i := bytes.Index(origin, []byte("://")); i >= 0 {
		return bytes.EqualFold(origin[i+3:], h.Host())
	}
	return false
}

// Kinds of what a page sends, each limited on its own (allowClientEvent).
const (
	kindEvent uint64 = iota + 1 // POST /_edgeseg/event
	kindSeen                    // POST /_edgeseg/seen
)

// allowClientEvent counts a visitor's events of a kind in the current
// minute. Counters live in a bounded cache; one that was evicted starts
// again.
func (p *Personalizer) allowClientEvent(visitor string, kind uint64, now time.Time, perMinute int) bool {
	k := xxhash.Sum64String(visitor) ^ (uint64(now.Unix()/60)*4+kind)*0x9E3779B97F4A7C15
	n, ok := p.rate.Get(k)
	if !ok {
		n = new(atomic.Int32)
		p.rate.SetWithTTL(k, n, 32, 2*time.Minute)
		p.rate.Wait() // a limit that drops its counters limits nothing
	}
	return int(n.Add(1)) <= perMinute
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
