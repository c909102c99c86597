package proxy

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/valyala/fasthttp"

	"github.com/edgeseg/edgeseg/segments/events"
	"github.com/edgeseg/edgeseg/segments/profile"
	"github.com/edgeseg/edgeseg/segments/signals"
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

// maxExposures bounds the exposures a visit records (Visit.expose), and a
// note carries.
const maxExposures = 32

// maxSeenBody bounds a beacon's body: a note with the longest URI and
// every exposure, and then some.
const maxSeenBody = 16 << 10

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

// seenNote is what a beacon's note carries: the page (its request URI
// and Referer, which the visit's signals are read from as the page's
// were) and the exposures its slots made, as [slot, segment, variant,
// version in hex], recorded once the page is shown.
type seenNote struct {
	URI string `json:"u"`
	// Referer is nil in notes made before it was carried: the beacon's
	// own Referer stands in.
	Referer   *string     `json:"r,omitempty"`
	Exposures [][4]string `json:"x,omitempty"`
	// Once makes each note unlike any other, a page's served twice in a
	// second included: a note counts once (firstSighting).
	Once uint64 `json:"o"`
}

// seenAllowed reports whether the page's CSP, its headers' and its
// <meta> tags', lets the beacon run and reach edgeseg; counted when not.
func (v *Visit) seenAllowed() bool {
	if _, ok := v.csp.inlineScript(); !ok || v.csp.noConnect {
		v.p.m.seenBlocked.Inc()
		return false
	}
	return true
}

// seenScript appends the beacon of a prefetched page, made once the page
// is, after its last byte (browsers run it at the end of the body): a
// script that sends the page's note to /_edgeseg/seen once the page is
// shown. It runs when the page is parsed (a prefetched page is only when
// it is shown; a page a script swaps in, when swapped in), or, on a page
// being prerendered, when the visitor is shown it. Callers ask
// seenAllowed first; a page whose request URI is past maxSeenURI gets
// none.
func (v *Visit) seenScript(b []byte) []byte {
	nonce, _ := v.csp.inlineScript()
	if len(v.seenURI) > maxSeenURI {
		return b
	}
	ref := string(signals.ReferrerOrigin(v.seenRef))
	n := seenNote{URI: string(v.seenURI), Referer: &ref, Once: rand.Uint64()}
	for _, e := range v.exposures {
		n.Exposures = append(n.Exposures, [4]string{e.slot, e.segment, string(e.variant), strconv.FormatUint(e.version, 16)})
	}
	body, err := json.Marshal(n)
	if err != nil {
		return b
	}
	b = append(b, "<script"...)
	if len(nonce) > 0 {
		b = append(append(append(b, ` nonce="`...), nonce...), '"')
	}
	// Once per note in a window: Turbo runs a page's scripts again when it
	// shows the page from its cache.
	b = append(b, `>(function(){var n="`...)
	b = v.pl.codec.AppendNote(b, notePurpose, body, v.now) // base64url, digits and dots: nothing to escape
	return append(b, `",d=window.__edgesegSeen=window.__edgesegSeen||{},s=function(){if(!d[n]){d[n]=1;navigator.sendBeacon("`+
		ReservedPrefix+`seen",n)}};document.prerendering?document.addEventListener("prerenderingchange",s,{once:true}):s()})();</script>`...)
}

// request is the page's request as the visit's signals read it: the
// beacon's headers (the same browser's), with the page's URI (its path,
// its utm_* query) and Referer (how the visitor came to it) in place of
// the beacon's own.
func (n *seenNote) request(h *fasthttp.RequestHeader) *fasthttp.Request {
	req := new(fasthttp.Request)
	h.CopyTo(&req.Header)
	req.Header.SetMethod(fasthttp.MethodGet)
	req.SetRequestURI(n.URI)
	if n.Referer != nil {
		if *n.Referer == "" {
			req.Header.Del(fasthttp.HeaderReferer)
		} else {
			req.Header.SetReferer(*n.Referer)
		}
	}
	return req
}

// firstSighting reports whether a note comes for the first time, as far
// as a bounded cache remembers the notes of the last seenNoteAge: a page
// shown again from a script's cache (Turbo's), or a beacon sent again,
// counts once.
func (p *Personalizer) firstSighting(note []byte) bool {
	k := xxhash.Sum64(note) ^ 0x5ee_5ee_5ee_5ee_5ee // apart from the rate counters' keys
	if _, ok := p.rate.Get(k); ok {
		return false
	}
	p.rate.SetWithTTL(k, new(atomic.Int32), 32, seenNoteAge)
	p.rate.Wait()
	return true
}

// serveSeen handles POST /_edgeseg/seen, a prefetched page's beacon: its
// note, if it verifies and is recent, counts the page for the visitor
// sending it as the navigation to it would have (a page view or the
// behavior event its path maps to, the cookie, a visit, a conversion,
// and the exposures the page made when it was served). It answers 204,
// or 4xx for a beacon refused.
func (p *Personalizer) serveSeen(ctx *fasthttp.RequestCtx) {
	pl := p.pl.Load()
	refuse := func(status int, msg string) {
		p.m.seenRefused.Inc()
		ctx.SetStatusCode(status)
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString(msg + "\n")
	}
	body, ok := pagePost(ctx, pl.cfg.Behavior.CountPrefetched, maxSeenBody, refuse)
	if !ok {
		return
	}
	now := time.Now()
	raw, err := pl.codec.OpenNote(bytes.TrimSpace(body), notePurpose, now, seenNoteAge)
	var note seenNote
	if err == nil {
		err = json.Unmarshal(raw, &note)
	}
	if err != nil || len(note.Exposures) > maxExposures {
		refuse(fasthttp.StatusBadRequest, "not a note edgeseg signed recently")
		return
	}
	if !p.firstSighting(body) {
		ctx.SetStatusCode(fasthttp.StatusNoContent) // counted already
		return
	}
	path, _, _ := strings.Cut(note.URI, "?")
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
		r := signalsRequest(ctx, pl, now)
		r.Req = note.request(&ctx.Request.Header)
		pl.extractor.Extract(r, &v.ctx)
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
	v.match, v.matched = pl.mapper.Lookup([]byte(fasthttp.MethodGet), []byte(path))
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
	// The exposures the page made, as it was served.
	for _, x := range note.Exposures {
		version, _ := strconv.ParseUint(x[3], 16, 64)
		v.expose(x[0], x[1], events.Variant(x[2]), version)
	}
	p.emitExposures(path, v)
	p.m.seenCounted.Inc()
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}
