package proxy

import (
	"bytes"
	"io"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/edgeseg/edgeseg/segments/profile"
)

// A page fetched ahead of a navigation (speculation rules, <link
// rel=prefetch>, Turbo's prefetch on hover) is shown, if the visitor then
// follows the link, without a request of its own: the prefetch is all
// edgeseg sees, and a prefetch may never be shown, so it counts as
// nothing. With behavior.count_prefetched, such a page carries a script,
// run only once the page is shown (a prerendered page's once it is
// activated), that hands back a note of the page signed when it was
// served; POST /_edgeseg/seen then counts the page view as the
// navigation would have.

// notePurpose is what seen notes are signed for.
const notePurpose = "seen"

// maxSeenURI bounds the request URI a note carries; a page with a longer
// one gets no beacon.
const maxSeenURI = 2 << 10

// seenNoteAge is how long after the prefetch its page may be counted:
// browsers keep a prefetched page for five minutes.
const seenNoteAge = 10 * time.Minute

// seenPerMinute bounds the pages one visitor's beacons count in a minute.
const seenPerMinute = 60

// countsWhenSeen reports whether the visit's page gets the beacon: a whole
// page prefetched, for a visitor whose page views count (consent, no bot,
// no preview).
func (v *Visit) countsWhenSeen() bool {
	return v.prefetch && v.navigation && !v.part && !v.head && v.pl.cfg.Behavior.CountPrefetched &&
		v.consent.Granted && v.prof != nil && !v.ctx.Bot && v.forced == ""
}

// noteSeen signs the note of the page ctx asks for, which seenScript
// writes: none (nil) for a request URI past maxSeenURI.
func (v *Visit) noteSeen(ctx *fasthttp.RequestCtx) {
	v.note = v.note[:0]
	if uri := ctx.Request.Header.RequestURI(); len(uri) <= maxSeenURI {
		v.note = v.pl.codec.AppendNote(v.note, notePurpose, uri, v.now)
	}
}

// seenScript appends the beacon of a prefetched page: a script that sends
// its note to /_edgeseg/seen once the page is shown. It runs when the
// page is parsed (a prefetched page is only when it is shown), or, on a
// page being prerendered, when the visitor is shown it.
func (v *Visit) seenScript(b, nonce []byte) []byte {
	if len(v.note) == 0 {
		return b
	}
	b = append(b, "<script"...)
	if len(nonce) > 0 {
		b = append(append(append(b, ` nonce="`...), nonce...), '"')
	}
	b = append(b, `>(function(){var s=function(){navigator.sendBeacon("`+ReservedPrefix+`seen","`...)
	b = append(b, v.note...) // base64url, digits and dots: nothing to escape
	return append(b, `")};document.prerendering?document.addEventListener("prerenderingchange",s,{once:true}):s()})();</script>`...)
}

// serveSeen handles POST /_edgeseg/seen, a prefetched page's beacon: its
// note, if it verifies and is recent, counts the page for the visitor
// sending it as the navigation to it would have (a page view or the
// behavior event its path maps to, the cookie, a visit, a conversion).
// The page's exposures are not recorded: the note does not carry them.
// It answers 204, or 4xx for a beacon refused.
func (p *Personalizer) serveSeen(ctx *fasthttp.RequestCtx) {
	pl := p.pl.Load()
	refuse := func(status int, msg string) {
		p.m.seenRefused.Inc()
		ctx.SetStatusCode(status)
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString(msg + "\n")
	}
	switch {
	case !pl.cfg.Behavior.CountPrefetched:
		refuse(fasthttp.StatusNotFound, "404 Not Found")
		return
	case !ctx.IsPost():
		ctx.Response.Header.Set("Allow", "POST")
		refuse(fasthttp.StatusMethodNotAllowed, "POST only")
		return
	case !sameOrigin(&ctx.Request.Header):
		refuse(fasthttp.StatusForbidden, "same-origin requests only")
		return
	case ctx.Request.Header.ContentLength() > maxClientEvent*4:
		refuse(fasthttp.StatusRequestEntityTooLarge, "note too large")
		return
	}
	var body []byte
	if st := ctx.RequestBodyStream(); st != nil {
		body, _ = io.ReadAll(io.LimitReader(st, maxClientEvent*4+1))
	} else {
		body = ctx.Request.Body()
	}
	now := time.Now()
	uri, err := pl.codec.OpenNote(bytes.TrimSpace(body), notePurpose, now, seenNoteAge)
	if err != nil {
		refuse(fasthttp.StatusBadRequest, "not a note edgeseg signed recently")
		return
	}
	path, _, _ := bytes.Cut(uri, []byte{'?'})
	h := &ctx.Request.Header
	v := &Visit{p: p, pl: pl, now: now, navigation: true}
	if v.consent = pl.consent.From(h); !v.consent.Granted {
		if len(h.Cookie(pl.cfg.Profile.Cookie)) > 0 {
			p.clearCookie(ctx, v, false)
		}
		ctx.SetStatusCode(fasthttp.StatusNoContent)
		return
	}
	if v.consent.Context {
		pl.extractor.Extract(signalsRequest(ctx, pl, now), &v.ctx)
	}
	if v.ctx.Bot {
		ctx.SetStatusCode(fasthttp.StatusNoContent)
		return
	}
	v.prof, v.status = p.decodeProfile(h, pl, now)
	if !p.allowClientEvent(v.prof.ID, kindSeen, now, seenPerMinute) {
		ctx.Response.Header.Set("Retry-After", "60")
		refuse(fasthttp.StatusTooManyRequests, "too many pages")
		return
	}
	v.match, v.matched = pl.mapper.Lookup([]byte(fasthttp.MethodGet), path)
	ev := profile.Event{Navigation: true, Name: profile.PageView}
	if v.matched {
		ev.Name, ev.Category, ev.Product = v.match.Event, v.match.Category, v.match.Product
	}
	lastSeen := v.prof.Last
	v.prof.Observe(ev, now, pl.settings)
	v.env.Fill(&v.ctx, v.prof, nil, now, pl.settings, lastSeen)
	p.assignSegments(v)
	p.setCookie(ctx, v, false)
	if v.matched && pl.cfg.Behavior.Events[v.match.Rule].Conversion {
		p.emitConversion(v)
	}
	if v.prof.Started {
		p.emitMembers("visit", v)
	}
	p.m.seenCounted.Inc()
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}
