package proxy

import (
	"errors"
	"io"
	"slices"

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
}

func newOriginStream(resp *fasthttp.Response, prefix []byte, bufs *freeList, log *zerolog.Logger, path []byte) *originStream {
	return &originStream{resp: resp, r: resp.BodyStream(), prefix: prefix, bufs: bufs, log: log, path: string(path)}
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
		// Headers are already on their way to the visitor: all that can be
		// done is to cut the response short, so the client sees it as broken
		// rather than complete, and say why.
		s.failed = true
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
// time: a 60 KB page went out in fifteen writes. Through WriteTo, what each
// read from the origin gives goes out as one chunk, as soon as it arrives:
// up to size bytes (the server's write buffer), so a page the origin has
// sent whole by then leaves in one write. A type of its own: a body with a
// length is copied faster without a WriteTo (fasthttp reads it straight
// into its write buffer).
type chunkedOrigin struct {
	*originStream
	size int
}

// SupportsBodyWriteTo tells fasthttp WriteTo may be used instead of Read:
// it sends the same bytes, with the same promptness.
func (c chunkedOrigin) SupportsBodyWriteTo() bool { return true }

// WriteTo writes the body to w, one Write per read from the origin.
func (c chunkedOrigin) WriteTo(w io.Writer) (int64, error) {
	var sent int64
	if len(c.prefix) > 0 {
		// Read before the head went out: sent from its own buffer.
		m, err := w.Write(c.prefix)
		sent += int64(m)
		c.prefix = nil
		c.putFirst()
		if err != nil {
			return sent, err
		}
	}
	bp := c.bufs.get()
	defer c.bufs.put(bp)
	b := slices.Grow((*bp)[:0], c.size)
	*bp = b
	b = b[:c.size]
	// A reader may return nothing and no error; not for ever.
	for empty := 0; empty < 100; {
		n, err := c.Read(b)
		if n > 0 {
			m, werr := w.Write(b[:n])
			sent += int64(m)
			if werr != nil {
				return sent, werr
			}
		} else if err == nil {
			empty++
		}
		if errors.Is(err, io.EOF) {
			return sent, nil
		}
		if err != nil {
			return sent, err
		}
	}
	return sent, io.ErrNoProgress
}
