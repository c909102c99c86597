package profile

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/edgeseg/edgeseg/config"
)

var settings = Settings{VisitGap: 30 * time.Minute, MaxCategories: 12, MaxProducts: 6, ConsiderationScore: 5, DecisionScore: 15}

var day0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func at(days, hours int) time.Time {
	return day0.Add(time.Duration(days)*24*time.Hour + time.Duration(hours)*time.Hour)
}

func TestWindowsAcrossDays(t *testing.T) {
	p := NewFresh(day0)
	view := func(cat string, tm time.Time) {
		p.Observe(Event{Name: CategoryView, Category: cat, Navigation: true}, tm, settings)
	}
	view("sale", at(0, 0))
	view("sale", at(0, 1))
	view("sale", at(3, 0))
	view("sale", at(8, 0))
	view("tv", at(8, 0))
	for _, tc := range []struct {
		now        time.Time
		days, want int
	}{
		{at(8, 1), 1, 1},   // today only
		{at(8, 1), 7, 2},   // days 2..8: day 3 and day 8
		{at(8, 1), 5, 1},   // day 3 is 5 days back: outside a 5-day window
		{at(8, 1), 9, 4},   // all
		{at(8, 1), 30, 4},  // all
		{at(8, 1), 99, 4},  // clamped to 30
		{at(35, 0), 30, 1}, // day 8 is 27 days back; earlier ones aged out
		{at(40, 0), 30, 0},
	} {
		if got := p.Views("sale", tc.days, tc.now); got != tc.want {
			t.Errorf("Views(sale, %d) at %v = %d, want %d", tc.days, tc.now.Format("Jan 2"), got, tc.want)
		}
	}
	if p.Views("tv", 1, at(8, 2)) != 1 || p.Views("none", 30, at(8, 2)) != 0 {
		t.Error("per-category counts mixed up")
	}
	if p.Count(CategoryView, 30, at(8, 2)) != 5 {
		t.Errorf("event count = %d", p.Count(CategoryView, 30, at(8, 2)))
	}
	if d := p.DaysSince(CategoryView, at(10, 0)); d != 2 {
		t.Errorf("DaysSince = %d", d)
	}
	if d := p.DaysSince(Purchase, at(10, 0)); d != -1 {
		t.Errorf("DaysSince(never) = %d", d)
	}
}

func TestVisits(t *testing.T) {
	p := NewFresh(day0)
	nav := Event{Name: PageView, Navigation: true}
	observe := func(ev Event, at time.Duration, started bool) {
		t.Helper()
		p.Observe(ev, day0.Add(at), settings)
		if p.Started != started {
			t.Fatalf("at %v: Started %v, want %v", at, p.Started, started)
		}
	}
	observe(nav, 0, true)
	observe(nav, 10*time.Minute, false)
	observe(nav, 39*time.Minute, false) // 29 min gap: same visit
	if p.Visits != 1 || p.PageViews != 3 {
		t.Fatalf("visits=%d pv=%d", p.Visits, p.PageViews)
	}
	observe(nav, 70*time.Minute, true) // 31 min gap: new visit
	p.Started = false                  // as decoded for the next request
	observe(Event{Name: CartAdd}, 200*time.Minute, false)
	if p.Visits != 2 || p.PageViews != 4 {
		t.Fatalf("visits=%d pv=%d (non-navigation events must not count)", p.Visits, p.PageViews)
	}
	if d := p.DaysSinceLastVisit(day0.Add(48*time.Hour + 70*time.Minute)); d != 2 {
		t.Errorf("days since last visit = %d", d)
	}
}

func TestStage(t *testing.T) {
	p := NewFresh(day0)
	if s := p.Stage(day0, settings); s != "awareness" {
		t.Fatalf("new visitor stage %s", s)
	}
	for i := 0; i < 3; i++ {
		p.Observe(Event{Name: ProductView, Navigation: true}, at(0, i), settings)
	}
	if s := p.Stage(at(0, 5), settings); s != "consideration" { // score 6
		t.Fatalf("after 3 product views: %s (score %d)", s, p.Score(at(0, 5)))
	}
	p.Observe(Event{Name: CartAdd}, at(1, 0), settings)
	if s := p.Stage(at(1, 1), settings); s != "decision" {
		t.Fatalf("after cart add: %s", s)
	}
	p.Observe(Event{Name: Purchase}, at(2, 0), settings)
	// The purchase closes the cart's intent; the score (6+5+10) is still high.
	if s := p.Stage(at(2, 1), settings); s != "decision" {
		t.Fatalf("after purchase: %s", s)
	}
	if s := p.Stage(at(40, 0), settings); s != "awareness" {
		t.Fatalf("40 days later: %s", s)
	}
}

func TestCategoryBound(t *testing.T) {
	p := NewFresh(day0)
	for i := 0; i < 30; i++ {
		for k := 0; k <= i%3; k++ {
			p.Observe(Event{Name: CategoryView, Category: fmt.Sprintf("cat-%02d", i), Navigation: true}, at(0, i%10), settings)
		}
	}
	if len(p.Cats) != settings.MaxCategories {
		t.Fatalf("%d categories kept", len(p.Cats))
	}
	if p.Views("cat-29", 1, at(0, 11)) != 3 {
		t.Errorf("most used category was pruned")
	}
}

func testCodec(t testing.TB, maxLen int) *Codec {
	c, err := NewCodec(map[string][]byte{"k1": []byte(strings.Repeat("a", 32)), "k2": []byte(strings.Repeat("b", 32))}, "k2", 365*24*time.Hour, maxLen)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCodecRoundTripAndRotation(t *testing.T) {
	c := testCodec(t, 1200)
	p := NewFresh(day0)
	p.Observe(Event{Name: ProductView, Category: "tv", Product: "p-1", Navigation: true}, day0, settings)
	s, err := c.Encode(p, day0)
	if err != nil {
		t.Fatal(err)
	}
	got, st, err := c.Decode([]byte(s), day0.Add(time.Hour))
	if st != OK || err != nil || got.ID != p.ID || got.Views("tv", 1, day0) != 1 || got.Products[0] != "p-1" || got.Fresh || got.Changed {
		t.Fatalf("round trip: %v %v %+v", st, err, got)
	}
	// A cookie signed with an old key still verifies after the signing key moves on.
	old, _ := NewCodec(map[string][]byte{"k1": []byte(strings.Repeat("a", 32))}, "k1", time.Hour*24, 1200)
	s1, _ := old.Encode(p, day0)
	if _, st, _ := c.Decode([]byte(s1), day0); st != OK {
		t.Fatalf("rotation: %v", st)
	}
}

// TestCodecBadInput: every bad cookie yields a fresh profile and a status.
func TestCodecBadInput(t *testing.T) {
	c := testCodec(t, 1200)
	p := NewFresh(day0)
	good, _ := c.Encode(p, day0)
	parts := strings.Split(good, ".")
	enc := base64.RawURLEncoding.EncodeToString

	other, _ := NewCodec(map[string][]byte{"k2": []byte(strings.Repeat("z", 32))}, "k2", time.Hour, 1200)
	forged, _ := other.Encode(p, day0)
	unknown, _ := NewCodec(map[string][]byte{"k9": []byte(strings.Repeat("a", 32))}, "k9", time.Hour, 1200)
	unknownTok, _ := unknown.Encode(p, day0)
	shortLived, _ := NewCodec(map[string][]byte{"k2": []byte(strings.Repeat("b", 32))}, "k2", time.Minute, 1200)
	expiring, _ := shortLived.Encode(p, day0)
	none := enc([]byte(`{"alg":"none","kid":"k2"}`)) + "." + parts[1] + "."
	hsRS := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.MapClaims{"id": p.ID, "f": 1, "exp": day0.Add(time.Hour).Unix()})
	hsRS.Header["kid"] = "k2"
	hs512, _ := hsRS.SignedString([]byte(strings.Repeat("b", 32)))
	absurd := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"id": p.ID, "f": day0.Add(1000 * 24 * time.Hour).Unix(), "l": -5, "n": 1, "exp": day0.Add(time.Hour).Unix()})
	absurd.Header["kid"] = "k2"
	absurdTok, _ := absurd.SignedString([]byte(strings.Repeat("b", 32)))
	negCount := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"id": p.ID, "f": day0.Unix(), "n": 1, "c": []any{map[string]any{"k": "x", "d": []int{20000, -3}}}, "exp": day0.Add(time.Hour).Unix()})
	negCount.Header["kid"] = "k2"
	negTok, _ := negCount.SignedString([]byte(strings.Repeat("b", 32)))

	for _, tc := range []struct {
		name  string
		value string
		want  Status
	}{
		{"missing", "", Missing},
		{"tampered payload", parts[0] + "." + enc([]byte(`{"id":"AAAAAAAAAAAAAAAA","f":1,"n":999,"exp":9999999999}`)) + "." + parts[2], Tampered},
		{"tampered signature", parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2])), Tampered},
		{"forged with another key", forged, Tampered},
		{"alg none", none, Tampered},
		{"alg HS512 (not pinned)", hs512, Tampered},
		{"unknown kid", unknownTok, UnknownKey},
		{"expired", expiring, Expired},
		{"garbage", "hello world", Garbled},
		{"base64 garbage", "eyJ.eyJ.eyJ", Garbled},
		{"invalid utf-8", "\xff\xfe.\xfd.\xfc", Garbled},
		{"oversized", strings.Repeat("a", 5000), Oversized},
		{"absurd timestamps", absurdTok, Invalid},
		{"negative counts", negTok, Invalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := day0.Add(10 * time.Minute)
			if tc.name == "expired" {
				now = day0.Add(2 * time.Hour)
			}
			got, st, err := c.Decode([]byte(tc.value), now)
			if st != tc.want {
				t.Fatalf("status %v (%v), want %v", st, err, tc.want)
			}
			if got == nil || !got.Fresh || got.Visits != 0 || got.ID == p.ID && tc.want != OK {
				t.Fatalf("not a fresh profile: %+v", got)
			}
		})
	}
}

// worstCase builds the largest profile config allows: every category and
// event counted on 30 different days, long names, all products.
func worstCase(now time.Time) *Profile {
	s := settings
	s.MaxCategories = 50
	s.MaxProducts = 50
	p := NewFresh(now.Add(-30 * 24 * time.Hour))
	for d := 29; d >= 0; d-- {
		tm := now.Add(-time.Duration(d) * 24 * time.Hour)
		for c := 0; c < 50; c++ {
			name := fmt.Sprintf("custom_event_%02d", c%20)
			if c%3 == 0 {
				name = []string{PageView, CategoryView, ProductView, CartAdd, CheckoutStart, Purchase, Search}[c%7]
			}
			p.Observe(Event{Name: name, Category: fmt.Sprintf("category-with-a-long-name-%02d", c),
				Product: fmt.Sprintf("product-%02d-%s", c, strings.Repeat("x", 40)), Navigation: true}, tm, s)
		}
	}
	return p
}

func TestWorstCaseCookieFitsBound(t *testing.T) {
	now := day0
	for _, bound := range []int{400, 800, 1200, 4000} {
		c := testCodec(t, bound)
		p := worstCase(now)
		s, err := c.Encode(p, now)
		if err != nil {
			t.Fatalf("bound %d: %v", bound, err)
		}
		if len(s) > bound {
			t.Fatalf("bound %d: cookie is %d bytes", bound, len(s))
		}
		got, st, _ := c.Decode([]byte(s), now)
		if st != OK {
			t.Fatalf("bound %d: pruned cookie does not decode: %v", bound, st)
		}
		// Pruning keeps the most recent, most used data.
		if bound >= 1200 && (len(got.Cats) < 3 || got.Views(got.Cats[0].Name, 7, now) == 0 || got.Count(PageView, 7, now) == 0 && got.Count(CategoryView, 7, now) == 0) {
			t.Errorf("bound %d: pruned too much: %d categories", bound, len(got.Cats))
		}
		if got.Visits != p.Visits || got.ID != p.ID {
			t.Errorf("bound %d: identity or visit count lost in pruning", bound)
		}
		t.Logf("bound %d: %d bytes, %d categories, %d events, %d products", bound, len(s), len(got.Cats), len(got.Events), len(got.Products))
	}
}

func BenchmarkCodecWorstCase(b *testing.B) {
	c := testCodec(b, 1200)
	p := worstCase(day0)
	s, _ := c.Encode(p, day0)
	b.ReportMetric(float64(len(s)), "bytes/cookie")
	b.ReportAllocs()
	for b.Loop() {
		q, _, _ := c.Decode([]byte(s), day0)
		q.Observe(Event{Name: PageView, Navigation: true}, day0, settings)
		_, _ = c.Encode(q, day0)
	}
}

func BenchmarkCodecTypical(b *testing.B) {
	c := testCodec(b, 1200)
	p := NewFresh(day0)
	for i := 0; i < 20; i++ {
		p.Observe(Event{Name: CategoryView, Category: []string{"sale", "tv", "home"}[i%3], Navigation: true}, at(i%7, 0), settings)
	}
	s, _ := c.Encode(p, day0)
	b.ReportMetric(float64(len(s)), "bytes/cookie")
	b.ReportAllocs()
	for b.Loop() {
		q, _, _ := c.Decode([]byte(s), at(7, 0))
		q.Observe(Event{Name: PageView, Navigation: true}, at(7, 0), settings)
		_, _ = c.Encode(q, at(7, 0))
	}
}

func FuzzDecode(f *testing.F) {
	c := testCodec(f, 1200)
	p := NewFresh(day0)
	p.Observe(Event{Name: ProductView, Category: "tv", Product: "p", Navigation: true}, day0, settings)
	good, _ := c.Encode(p, day0)
	f.Add([]byte(good))
	f.Add([]byte("eyJhbGciOiJub25lIn0.e30."))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, v []byte) {
		got, st, _ := c.Decode(v, day0)
		if got == nil {
			t.Fatal("nil profile")
		}
		if st != OK && !got.Fresh {
			t.Fatal("failed decode did not return a fresh profile")
		}
		if st == OK {
			// whatever verifies must encode again within the bound
			if s, err := c.Encode(got, day0); err != nil || len(s) > 1200 {
				t.Fatalf("re-encode: %d %v", len(s), err)
			}
		}
	})
}

func TestMapper(t *testing.T) {
	cfg := config.Default()
	cfg.Behavior.Events = []config.EventMapping{
		{Match: "GET /product/{category}/{id}", Event: ProductView},
		{Match: "GET /category/{category}", Event: CategoryView},
		{Match: "POST /cart/add", Event: CartAdd},
		{Match: "GET /checkout/complete", Event: Purchase, Conversion: true},
		{Match: "GET /search", Event: Search},
		{Match: "* /api/track/{value}/*", Event: "tracked"},
		{Match: "GET /deals", Event: CategoryView, Category: "sale"},
	}
	m, err := NewMapper(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, path string
		ok           bool
		want         Match
	}{
		{"GET", "/product/TV/p-1", true, Match{Event: ProductView, Category: "tv", Product: "p-1"}},
		{"GET", "/product/tv/p-1/", true, Match{Event: ProductView, Category: "tv", Product: "p-1"}},
		{"GET", "/product/tv", false, Match{}},
		{"GET", "/product/tv/p-1/reviews", false, Match{}},
		{"HEAD", "/product/tv/p-1", false, Match{}},
		{"GET", "/category/sale", true, Match{Event: CategoryView, Category: "sale", Rule: 1}},
		{"POST", "/cart/add", true, Match{Event: CartAdd, Rule: 2}},
		{"GET", "/cart/add", false, Match{}},
		{"GET", "/checkout/complete", true, Match{Event: Purchase, Conversion: true, Rule: 3}},
		{"GET", "/search", true, Match{Event: Search, Rule: 4}},
		{"PUT", "/api/track/42/a/b/c", true, Match{Event: "tracked", Value: "42", Rule: 5}},
		{"GET", "/api/track/42", true, Match{Event: "tracked", Value: "42", Rule: 5}},
		{"GET", "/deals", true, Match{Event: CategoryView, Category: "sale", Rule: 6}},
		{"GET", "/product//p-1", false, Match{}},
		{"GET", "", false, Match{}},
		{"GET", "/product/\xff\xfe/p", true, Match{Event: ProductView, Category: "", Product: "p"}},
	} {
		got, ok := m.Lookup([]byte(tc.method), []byte(tc.path))
		if ok != tc.ok || ok && got != tc.want {
			t.Errorf("%s %q: got %+v %v, want %+v %v", tc.method, tc.path, got, ok, tc.want, tc.ok)
		}
	}
}

func TestMapperErrors(t *testing.T) {
	for _, tc := range []struct{ pattern, want string }{
		{"/no-method", "want \"METHOD /path\""},
		{"get /x", "method must be upper case"},
		{"GET x", "path must start with /"},
		{"GET /a?b=1", "query strings are not matched"},
		{"GET /a/*/b", "* must be the last segment"},
		{"GET /a/{unclosed", "unclosed or empty capture"},
		{"GET /a/{}", "unclosed or empty capture"},
		{"GET /a/{Bad}", "capture names are lower case"},
		{"GET /a/{x}/{x}", "capture {x} used twice"},
		{"GET /a/pre{x}", "a segment is a literal"},
		{"GET /a//b", "empty path segment"},
	} {
		cfg := config.Default()
		cfg.Behavior.Events = []config.EventMapping{{Match: tc.pattern, Event: "x"}}
		_, err := NewMapper(cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "behavior.events[0].match") || !strings.Contains(err.Error(), "column") {
			t.Errorf("%q: got %v, want %q", tc.pattern, err, tc.want)
		}
	}
}

func FuzzMapper(f *testing.F) {
	for _, s := range []string{"GET /product/{category}/{id}", "* /a/*", "POST /cart/add", "GET /"} {
		f.Add(s, "GET", "/product/tv/1")
	}
	f.Fuzz(func(t *testing.T, pattern, method, path string) {
		r, err := compilePattern(pattern)
		if err != nil {
			var pe *PatternError
			if !asPatternError(err, &pe) || pe.Column < 1 {
				t.Fatalf("error without a column: %v", err)
			}
			return
		}
		var mt Match
		_ = r.match([]byte(path), &mt)
	})
}

func asPatternError(err error, pe **PatternError) bool {
	p, ok := err.(*PatternError)
	*pe = p
	return ok
}

// TestDecodedProfilesAreIndependent: each decode of a cookie is the
// visitor's own copy, expiry and signature are checked on every decode.
func TestDecodedProfilesAreIndependent(t *testing.T) {
	c := testCodec(t, 1200)
	p := NewFresh(day0)
	p.Observe(Event{Name: CategoryView, Category: "tv", Navigation: true}, day0, settings)
	s, _ := c.Encode(p, day0)
	got, st, _ := c.Decode([]byte(s), day0)
	if st != OK || got.Views("tv", 1, day0) != 1 || got.Changed {
		t.Fatalf("decode: %v %+v", st, got)
	}
	got.Observe(Event{Name: CategoryView, Category: "tv", Navigation: true}, day0, settings)
	again, _, _ := c.Decode([]byte(s), day0)
	if again.Views("tv", 1, day0) != 1 {
		t.Fatal("changing a decoded profile changed another decode of the same cookie")
	}
	if _, st, _ := c.Decode([]byte(s), day0.Add(400*24*time.Hour)); st != Expired {
		t.Fatalf("expired cookie: %v", st)
	}
	// Another base64url character inside the signature: still a well-formed
	// token, with a signature that does not verify.
	bad := []byte(s)
	if i := len(bad) - 5; bad[i] == 'A' {
		bad[i] = 'B'
	} else {
		bad[i] = 'A'
	}
	if _, st, _ := c.Decode(bad, day0); st != Tampered {
		t.Fatalf("tampered: %v", st)
	}
}
