package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"sync/atomic"

	"github.com/valyala/fasthttp"

	"github.com/edgeseg/edgeseg/cache"
	"github.com/edgeseg/edgeseg/templates/inject"
)

// rewrite reads an HTML body that may be personalized, within the rewrite
// limit, and answers with it personalized, or untouched when nothing
// changed or anything failed. Bodies past the limit, and bodies arriving
// while rewrites in flight hold rewrite.max_buffered_bytes, are streamed
// through. It returns whether the body was personalized.
func (h *Handler) rewrite(ctx *fasthttp.RequestCtx, resp *fasthttp.Response, x *exchange) bool {
	c := parseCoding(resp.Header.ContentEncoding())
	// oc is the coding the page goes out in: the origin's, unless it was
	// asked for the page uncompressed, to compress it here.
	oc := c
	if x.asked && c == codingIdentity {
		oc = x.compress
		addVary(&ctx.Response.Header, "Accept-Encoding")
	}
	if c == codingUnknown || resp.Header.ContentLength() > h.rewriteLimit {
		h.metrics.rewriteSkipped.Inc()
		h.stream(ctx, resp, x.prefix, x)
		return false
	}
	// A page sent chunked is personalized as it arrives, unless it has
	// arrived whole already and fits the limit: everything the origin
	// client has read is within its read buffer. It is then rewritten
	// whole and sent with a length, in one write.
	// A larger one has too when the rest of it is waiting, to its end, in
	// the connection's socket.
	whole := arrivedWhole(resp) && len(x.prefix)+originReadBuffer <= h.rewriteLimit
	if h.streamPages && c != codingDeflate && resp.Header.ContentLength() < 0 && ctx.Request.Header.IsHTTP11() && !whole && !h.restArrived(resp, x) {
		h.rewriteStreamed(ctx, resp, x, c, oc)
		return true
	}

	// Every buffer this page fills counts against h.buffered until the
	// response is written (the body buffer's Close gives it back) or,
	// when no buffer becomes the body, until rewrite returns.
	hold := h.buffered.hold()
	take := hold.take
	defer hold.release()

	// A page kept by the origin cache is personalized where it is kept
	// (rawp nil: raw is shared, never written to); any other is read
	// into a buffer of the free list.
	var rawp *[]byte
	var raw []byte
	var err error
	if mb, ok := resp.BodyStream().(*cache.MemoryBody); ok && len(x.prefix) == 0 {
		raw = mb.Bytes()
	} else {
		rawp = h.bufs.get()
		raw, err = x.prefix, errNoBudget
		// What the origin cache read already, if it read any, counts too.
		if buf := slices.Grow((*rawp)[:0], len(x.prefix)); take(cap(buf)) {
			raw, err = readLimited(append(buf, x.prefix...), resp.BodyStream(), h.rewriteLimit-len(x.prefix), take)
			*rawp = raw
		}
		if errors.Is(err, errTooLarge) || errors.Is(err, errNoBudget) {
			// Too large to rewrite, or no memory left for it: send what
			// was read, then the rest, as is. The prefix outlives this
			// call, so it cannot go back to the list.
			if errors.Is(err, errTooLarge) {
				h.metrics.rewriteSkipped.Inc()
			} else {
				h.metrics.noBudget.Inc()
			}
			prefix := append([]byte(nil), raw...)
			h.bufs.put(rawp)
			h.stream(ctx, resp, prefix, x)
			return false
		}
	}
	_ = resp.CloseBodyStream()
	fasthttp.ReleaseResponse(resp)
	if err != nil {
		h.bufs.put(rawp)
		h.originBrokeOff(ctx, x, err)
		return false
	}
	// sendRaw answers with the page as the origin sent it, compressed
	// here if it was asked for uncompressed to be (and compressing has
	// not just failed).
	compressRaw := oc != c
	sendRaw := func() {
		if compressRaw {
			if encp, err := h.encodeBuf(raw, oc, take); err == nil {
				if rawp != nil {
					h.bufs.put(rawp)
				}
				setCompressed(&ctx.Response.Header, oc)
				h.sendBuf(ctx, encp, hold.handOver())
				return
			}
		}
		if rawp == nil {
			ctx.Response.SetBodyRaw(raw)
			return
		}
		h.sendBuf(ctx, rawp, hold.handOver())
	}

	html := raw
	if c != codingIdentity {
		// A page decoded before is filled where the memo keeps it.
		htmlp := h.bufs.get()
		defer h.bufs.put(htmlp)
		limit := min(h.rewriteLimit, int(h.buffered.left()))
		var shared bool
		html, shared, err = h.codec.decodeShared((*htmlp)[:0], raw, c, limit, h.rewriteLimit)
		if !shared {
			*htmlp = html
			if err == nil && !take(cap(html)) {
				err = errNoBudget
			}
		}
		if err != nil {
			switch {
			case errors.Is(err, errNoBudget), errors.Is(err, errTooLarge) && limit < h.rewriteLimit:
				h.metrics.noBudget.Inc()
			case !errors.Is(err, errTooLarge):
				h.metrics.rewriteErrors.Inc()
				h.log.Debug().Err(err).Bytes("path", ctx.Path()).Msg("cannot decode body; passing it through")
			}
			sendRaw()
			return false
		}
	}

	// The page is written out as a splice of the origin's bytes and the
	// blocks, not copied first: only the bytes made for it are new.
	sp := h.splice()
	changed := h.safePersonalize(ctx, x, html, &sp.s)
	if !changed || !take(cap(sp.s.Made)) {
		if changed {
			// Blocks larger than there is room for: the page goes out
			// as the origin sent it.
			h.metrics.noBudget.Inc()
		}
		sp.Close()
		sendRaw()
		return false
	}
	if oc == codingIdentity {
		sp.raw, sp.held = rawp, hold.handOver()
		ctx.Response.SetBodyStream(sp, sp.s.Len())
		markPersonalized(&ctx.Response.Header)
		x.personalized = true
		return true
	}
	outp := h.bufs.get()
	if !take(max(cap(*outp), sp.s.Len())) {
		h.metrics.noBudget.Inc()
		h.bufs.put(outp)
		sp.Close()
		sendRaw()
		return false
	}
	out := sp.s.AppendTo((*outp)[:0])
	*outp = out
	sp.Close()
	encp, err := h.encodeBuf(out, oc, take)
	h.bufs.put(outp)
	if err != nil {
		compressRaw = false // it would fail the same way
		sendRaw()
		return false
	}
	if rawp != nil {
		h.bufs.put(rawp)
	}
	if oc != c {
		ctx.Response.Header.Set(fasthttp.HeaderContentEncoding, oc.name())
	}
	h.sendBuf(ctx, encp, hold.handOver())
	markPersonalized(&ctx.Response.Header)
	x.personalized = true
	return true
}

// encodeBuf encodes body in c into a buffer of the free list, counted by
// take. It counts what fails: no memory for it (errNoBudget), or the
// encoder's error.
func (h *Handler) encodeBuf(body []byte, c coding, take func(int) bool) (*[]byte, error) {
	encp := h.bufs.get()
	reserved := max(cap(*encp), len(body)/2)
	if !take(reserved) {
		h.metrics.noBudget.Inc()
		h.bufs.put(encp)
		return nil, errNoBudget
	}
	enc, err := h.codec.encode((*encp)[:0], body, c)
	*encp = enc
	if grown := cap(enc) - reserved; err == nil && grown > 0 && !take(grown) {
		err = errNoBudget // a page that compresses badly
	}
	switch {
	case errors.Is(err, errNoBudget):
		h.metrics.noBudget.Inc()
	case err != nil:
		h.metrics.rewriteErrors.Inc()
		h.log.Error().Err(err).Msg("cannot re-encode body; serving the origin's")
	}
	if err != nil {
		h.bufs.put(encp)
		return nil, err
	}
	return encp, nil
}

// maxRestPeek bounds the look at what has arrived of a chunked page past
// the origin read buffer (restArrived): pages up to ~1 MiB.
const maxRestPeek = 1 << 20

// restArrived reports whether the rest of resp, a chunked page, is waiting
// in its connection to its end, within the rewrite limit: the look copies
// what has arrived, at most maxRestPeek bytes, into a buffer counted
// against h.buffered for its short life. It is taken only when the last
// read from the connection filled the client's read buffer: when it did
// not, the page arrived in parts, and its end is seldom there yet.
func (h *Handler) restArrived(resp *fasthttp.Response, x *exchange) bool {
	room := min(h.rewriteLimit-len(x.prefix)-originReadBuffer, maxRestPeek)
	if c := connOf(resp); room <= 0 || c == nil || !c.lastFull || !h.buffered.take(room) {
		return false
	}
	defer h.buffered.give(room)
	bp := h.peeks.get()
	defer h.peeks.put(bp)
	*bp = slices.Grow((*bp)[:0], room)
	return restArrived(resp, (*bp)[:room])
}

// byteBudget bounds the bytes held by something many requests do at once.
type byteBudget struct {
	used atomic.Int64
	max  int64
}

// take counts n more bytes unless that passes the bound.
func (b *byteBudget) take(n int) bool {
	if b.used.Add(int64(n)) > b.max {
		b.used.Add(-int64(n))
		return false
	}
	return true
}

// give returns n bytes taken earlier.
func (b *byteBudget) give(n int) {
	if n != 0 {
		b.used.Add(-int64(n))
	}
}

// hold starts counting what one user takes from b.
func (b *byteBudget) hold() *budgetHold { return &budgetHold{b: b} }

// budgetHold is what one user (a page being rewritten) holds of a budget.
type budgetHold struct {
	b *byteBudget
	n int
}

// take takes n more bytes for the holder, unless that passes the bound.
func (h *budgetHold) take(n int) bool {
	if !h.b.take(n) {
		return false
	}
	h.n += n
	return true
}

// takeWithin takes n more bytes for the holder unless that brings the
// budget's use past ceiling (below its bound: one kind of user may keep
// room for the others).
func (h *budgetHold) takeWithin(n int, ceiling int64) bool {
	if h.b.used.Add(int64(n)) > min(ceiling, h.b.max) {
		h.b.used.Add(-int64(n))
		return false
	}
	h.n += n
	return true
}

// release gives back all the holder took.
func (h *budgetHold) release() {
	h.b.give(h.n)
	h.n = 0
}

// handOver returns what the holder took, for another to give back, and
// holds nothing any more.
func (h *budgetHold) handOver() int {
	n := h.n
	h.n = 0
	return n
}

// left is how many bytes may still be taken.
func (b *byteBudget) left() int64 { return max(0, b.max-b.used.Load()) }

// sendBuf makes *b the response body without copying it; the buffer goes
// back to the free list, and held bytes to h.buffered, when fasthttp has
// written (or dropped) the response.
func (h *Handler) sendBuf(ctx *fasthttp.RequestCtx, b *[]byte, held int) {
	sp := h.splice()
	sp.s.ResetWhole(*b)
	sp.raw, sp.held = b, held
	ctx.Response.SetBodyStream(sp, sp.s.Len())
}

// maxSpliceMade bounds the made bytes of a splice kept for reuse.
const maxSpliceMade = 64 << 10

// splice returns a pooledSplice to personalize a page into.
func (h *Handler) splice() *pooledSplice {
	sp, _ := h.splices.Get().(*pooledSplice)
	if sp == nil {
		sp = &pooledSplice{h: h}
	}
	return sp
}

// pooledSplice is a response body: a page personalized as a splice of the
// origin's bytes and those made for it, or a buffer sent whole (sendBuf).
type pooledSplice struct {
	h    *Handler
	s    inject.Splice
	raw  *[]byte // the buffer of the free list the body is in, if it is
	held int     // bytes of h.buffered to give back
}

func (p *pooledSplice) Read(b []byte) (int, error) { return p.s.Read(b) }

// WriteTo lets fasthttp copy the body piece by piece into its write
// buffer: the page leaves in one write when it fits.
func (p *pooledSplice) WriteTo(w io.Writer) (int64, error) { return p.s.WriteTo(w) }

// Close returns the page's buffer and the splice; fasthttp calls it once
// the body is written.
func (p *pooledSplice) Close() error {
	h := p.h
	if p.raw != nil {
		h.bufs.put(p.raw)
	}
	h.buffered.give(p.held)
	p.raw, p.held = nil, 0
	p.s.Reset(nil)
	if cap(p.s.Made) > maxSpliceMade {
		p.s.Made = nil
	}
	h.splices.Put(p)
	return nil
}

// safePersonalize runs step 8 and turns a panic in it into "unchanged", so
// a template or injection bug costs the personalization, not the page.
func (h *Handler) safePersonalize(ctx *fasthttp.RequestCtx, x *exchange, html []byte, s *inject.Splice) (changed bool) {
	defer func() {
		if r := recover(); r != nil {
			h.metrics.panics.Inc()
			x.cause = "personalize panic"
			h.log.Error().Str("panic", fmt.Sprint(r)).Bytes("path", ctx.Path()).Bytes("stack", debug.Stack()).Msg("recovered panic while personalizing; serving the origin's page")
			changed = false
		}
	}()
	return h.p.personalize(ctx, x.visit, html, s)
}

// markPersonalized fixes the headers of a rewritten response: validators of
// the origin's bytes no longer hold, and no shared cache may keep the page
// under a key without the visitor's segments.
func markPersonalized(rh *fasthttp.ResponseHeader) {
	weakenETag(rh)
	rh.Del("Last-Modified")
	dropByteClaims(rh)
	rh.Set("Cache-Control", "private, no-cache")
	addVary(rh, "Cookie")
}

// dropByteClaims removes what the origin said of the bytes it sent, which
// no longer holds of a body filled or compressed here: that ranges of them
// may be asked for, and their digests (RFC 3230, RFC 9530; Content-MD5).
func dropByteClaims(rh *fasthttp.ResponseHeader) {
	for _, name := range []string{"Accept-Ranges", "Content-MD5", "Digest", "Content-Digest", "Repr-Digest"} {
		rh.Del(name)
	}
}

// weakenETag makes a strong ETag weak: the bytes sent are not the ones
// it names (filled, or compressed here), though what they mean is.
func weakenETag(rh *fasthttp.ResponseHeader) {
	if et := rh.Peek("ETag"); len(et) > 0 && !bytes.HasPrefix(et, []byte("W/")) {
		rh.Set("ETag", "W/"+string(et))
	}
}

// makePrivate keeps a response that sets a visitor's cookie out of shared
// caches while leaving the browser's freshness as the origin set it.
func makePrivate(rh *fasthttp.ResponseHeader) {
	cc := rh.Peek("Cache-Control")
	if len(cc) == 0 {
		rh.Set("Cache-Control", "private")
		return
	}
	var buf [128]byte
	out := buf[:0]
	private := false
	for rest := cc; len(rest) > 0; {
		var d []byte
		d, rest = cache.NextListItem(rest)
		name := d
		if i := bytes.IndexByte(d, '='); i >= 0 {
			name = d[:i]
		}
		switch {
		case len(d) == 0, bytes.EqualFold(name, []byte("public")), bytes.EqualFold(name, []byte("s-maxage")):
			continue
		case bytes.EqualFold(name, []byte("private")), bytes.EqualFold(name, []byte("no-store")):
			private = true
		}
		if len(out) > 0 {
			out = append(out, ", "...)
		}
		out = append(out, d...)
	}
	if !private {
		if len(out) > 0 {
			out = append([]byte("private, "), out...)
		} else {
			out = append(out, "private"...)
		}
	}
	rh.SetBytesV("Cache-Control", out)
}

// addVary adds name to the Vary header unless it is there (or "*" is).
func addVary(rh *fasthttp.ResponseHeader, name string) {
	v := rh.Peek("Vary")
	for rest := v; len(rest) > 0; {
		var p []byte
		p, rest = cache.NextListItem(rest)
		if bytes.EqualFold(p, []byte(name)) || bytes.Equal(p, []byte("*")) {
			return
		}
	}
	if len(bytes.TrimSpace(v)) == 0 {
		rh.Set("Vary", name)
		return
	}
	var buf [128]byte
	rh.SetBytesV("Vary", append(append(append(buf[:0], v...), ", "...), name...))
}
