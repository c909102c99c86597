package profile

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"time"
)

// Notes are small signed messages edgeseg gives a page to hand back later,
// such as the beacon a prefetched page sends once it is shown. They are
// signed with the profile keys, but can never pass for a profile cookie
// (nor a note of one purpose for another's): the MAC covers a prefix no
// cookie's signed bytes start with, and the purpose.
//
// A note reads KID.ISSUED.BODY.MAC: the key's id (base64url: an id may
// hold any byte, and a note is written into pages), the unix second it
// was issued, the body (base64url) and the HMAC-SHA256 (base64url) of
// "edgeseg-note\x00" + purpose + "\x00" + KID.ISSUED.BODY.

// Errors OpenNote returns.
var (
	ErrNoteInvalid = errors.New("profile: note malformed or its signature does not verify")
	ErrNoteExpired = errors.New("profile: note expired")
)

// AppendNote appends a note of purpose carrying body, issued at now, to dst.
func (c *Codec) AppendNote(dst []byte, purpose string, body []byte, now time.Time) []byte {
	start := len(dst)
	dst = base64.RawURLEncoding.AppendEncode(dst, []byte(c.signKID))
	dst = append(dst, '.')
	dst = strconv.AppendInt(dst, now.Unix(), 10)
	dst = append(dst, '.')
	dst = base64.RawURLEncoding.AppendEncode(dst, body)
	sum := noteMAC(c.keys[c.signKID], purpose, dst[start:])
	dst = append(dst, '.')
	return base64.RawURLEncoding.AppendEncode(dst, sum)
}

// OpenNote verifies a note of purpose, signed with any configured key and
// issued at most maxAge before now (and not after it, give or take a
// minute of clocks apart), and returns its body.
func (c *Codec) OpenNote(note []byte, purpose string, now time.Time, maxAge time.Duration) ([]byte, error) {
	i := bytes.LastIndexByte(note, '.')
	if i < 0 {
		return nil, ErrNoteInvalid
	}
	signed, mac := note[:i], note[i+1:]
	parts := bytes.SplitN(signed, []byte{'.'}, 3)
	if len(parts) != 3 || !base64URL(parts[0]) || !digits(parts[1]) || !base64URL(parts[2]) || !base64URL(mac) {
		return nil, ErrNoteInvalid // one way to write each: no other bytes carry its MAC
	}
	kid, err := noteEncoding.AppendDecode(nil, parts[0])
	if err != nil {
		return nil, ErrNoteInvalid
	}
	key, ok := c.keys[string(kid)]
	if !ok {
		return nil, ErrNoteInvalid
	}
	got, err := noteEncoding.AppendDecode(nil, mac)
	if err != nil || !hmac.Equal(got, noteMAC(key, purpose, signed)) {
		return nil, ErrNoteInvalid
	}
	issued, err := strconv.ParseInt(string(parts[1]), 10, 64)
	if err != nil {
		return nil, ErrNoteInvalid
	}
	if at := time.Unix(issued, 0); now.Sub(at) > maxAge || at.Sub(now) > time.Minute {
		return nil, ErrNoteExpired
	}
	body, err := noteEncoding.AppendDecode(nil, parts[2])
	if err != nil {
		return nil, ErrNoteInvalid
	}
	return body, nil
}

// noteMAC is the HMAC of a note's signed part under key.
func noteMAC(key []byte, purpose string, signed []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("edgeseg-note\x00"))
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write(signed)
	return m.Sum(nil)
}

// noteEncoding reads a note's parts as AppendNote writes them, trailing
// bits zero.
var noteEncoding = base64.RawURLEncoding.Strict()

// digits reports a non-empty run of ASCII digits.
func digits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0 && len(b) <= 19
}

// base64URL reports bytes of the base64url alphabet only (the decoder
// passes over line breaks).
func base64URL(b []byte) bool {
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
