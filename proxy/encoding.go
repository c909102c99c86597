package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"

	"github.com/edgeseg/edgeseg/cache"
)

// errTooLarge is returned when a decoded body passes the rewrite limit.
var errTooLarge = errors.New("decoded body larger than rewrite.max_body_bytes")

// coding is a Content-Encoding edgeseg can undo and redo.
type coding uint8

const (
	codingIdentity coding = iota
	codingGzip
	codingBrotli
	codingDeflate
	codingUnknown
)

// parseCoding maps a Content-Encoding value to a coding. Stacked codings
// ("gzip, br") and unknown ones are codingUnknown: such bodies pass through.
func parseCoding(v []byte) coding {
	v = bytes.TrimSpace(v)
	switch {
	case len(v) == 0, bytes.EqualFold(v, []byte("identity")):
		return codingIdentity
	case bytes.EqualFold(v, []byte("gzip")), bytes.EqualFold(v, []byte("x-gzip")):
		return codingGzip
	case bytes.EqualFold(v, []byte("br")):
		return codingBrotli
	case bytes.EqualFold(v, []byte("deflate")):
		return codingDeflate
	}
	return codingUnknown
}

// name is c's Content-Encoding token.
func (c coding) name() string {
	switch c {
	case codingGzip:
		return "gzip"
	case codingBrotli:
		return "br"
	case codingDeflate:
		return "deflate"
	}
	return ""
}

// preferredCoding is the coding edgeseg compresses a page in for a
// visitor whose Accept-Encoding is ae: gzip (a third of brotli's CPU for
// a few percent more bytes, the page being compressed on most requests),
// else brotli, else none.
func preferredCoding(ae []byte) coding {
	switch {
	case accepts(ae, "gzip"):
		return codingGzip
	case accepts(ae, "br"):
		return codingBrotli
	}
	return codingIdentity
}

// accepts reports whether the Accept-Encoding ae takes the coding name:
// listed (x-gzip for gzip), or else matched by "*", with a q-value above 0.
func accepts(ae []byte, name string) bool {
	listed, ok, star := false, false, false
	for rest := ae; len(rest) > 0; {
		var item []byte
		item, rest = cache.NextListItem(rest)
		tok, params, _ := bytes.Cut(item, []byte(";"))
		tok = bytes.TrimSpace(tok)
		switch {
		case bytes.EqualFold(tok, []byte(name)) || name == "gzip" && bytes.EqualFold(tok, []byte("x-gzip")):
			listed = true
			ok = ok || qPositive(params)
		case bytes.Equal(tok, []byte("*")):
			star = qPositive(params)
		}
	}
	if listed {
		return ok
	}
	return star
}

// qPositive reports whether the parameters after a coding give it a
// q-value above 0 (no q, or one not made of zeros, counts as above).
func qPositive(params []byte) bool {
	for rest := params; len(rest) > 0; {
		var p []byte
		p, rest, _ = bytes.Cut(rest, []byte(";"))
		k, v, _ := bytes.Cut(bytes.TrimSpace(p), []byte("="))
		if !bytes.EqualFold(bytes.TrimSpace(k), []byte("q")) {
			continue
		}
		v = bytes.TrimSpace(v)
		return len(bytes.Trim(v, "0.")) > 0 || len(v) == 0
	}
	return true
}

// codec decodes and re-encodes bodies with pooled state. It is safe for
// concurrent use.
type codec struct {
	// The encoders' levels, by effort: a page the memo keeps is
	// compressed once for every visitor it goes to (levelKept); one
	// compressed anew on every request, as a streamed page or one that
	// differs per request is, costs its compression each time
	// (levelQuick). On real pages of 70–300 KB, brotli at quality 4 took
	// three times gzip 5's CPU, and gzip 5 twice gzip 1's (1.2 ms, 0.36
	// and 0.15 ms for a 72 KB page), each for some 12-15% fewer bytes.
	gzipLevel   [2]int
	brotliLevel [2]int
	gzipR       sync.Pool    // *gzip.Reader
	gzipW       [2]sync.Pool // *gzip.Writer, by effort
	brR         sync.Pool    // *brotli.Reader
	brW         [2]sync.Pool // *brotli.Writer, by effort
	// memo keeps whole bodies decoded and encoded, by a hash of the bytes
	// they were made from (one hash function per direction and coding): the
	// same compressed origin page, and the same personalized page for a
	// whole segment, are decompressed and compressed once, not on every
	// request. A 60 KB page from a gzip origin cost 400–500 µs a
	// personalized request, nearly all of it the two codings. nil: nothing
	// kept. A body is kept the second time it is coded (fresh): one that
	// changes on every request is never copied in.
	memo  *cache.Checked[[]byte]
	fresh *cache.Doorkeeper
	keys  [2][codingUnknown]cache.Hasher
}

// The two directions a body is coded in, for codec.keys.
const (
	decoding = iota
	encoding
)

// memoCost is what an entry of codec.memo costs beyond its bytes.
const memoCost = 64

// The encoders' efforts, for codec's levels and pools.
type effort int

const (
	levelKept  effort = iota // a page the memo keeps
	levelQuick               // a page compressed on every request
)

// newCodec returns a codec compressing the pages its memo keeps at
// gzipLevel and brotliLevel, and others at quickLevel.
func newCodec(gzipLevel, brotliLevel, quickLevel int) *codec {
	return &codec{gzipLevel: [2]int{gzipLevel, quickLevel}, brotliLevel: [2]int{brotliLevel, quickLevel}}
}

// remember makes cd keep what it codes in memo.
func (cd *codec) remember(memo *cache.Checked[[]byte], maxItems int) error {
	for d := range cd.keys {
		for c := range cd.keys[d] {
			h, err := cache.NewHasher()
			if err != nil {
				return err
			}
			cd.keys[d][c] = h
		}
	}
	cd.memo = memo
	cd.fresh = cache.NewDoorkeeper(4 * maxItems)
	return nil
}

// recall looks up what from gives coded in direction d with c.
func (cd *codec) recall(d int, c coding, from []byte) (k cache.Key128, v []byte, ok bool) {
	if cd.memo == nil || c >= codingUnknown {
		return k, nil, false
	}
	k = cd.keys[d][c].Sum(from)
	v, ok = cd.memo.Get(k)
	return k, v, ok
}

// keep offers a copy of v for k (from recall) to the memo, if k was
// coded before.
func (cd *codec) keep(k cache.Key128, v []byte) {
	if cd.keeps(k) {
		cd.store(k, v)
	}
}

// keeps reports whether what is coded for k (from recall) is to be kept:
// k was coded before. It remembers k for next time.
func (cd *codec) keeps(k cache.Key128) bool {
	return cd.memo != nil && k != (cache.Key128{}) && cd.fresh.Again(k)
}

// store offers a copy of v for k to the memo.
func (cd *codec) store(k cache.Key128, v []byte) {
	cd.memo.Set(k, bytes.Clone(v), int64(len(v))+memoCost)
}

// decode appends body decoded from c to dst. It stops with errTooLarge as
// soon as the output would pass limit bytes, so a small compressed body
// cannot expand without bound.
func (cd *codec) decode(dst, body []byte, c coding, limit int) ([]byte, error) {
	out, shared, err := cd.decodeShared(dst, body, c, limit, limit)
	if shared {
		return append(dst, out...), nil
	}
	return out, err
}

// decodeShared is decode, but a body the memo keeps decoded (c not
// identity) is returned as the memo keeps it, shared, not to be written
// to, and not appended to dst; it holds no memory of its own, so it is
// bounded by sharedLimit instead of limit.
func (cd *codec) decodeShared(dst, body []byte, c coding, limit, sharedLimit int) (out []byte, shared bool, err error) {
	if c == codingIdentity {
		if len(body) > limit {
			return dst, false, errTooLarge
		}
		return append(dst, body...), false, nil
	}
	k, v, ok := cd.recall(decoding, c, body)
	if ok {
		if len(v) > sharedLimit {
			return dst, false, errTooLarge
		}
		return v, true, nil
	}
	var r io.Reader
	src := bytes.NewReader(body)
	switch c {
	case codingGzip, codingBrotli:
		d, err := cd.newStreamDecoder(src, c)
		if err != nil {
			return dst, false, err
		}
		defer cd.putStreamCoders(d, nil, levelQuick)
		r = d
	case codingDeflate:
		// "deflate" is zlib-wrapped by the RFC, raw in some servers: try both.
		zr, err := zlib.NewReader(src)
		if err != nil {
			r = flate.NewReader(bytes.NewReader(body))
		} else {
			r = zr
		}
	default:
		return dst, false, fmt.Errorf("unsupported content encoding")
	}
	out, err = readLimited(dst, r, limit, nil)
	if err == nil {
		cd.keep(k, out[len(dst):])
	}
	return out, false, err
}

// errNoBudget is returned when rewrites in flight already hold
// rewrite.max_buffered_bytes.
var errNoBudget = errors.New("rewrites in flight hold rewrite.max_buffered_bytes")

// readLimited appends all of r to dst, failing with errTooLarge past limit.
// grow, when set, is asked for every growth of dst's capacity; when it
// refuses, reading stops with errNoBudget.
func readLimited(dst []byte, r io.Reader, limit int, grow func(n int) bool) ([]byte, error) {
	start := len(dst)
	for {
		if len(dst)-start > limit {
			return dst, errTooLarge
		}
		if cap(dst)-len(dst) < 4096 {
			n := max(4096, cap(dst))
			if grow != nil && !grow(n) {
				return dst, errNoBudget
			}
			dst = slices.Grow(dst, n)
		}
		n, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if err == io.EOF {
			if len(dst)-start > limit {
				return dst, errTooLarge
			}
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
}

// encode appends body encoded with c to dst: at the kept level when the
// memo keeps it (the second time it is seen), else quickly.
func (cd *codec) encode(dst, body []byte, c coding) ([]byte, error) {
	if c == codingIdentity {
		return append(dst, body...), nil
	}
	k, v, ok := cd.recall(encoding, c, body)
	if ok {
		return append(dst, v...), nil
	}
	keep := cd.keeps(k)
	e := levelQuick
	if keep {
		e = levelKept
	}
	buf := bytes.NewBuffer(dst)
	switch c {
	case codingGzip, codingBrotli:
		w := cd.newStreamEncoder(buf, c, e)
		defer cd.putStreamCoders(nil, w, e)
		if _, err := w.Write(body); err != nil {
			return dst, err
		}
		if err := w.Close(); err != nil {
			return dst, err
		}
	case codingDeflate:
		zw, err := zlib.NewWriterLevel(buf, cd.gzipLevel[e])
		if err != nil {
			return dst, err
		}
		if _, err := zw.Write(body); err != nil {
			return dst, err
		}
		if err := zw.Close(); err != nil {
			return dst, err
		}
	default:
		return dst, fmt.Errorf("unsupported content encoding")
	}
	out := buf.Bytes()
	if keep {
		cd.store(k, out[len(dst):])
	}
	return out, nil
}

// newRawDeflate returns a raw (unwrapped) deflate writer, as some servers
// send for "deflate"; used by tests.
func newRawDeflate(w io.Writer) (*flate.Writer, error) {
	return flate.NewWriter(w, flate.DefaultCompression)
}

// coderBytes is what a stream coder for c holds while it works, far more
// than the bytes passing through it: a gzip writer at level 1 ~800 KiB, a
// brotli writer at quality 1 ~1 MiB, a brotli reader up to its window
// (~600 KiB for a 300 KiB page), a gzip reader ~40 KiB. A stream that
// keeps one counts this much of rewrite.max_buffered_bytes for as long
// as it does, so that slow visitors cannot add them up past the budget.
func coderBytes(c coding, encoder bool) int {
	switch {
	case c == codingIdentity:
		return 0
	case encoder || c == codingBrotli:
		return 1 << 20
	}
	return 64 << 10
}

// streamEncoder re-encodes a page as it is written: Flush sends on what
// was written so far, Close ends the encoding.
type streamEncoder interface {
	io.Writer
	Flush() error
	Close() error
}

// newStreamEncoder returns a pooled gzip or brotli encoder of effort e
// writing to w (putStreamCoders gives it back).
func (cd *codec) newStreamEncoder(w io.Writer, c coding, e effort) streamEncoder {
	if c == codingBrotli {
		if bw, _ := cd.brW[e].Get().(*brotli.Writer); bw != nil {
			bw.Reset(w)
			return bw
		}
		return brotli.NewWriterLevel(w, cd.brotliLevel[e])
	}
	if zw, _ := cd.gzipW[e].Get().(*gzip.Writer); zw != nil {
		zw.Reset(w)
		return zw
	}
	zw, err := gzip.NewWriterLevel(w, cd.gzipLevel[e])
	if err != nil { // the level was validated with the config
		zw = gzip.NewWriter(w)
	}
	return zw
}

// putStreamCoders returns a stream's decoder and encoder of effort e
// (either may be nil) to their pools.
func (cd *codec) putStreamCoders(dec io.Reader, enc streamEncoder, e effort) {
	switch r := dec.(type) {
	case *gzip.Reader:
		cd.gzipR.Put(r)
	case *brotli.Reader:
		cd.brR.Put(r)
	}
	switch w := enc.(type) {
	case *gzip.Writer:
		w.Reset(io.Discard)
		cd.gzipW[e].Put(w)
	case *brotli.Writer:
		w.Reset(io.Discard)
		cd.brW[e].Put(w)
	}
}

// newStreamDecoder returns a pooled reader of r's gzip or brotli content
// (putStreamCoders gives it back). It reads r only as far as it must to
// return what has arrived.
func (cd *codec) newStreamDecoder(r io.Reader, c coding) (io.Reader, error) {
	if c == codingBrotli {
		if br, _ := cd.brR.Get().(*brotli.Reader); br != nil {
			if err := br.Reset(r); err != nil {
				return nil, fmt.Errorf("br: %w", err)
			}
			return br, nil
		}
		return brotli.NewReader(r), nil
	}
	if zr, _ := cd.gzipR.Get().(*gzip.Reader); zr != nil {
		if err := zr.Reset(r); err != nil {
			cd.gzipR.Put(zr)
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return zr, nil
	}
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	return zr, nil
}
