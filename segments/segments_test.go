package segments

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeseg/edgeseg/cache"
	"github.com/edgeseg/edgeseg/config"
	"github.com/edgeseg/edgeseg/segments/profile"
	"github.com/edgeseg/edgeseg/segments/signals"
)

var settings = profile.Settings{VisitGap: 30 * time.Minute, MaxCategories: 12, MaxProducts: 6, ConsiderationScore: 5, DecisionScore: 15}
var now = time.Date(2026, 3, 4, 19, 0, 0, 0, time.UTC)

func engine(t testing.TB, segs ...config.Segment) *Engine {
	t.Helper()
	cfg := config.Default()
	cfg.Segments = segs
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func seg(name, rule string, prio int) config.Segment {
	return config.Segment{Name: name, Rule: rule, Priority: prio}
}

// visitor builds an Env: ctx fields set by f, and n sale views today.
func visitor(f func(*signals.Context), saleViews int, claims ...signals.KV) *Env {
	ctx := &signals.Context{Device: "desktop", Daypart: "evening", Hour: 19, Weekday: "wednesday", Referrer: "direct", Language: "en", Path: "/",
		Cookies: []signals.KV{{Name: "tier", Value: "gold"}}, Headers: []signals.KV{{Name: "X-Plan", Value: "pro"}}, Query: []signals.KV{{Name: "ref", Value: "abc"}}}
	if f != nil {
		f(ctx)
	}
	p := profile.NewFresh(now.Add(-10 * 24 * time.Hour))
	p.Observe(profile.Event{Name: profile.PageView, Navigation: true}, now.Add(-72*time.Hour), settings)
	for i := 0; i < saleViews; i++ {
		p.Observe(profile.Event{Name: profile.CategoryView, Category: "sale", Navigation: true}, now.Add(-time.Duration(i)*time.Minute), settings)
	}
	var e Env
	e.Fill(ctx, p, claims, now, settings, now.Add(-72*time.Hour).Unix())
	return &e
}

func TestOperatorsAndHelpers(t *testing.T) {
	for _, tc := range []struct {
		rule string
		env  *Env
		want bool
	}{
		{`device == "desktop"`, visitor(nil, 0), true},
		{`device != "desktop"`, visitor(nil, 0), false},
		{`device in ["mobile", "tablet"]`, visitor(func(c *signals.Context) { c.Device = "tablet" }, 0), true},
		{`hour >= 17 && hour < 22`, visitor(nil, 0), true},
		{`daypart == "evening" and not weekend`, visitor(nil, 0), true},
		{`utm.campaign matches "^promo"`, visitor(func(c *signals.Context) { c.UTM.Campaign = "promo-spring" }, 0), true},
		{`utm.campaign matches "^promo"`, visitor(func(c *signals.Context) { c.UTM.Campaign = "Promo" }, 0), false},
		{`lower(utm.campaign) startsWith "promo"`, visitor(func(c *signals.Context) { c.UTM.Campaign = "PROMO" }, 0), true},
		{`utm.source contains "news"`, visitor(func(c *signals.Context) { c.UTM.Source = "newsletter" }, 0), true},
		{`views("sale", 7) >= 3`, visitor(nil, 3), true},
		{`views("sale", 7) >= 3`, visitor(nil, 2), false},
		{`events("category_view", 30) == 4`, visitor(nil, 4), true},
		{`days_since("page_view") == 0`, visitor(nil, 0), false},
		{`days_since("page_view") == 3`, visitor(nil, 0), true},
		{`days_since("purchase") == -1`, visitor(nil, 0), true},
		{`claim("tier") == "gold"`, visitor(nil, 0, signals.KV{Name: "tier", Value: "gold"}), true},
		{`claim("tier") == "gold"`, visitor(nil, 0), false},
		{`cookie("tier") == "gold" && header("X-Plan") == "pro" && query("ref") == "abc"`, visitor(nil, 0), true},
		{`visitor.visits == 1 && visitor.new`, visitor(nil, 0), true},
		{`visitor.days_since_last_visit == 3`, visitor(nil, 0), true},
		{`visitor.top_category == "sale"`, visitor(nil, 2), true},
		{`visitor.stage == "awareness"`, visitor(nil, 0), true},
		{`visitor.stage == "consideration"`, visitor(nil, 5), true},
		{`country == "" and language == "en"`, visitor(nil, 0), true},
		{`1 / 0 > 1`, visitor(nil, 0), true},                                                      // float division: +Inf
		{`int(utm.term) > 0`, visitor(func(c *signals.Context) { c.UTM.Term = "abc" }, 0), false}, // runtime error → not matched
	} {
		t.Run(tc.rule, func(t *testing.T) {
			e := engine(t, seg("s", tc.rule, 0))
			got, failed := e.Eval(tc.env)
			if (got&1 != 0) != tc.want {
				t.Fatalf("got %v (failed %d)", got&1 != 0, failed)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct{ rule, want string }{
		{`devise == "mobile"`, `unknown name devise: did you mean "device"? at column 1`},
		{`device == 3`, "mismatched types string and int) at column 8"},
		{`hour`, "expected bool"},
		{`views("sale")`, "not enough arguments"},
		{`views(7, "sale")`, "cannot use int as argument"},
		{`utm.campain == "x"`, "campain"},
		{`device ==`, "unexpected token"},
		{`os.Exit(1)`, "has no method Exit"},
		// What the environment has besides the documented names: read
		// through them, the visitor's values would not be in the
		// assignment cache's key.
		{`Env.device == "mobile"`, "unknown name Env at column 1"},
		{`$env.device == "mobile"`, "unknown name $env at column 1"},
		{`bot or $env["device"] == "mobile"`, "unknown name $env at column 8"},
		{`"tv" in TopCategories(3)`, "unknown name TopCategories at column 9"},
		{`len(Products()) > 0`, "unknown name Products at column 5"},
	} {
		cfg := config.Default()
		cfg.Segments = []config.Segment{seg("ok", "true", 0), seg("bad", tc.rule, 0)}
		_, err := New(cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `segments[1].rule: segment "bad"`) {
			t.Errorf("%s: got %v, want %q", tc.rule, err, tc.want)
		}
	}
	var segs []config.Segment
	for i := 0; i < MaxSegments+1; i++ {
		segs = append(segs, seg(fmt.Sprintf("s%d", i), "true", 0))
	}
	cfg := config.Default()
	cfg.Segments = segs
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "at most 64") {
		t.Errorf("too many segments: %v", err)
	}
}

func TestPriorityAndDisabled(t *testing.T) {
	off := false
	e := engine(t, seg("low", "true", 1), seg("high", "true", 10), seg("mid-a", "true", 5), seg("mid-b", "true", 5),
		config.Segment{Name: "off", Rule: "true", Priority: 100, Enabled: &off})
	m, _ := e.Eval(visitor(nil, 0))
	var names []string
	for _, mb := range e.Members(nil, m, "") {
		names = append(names, mb.Segment.Name)
	}
	if got := strings.Join(names, ","); got != "high,mid-a,mid-b,low" {
		t.Fatalf("order %s", got)
	}
}

func TestHoldoutDeterministicAndFair(t *testing.T) {
	for _, frac := range []float64{0.1, 0.25, 0.5} {
		e := engine(t, config.Segment{Name: "deals", Rule: "true", Holdout: frac})
		const n = 100_000
		held := 0
		for i := 0; i < n; i++ {
			id := fmt.Sprintf("visitor-%d", i)
			m := e.Members(nil, 1, id)
			if m[0].Holdout {
				held++
			}
			if i%1000 == 0 && e.Members(nil, 1, id)[0].Holdout != m[0].Holdout {
				t.Fatal("bucket not stable for the same visitor")
			}
		}
		if got := float64(held) / n; math.Abs(got-frac) > 0.01 {
			t.Errorf("holdout %.2f: %.4f of visitors held out", frac, got)
		}
	}
	// Different segments bucket independently.
	same := 0
	for i := 0; i < 10000; i++ {
		id := fmt.Sprint(i)
		if (Bucket(id, "a") < 0.5) == (Bucket(id, "b") < 0.5) {
			same++
		}
	}
	if same < 4700 || same > 5300 {
		t.Errorf("segments' buckets correlate: %d/10000 agree", same)
	}
	// No visitor id (no consent): never held out.
	e := engine(t, config.Segment{Name: "deals", Rule: "true", Holdout: 0.9})
	if e.Members(nil, 1, "")[0].Holdout {
		t.Error("anonymous visitor held out")
	}
}

// key is env's assignment cache key, as bytes.
func key(e *Engine, env *Env) (string, bool) {
	b, ok := e.AppendKey(env, nil)
	return string(b), ok
}

func TestKeyReadsOnlyWhatRulesRead(t *testing.T) {
	e := engine(t, seg("a", `device == "mobile" && views("sale", 7) >= 3`, 0), seg("b", `utm.campaign matches "^promo"`, 0))
	k1, ok := key(e, visitor(nil, 1))
	if !ok {
		t.Fatal("not cacheable")
	}
	k2, _ := key(e, visitor(func(c *signals.Context) { c.Hour = 3; c.Path = "/other" }, 1))
	if k1 != k2 {
		t.Error("key changed with values no rule reads")
	}
	for name, env := range map[string]*Env{
		"device":   visitor(func(c *signals.Context) { c.Device = "mobile" }, 1),
		"views":    visitor(nil, 2),
		"campaign": visitor(func(c *signals.Context) { c.UTM.Campaign = "promo" }, 1),
	} {
		if k, _ := key(e, env); k == k1 {
			t.Errorf("key did not change with %s", name)
		}
	}
	// A helper with a computed argument cannot be keyed.
	dyn := engine(t, seg("a", `views(utm.content, 7) > 1`, 0))
	if _, ok := key(dyn, visitor(nil, 0)); ok {
		t.Error("computed helper argument claimed cacheable")
	}
	// Whole-struct use keys on every field of it.
	whole := engine(t, seg("a", `visitor.visits > 0 && utm != nil`, 0))
	ka, _ := key(whole, visitor(nil, 0))
	kb, _ := key(whole, visitor(func(c *signals.Context) { c.UTM.Term = "x" }, 0))
	if ka == kb {
		t.Error("whole utm struct read but key ignores utm.term")
	}
}

// TestKeyValuesAreDelimited: values come from requests and may hold any
// byte. Two visitors whose values split the same bytes differently (here
// around a NUL and a field name, as a crafted query string can) must not
// share a key, or one could have the other's cached assignment.
func TestKeyValuesAreDelimited(t *testing.T) {
	e := engine(t, seg("a", `utm.medium == "m" && utm.source == ""`, 0))
	a, _ := key(e, visitor(func(c *signals.Context) { c.UTM.Medium, c.UTM.Source = "m\x00utm.source\x00s", "" }, 0))
	b, _ := key(e, visitor(func(c *signals.Context) { c.UTM.Medium, c.UTM.Source = "m", "s\x00utm.source\x00" }, 0))
	if a == b {
		t.Fatal("different values, same key")
	}
}

// TestCacheNeverStale assigns through the cache from many goroutines while
// visitors' signals change, and checks every assignment against a fresh
// evaluation: a cached result is never wrong for the current signals.
func TestCacheNeverStale(t *testing.T) {
	e := engine(t, seg("deals", `views("sale", 7) >= 3`, 2), seg("mobile", `device == "mobile"`, 1), seg("promo", `utm.campaign matches "^promo"`, 0))
	c, err := cache.NewChecked[uint64]("assignment", config.CacheSize{MaxItems: 1000, MaxBytes: 1 << 20}, nil)
	if err != nil {
		t.Fatal(err)
	}
	hasher, err := cache.NewHasher()
	if err != nil {
		t.Fatal(err)
	}
	assign := func(env *Env) uint64 {
		b, ok := e.AppendKey(env, nil)
		k := hasher.Sum(b)
		if ok {
			if m, hit := c.Get(k); hit {
				return m
			}
		}
		m, _ := e.Eval(env)
		if ok {
			c.Set(k, m, 16)
		}
		return m
	}
	var wg sync.WaitGroup
	errs := make(chan string, 100)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				views := (i + g) % 5
				dev := []string{"mobile", "desktop"}[(i/3+g)%2]
				camp := []string{"", "promo-x", "summer"}[(i/7)%3]
				env := visitor(func(c *signals.Context) { c.Device = dev; c.UTM.Campaign = camp }, views)
				got := assign(env)
				want, _ := e.Eval(env)
				if got != want {
					select {
					case errs <- fmt.Sprintf("views=%d device=%s campaign=%q: cached %b, fresh %b", views, dev, camp, got, want):
					default:
					}
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	// The cache is used: what was assigned is kept. (Its hit ratio above
	// depends on how soon the cache took in what was set, which a busy
	// host delays: not asserted.)
	env := visitor(func(c *signals.Context) { c.Device = "mobile"; c.UTM.Campaign = "promo-x" }, 3)
	want := assign(env)
	c.Wait()
	b, ok := e.AppendKey(env, nil)
	if m, hit := c.Get(hasher.Sum(b)); !ok || !hit || m != want {
		t.Errorf("an assignment was not kept: cacheable %v, hit %v (%b, want %b); hit ratio %.2f", ok, hit, m, want, c.HitRatio())
	}
}

func TestLintWarnings(t *testing.T) {
	e := engine(t, seg("a", `device == "mobile"`, 0), seg("b", `device in ["mobile"]`, 0), seg("never", `country == "ZZ"`, 0))
	w := strings.Join(e.Warnings, "\n")
	if !strings.Contains(w, `"never" never matched`) || !strings.Contains(w, `"a" and "b" matched the same`) || strings.Contains(w, "its rule takes") {
		t.Fatalf("warnings: %s", w)
	}
	var segs []config.Segment
	for i := 0; i < 16; i++ {
		segs = append(segs, seg(fmt.Sprintf("s%d", i), fmt.Sprintf("hour == %d", i), 0))
	}
	if w := strings.Join(engine(t, segs...).Warnings, "\n"); !strings.Contains(w, "16 segments: more than 15") {
		t.Fatalf("no warning for 16 segments: %s", w)
	}
}

// TestLintSlowRule: a rule that loops over a long range is reported with
// what it costs per visitor, and run on no more sample visitors than it
// takes to tell (it would hold up every config load); the rules beside it
// are linted as before.
func TestLintSlowRule(t *testing.T) {
	start := time.Now()
	e := engine(t, seg("slow", `all(1..300000, # > 0) && device == "mobile"`, 0), seg("never", `country == "ZZ"`, 0))
	took := time.Since(start)
	w := strings.Join(e.Warnings, "\n")
	if !strings.Contains(w, `segment "slow": its rule takes `) || !strings.Contains(w, `"never" never matched`) || strings.Contains(w, `"slow" never`) {
		t.Fatalf("warnings: %s", w)
	}
	t.Logf("loaded in %v: %s", took, w)
}

func TestPreviewTokens(t *testing.T) {
	p, err := NewPreviews(strings.Repeat("s", 32))
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := p.Mint("deals", time.Hour, now)
	if s, err := p.Verify(tok, now.Add(time.Minute)); err != nil || s != "deals" {
		t.Fatalf("valid token: %q %v", s, err)
	}
	if _, err := p.Verify(tok, now.Add(2*time.Hour)); err == nil {
		t.Error("expired token accepted")
	}
	other, _ := NewPreviews(strings.Repeat("x", 32))
	forged, _ := other.Mint("deals", time.Hour, now)
	parts := strings.Split(tok, ".")
	for name, bad := range map[string]string{
		"other key":  forged,
		"alg none":   "eyJhbGciOiJub25lIn0." + parts[1] + ".",
		"swapped":    parts[0] + "." + parts[1] + "x." + parts[2],
		"garbage":    "garbage",
		"huge":       strings.Repeat("a", 5000),
		"empty":      "",
		"no segment": mustMint(t, p, "", now),
	} {
		if _, err := p.Verify(bad, now); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := NewPreviews("short"); err == nil {
		t.Error("short secret accepted")
	}
}

func mustMint(t *testing.T, p *Previews, seg string, now time.Time) string {
	s, err := p.Mint(seg, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func BenchmarkAssignCacheHit(b *testing.B) {
	e := engine(b, seg("deals", `views("sale", 7) >= 3 || utm.campaign matches "^promo"`, 2), seg("mobile", `device == "mobile"`, 1))
	c, _ := cache.NewChecked[uint64]("a", config.CacheSize{MaxItems: 1000, MaxBytes: 1 << 20}, nil)
	hasher, _ := cache.NewHasher()
	env := visitor(nil, 3)
	buf, _ := e.AppendKey(env, nil)
	m, _ := e.Eval(env)
	c.Set(hasher.Sum(buf), m, 16)
	c.Wait()
	var dst []Member
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = e.AppendKey(env, buf[:0])
		m, _ := c.Get(hasher.Sum(buf))
		dst = e.Members(dst[:0], m, "visitor-1")
	}
}

func BenchmarkAssignMiss(b *testing.B) {
	e := engine(b, seg("deals", `views("sale", 7) >= 3 || utm.campaign matches "^promo"`, 2), seg("mobile", `device == "mobile"`, 1))
	env := visitor(nil, 3)
	var dst []Member
	b.ReportAllocs()
	for b.Loop() {
		m, _ := e.Eval(env)
		dst = e.Members(dst[:0], m, "visitor-1")
	}
}

// manySegments is a marketing team's full set: as many segments as the
// engine takes, with the kinds of rules the README documents (context,
// behavior windows, recency, campaign, geo), each different.
func manySegments(n int) []config.Segment {
	kinds := []string{
		`device == "mobile" && views("cat%d", 7) >= 2`,
		`utm.campaign == "spring-%d" || referrer == "paid"`,
		`views("cat%d", 30) >= 3 && visitor.visits > 1`,
		`events("cart_add", 7) >= 1 && days_since("purchase") > %d`,
		`country == "DE" && hour >= %d %% 24 && weekend`,
		`visitor.pageviews > %d && browser == "Safari"`,
		`language == "fr" && visitor.top_category == "cat%d"`,
		`visitor.new && path matches "^/category/cat%d"`,
	}
	segs := make([]config.Segment, n)
	for i := range segs {
		segs[i] = seg(fmt.Sprintf("s%02d", i), fmt.Sprintf(kinds[i%len(kinds)], i), i)
	}
	return segs
}

// BenchmarkAssignMany64 is assignment with 64 segments: every rule run
// (a miss), and the key built and looked up (a hit).
func BenchmarkAssignMany64(b *testing.B) {
	e := engine(b, manySegments(64)...)
	env := visitor(nil, 3)
	var dst []Member
	b.Run("miss", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m, failed := e.Eval(env)
			if failed != 0 {
				b.Fatalf("%d rules failed", failed)
			}
			dst = e.Members(dst[:0], m, "visitor-1")
		}
	})
	b.Run("hit", func(b *testing.B) {
		c, _ := cache.NewChecked[uint64]("a", config.CacheSize{MaxItems: 1000, MaxBytes: 1 << 20}, nil)
		hasher, _ := cache.NewHasher()
		buf, ok := e.AppendKey(env, nil)
		if !ok {
			b.Fatal("rules not keyable")
		}
		m, _ := e.Eval(env)
		c.Set(hasher.Sum(buf), m, 16)
		c.Wait()
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = e.AppendKey(env, buf[:0])
			m, ok := c.Get(hasher.Sum(buf))
			if !ok {
				b.Fatal("miss")
			}
			dst = e.Members(dst[:0], m, "visitor-1")
		}
	})
}

// TestRulesReadTheEnvDirectly: a rule reads fields by index and calls
// helpers without looking them up by name through reflection, as it did
// when compiled against *Env (each read then allocated; 64 segments cost
// 40 µs per evaluation instead of 12, BenchmarkAssignMany64).
func TestRulesReadTheEnvDirectly(t *testing.T) {
	e := engine(t, seg("s", `device == "desktop" && views("sale", 7) >= 3 && visitor.top_category == "sale" && utm.campaign == ""`, 0))
	env := visitor(nil, 3)
	if m, failed := e.Eval(env); m != 1 || failed != 0 {
		t.Fatalf("rule: matched %b, %d failed", m, failed)
	}
	// 6 now: three strings and a method value boxed for the VM's stack,
	// and what a run itself takes; 12 through reflection by name.
	allocs := testing.AllocsPerRun(200, func() { e.Eval(env) })
	if allocs > 8 {
		t.Errorf("%.0f allocations to run one rule of four reads; want at most 8", allocs)
	}
}
