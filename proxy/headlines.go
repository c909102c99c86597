package proxy

import "bytes"

// headLines follows the heads of the answers read from a plain origin
// connection, and gives a CR to each of their lines that ends with a bare
// LF. RFC 9112 2.2 lets a recipient take a bare LF for the end of a head's
// line, and nginx, curl and browsers do; fasthttp's parser does not, and
// such an answer (a small embedded server's, a hand-written script's) was
// a 502. Only heads are mended: a body is passed on as it came, and a
// chunked body framed with bare LFs is still refused by fasthttp, which
// guards chunk framing against smuggling.
//
// A head whose lines end with CRLF, as every common server's do, costs a
// look at each of its line ends.
type headLines struct {
	on    bool // within an answer's head (or a 1xx head before it)
	mend  bool // a bare LF was seen in this head
	begun bool // the status line has been read (not just CRLFs before it)
	prev  byte // the last byte looked at, in an earlier read
	line  int  // bytes of the current line so far, a CR included
	// status holds the status line's first bytes, "HTTP/1.1 103", to
	// tell an interim answer, another head after it, from the last one.
	status [len("HTTP/1.1 100")]byte
	got    int
	// pending holds mended bytes that did not fit the reader's buffer,
	// to be read before the connection is read again.
	pending []byte
}

// start is called at the first read of an answer.
func (h *headLines) start() {
	*h = headLines{on: true, pending: h.pending[:0]}
}

// read follows p[:n], just read, through the head, and mends the bare LFs
// of its lines in place. What then no longer fits p waits in h.pending. It
// returns how many bytes p now holds.
func (h *headLines) read(p []byte, n int) int {
	prev := h.prev
	end, bare := h.scan(p[:n])
	if !bare {
		return n
	}
	mended := make([]byte, 0, n+n/4+2)
	for _, b := range p[:end] {
		if b == '\n' && prev != '\r' {
			mended = append(mended, '\r')
		}
		mended = append(mended, b)
		prev = b
	}
	mended = append(mended, p[end:n]...)
	c := copy(p, mended)
	h.pending = append(h.pending, mended[c:]...)
	return c
}

// scan follows b through the head: end is where the head ends in b
// (len(b) when it goes on past b), and bare whether a line of this head
// ended with a bare LF, in b or before it.
func (h *headLines) scan(b []byte) (end int, bare bool) {
	if len(b) == 0 {
		return 0, h.mend
	}
	defer func() { h.prev = b[end-1] }()
	for i := 0; i < len(b); {
		j := bytes.IndexByte(b[i:], '\n')
		text := b[i:]
		if j >= 0 {
			text = text[:j]
		}
		if !h.begun && h.got < len(h.status) {
			h.got += copy(h.status[h.got:], text)
		}
		if j < 0 {
			h.line += len(text)
			break
		}
		lf := i + j
		before := h.prev
		if lf > 0 {
			before = b[lf-1]
		}
		length := h.line + j
		if before == '\r' {
			length--
		} else {
			h.mend = true
		}
		h.line, i = 0, lf+1
		switch {
		case length > 0:
			h.begun = true
		case !h.begun:
			h.got = 0 // a CRLF before the status line, which fasthttp lets pass
		case h.interim():
			h.begun, h.got = false, 0 // another head follows
		default:
			h.on = false
			return i, h.mend
		}
	}
	return len(b), h.mend
}

// interim reports whether the head just read is a 1xx answer's (but a 101,
// after which the connection leaves HTTP): another head follows it.
func (h *headLines) interim() bool {
	code := h.status[len("HTTP/1.1 "):]
	return h.got == len(h.status) && code[0] == '1' && string(code) != "101"
}
