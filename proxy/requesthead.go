package proxy

import (
	"errors"
	"fmt"
)

// errBareLF is the read error of a connection whose first request head
// ends in a blank line other than CRLF CRLF: "GET / HTTP/1.1\nHost:
// a\n\n", as a request typed into nc or telnet has. fasthttp reads a
// head only once it ends in CRLF CRLF (a head framed otherwise is a
// request-smuggling risk, where proxies disagree on where it ends), and
// would wait for one until server.read_timeout; the visitor gets a 400
// saying why instead.
var errBareLF = errors.New("the request head's lines end in a bare LF, not CRLF")

// errNotHTTP is the read error of a connection whose first bytes cannot
// begin an HTTP/1 request: a method is a token, so a byte outside one
// before the first space means the peer speaks something else. Most often
// it is a TLS handshake (a browser sent to https:// on a plain HTTP port),
// which would otherwise wait for a head that never comes until
// server.read_timeout, while the browser shows a blank page.
var errNotHTTP = errors.New("the connection does not begin with an HTTP request line")

// errTLSHandshake is errNotHTTP when the first byte is a TLS handshake
// record's (22).
var errTLSHandshake = fmt.Errorf("%w: a TLS handshake on a plain HTTP port", errNotHTTP)

// headEnd follows the bytes of a connection's first request head, as they
// are read, to where it ends: at its first blank line (blank lines before
// the request line are passed over, as servers do).
type headEnd struct {
	done     bool // the head ended, in CRLF CRLF, or past maxHeadScan
	started  bool // the request line has begun
	method   bool // the request line's method is done (a space came)
	cr       bool // the last byte was '\r'
	blank    bool // the line so far holds nothing, or a '\r' only
	lastCRLF bool // the line before ended in CRLF
	seen     int
}

// maxHeadScan bounds how much of a head is followed: fasthttp refuses a
// head larger than its read buffer (server.max_header_bytes) itself.
const maxHeadScan = 1 << 20

// read follows p, the next bytes read; it returns errBareLF once the head
// has ended in a blank line other than CRLF CRLF, and errNotHTTP once a
// byte that no method holds comes before the request line's first space.
// Past the head's end it does nothing.
func (h *headEnd) read(p []byte) error {
	if h.done {
		return nil
	}
	for _, c := range p {
		if h.seen++; h.seen > maxHeadScan {
			h.done = true
			return nil
		}
		if !h.started {
			if c == '\r' || c == '\n' {
				continue
			}
			h.started = true
			if c == 0x16 {
				h.done = true
				return errTLSHandshake
			}
		}
		if !h.method {
			if c == ' ' {
				h.method = true
			} else if !tokenBytes[c] {
				h.done = true
				return errNotHTTP
			}
		}
		switch c {
		case '\n':
			if h.blank {
				h.done = true
				if !h.cr || !h.lastCRLF {
					return errBareLF
				}
				return nil
			}
			h.lastCRLF, h.blank, h.cr = h.cr, true, false
		case '\r':
			h.cr = true
		default:
			h.cr, h.blank = false, false
		}
	}
	return nil
}
