package profile

import (
	"bytes"
	"encoding/json"
	"math/rand"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// reference builds the claims the way encoding/json sees them, for
// comparing the hand-built JSON against.
func reference(c *Codec, p *Profile, now time.Time) claims {
	base := dayOf(now)
	q := *p
	q.Cats = cloneCounters(p.Cats)
	q.Events = cloneCounters(p.Events)
	q.Recent = append([]Recency(nil), p.Recent...)
	relDays(q.Cats, base)
	relDays(q.Events, base)
	relRecent(q.Recent, base)
	return claims{Profile: q, Ver: version, Base: base, RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(now.Add(c.maxAge))}}
}

var oddNames = []string{"sale", `quo"te`, `back\slash`, "ctl\x01\x1f", "html<>&", "ünïcödé", "bad\xff\xfeutf8", "line\u2028sep", "", "emoji😀"}

func randomProfile(rng *rand.Rand, now time.Time) *Profile {
	p := NewFresh(now.Add(-20 * 24 * time.Hour))
	for i := 0; i < 40; i++ {
		name := oddNames[rng.Intn(len(oddNames))]
		if name == "" {
			name = "x"
		}
		p.Observe(Event{Name: []string{PageView, CartAdd, "custom_" + name}[rng.Intn(3)], Category: name, Product: name,
			Navigation: rng.Intn(2) == 0}, now.Add(-time.Duration(rng.Intn(20*24))*time.Hour), settings)
	}
	return p
}

// TestAppendClaimsMatchesEncodingJSON: the hand-built payload is byte for
// byte what encoding/json makes of the claims struct.
func TestAppendClaimsMatchesEncodingJSON(t *testing.T) {
	c := testCodec(t, 4000)
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 300; i++ {
		p := randomProfile(rng, day0)
		want, err := json.Marshal(reference(c, p, day0))
		if err != nil {
			t.Fatal(err)
		}
		got := appendClaims(nil, p, dayOf(day0), day0.Add(c.maxAge))
		if !bytes.Equal(got, want) {
			t.Fatalf("payload differs:\n got %s\nwant %s", got, want)
		}
	}
}

// TestSignedTokensVerify: tokens signed by hand verify with golang-jwt and
// decode to the same profile.
func TestSignedTokensVerify(t *testing.T) {
	c := testCodec(t, 4000)
	rng := rand.New(rand.NewSource(2))
	for i := 0; i < 100; i++ {
		p := randomProfile(rng, day0)
		s, err := c.Encode(p, day0)
		if err != nil {
			t.Fatal(err)
		}
		var cl claims
		tok, err := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"})).ParseWithClaims(s, &cl, func(*jwt.Token) (any, error) {
			return []byte(strings.Repeat("b", 32)), nil
		})
		if err != nil || !tok.Valid || tok.Header["kid"] != "k2" {
			t.Fatalf("golang-jwt rejects the token: %v", err)
		}
		got, st, err := c.Decode([]byte(s), day0)
		if st != OK || got.ID != p.ID || got.Visits != p.Visits || len(got.Cats) != len(p.Cats) {
			t.Fatalf("round trip: %v %v", st, err)
		}
		for _, cat := range p.Cats {
			if got.Views(cat.Name, 30, day0) != p.Views(cat.Name, 30, day0) && utf8.ValidString(cat.Name) {
				t.Fatalf("views of %q: %d != %d", cat.Name, got.Views(cat.Name, 30, day0), p.Views(cat.Name, 30, day0))
			}
		}
	}
}
