package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime/debug"

	"github.com/valyala/fasthttp"

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
	rw    *inject.Rewriter // nil until the encoding is known
	plain bool             // an encoding blocks cannot go into: pass through
	head  []byte           // bytes held until the encoding is known
	sniff int              // how many: inject.SniffBytes
	out   bytes.Buffer     // rewritten (and re-encoded), not yet read by fasthttp
	buf   []byte
	c     coding
	dec   io.Reader     // the page decoded, when the origin compressed it
	enc   streamEncoder // re-encodes into out; nil for identity
	dst   io.Writer     // where rewritten HTML goes: enc or out
	eof   bool
	fail  error
}

// rewriteStreamed answers with the streamed page resp, personalized as it
// arrives. The caching headers of a personalized page are set now: the
// head goes out before anyone knows whether a slot will be filled.
func (h *Handler) rewriteStreamed(ctx *fasthttp.RequestCtx, resp *fasthttp.Response, x *exchange, c coding) {
	v := x.visit
	s := &rewriteStream{h: h, v: v, path: string(ctx.Path()), buf: make([]byte, 16<<10), c: c,
		ctype: append([]byte(nil), resp.Header.ContentType()...)}
	s.sniff = inject.SniffBytes(s.ctype)
	s.src = newOriginStream(resp, nil, &h.log, ctx.Path())
	s.dst = &s.out
	if c != codingIdentity {
		s.enc = h.codec.newStreamEncoder(&s.out, c)
		s.dst = s.enc
	}
	if v.pl.cfg.Templates.DataLayer {
		s.opts.HeadSnippet = v.dataLayer(cspNonce(ctx.Response.Header.Peek("Content-Security-Policy")))
	}
	markPersonalized(&ctx.Response.Header)
	ctx.Response.SetBodyStream(s, -1)
	x.streamed = true // the stream, not finish, ends the visit
}

// Read hands on the next rewritten bytes, reading from the origin as
// needed.
func (s *rewriteStream) Read(p []byte) (n int, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.h.metrics.panics.Inc()
			s.h.log.Error().Str("panic", fmt.Sprint(r)).Str("path", s.path).Bytes("stack", debug.Stack()).Msg("recovered panic while rewriting a streamed page; cutting it short")
			s.fail = errRewritePanic
			n, err = 0, s.fail
		}
	}()
	for s.out.Len() == 0 {
		if s.fail != nil {
			return 0, s.fail
		}
		if s.eof {
			return 0, io.EOF
		}
		m, rerr := s.read()
		if m > 0 {
			s.feed(s.buf[:m])
			if s.enc != nil && rerr == nil {
				// What the origin sent so far goes on now, not when the
				// compressor's block is full.
				if err := s.enc.Flush(); err != nil {
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
	return s.out.Read(p)
}

// read reads the page's next bytes into s.buf, decoded.
func (s *rewriteStream) read() (int, error) {
	if s.c == codingIdentity {
		return s.src.Read(s.buf)
	}
	if s.dec == nil {
		d, err := s.h.codec.newStreamDecoder(s.src, s.c)
		if err != nil {
			return 0, err
		}
		s.dec = d
	}
	return s.dec.Read(s.buf)
}

// feed takes the page's next decoded chunk.
func (s *rewriteStream) feed(b []byte) {
	switch {
	case s.plain:
		_, _ = s.dst.Write(b)
	case s.rw != nil:
		_, _ = s.rw.Write(b) // writes to s.out, which does not fail
	default:
		s.head = append(s.head, b...)
		if len(s.head) >= s.sniff {
			s.start()
		}
	}
}

// start decides the page's encoding from its head and starts rewriting.
func (s *rewriteStream) start() {
	s.opts.Charset = inject.SniffCharset(s.ctype, s.head)
	if !s.opts.Charset.Supported() {
		s.plain = true
		s.h.p.m.badCharset.Inc()
		_, _ = s.dst.Write(s.head)
	} else {
		s.rw = inject.NewRewriter(s.dst, s.lookup, &s.opts)
		_, _ = s.rw.Write(s.head)
	}
	s.head = nil
}

// end processes what the origin's last chunk left.
func (s *rewriteStream) end() {
	if s.rw == nil && !s.plain {
		s.start()
	}
	if s.rw != nil {
		_ = s.rw.Close()
	}
	if s.enc != nil {
		if err := s.enc.Close(); err != nil {
			s.fail = err
		}
	}
}

// lookup is the visit's, made safe: a panic in a block costs that slot,
// not the rest of a page that is already on its way.
func (s *rewriteStream) lookup(slot []byte) (b inject.Block, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			s.h.metrics.panics.Inc()
			s.h.log.Error().Str("panic", fmt.Sprint(r)).Bytes("slot", slot).Bytes("stack", debug.Stack()).Msg("recovered panic while filling a slot; it keeps its default")
			b, ok = inject.Block{}, false
		}
	}()
	return s.v.fill(slot)
}

// Close releases the origin's response, records the page's exposures and
// ends the visit. fasthttp calls it once the body is written or dropped;
// it is safe to call again.
func (s *rewriteStream) Close() error {
	err := s.src.Close()
	if s.enc != nil {
		s.h.codec.putStreamEncoder(s.enc)
		s.enc = nil
	}
	if s.v != nil {
		filled := 0
		if s.rw != nil {
			filled = s.rw.Filled()
		}
		s.h.metrics.streamed(filled > 0)
		if s.eof && len(s.v.exposures) > 0 && s.v.forced == "" && !s.v.prefetch {
			s.h.p.emitExposures(s.path, s.v)
		}
		s.h.p.end(s.v)
		s.v = nil
	}
	return err
}
