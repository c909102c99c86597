package profile

import (
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Status says how a cookie decoded; anything but OK means a fresh profile.
type Status uint8

const (
	OK         Status = iota // verified
	Missing                  // no cookie
	Garbled                  // not a JWT, or bad JSON
	Tampered                 // signature does not verify, or alg not allowed
	UnknownKey               // kid names no configured key
	Expired                  // past exp, or exp missing
	Oversized                // longer than the size bound allows
	Invalid                  // verified but nonsensical (absurd timestamps, negative counts)
)

var statusNames = [...]string{"ok", "missing", "garbled", "tampered", "unknown_key", "expired", "oversized", "invalid"}

// String names the status as metrics and logs do ("tampered").
func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "unknown"
}

// Errors Decode wraps, by Status.
var (
	ErrGarbled    = errors.New("profile: garbled cookie")
	ErrTampered   = errors.New("profile: signature does not verify")
	ErrUnknownKey = errors.New("profile: unknown key id")
	ErrExpired    = errors.New("profile: expired")
	ErrOversized  = errors.New("profile: cookie too large")
	ErrInvalid    = errors.New("profile: invalid contents")
)

// Codec signs and verifies profile cookies. It is safe for concurrent use.
type Codec struct {
	keys    map[string][]byte
	signKID string
	maxAge  time.Duration
	maxLen  int
	parser  *jwt.Parser
	signer  *signer
	// verifiers are the signers of every key by their encoded header, for
	// verifyFast.
	verifiers map[string]*signer
	bufs      sync.Pool // *[]byte for payloads and tokens
}

// NewCodec returns a Codec that signs with keys[signKID] and verifies with
// any of keys. maxLen bounds the encoded cookie; maxAge is the token's life.
func NewCodec(keys map[string][]byte, signKID string, maxAge time.Duration, maxLen int) (*Codec, error) {
	if _, ok := keys[signKID]; !ok {
		return nil, fmt.Errorf("profile: signing key %q not configured", signKID)
	}
	for id, k := range keys {
		if len(k) < 32 {
			return nil, fmt.Errorf("profile: key %q: at least 32 bytes required", id)
		}
	}
	c := &Codec{
		keys:    keys,
		signKID: signKID,
		maxAge:  maxAge,
		maxLen:  maxLen,
		// The algorithm is pinned: "none", RS256 with an HMAC key and the
		// like are rejected before any key is used.
		// Expiry is checked against the caller's clock below.
		parser:    jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithoutClaimsValidation()),
		verifiers: map[string]*signer{},
	}
	for id, k := range keys {
		s := newSigner(id, k)
		c.verifiers[s.header] = s
		if id == signKID {
			c.signer = s
		}
	}
	return c, nil
}

// claims is the JWT body: the profile and the registered claims. Day
// numbers are stored relative to Base (days ago), which keeps them short.
type claims struct {
	Profile
	Ver  int   `json:"v"`
	Base int32 `json:"b,omitempty"`
	jwt.RegisteredClaims
}

// relDays converts counters' day numbers to days before base, or back.
func relDays(cs []Counter, base int32) {
	for _, c := range cs {
		for i := 0; i < len(c.Days); i += 2 {
			c.Days[i] = base - c.Days[i]
		}
	}
}

func relRecent(rs []Recency, base int32) {
	for i := range rs {
		rs[i].Day = base - rs[i].Day
	}
}

const version = 1

// Decode verifies a cookie value and returns its profile. On any failure
// it returns a fresh profile, the Status, and an error saying why.
func (c *Codec) Decode(value []byte, now time.Time) (*Profile, Status, error) {
	if len(value) == 0 {
		return NewFresh(now), Missing, nil
	}
	if len(value) > c.maxLen+256 || len(value) > 4096 {
		return NewFresh(now), Oversized, ErrOversized
	}
	if p, ok := c.decodeFast(value, now); ok {
		return p, OK, nil
	}
	return c.decodeJWT(value, now)
}

// decodeJWT verifies and parses value with golang-jwt and encoding/json:
// any token, classified by what is wrong with it.
func (c *Codec) decodeJWT(value []byte, now time.Time) (*Profile, Status, error) {
	var cl claims
	_, err := c.parser.ParseWithClaims(string(value), &cl, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		k, ok := c.keys[kid]
		if !ok {
			return nil, ErrUnknownKey
		}
		return k, nil
	})
	if err == nil && (cl.ExpiresAt == nil || !now.Before(cl.ExpiresAt.Time)) {
		err = jwt.ErrTokenExpired
	}
	if err != nil {
		switch {
		case errors.Is(err, ErrUnknownKey):
			return NewFresh(now), UnknownKey, fmt.Errorf("%w: %v", ErrUnknownKey, err)
		case errors.Is(err, jwt.ErrTokenExpired):
			return NewFresh(now), Expired, fmt.Errorf("%w: %v", ErrExpired, err)
		case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable),
			errors.Is(err, jwt.ErrSignatureInvalid):
			return NewFresh(now), Tampered, fmt.Errorf("%w: %v", ErrTampered, err)
		}
		return NewFresh(now), Garbled, fmt.Errorf("%w: %v", ErrGarbled, err)
	}
	p := cl.Profile
	relDays(p.Cats, cl.Base)
	relDays(p.Events, cl.Base)
	relRecent(p.Recent, cl.Base)
	if err := p.sane(now); err != nil {
		return NewFresh(now), Invalid, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	p.Fresh, p.Changed = false, false
	return &p, OK, nil
}

// sane rejects profiles that verify but cannot be right: a signed cookie
// from a buggy or compromised signer must not make rules misbehave.
func (p *Profile) sane(now time.Time) error {
	n := now.Unix()
	switch {
	case len(p.ID) < 8 || len(p.ID) > 64:
		return errors.New("bad id")
	case p.First <= 0 || p.First > n+86400 || p.Last < 0 || p.Last > n+86400:
		return errors.New("timestamps out of range")
	case p.Visits < 0 || p.PageViews < 0 || p.Visits > 1e9 || p.PageViews > 1e9:
		return errors.New("counts out of range")
	}
	for _, cs := range [][]Counter{p.Cats, p.Events} {
		for _, c := range cs {
			if len(c.Days)%2 != 0 || c.Name == "" || len(c.Name) > 64 {
				return errors.New("bad counter")
			}
			for i := 1; i < len(c.Days); i += 2 {
				if c.Days[i] < 0 {
					return errors.New("negative count")
				}
			}
		}
	}
	return nil
}

// Encode signs p into a cookie value no longer than the size bound.
//
// The value is pruned to the bound, the least useful data first: day
// counts older than a week, custom events, products, the least-used
// categories, then older days of the rest.
func (c *Codec) Encode(p *Profile, now time.Time) (string, error) {
	b, err := c.AppendEncode(nil, p, now)
	return string(b), err
}

// AppendEncode is Encode appending the cookie value to dst.
func (c *Codec) AppendEncode(dst []byte, p *Profile, now time.Time) ([]byte, error) {
	start := len(dst)
	dst = c.sign(dst, p, now)
	if len(dst)-start <= c.maxLen {
		return dst, nil
	}
	q := *p
	q.Cats = cloneCounters(p.Cats)
	q.Events = cloneCounters(p.Events)
	q.Products = append([]string(nil), p.Products...)
	q.Recent = append([]Recency(nil), p.Recent...)
	today := dayOf(now)
	for step := 0; ; step++ {
		if !q.prune(today, step) {
			return dst[:start], fmt.Errorf("%w: %d bytes after pruning everything", ErrOversized, len(dst)-start)
		}
		if c.estimate(&q, now) > c.maxLen {
			continue
		}
		if dst = c.sign(dst[:start], &q, now); len(dst)-start <= c.maxLen {
			*p = q // keep what the cookie keeps, so the next request agrees
			return dst, nil
		}
	}
}

// estimate is the signed length of p without signing: header, payload and
// an HS256 signature, base64url-encoded.
func (c *Codec) estimate(p *Profile, now time.Time) int {
	bp := c.getBuf()
	payload := appendClaims((*bp)[:0], p, dayOf(now), now.Add(c.maxAge))
	*bp = payload
	n := len(c.signer.header) + 1 + base64.RawURLEncoding.EncodedLen(len(payload)) + 1 + 43
	c.bufs.Put(bp)
	return n
}

// sign appends p as a signed token to dst.
func (c *Codec) sign(dst []byte, p *Profile, now time.Time) []byte {
	bp := c.getBuf()
	payload := appendClaims((*bp)[:0], p, dayOf(now), now.Add(c.maxAge))
	dst = c.signer.sign(dst, payload)
	*bp = payload
	c.bufs.Put(bp)
	return dst
}

func (c *Codec) getBuf() *[]byte {
	if b, ok := c.bufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 1024)
	return &b
}

// coreEvents are kept longest when pruning: rules and stages read them.
var coreEvents = map[string]bool{PageView: true, CategoryView: true, ProductView: true, CartAdd: true,
	CheckoutStart: true, Purchase: true, Search: true}

// prune removes one piece of data, least useful first; false when nothing
// is left to remove. step counts calls, so each phase can start cleanly.
func (p *Profile) prune(today int32, step int) bool {
	switch {
	case step == 0 && (trimOlder(p.Cats, today, 7) || trimOlder(p.Events, today, 7)):
		return true
	case dropLeast(&p.Events, today, func(n string) bool { return !coreEvents[n] }):
		p.dropRecency()
		return true
	case len(p.Products) > 0:
		p.Products = p.Products[:len(p.Products)-1]
		return true
	case len(p.Cats) > 3:
		p.Cats = keepTop(p.Cats, len(p.Cats)-1, today, "")
		return true
	case trimOldest(p.Cats, today, 1) || trimOldest(p.Events, today, 1):
		return true
	case len(p.Cats) > 0:
		p.Cats = keepTop(p.Cats, len(p.Cats)-1, today, "")
		return true
	case dropLeast(&p.Events, today, func(string) bool { return true }):
		return true
	case len(p.Recent) > 0:
		p.Recent = p.Recent[:len(p.Recent)-1]
		return true
	}
	return false
}

// trimOlder drops every day entry at least minAge days old.
func trimOlder(cs []Counter, today int32, minAge int32) bool {
	changed := false
	for i := range cs {
		d := cs[i].Days
		n := 0
		for n+1 < len(d) && today-d[n] < minAge {
			n += 2
		}
		if n < len(d) {
			cs[i].Days = d[:n]
			changed = true
		}
	}
	return changed
}

// dropLeast removes the least-used counter among those eligible.
func dropLeast(cs *[]Counter, today int32, eligible func(string) bool) bool {
	li, lt := -1, 0
	for i, c := range *cs {
		if !eligible(c.Name) {
			continue
		}
		if t := total(c.Days, today, keepDays); li < 0 || t < lt {
			li, lt = i, t
		}
	}
	if li < 0 {
		return false
	}
	*cs = append((*cs)[:li], (*cs)[li+1:]...)
	return true
}

// dropRecency forgets when events no longer counted last happened, unless
// rules read them (core events).
func (p *Profile) dropRecency() {
	keep := p.Recent[:0]
	for _, r := range p.Recent {
		if coreEvents[r.Name] || find(p.Events, r.Name) != nil {
			keep = append(keep, r)
		}
	}
	p.Recent = keep
}

// trimOldest drops the single oldest day entry at least minAge days old.
func trimOldest(cs []Counter, today int32, minAge int32) bool {
	oi, oday := -1, today
	for i, c := range cs {
		if n := len(c.Days); n >= 2 && c.Days[n-2] < oday && today-c.Days[n-2] >= minAge {
			oi, oday = i, c.Days[n-2]
		}
	}
	if oi < 0 {
		return false
	}
	cs[oi].Days = cs[oi].Days[:len(cs[oi].Days)-2]
	return true
}

func cloneCounters(cs []Counter) []Counter {
	out := make([]Counter, len(cs))
	for i, c := range cs {
		out[i] = Counter{Name: c.Name, Days: append([]int32(nil), c.Days...)}
	}
	return out
}
