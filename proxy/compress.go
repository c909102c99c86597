package proxy

import (
	"bytes"
	"errors"
	"io"
	"slices"

	"github.com/valyala/fasthttp"

	"github.com/edgeseg/edgeseg/cache"
)

// minCompressed is the smallest body of known length worth compressing
// here: below it, gzip's framing eats most of what it saves.
const minCompressed = 256

// compressHere returns the coding resp's body, passed through unfilled,
// goes to the visitor in: not identity only when edgeseg asked the origin
// for it uncompressed (rewrite.ask_uncompressed) for a visitor that
// accepts a compressed body, and the body is text worth compressing that
// the origin did not compress and did not mark no-transform. Without
// this, an error page, a navigation to JSON or a page past
// rewrite.max_body_bytes would reach such a visitor larger than the
// origin would have sent it.
func (h *Handler) compressHere(ctx *fasthttp.RequestCtx, resp *fasthttp.Response, x *exchange) coding {
	if !x.asked || x.compress == codingIdentity || !ctx.Request.Header.IsHTTP11() {
		return codingIdentity
	}
	rh := &resp.Header
	if n := rh.ContentLength(); n >= 0 && n < minCompressed {
		return codingIdentity
	}
	if parseCoding(rh.ContentEncoding()) != codingIdentity || len(rh.Peek("Content-Range")) > 0 || !compressible(rh.ContentType()) ||
		cache.HasDirective(rh.Peek("Cache-Control"), "no-transform") {
		return codingIdentity
	}
	return x.compress
}

// compressible reports a media type whose bodies compress well: text
// (an event stream aside: its messages must leave as they come), and
// JSON, JavaScript, XML and SVG.
func compressible(ct []byte) bool {
	typ, sub, ok := bytes.Cut(mediaType(ct), []byte("/"))
	if !ok || len(sub) == 0 {
		return false
	}
	is := func(b []byte, s string) bool { return bytes.EqualFold(b, []byte(s)) }
	switch {
	case is(typ, "text"):
		return !is(sub, "event-stream")
	case is(typ, "application"), is(typ, "image"):
		if i := bytes.LastIndexByte(sub, '+'); i >= 0 {
			return is(sub[i:], "+json") || is(sub[i:], "+xml")
		}
		for _, s := range []string{"json", "javascript", "x-javascript", "ecmascript", "xml", "wasm"} {
			if is(sub, s) {
				return true
			}
		}
	}
	return false
}

// sendCompressed answers with the body of s in c, compressed here: with
// a length when the body is at hand whole (read already, or kept by the
// origin cache; at the memo's level once the same body comes again),
// else chunked as it arrives. It reports false, having answered nothing,
// when there is no memory for it within rewrite.max_buffered_bytes (or
// the encoder failed): the body is to go as sent.
func (h *Handler) sendCompressed(ctx *fasthttp.RequestCtx, s *originStream, c coding, whole []byte) bool {
	rh := &ctx.Response.Header
	if whole != nil {
		hold := h.buffered.hold()
		defer hold.release()
		encp, err := h.encodeBuf(whole, c, hold.take)
		if err == nil {
			setCompressed(rh, c)
			_ = s.Close()
			h.sendBuf(ctx, encp, hold.handOver())
			return true
		}
		return false // counted and, if the encoder failed, logged
	}
	co := &compressedOrigin{originStream: s, cd: h.codec, c: c, size: h.chunkData, hold: budgetHold{b: h.buffered}}
	if !co.hold.take(coderBytes(c, true)) {
		h.metrics.noBudget.Inc()
		return false
	}
	setCompressed(rh, c)
	ctx.Response.SetBodyStream(co, -1)
	return true
}

// setCompressed marks a response whose body is compressed here in c.
func setCompressed(rh *fasthttp.ResponseHeader, c coding) {
	rh.Set(fasthttp.HeaderContentEncoding, c.name())
	addVary(rh, "Accept-Encoding")
	weakenETag(rh)
	dropByteClaims(rh)
}

// compressedOrigin is an originStream compressed on its way to the visitor
// (sendCompressed). Like chunkedOrigin's, its chunks leave when the origin
// pauses: what the encoder has made by then, flushed, goes out as one
// chunk (up to size bytes each), so a page the origin sends in parts is
// shown in parts.
type compressedOrigin struct {
	*originStream
	cd   *codec
	c    coding
	size int
	hold budgetHold // the encoder's coderBytes, until Close
}

// SupportsBodyWriteTo tells fasthttp WriteTo may be used instead of Read
// (it is the only way this body is written).
func (c *compressedOrigin) SupportsBodyWriteTo() bool { return true }

// Read is not used by fasthttp (WriteTo is); it fails rather than hand on
// the body uncompressed under a Content-Encoding that says otherwise.
func (c *compressedOrigin) Read([]byte) (int, error) {
	return 0, errors.New("proxy: a compressed origin body is only written with WriteTo")
}

// Close releases the origin response and the encoder's share of the
// budget. fasthttp calls it once the body is written or dropped; it is
// safe to call again.
func (c *compressedOrigin) Close() error {
	c.hold.release()
	return c.originStream.Close()
}

// WriteTo compresses the body into w. When the origin fails mid-body the
// encoding is left unfinished, and the error returned, so the visitor
// sees the response cut short, not complete.
func (c *compressedOrigin) WriteTo(w io.Writer) (int64, error) {
	inp, outp := c.bufs.get(), c.bufs.get()
	defer c.bufs.put(inp)
	defer c.bufs.put(outp)
	in := slices.Grow((*inp)[:0], c.size)
	*inp = in
	in = in[:cap(in)]
	out := &encodedOut{w: w, b: slices.Grow((*outp)[:0], c.size), size: c.size}
	defer func() { *outp = out.b[:0] }()
	enc := c.cd.newStreamEncoder(out, c.c, levelQuick)
	defer c.cd.putStreamCoders(nil, enc, levelQuick)
	out.enc = enc
	if c.conn != nil {
		c.conn.waiter = out
		defer func() { c.conn.waiter = nil }()
	}
	// A reader may return nothing and no error; not for ever.
	for empty := 0; empty < 100; {
		n, err := c.originStream.Read(in)
		if n > 0 {
			if _, werr := enc.Write(in[:n]); werr != nil {
				return out.sent, werr
			}
			out.unflushed = true
			if c.conn == nil && err == nil {
				// No connection to tell when the origin pauses: each
				// read goes out as it comes.
				if werr := out.beforeWait(); werr != nil {
					return out.sent, werr
				}
			}
		} else if err == nil {
			empty++
		}
		if errors.Is(err, io.EOF) {
			if werr := enc.Close(); werr != nil {
				return out.sent, werr
			}
			if c.client != nil && len(out.b) > 0 {
				c.client.holdNextWrite() // the last chunk goes with the end
			}
			return out.sent, out.writeOut()
		}
		if err != nil {
			_ = out.writeOut()
			return out.sent, err
		}
	}
	return out.sent, io.ErrNoProgress
}

// encodedOut collects what a stream encoder makes and writes it to w as
// one chunk when size bytes are waiting or the origin pauses.
type encodedOut struct {
	w         io.Writer
	enc       streamEncoder
	b         []byte
	size      int
	sent      int64
	unflushed bool // the encoder has input it has not been flushed of
}

// Write takes the encoder's output.
func (o *encodedOut) Write(p []byte) (int, error) {
	o.b = append(o.b, p...)
	if len(o.b) >= o.size {
		if err := o.writeOut(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// beforeWait flushes the encoder and sends what it made: the origin has
// nothing more for now.
func (o *encodedOut) beforeWait() error {
	if o.unflushed {
		o.unflushed = false
		if err := o.enc.Flush(); err != nil {
			return err
		}
	}
	return o.writeOut()
}

// writeOut writes what is waiting, in pieces of at most size bytes.
func (o *encodedOut) writeOut() error {
	b := o.b
	for len(b) > 0 {
		m := min(len(b), o.size)
		n, err := o.w.Write(b[:m])
		o.sent += int64(n)
		if err != nil {
			o.b = o.b[:0]
			return err
		}
		b = b[m:]
	}
	o.b = o.b[:0]
	return nil
}
