package inject

import "io"

// A Splice is a page as it will be sent, without a copy of it: runs of the
// page's own bytes, where they are, between bytes made for it (blocks, the
// segment attributes, the head snippet, a script after the page). A page
// of 60 KB with three slots is then written out from the origin's buffer
// and a few hundred bytes of blocks, instead of being copied whole into
// another buffer first. The zero Splice is ready for Plan.ApplySplice; one
// may be reused after Reset.
type Splice struct {
	page []byte
	// Made holds the bytes made for the page, in order; pieces point
	// into it by offset, so it may grow.
	Made   []byte
	pieces []piece
	size   int

	// The reader's position (Read), in pieces and within the piece.
	at, off int
}

// piece is page[from:to], or Made[from:to] when made.
type piece struct {
	from, to int
	made     bool
}

// Reset empties s for page, keeping its buffers.
func (s *Splice) Reset(page []byte) {
	s.page = page
	s.Made = s.Made[:0]
	s.pieces = s.pieces[:0]
	s.size, s.at, s.off = 0, 0, 0
}

// ResetWhole resets s for page, to write it as it is.
func (s *Splice) ResetWhole(page []byte) {
	s.Reset(page)
	s.keep(0, len(page))
}

// Len is the length of the page as s writes it.
func (s *Splice) Len() int { return s.size }

// keep appends the page's bytes [from, to).
func (s *Splice) keep(from, to int) {
	if from >= to {
		return
	}
	s.size += to - from
	if n := len(s.pieces); n > 0 && !s.pieces[n-1].made && s.pieces[n-1].to == from {
		s.pieces[n-1].to = to
		return
	}
	s.pieces = append(s.pieces, piece{from: from, to: to})
}

// Extend counts the bytes appended to s.Made since it was from bytes
// long as the page's next bytes.
func (s *Splice) Extend(from int) {
	to := len(s.Made)
	if from >= to {
		return
	}
	s.size += to - from
	if n := len(s.pieces); n > 0 && s.pieces[n-1].made && s.pieces[n-1].to == from {
		s.pieces[n-1].to = to
		return
	}
	s.pieces = append(s.pieces, piece{from: from, to: to, made: true})
}

func (s *Splice) bytesOf(p piece) []byte {
	if p.made {
		return s.Made[p.from:p.to]
	}
	return s.page[p.from:p.to]
}

// AppendTo appends the page as s writes it to dst.
func (s *Splice) AppendTo(dst []byte) []byte {
	for _, p := range s.pieces {
		dst = append(dst, s.bytesOf(p)...)
	}
	return dst
}

// WriteTo writes the page to w, a piece at a time, from where Read has
// left it.
func (s *Splice) WriteTo(w io.Writer) (int64, error) {
	var n int64
	for ; s.at < len(s.pieces); s.at, s.off = s.at+1, 0 {
		b := s.bytesOf(s.pieces[s.at])[s.off:]
		m, err := w.Write(b)
		n += int64(m)
		if err != nil {
			s.off += m
			return n, err
		}
	}
	return n, nil
}

// Read reads the page as s writes it.
func (s *Splice) Read(b []byte) (int, error) {
	n := 0
	for n < len(b) && s.at < len(s.pieces) {
		m := copy(b[n:], s.bytesOf(s.pieces[s.at])[s.off:])
		n += m
		s.off += m
		if s.off == s.pieces[s.at].to-s.pieces[s.at].from {
			s.at, s.off = s.at+1, 0
		}
	}
	if n == 0 && len(b) > 0 {
		return 0, io.EOF
	}
	return n, nil
}

// add appends b to the made bytes, as the page's next bytes.
func (s *Splice) add(b []byte) {
	m := len(s.Made)
	s.Made = append(s.Made, b...)
	s.Extend(m)
}
