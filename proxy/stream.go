package proxy

import (
	"errors"
	"io"
	"slices"
	"strconv"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
)

// originStream hands an origin response body to fasthttp's server as the
// visitor's body stream, so bodies that are not rewritten are never held
// whole. fasthttp closes it when the response is written or abandoned;
// Close releases the origin response and, through CloseBodyStream, returns
// the origin connection to the pool or drops it if the body was not read to
// the end (fasthttp#1743).
type originStream struct {
	resp   *fasthttp.Response
	r      io.Reader
	prefix []byte // bytes already read from r while deciding what to do
	log    *zerolog.Logger
	path   string // copied: the RequestCtx is gone when this is read
	failed bool
	// first holds prefix when it is a buffer from bufs, to go back to it
	// once read.
	first *[]byte
	bufs  *freeList
	conn  *originConn // what resp is read from; nil for a body in memory
	out   pendingOut  // chunkedOrigin's bytes read and not yet sent
	// client is the visitor's connection, if it can hold a body's last
	// chunk back for the empty chunk fasthttp ends the body with.
	client lastChunkHolder
}

// A lastChunkHolder holds its next write back until the one after it, so
// both leave at once (limitedConn).
type lastChunkHolder interface{ holdNextWrite() }

// clientOf returns ctx's connection if it can hold a write back.
func clientOf(ctx *fasthttp.RequestCtx) lastChunkHolder {
	if c, ok := limitedOf(ctx.Conn()); ok {
		return c
	}
	return nil
}

func newOriginStream(resp *fasthttp.Response, prefix []byte, bufs *freeList, log *zerolog.Logger, path []byte) *originStream {
	return &originStream{resp: resp, r: resp.BodyStream(), prefix: prefix, bufs: bufs, log: log, path: string(path), conn: connOf(resp)}
}

func (s *originStream) Read(p []byte) (int, error) {
	if len(s.prefix) > 0 {
		n := copy(p, s.prefix)
		s.prefix = s.prefix[n:]
		if len(s.prefix) == 0 {
			s.putFirst()
		}
		return n, nil
	}
	if s.r == nil {
		return 0, io.EOF
	}
	n, err := s.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && !s.failed {
		s.failed = true
		if s.conn != nil && s.conn.waiterErr != nil {
			// The write to the visitor made while waiting on the origin
			// failed: the visitor left (a click away, a closed tab).
			s.log.Debug().Err(s.conn.waiterErr).Str("path", s.path).Msg("visitor left mid-body")
			return n, err
		}
		// Headers are already on their way to the visitor: all that can be
		// done is to cut the response short, so the client sees it as broken
		// rather than complete, and say why.
		_, cause := originFailure(err)
		s.log.Warn().Err(err).Str("cause", cause).Str("path", s.path).Msg("origin failed mid-body")
	}
	return n, err
}

// Close releases the origin response. It is safe to call more than once.
func (s *originStream) Close() error {
	s.putFirst()
	if s.resp == nil {
		return nil
	}
	err := s.resp.CloseBodyStream()
	fasthttp.ReleaseResponse(s.resp)
	s.resp, s.r = nil, nil
	return err
}

// putFirst gives the buffer of the body's first bytes back.
func (s *originStream) putFirst() {
	if s.first != nil {
		s.prefix = nil
		s.bufs.put(s.first)
		s.first = nil
	}
}

// chunkedOrigin is an originStream sent to the visitor chunked. fasthttp
// sends each Read of such a body as one chunk, flushed, and reads 4 KB at a
// time: a 60 KB page went out in fifteen writes. Through WriteTo, what has
// arrived from the origin goes out as one chunk, up to size bytes (the
// server's write buffer), when the next read from the origin would wait:
// as soon as edgeseg has it, and in as few writes as its arrival allows (a
// page the origin sends whole leaves in one). Without an originConn to
// tell, each read from the origin goes out when it comes. A type of its
// own: a body with a length is copied faster without a WriteTo (fasthttp
// reads it straight into its write buffer).
type chunkedOrigin struct {
	*originStream
	size int
}

// SupportsBodyWriteTo tells fasthttp WriteTo may be used instead of Read:
// it sends the same bytes, with the same promptness.
func (c chunkedOrigin) SupportsBodyWriteTo() bool { return true }

// WriteTo writes the body to w, one Write for what has arrived each time
// the origin has nothing more for now.
func (c chunkedOrigin) WriteTo(w io.Writer) (int64, error) {
	bp := c.bufs.get()
	defer c.bufs.put(bp)
	b := slices.Grow((*bp)[:0], c.size)
	*bp = b
	out := &c.out
	*out = pendingOut{w: w, b: b[:c.size]}
	defer func() { c.out = pendingOut{} }()
	prefix := c.prefix
	for len(prefix) > len(out.b) {
		// Read before the head went out, past what one write holds.
		m, err := w.Write(prefix[:len(out.b)])
		out.sent += int64(m)
		if err != nil {
			return out.sent, err
		}
		prefix = prefix[len(out.b):]
	}
	out.end = copy(out.b, prefix)
	c.prefix = nil
	c.putFirst()
	if c.conn != nil {
		c.conn.waiter = out
		defer func() { c.conn.waiter = nil }()
	}
	// A reader may return nothing and no error; not for ever.
	for empty := 0; empty < 100; {
		if out.end == len(out.b) || c.conn == nil {
			if err := out.beforeWait(); err != nil {
				return out.sent, err
			}
		}
		if out.start == out.end {
			out.start, out.end = 0, 0 // no read in flight: the whole buffer is free
		}
		n, err := c.Read(out.b[out.end:])
		out.end += n
		if n == 0 && err == nil {
			empty++
		}
		if err != nil {
			if errors.Is(err, io.EOF) && out.start != out.end && c.client != nil {
				c.client.holdNextWrite() // this last chunk goes with the end
			}
			if werr := out.beforeWait(); werr != nil {
				return out.sent, werr
			}
			if errors.Is(err, io.EOF) {
				return out.sent, nil
			}
			return out.sent, err
		}
	}
	if err := out.beforeWait(); err != nil {
		return out.sent, err
	}
	return out.sent, io.ErrNoProgress
}

// maxChunk is the most data a chunk may carry for it to leave in one write
// from a write buffer of size bytes, its framing (size line, CRLF) included:
// a chunk as large as the buffer goes out in two writes, the second of a few
// bytes, a packet of its own.
func maxChunk(size int) int {
	return size - len(strconv.FormatInt(int64(size), 16)) - len("\r\n\r\n")
}

// pendingOut is the part of a buffer read from the origin and not yet
// written to the visitor: b[start:end]. The origin's next read lands at
// b[end:], so writing it out (from inside that read, before it waits)
// leaves end where it is.
type pendingOut struct {
	w          io.Writer
	b          []byte
	start, end int
	sent       int64
}

// beforeWait writes what is pending: the origin has nothing more for now.
func (o *pendingOut) beforeWait() error {
	if o.start == o.end {
		return nil
	}
	n, err := o.w.Write(o.b[o.start:o.end])
	o.sent += int64(n)
	o.start = o.end
	return err
}
