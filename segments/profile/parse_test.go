package profile

import (
	"encoding/base64"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// signPayload signs arbitrary JSON as the codec's signing key would.
func signPayload(c *Codec, payload string) []byte {
	return c.signer.sign(nil, []byte(payload))
}

// TestFastDecodeTakesOwnTokens: what the codec writes is read by the fast
// path (so returning visitors do not pay for golang-jwt), by every key it
// verifies with, and agrees with what golang-jwt reads.
func TestFastDecodeTakesOwnTokens(t *testing.T) {
	typical := NewFresh(day0)
	for i := 0; i < 20; i++ {
		typical.Observe(Event{Name: CategoryView, Category: []string{"sale", "tv", "home"}[i%3], Navigation: true}, at(i%7, 0), settings)
	}
	typical.Observe(Event{Name: ProductView, Category: "tv", Product: "sku-1", Navigation: true}, at(7, 0), settings)
	for _, tc := range []struct {
		name string
		p    *Profile
	}{{"fresh", NewFresh(day0)}, {"typical", typical}, {"worst case", worstCase(at(7, 0))}} {
		for _, kid := range []string{"k1", "k2"} {
			c := testCodec(t, 4000)
			c.signKID, c.signer = kid, nil
			for _, s := range c.verifiers {
				if strings.Contains(decodeHeader(t, s.header), `"`+kid+`"`) {
					c.signer = s
				}
			}
			tok, err := c.Encode(tc.p, at(7, 0))
			if err != nil {
				t.Fatal(err)
			}
			fast, ok := c.decodeFast([]byte(tok), at(7, 1))
			if !ok {
				t.Fatalf("%s, key %s: fast path declined the codec's own token", tc.name, kid)
			}
			slow, st, err := c.decodeJWT([]byte(tok), at(7, 1))
			if st != OK || !reflect.DeepEqual(fast, slow) {
				t.Fatalf("%s, key %s: fast %+v\nslow (%v %v) %+v", tc.name, kid, fast, st, err, slow)
			}
		}
	}
}

func decodeHeader(t *testing.T, h string) string {
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestFastDecodeDeclines: tokens outside the exact form go to golang-jwt,
// which decides as before; nothing is accepted that it would refuse.
func TestFastDecodeDeclines(t *testing.T) {
	c := testCodec(t, 4000)
	exp := at(30, 0).Unix()
	good := `{"id":"abcdefgh12","f":1772366400,"l":1772366400,"n":1,"pv":1,"v":1,"exp":` + itoa(exp) + `}`
	tok := signPayload(c, good)
	if _, ok := c.decodeFast(tok, day0); !ok {
		t.Fatal("baseline token declined")
	}
	tampered := append([]byte(nil), tok...)
	tampered[len(tampered)-1] ^= 1
	forged, _ := NewCodec(map[string][]byte{"k2": []byte(strings.Repeat("z", 32))}, "k2", time.Hour, 4000)
	for name, tok := range map[string][]byte{
		"tampered signature":  tampered,
		"other key, same kid": signPayload(forged, good),
		"escaped string":      signPayload(c, strings.Replace(good, `"abcdefgh12"`, `"abc\u0064efgh12"`, 1)),
		"whitespace":          signPayload(c, strings.Replace(good, `,"n":`, `, "n":`, 1)),
		"unknown field":       signPayload(c, strings.Replace(good, `{`, `{"sub":"x",`, 1)),
		"repeated field":      signPayload(c, strings.Replace(good, `"n":1`, `"n":1,"n":2`, 1)),
		"float":               signPayload(c, strings.Replace(good, `"pv":1`, `"pv":1.0`, 1)),
		"no exp":              signPayload(c, strings.Replace(good, `,"exp":`+itoa(exp), ``, 1)),
		"expired":             signPayload(c, strings.Replace(good, itoa(exp), itoa(day0.Unix()-1), 1)),
		"null list":           signPayload(c, strings.Replace(good, `"n":1`, `"n":1,"c":null`, 1)),
		"trailing data":       append(signPayload(c, good), 'x'),
		"insane counts":       signPayload(c, strings.Replace(good, `"pv":1`, `"pv":-5`, 1)),
	} {
		if _, ok := c.decodeFast(tok, day0); ok {
			t.Errorf("%s: accepted by the fast path", name)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// FuzzFastDecode signs arbitrary payloads with the codec's key: where the
// fast path accepts one, golang-jwt and encoding/json accept it too and
// read the same profile.
func FuzzFastDecode(f *testing.F) {
	c := testCodec(f, 4000)
	now := at(7, 1)
	for _, p := range []*Profile{NewFresh(day0), worstCase(at(7, 0))} {
		f.Add(string(appendClaims(nil, p, dayOf(at(7, 0)), at(30, 0))))
	}
	f.Add(`{"id":"abcdefgh12","f":1772366400,"l":1772366400,"n":1,"pv":1,"c":[{"k":"tv","d":[0,3,-1,2]}],"e":[],"p":["a","é"],"r":[{"k":"x","d":0}],"v":1,"b":20520,"exp":1900000000}`)
	f.Add(`{"id":"abcdefgh12","f":1772366400,"l":1772366400,"n":01,"pv":1,"exp":1900000000}`)
	f.Add(`{"ID":"abcdefgh12","f":1772366400,"l":1772366400,"n":1,"pv":1,"exp":1e9}`)
	f.Fuzz(func(t *testing.T, payload string) {
		tok := signPayload(c, payload)
		fast, ok := c.decodeFast(tok, now)
		if !ok {
			return
		}
		slow, st, err := c.decodeJWT(tok, now)
		if st != OK {
			t.Fatalf("fast path accepted what golang-jwt refuses (%v %v): %s", st, err, payload)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%s\nfast %+v\nslow %+v", payload, fast, slow)
		}
	})
}

// BenchmarkDecode is what reading a returning visitor's cookie costs on
// any replica: the fast path, and golang-jwt for comparison.
func BenchmarkDecode(b *testing.B) {
	typical := NewFresh(day0)
	for i := 0; i < 20; i++ {
		typical.Observe(Event{Name: CategoryView, Category: []string{"sale", "tv", "home"}[i%3], Navigation: true}, at(i%7, 0), settings)
	}
	for _, tc := range []struct {
		name   string
		p      *Profile
		maxLen int
	}{{"typical", typical, 1200}, {"worst-1200", worstCase(at(7, 0)), 1200}, {"worst-4000", worstCase(at(7, 0)), 4000}} {
		c := testCodec(b, tc.maxLen)
		tok, err := c.Encode(tc.p, at(7, 0))
		if err != nil {
			b.Fatal(err)
		}
		for _, path := range []string{"fast", "jwt"} {
			b.Run(tc.name+"/"+path, func(b *testing.B) {
				b.ReportMetric(float64(len(tok)), "bytes/cookie")
				b.ReportAllocs()
				for b.Loop() {
					var st Status
					if path == "fast" {
						_, st, _ = c.Decode([]byte(tok), at(7, 1))
					} else {
						_, st, _ = c.decodeJWT([]byte(tok), at(7, 1))
					}
					if st != OK {
						b.Fatal(st)
					}
				}
			})
		}
	}
}
