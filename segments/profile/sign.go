package profile

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// A profile is signed on every tracked page view, so the token is built
// with appends rather than reflection: the same HS256 JWT golang-jwt
// produces and verifies, without its allocations.

// signer holds the pooled HMAC state of one key.
type signer struct {
	header string // base64url of {"alg":"HS256","kid":"…"}
	macs   sync.Pool
}

// macState is a pooled HMAC with room for its sum, so summing does not
// allocate.
type macState struct {
	h   hash.Hash
	sum [sha256.Size]byte
}

func newSigner(kid string, key []byte) *signer {
	h := `{"alg":"HS256","kid":` + strconv.Quote(kid) + `}`
	s := &signer{header: base64.RawURLEncoding.EncodeToString([]byte(h))}
	s.macs.New = func() any { return &macState{h: hmac.New(sha256.New, key)} }
	return s
}

// mac writes the HMAC of b into sum.
func (s *signer) mac(b []byte, sum *[sha256.Size]byte) {
	m := s.macs.Get().(*macState)
	m.h.Reset()
	m.h.Write(b)
	*sum = [sha256.Size]byte(m.h.Sum(m.sum[:0]))
	s.macs.Put(m)
}

// sign appends header.payload.signature for the JSON payload to dst.
func (s *signer) sign(dst, payload []byte) []byte {
	start := len(dst)
	dst = append(dst, s.header...)
	dst = append(dst, '.')
	dst = base64.RawURLEncoding.AppendEncode(dst, payload)
	var sum [sha256.Size]byte
	s.mac(dst[start:], &sum)
	dst = append(dst, '.')
	return base64.RawURLEncoding.AppendEncode(dst, sum[:])
}

// appendClaims appends the JSON of p's claims, as the claims struct's
// json tags define them, with day numbers relative to base.
func appendClaims(b []byte, p *Profile, base int32, exp time.Time) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, p.ID)
	b = append(b, `,"f":`...)
	b = strconv.AppendInt(b, p.First, 10)
	b = append(b, `,"l":`...)
	b = strconv.AppendInt(b, p.Last, 10)
	b = append(b, `,"n":`...)
	b = strconv.AppendInt(b, int64(p.Visits), 10)
	b = append(b, `,"pv":`...)
	b = strconv.AppendInt(b, int64(p.PageViews), 10)
	b = appendCounters(b, `,"c":`, p.Cats, base)
	b = appendCounters(b, `,"e":`, p.Events, base)
	if len(p.Products) > 0 {
		b = append(b, `,"p":[`...)
		for i, s := range p.Products {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, s)
		}
		b = append(b, ']')
	}
	if len(p.Recent) > 0 {
		b = append(b, `,"r":[`...)
		for i, r := range p.Recent {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"k":`...)
			b = appendJSONString(b, r.Name)
			b = append(b, `,"d":`...)
			b = strconv.AppendInt(b, int64(base-r.Day), 10)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"v":`...)
	b = strconv.AppendInt(b, version, 10)
	if base != 0 {
		b = append(b, `,"b":`...)
		b = strconv.AppendInt(b, int64(base), 10)
	}
	b = append(b, `,"exp":`...)
	b = strconv.AppendInt(b, exp.Unix(), 10)
	return append(b, '}')
}

func appendCounters(b []byte, key string, cs []Counter, base int32) []byte {
	if len(cs) == 0 {
		return b
	}
	b = append(b, key...)
	b = append(b, '[')
	for i, c := range cs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"k":`...)
		b = appendJSONString(b, c.Name)
		b = append(b, `,"d":[`...)
		for j := 0; j < len(c.Days); j++ {
			if j > 0 {
				b = append(b, ',')
			}
			v := c.Days[j]
			if j%2 == 0 {
				v = base - v // day numbers are stored as days ago
			}
			b = strconv.AppendInt(b, int64(v), 10)
		}
		b = append(b, "]}"...)
	}
	return append(b, ']')
}

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes
// U+FFFD, as encoding/json does.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else if r == '\u2028' || r == '\u2029' {
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
