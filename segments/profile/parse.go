package profile

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"math"
	"time"
	"unicode/utf8"
)

// A returning visitor's cookie is verified and parsed on every page view,
// on whichever replica the visitor reaches. golang-jwt and encoding/json
// take 20-25 µs for a typical profile, mostly in reflection; verifyFast
// reads the exact form sign and appendClaims write in a sixth of that. It accepts
// only that form: a header byte-identical to one of this Codec's signers,
// an HS256 signature that verifies, and a payload of the known fields with
// integers and escape-free strings. Anything else (a token from another
// writer, escaped strings, a forged or mangled token) makes it decline, and
// Decode gives the token to golang-jwt, which decides and classifies it as
// before. Where verifyFast accepts, it yields exactly what the slow path
// yields (FuzzFastDecode checks that).

// verifyFast returns the profile in tok, or ok=false to decline. The
// returned profile is not yet checked for expiry or sanity.
func (c *Codec) verifyFast(tok []byte) (cl fastClaims, ok bool) {
	h, rest, found := bytes.Cut(tok, []byte{'.'})
	if !found {
		return cl, false
	}
	payload, sig, found := bytes.Cut(rest, []byte{'.'})
	if !found || len(sig) != 43 || bytes.IndexByte(sig, '.') >= 0 {
		return cl, false
	}
	s := c.verifiers[string(h)]
	if s == nil {
		return cl, false
	}
	var want, got [sha256.Size]byte
	if n, err := base64.RawURLEncoding.Decode(got[:], sig); err != nil || n != sha256.Size {
		return cl, false
	}
	s.mac(tok[:len(h)+1+len(payload)], &want)
	if !hmac.Equal(want[:], got[:]) {
		return cl, false
	}
	bp := c.getBuf()
	defer c.bufs.Put(bp)
	js, err := base64.RawURLEncoding.AppendDecode((*bp)[:0], payload)
	*bp = js
	if err != nil {
		return cl, false
	}
	p := newJSONReader(js)
	if !p.claims(&cl) || p.i != len(js) {
		return fastClaims{}, false
	}
	return cl, true
}

// fastClaims is what verifyFast reads: the claims struct without jwt's
// registered claims, of which sign writes only exp.
type fastClaims struct {
	Profile
	Base   int32
	Exp    int64
	HasExp bool
}

// jsonReader reads the JSON appendClaims writes. Every method returns
// false on anything else, without panicking, whatever the input. Every
// counter's days come from one array, and the usual event names are not
// allocated at all, so a profile costs a handful of small allocations.
type jsonReader struct {
	b    []byte
	i    int
	days []int32 // backing array of every Counter.Days
	cs   []Counter
}

func newJSONReader(b []byte) jsonReader {
	r := jsonReader{b: b}
	// Upper bounds: every number but the last in a list is followed by ',',
	// every counter opens with {"k".
	if n := bytes.Count(b, []byte(`{"k"`)); n > 0 {
		r.cs = make([]Counter, 0, n)
		r.days = make([]int32, 0, bytes.Count(b, []byte{','})+n)
	}
	return r
}

func (r *jsonReader) byte(c byte) bool {
	if r.i < len(r.b) && r.b[r.i] == c {
		r.i++
		return true
	}
	return false
}

// raw reads a string without escapes, as valid UTF-8, and returns its
// bytes (in the payload: copy before keeping).
func (r *jsonReader) raw() ([]byte, bool) {
	if !r.byte('"') {
		return nil, false
	}
	start := r.i
	for r.i < len(r.b) {
		switch c := r.b[r.i]; {
		case c == '"':
			b := r.b[start:r.i]
			r.i++
			return b, utf8.Valid(b)
		case c == '\\' || c < 0x20:
			return nil, false
		}
		r.i++
	}
	return nil, false
}

// str reads a string; names of the built-in events come without allocating.
func (r *jsonReader) str() (string, bool) {
	b, ok := r.raw()
	if !ok {
		return "", false
	}
	switch string(b) {
	case PageView:
		return PageView, true
	case CategoryView:
		return CategoryView, true
	case ProductView:
		return ProductView, true
	case CartAdd:
		return CartAdd, true
	case CheckoutStart:
		return CheckoutStart, true
	case Purchase:
		return Purchase, true
	case Search:
		return Search, true
	}
	return string(b), true
}

// int reads an integer within [lo, hi].
func (r *jsonReader) int(lo, hi int64) (int64, bool) {
	neg := r.byte('-')
	start := r.i
	var n uint64
	for r.i < len(r.b) && r.b[r.i] >= '0' && r.b[r.i] <= '9' {
		if n > (math.MaxInt64-9)/10 {
			return 0, false
		}
		n = n*10 + uint64(r.b[r.i]-'0')
		r.i++
	}
	digits := r.i - start
	if digits == 0 || digits > 1 && r.b[start] == '0' {
		return 0, false // JSON has no leading zeros
	}
	if r.i < len(r.b) && (r.b[r.i] == '.' || r.b[r.i] == 'e' || r.b[r.i] == 'E') {
		return 0, false
	}
	v := int64(n)
	if neg {
		v = -v
	}
	return v, v >= lo && v <= hi
}

// count reads an int.
func (r *jsonReader) count() (int, bool) {
	v, ok := r.int(math.MinInt+1, math.MaxInt)
	return int(v), ok
}

// int32 reads an int32.
func (r *jsonReader) int32() (int32, bool) {
	v, ok := r.int(math.MinInt32, math.MaxInt32)
	return int32(v), ok
}

// field bits, to refuse a repeated key (encoding/json would keep the last).
const (
	fID = 1 << iota
	fFirst
	fLast
	fVisits
	fPageViews
	fCats
	fEvents
	fProducts
	fRecent
	fVer
	fBase
	fExp
)

func (r *jsonReader) claims(cl *fastClaims) bool {
	if !r.byte('{') {
		return false
	}
	seen := 0
	for first := true; ; first = false {
		if r.byte('}') {
			return true
		}
		if !first && !r.byte(',') {
			return false
		}
		key, ok := r.raw()
		if !ok || !r.byte(':') {
			return false
		}
		var bit int
		switch string(key) {
		case "id":
			bit = fID
			cl.ID, ok = r.str()
		case "f":
			bit = fFirst
			cl.First, ok = r.int(math.MinInt64+1, math.MaxInt64)
		case "l":
			bit = fLast
			cl.Last, ok = r.int(math.MinInt64+1, math.MaxInt64)
		case "n":
			bit = fVisits
			cl.Visits, ok = r.count()
		case "pv":
			bit = fPageViews
			cl.PageViews, ok = r.count()
		case "c":
			bit = fCats
			cl.Cats, ok = r.counters()
		case "e":
			bit = fEvents
			cl.Events, ok = r.counters()
		case "p":
			bit = fProducts
			cl.Products, ok = r.strings()
		case "r":
			bit = fRecent
			cl.Recent, ok = r.recents()
		case "v":
			bit = fVer
			_, ok = r.count()
		case "b":
			bit = fBase
			cl.Base, ok = r.int32()
		case "exp":
			bit = fExp
			cl.Exp, ok = r.int(0, 1<<53) // beyond, a float64 date loses precision
			cl.HasExp = ok
		default:
			return false
		}
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
	}
}

// open reads the '[' of a list; empty reports "[]".
func (r *jsonReader) open() (empty, ok bool) {
	if !r.byte('[') {
		return false, false
	}
	return r.byte(']'), true
}

// next reads what follows a list element: ',' (more) or ']' (done).
func (r *jsonReader) next() (more, ok bool) {
	if r.byte(',') {
		return true, true
	}
	return false, r.byte(']')
}

func (r *jsonReader) counters() ([]Counter, bool) {
	start := len(r.cs)
	empty, ok := r.open()
	for more := !empty; ok && more; more, ok = r.next() {
		var c Counter
		if c.Name, ok = r.named(); !ok {
			return nil, false
		}
		if c.Days, ok = r.ints(); !ok || !r.byte('}') {
			return nil, false
		}
		r.cs = append(r.cs, c)
	}
	// A full slice expression: appending to one profile's list must not
	// write into the next list's elements.
	return r.cs[start:len(r.cs):len(r.cs)], ok
}

// ints reads a list of int32 into the shared days array.
func (r *jsonReader) ints() ([]int32, bool) {
	start := len(r.days)
	empty, ok := r.open()
	for more := !empty; ok && more; more, ok = r.next() {
		var v int32
		if v, ok = r.int32(); !ok {
			return nil, false
		}
		r.days = append(r.days, v)
	}
	return r.days[start:len(r.days):len(r.days)], ok
}

func (r *jsonReader) recents() ([]Recency, bool) {
	rs := []Recency{}
	empty, ok := r.open()
	for more := !empty; ok && more; more, ok = r.next() {
		var x Recency
		if x.Name, ok = r.named(); !ok {
			return nil, false
		}
		if x.Day, ok = r.int32(); !ok || !r.byte('}') {
			return nil, false
		}
		rs = append(rs, x)
	}
	return rs, ok
}

func (r *jsonReader) strings() ([]string, bool) {
	ss := []string{}
	empty, ok := r.open()
	for more := !empty; ok && more; more, ok = r.next() {
		var s string
		if s, ok = r.str(); !ok {
			return nil, false
		}
		ss = append(ss, s)
	}
	return ss, ok
}

// named reads the start of a counter or recency, {"k":"NAME","d":, and
// returns NAME.
func (r *jsonReader) named() (string, bool) {
	if !r.byte('{') || !r.key("k") {
		return "", false
	}
	name, ok := r.str()
	return name, ok && r.byte(',') && r.key("d")
}

// key reads "name": exactly.
func (r *jsonReader) key(name string) bool {
	k, ok := r.raw()
	return ok && string(k) == name && r.byte(':')
}

// decodeFast is Decode's fast path: ok=false sends tok to golang-jwt.
func (c *Codec) decodeFast(tok []byte, now time.Time) (*Profile, bool) {
	cl, ok := c.verifyFast(tok)
	if !ok || !cl.HasExp || now.Unix() >= cl.Exp {
		return nil, false
	}
	p := cl.Profile
	relDays(p.Cats, cl.Base)
	relDays(p.Events, cl.Base)
	relRecent(p.Recent, cl.Base)
	if p.sane(now) != nil {
		return nil, false
	}
	p.Fresh, p.Changed = false, false
	return &p, true
}
