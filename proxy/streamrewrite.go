package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"slices"

	"github.com/valyala/fasthttp"

	"github.com/edgeseg/edgeseg/cache"
	"github.com/edgeseg/edgeseg/templates/inject"
)

// A page the origin streams (no Content-Length: it sends the head before
// it has rendered the rest) is personalized as it arrives rather than
// buffered whole, so the visitor's browser starts on the head as early as
// it would without edgeseg. A gzip or brotli page is decoded and
// re-encoded as it goes, flushed after each of the origin's chunks;
// deflate (rare, and ambiguous: zlib or raw) is buffered.

// errRewritePanic cuts a streamed page short after a bug in the rewriter:
// part of the page is already with the visitor, so nothing better is left.
var errRewritePanic = errors.New("rewriting the streamed page panicked")

// rewriteStream is the visitor's body for a streamed page: it reads the
// origin's chunks, rewrites them and hands the result on. It owns the
// visit until it is closed.
type rewriteStream struct {
	h     *Handler
	src   *originStream
	v     *Visit
	path  string
	ctype []byte // Content-Type, for the encoding
	opts  inject.Options
	rw    *inject.Rewriter // nil until the encoding is known and a marker seen
	spare *inject.Rewriter // kept with the stream in the pool, for rw
	plain bool             // nothing to rewrite (any more): pass through
	// A page of a path whose last page is kept as a Reference is filled
	// by its Plan while it keeps to it (inject.Rewriter.Follow): the
	// rewriter keeps the page meanwhile, within h.buffered as fhold. At a
	// path seen before without one (collect), a page with a slot marker
	// is kept in whole from there on, within fhold too, to become the
	// path's Reference: seen, which holds the page up to the marker, is
	// kept on as whole. (A page with a head snippet is tokenized from its
	// start, and kept in whole from there: collectFromStart.)
	pageKey cache.Key128
	fhold   budgetHold
	collect bool
	whole   *[]byte
	// Until a slot marker shows up the page passes through untouched and
	// untokenized (most pages have none); seen keeps what was sent, so the
	// tokenizer can catch up when one does.
	watching bool
	seen     *[]byte      // from h.bufs while watching
	hold     budgetHold   // what seen holds of h.buffered
	resend   dropWriter   // the rewriter's output once a marker showed up
	head     []byte       // bytes held until the encoding is known
	sniff    int          // how many: inject.SniffBytes
	began    bool         // start has run: the encoding is known
	out      bytes.Buffer // rewritten (and re-encoded), not yet read by fasthttp
	buf      []byte
	c        coding
	dec      io.Reader     // the page decoded, when the origin compressed it
	enc      streamEncoder // re-encodes into out; nil for identity
	chold    budgetHold    // what dec and enc count of h.buffered (coderBytes)
	dst      io.Writer     // where rewritten HTML goes: enc or out
	eof      bool
	fail     error
	// Until the decoder has given its first bytes, the origin's bytes it
	// read are kept in raw: a body that does not decode (mislabelled or
	// corrupt from the start) then goes to the visitor as the origin sent
	// it, like any body edgeseg cannot rewrite, instead of an empty answer.
	raw     []byte
	keepRaw bool
	asSent  bool // passing the origin's bytes on undecoded
	// While WriteTo runs on an origin connection that can tell (see
	// originConn), what is made goes to w before a read from the origin
	// would wait (beforeWait), or once a write buffer's worth is made: a
	// write per pause of the origin, not per chunk it framed.
	w         io.Writer
	coalesce  bool
	unflushed bool // the encoder holds input not flushed into out yet
	sent      int64
}

// maxRawHead bounds what is kept for that: a decoder gives its first bytes
// long before this unless the body is not what its label says.
const maxRawHead = 64 << 10

// rawRecorder is the origin's body as the decoder reads it, keeping what
// it reads until the decoder has given bytes.
type rawRecorder struct{ s *rewriteStream }

func (r rawRecorder) Read(p []byte) (int, error) {
	s := r.s
	n, err := s.src.Read(p)
	if s.keepRaw {
		if len(s.raw)+n > maxRawHead {
			s.dropRaw()
		} else {
			s.raw = append(s.raw, p[:n]...)
		}
	}
	return n, err
}

// dropRaw stops keeping the origin's bytes; a pooled stream keeps a small
// buffer for the next page, not a large one.
func (s *rewriteStream) dropRaw() {
	s.keepRaw = false
	if cap(s.raw) > 4<<10 {
		s.raw = nil
	}
	s.raw = s.raw[:0]
}

// rewriteStreamed answers with the streamed page resp, personalized as it
// arrives. The caching headers of a personalized page are set now: the
// head goes out before anyone knows whether a slot will be filled.
func (h *Handler) rewriteStreamed(ctx *fasthttp.RequestCtx, resp *fasthttp.Response, x *exchange, c, oc coding) {
	chold := budgetHold{b: h.buffered}
	if !chold.take(coderBytes(c, false) + coderBytes(oc, true)) {
		// No memory for its coders: on as sent, as a page past the
		// budget goes.
		h.metrics.noBudget.Inc()
		h.stream(ctx, resp, x.prefix, x)
		return
	}
	v := x.visit
	s, _ := h.streams.Get().(*rewriteStream)
	if s == nil {
		s = &rewriteStream{h: h, buf: make([]byte, 16<<10)}
	}
	s.v, s.path, s.c = v, string(ctx.Path()), c
	s.hold, s.fhold, s.chold = budgetHold{b: h.buffered}, budgetHold{b: h.buffered}, chold
	s.pageKey = h.p.pageKey(ctx)
	s.ctype = append(s.ctype[:0], resp.Header.ContentType()...)
	s.sniff = inject.SniffBytes(s.ctype)
	s.src = newOriginStream(resp, x.prefix, h.bufs, &h.log, ctx.Path())
	s.src.client = clientOf(ctx)
	s.dst = &s.out
	if oc != codingIdentity {
		s.enc = h.codec.newStreamEncoder(&s.out, oc, levelQuick) // compressed on every request
		s.dst = s.enc
	}
	if v.addsScripts() {
		s.opts.HeadSnippet = v.headSnippet(ctx)
		s.opts.MetaPolicy = v // read as the page's head comes
		// The beacon goes after the page, where its CSP lets it: the
		// head is read for its <meta> policies.
		s.opts.ReadHead = v.countsWhenSeen() && v.seenAllowed()
	}
	// The first bytes are made before the answer is handed to fasthttp
	// (which sends the head only with them anyway): an origin that breaks
	// off before then gets the visitor a clean 502, not no answer at all.
	if err := s.pump(); err != nil && !errors.Is(err, io.EOF) && s.out.Len() == 0 {
		_ = s.release() // never the visitor's body: the visit stays with the request
		if errors.Is(err, errRewritePanic) {
			x.cause = "panic"
			h.plainError(ctx, fasthttp.StatusBadGateway, failedText)
			return
		}
		h.originBrokeOff(ctx, x, err)
		return
	}
	if oc != c {
		ctx.Response.Header.Set(fasthttp.HeaderContentEncoding, oc.name())
	}
	markPersonalized(&ctx.Response.Header)
	ctx.Response.SetBodyStream(s, -1)
	x.streamed = true // the stream, not finish, ends the visit
	v.streaming = true
	// Counted and logged as personalized, as its headers say, before
	// anyone knows whether a slot will be filled: the request is done with
	// before its body (edgeseg_rewrite_streamed_total{filled} says).
	x.personalized = true
}

// Read hands on the next rewritten bytes, reading from the origin as
// needed.
func (s *rewriteStream) Read(p []byte) (int, error) {
	if err := s.pump(); err != nil {
		return 0, err
	}
	return s.out.Read(p)
}

// SupportsBodyWriteTo tells fasthttp WriteTo may be used instead of Read.
func (s *rewriteStream) SupportsBodyWriteTo() bool { return true }

// WriteTo writes the rewritten page to w as it is made: one Write, one chunk
// to the visitor, each time the origin pauses (or, without an origin
// connection that can tell, per read from the origin), instead of one per
// 4 KB Read fasthttp would make.
func (s *rewriteStream) WriteTo(w io.Writer) (int64, error) {
	s.w, s.sent = w, 0
	if c := s.src.conn; c != nil {
		s.coalesce = true
		c.waiter = s
		defer func() { c.waiter, s.coalesce = nil, false }()
	}
	for {
		if err := s.pump(); err != nil {
			if errors.Is(err, io.EOF) {
				return s.sent, nil
			}
			return s.sent, err
		}
		// While the origin keeps sending, only chunks that fill a write go
		// out; the rest waits for more, or for the pause that sends it.
		if err := s.send(!s.coalesce || s.eof || s.fail != nil); err != nil {
			return s.sent, err
		}
	}
}

// send writes what is made so far to the visitor, in chunks that each fill
// a write; all: the last, shorter one too. The page's last chunk is held
// back to leave with the empty chunk that ends the body.
func (s *rewriteStream) send(all bool) error {
	max := s.h.chunkData
	b := s.out.Bytes()
	if !all {
		b = b[:len(b)-len(b)%max]
	}
	s.out.Next(len(b))
	end := s.eof && s.fail == nil && s.src.client != nil
	for len(b) > 0 {
		k := min(len(b), max)
		if k == len(b) && end {
			s.src.client.holdNextWrite()
		}
		n, err := s.w.Write(b[:k])
		s.sent += int64(n)
		if err != nil {
			return err
		}
		b = b[k:]
	}
	return nil
}

// beforeWait sends what is made so far, re-encoded to the last byte read:
// the origin has nothing more for now. A slot whose end tag may have come
// is read for it now (the Rewriter reads a long one again only as it
// grows), so that it and what follows go out before the wait. (A body
// that may not decode makes nothing, and so sends nothing, before its
// decoder gives its first bytes: sendAsSent can still send it as it came.)
func (s *rewriteStream) beforeWait() error {
	if s.rw != nil && !s.plain && !s.watching {
		if held := s.rw.Pending(); held > 0 {
			_ = s.rw.Settle() // writes to s.dst, which does not fail
			s.unflushed = s.unflushed || s.enc != nil && s.rw.Pending() < held
			s.caughtUp()
		}
	}
	if s.unflushed {
		s.unflushed = false
		if err := s.enc.Flush(); err != nil {
			return err
		}
	}
	return s.send(true)
}

// pump reads and rewrites until there are bytes to hand on; io.EOF at the
// end of the page, or why it was cut short.
func (s *rewriteStream) pump() (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.h.metrics.panics.Inc()
			s.h.log.Error().Str("panic", fmt.Sprint(r)).Str("path", s.path).Bytes("stack", debug.Stack()).Msg("recovered panic while rewriting a streamed page; cutting it short")
			s.fail = errRewritePanic
			err = s.fail
		}
	}()
	for s.out.Len() == 0 || s.coalesce && s.out.Len() < s.h.chunkData {
		if s.fail != nil || s.eof {
			if s.out.Len() > 0 {
				return nil // what was made goes out first
			}
			if s.fail != nil {
				return s.fail
			}
			return io.EOF
		}
		m, rerr := s.read()
		if m > 0 {
			if s.whole != nil {
				s.keepWhole(s.buf[:m])
			}
			s.feed(s.buf[:m])
			if s.enc != nil && rerr == nil {
				// What the origin sent so far goes on now, not when the
				// compressor's block is full: before the next read waits
				// when coalescing, else at once.
				if s.coalesce {
					s.unflushed = true
				} else if err := s.enc.Flush(); err != nil {
					rerr = err
				}
			}
		}
		switch {
		case errors.Is(rerr, io.EOF):
			s.end()
			s.eof = true
		case rerr != nil:
			// What was rewritten goes out; then the page is cut short, as a
			// streamed origin failure is.
			s.fail = rerr
		}
	}
	return nil
}

// read reads the page's next bytes into s.buf, decoded.
func (s *rewriteStream) read() (int, error) {
	if s.c == codingIdentity || s.asSent {
		return s.src.Read(s.buf)
	}
	if s.dec == nil {
		s.keepRaw = true
		d, err := s.h.codec.newStreamDecoder(rawRecorder{s}, s.c)
		if err != nil {
			return s.sendAsSent(err)
		}
		s.dec = d
	}
	n, err := s.dec.Read(s.buf)
	if s.keepRaw && n > 0 {
		s.dropRaw()
	} else if s.keepRaw && err != nil && !errors.Is(err, io.EOF) {
		return s.sendAsSent(err)
	}
	return n, err
}

// sendAsSent gives up on a body whose start does not decode: what the
// origin sent so far goes out as it came, and so will the rest. Nothing
// has been written to the visitor yet; the re-encoder, which has not
// written either, is dropped.
func (s *rewriteStream) sendAsSent(err error) (int, error) {
	if !s.keepRaw {
		return 0, err // past maxRawHead: nothing better than cutting it short
	}
	s.h.metrics.rewriteErrors.Inc()
	s.h.log.Debug().Err(err).Str("path", s.path).Msg("cannot decode streamed body; passing it through")
	s.asSent, s.plain = true, true
	s.h.codec.putStreamCoders(nil, s.enc, levelQuick)
	s.enc, s.dst = nil, &s.out
	s.out.Write(s.raw)
	s.dropRaw()
	return 0, nil
}

// feed takes the page's next decoded chunk.
func (s *rewriteStream) feed(b []byte) {
	switch {
	case s.plain:
		_, _ = s.dst.Write(b)
	case s.watching:
		s.watch(b)
	case s.rw != nil:
		_, _ = s.rw.Write(b) // writes to s.out, which does not fail
		if s.fhold.n > 0 && s.whole == nil && !s.rw.Following() {
			s.fhold.release() // it departed from the Reference
		}
		s.caughtUp()
	case !s.began:
		s.head = append(s.head, b...)
		if len(s.head) >= s.sniff {
			s.start()
		}
	}
}

// caughtUp goes back to watching for markers once the Rewriter holds
// nothing back: what follows is not tokenized until the next marker.
func (s *rewriteStream) caughtUp() {
	if s.rw.Pending() == 0 && !s.rw.HeadPending() {
		s.beginWatching()
	}
}

// start decides the page's encoding from its head and starts rewriting.
func (s *rewriteStream) start() {
	s.began = true
	ref := s.h.p.reference(s.pageKey)
	s.opts.Charset = ref.SniffCharset(s.ctype, s.head)
	if !s.opts.Charset.Supported() {
		s.plain = true
		s.h.p.m.badCharset.Inc()
		_, _ = s.dst.Write(s.head)
	} else if s.follow(ref) {
		_, _ = s.rw.Write(s.head)
	} else if s.opts.HeadSnippet != nil || s.opts.ReadHead {
		// The data layer goes before </head>, the beacon after <meta>
		// policies: tokenize from the start, until the head is read
		// (feed then watches for markers).
		s.rw = s.rewriter()
		if s.collect {
			s.collect = false // not at a marker, which would keep only what was watched
			s.collectFromStart()
		}
		_, _ = s.rw.Write(s.head)
	} else if s.beginWatching() {
		s.watch(s.head)
	} else {
		_, _ = s.dst.Write(s.head)
	}
	s.head = s.head[:0]
}

// collectFromStart keeps the page whole from its first bytes (s.head),
// to be its path's Reference: a page with a head snippet to place is
// tokenized from the start, not watched for its first slot marker, and
// is kept with or without one (the Reference places the snippet too).
func (s *rewriteStream) collectFromStart() {
	b := s.h.bufs.get()
	if !s.fhold.take(cap(*b)) {
		s.h.bufs.put(b)
		return
	}
	*b = (*b)[:0]
	s.whole = b
	s.keepWhole(s.head)
}

// follow starts filling the page by ref, the Reference kept for its
// path, if there is one and memory for the page.
func (s *rewriteStream) follow(ref *inject.Reference) bool {
	if ref == nil {
		s.collect = s.h.p.fresh.Again(s.pageKey)
		return false
	}
	if !s.fhold.take(inject.FollowBytes(ref)) {
		return false
	}
	s.rw = s.rewriter()
	if !s.rw.Follow(ref) {
		s.rw = nil
		s.fhold.release()
		return false
	}
	return true
}

// keepWhole adds b to the page kept in whole; past the rewrite limit or
// the memory for it, the page is not kept.
func (s *rewriteStream) keepWhole(b []byte) {
	w := *s.whole
	if need := len(w) + len(b); need > cap(w) {
		newCap := max(need, 2*cap(w))
		if need > s.h.rewriteLimit || !s.fhold.take(newCap-cap(w)) {
			s.dropWhole()
			return
		}
		w = slices.Grow(w, newCap-len(w))
	}
	*s.whole = append(w, b...)
}

// dropWhole lets go of the page kept in whole.
func (s *rewriteStream) dropWhole() {
	if s.whole != nil {
		s.h.bufs.put(s.whole)
		s.whole = nil
	}
	s.fhold.release()
}

// markerLen is the longest a slot marker's name runs into the next chunk.
const markerLen = len(inject.SlotAttr)

// beginWatching starts sending chunks on untokenized, kept in a buffer
// from the free list; without memory for that, the rest of the page
// passes through (and false is returned).
func (s *rewriteStream) beginWatching() bool {
	s.seen = s.h.bufs.get()
	*s.seen = (*s.seen)[:0]
	if !s.hold.take(cap(*s.seen)) {
		s.h.bufs.put(s.seen)
		s.seen, s.plain = nil, true
		return false
	}
	s.watching = true
	return true
}

// watch sends b on untouched unless it (with the end of what came before)
// holds a slot marker; then the tokenizer catches up on what was sent and
// rewriting starts with b.
func (s *rewriteStream) watch(b []byte) {
	from := max(0, len(*s.seen)-markerLen)
	if len(*s.seen)+len(b) > s.h.rewriteLimit || !s.keep(b) {
		// Past the rewrite limit or out of memory: a marker found later
		// could not be placed; the rest passes through.
		s.stopWatching(b)
		s.plain = true
		return
	}
	seen := *s.seen
	if !inject.MayHaveSlots(seen[from:]) {
		_, _ = s.dst.Write(b)
		return
	}
	// The tokenizer catches up on what was sent; the tail it holds back
	// (an unfinished tag or element) was sent too, so its output begins
	// with those bytes again and they are dropped.
	sent := seen[:len(seen)-len(b)]
	if s.rw == nil {
		s.rw = s.rewriter()
	}
	s.resend.n = len(s.rw.Skip(sent))
	if s.collect && s.whole == nil {
		s.whole, s.seen = s.seen, nil
		s.fhold.n += s.hold.handOver() // the same budget
	}
	// Only at the first marker does seen hold the page from its start: at
	// a later one (the page kept whole dropped meanwhile, past the limit)
	// it would be kept in part.
	s.collect = false
	s.stopWatching(nil)
	s.feed(b)
}

// rewriter returns the stream's Rewriter, new or reused, writing to the
// page through resend: however it began (following, tokenizing from the
// start, or at a marker), a page whose tokenizer has caught up is watched
// for markers again, and its catching up at the next one repeats bytes
// already sent, which resend drops.
func (s *rewriteStream) rewriter() *inject.Rewriter {
	s.resend.w = s.dst
	w := &s.resend
	if s.spare == nil {
		s.spare = inject.NewRewriter(w, s.lookup, &s.opts)
	} else {
		s.spare.Reset(w, s.lookup, &s.opts)
	}
	return s.spare
}

// dropWriter drops the first n bytes written to it: bytes already sent.
type dropWriter struct {
	w io.Writer
	n int
}

func (d *dropWriter) Write(p []byte) (int, error) {
	all := len(p)
	if d.n > 0 {
		k := min(d.n, len(p))
		p, d.n = p[k:], d.n-k
	}
	if len(p) > 0 {
		if _, err := d.w.Write(p); err != nil {
			return 0, err
		}
	}
	return all, nil
}

// keep appends b to seen, within h.buffered.
func (s *rewriteStream) keep(b []byte) bool {
	seen := *s.seen
	if need := len(seen) + len(b); need > cap(seen) {
		newCap := max(need, 2*cap(seen))
		if !s.hold.take(newCap - cap(seen)) {
			return false
		}
		seen = slices.Grow(seen, newCap-len(seen))
	}
	*s.seen = append(seen, b...)
	return true
}

// stopWatching sends b on (when set) and lets go of what was kept.
func (s *rewriteStream) stopWatching(b []byte) {
	if b != nil {
		_, _ = s.dst.Write(b)
	}
	if s.seen != nil {
		s.h.bufs.put(s.seen)
		s.seen = nil
	}
	s.watching = false
	s.hold.release()
}

// end processes what the origin's last chunk left.
func (s *rewriteStream) end() {
	if s.asSent {
		return
	}
	if !s.began {
		s.start()
	}
	if s.rw != nil {
		_ = s.rw.Close()
		if s.opts.ReadHead && !s.plain && s.v.seenAllowed() {
			_, _ = s.dst.Write(s.v.seenScript(nil)) // after the page's last byte
		}
		if s.rw.Following() {
			s.h.p.m.plansReused.Inc()
		} else if s.whole != nil && s.fail == nil {
			s.h.p.keepReference(s.pageKey, *s.whole)
		}
		if ig := s.rw.Ignored(); len(ig) > 0 {
			s.h.p.noteIgnored(s.path, ig)
		}
	}
	if s.enc != nil {
		s.unflushed = false // Close flushes it all
		if err := s.enc.Close(); err != nil {
			s.fail = err
		}
	}
}

// lookup is the visit's, made safe: a panic in a block costs that slot,
// not the rest of a page that is already on its way.
func (s *rewriteStream) lookup(slot []byte, at inject.Place) (b inject.Block, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			s.h.metrics.panics.Inc()
			s.h.log.Error().Str("panic", fmt.Sprint(r)).Bytes("slot", slot).Bytes("stack", debug.Stack()).Msg("recovered panic while filling a slot; it keeps its default")
			b, ok = inject.Block{}, false
		}
	}()
	return s.v.fill(slot, at)
}

// Close releases the origin's response, records the page's exposures and
// ends the visit. fasthttp calls it once the body is written or dropped;
// it is safe to call again.
func (s *rewriteStream) Close() error {
	if s.v == nil {
		return nil // closed already
	}
	filled := 0
	if s.rw != nil {
		filled = s.rw.Filled()
	}
	s.h.metrics.streamed(filled > 0)
	if s.eof && s.v.hasExposures() {
		s.h.p.emitExposures(s.path, s.v)
	}
	s.h.p.end(s.v)
	return s.release()
}

// release closes the origin's response and puts the stream back in the
// pool; Close does it for a stream that was the visitor's body, after
// ending the visit.
func (s *rewriteStream) release() error {
	err := s.src.Close()
	if s.watching {
		s.stopWatching(nil)
	}
	s.dropWhole()
	s.h.codec.putStreamCoders(s.dec, s.enc, levelQuick)
	s.chold.release()
	s.dropRaw()
	// Back to the pool with its buffers, nothing else.
	*s = rewriteStream{h: s.h, buf: s.buf, head: s.head[:0], ctype: s.ctype[:0], out: s.out, spare: s.spare, raw: s.raw}
	s.out.Reset()
	s.h.streams.Put(s)
	return err
}
