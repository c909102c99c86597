package templates

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgeseg/edgeseg/config"
	"github.com/edgeseg/edgeseg/segments"
	"github.com/edgeseg/edgeseg/segments/profile"
	"github.com/edgeseg/edgeseg/segments/signals"
)

var now = time.Date(2026, 3, 4, 19, 0, 0, 0, time.UTC)
var settings = profile.Settings{VisitGap: 30 * time.Minute, MaxCategories: 12, MaxProducts: 6, ConsiderationScore: 5, DecisionScore: 15}

func env(device string, cats ...string) *segments.Env {
	p := profile.NewFresh(now)
	for _, c := range cats {
		p.Observe(profile.Event{Name: profile.CategoryView, Category: c, Navigation: true}, now, settings)
	}
	var e segments.Env
	e.Fill(&signals.Context{Device: device, Daypart: "evening"}, p, nil, now, settings, 0)
	return &e
}

func testSegment(name string) *segments.Segment {
	return &segments.Segment{Name: name, Priority: 1, Data: map[string]any{"code": "SAVE<15>"}}
}

func TestLoadAndRender(t *testing.T) {
	set, ps := Load("testdata/good", nil)
	if len(ps) != 0 {
		t.Fatalf("problems: %v", ps)
	}
	if set.Len() != 3 || !set.HasSlot("hero") || !set.HasSegment("deals") || set.Lookup("hero", "nope") != nil {
		t.Fatalf("set: %d blocks", set.Len())
	}
	out, err := set.Lookup("hero", "deals").Exec(testSegment("deals"), env("mobile", "tv", "tv", "sale"))
	if err != nil {
		t.Fatal(err)
	}
	want := "<h1>DEALS: 20% off</h1>\n<p>More tv deals for mobile at evening.</p>\n<b>€1,234.50</b>\n"
	if out != want {
		t.Fatalf("got %q\nwant %q", out, want)
	}
	out, _ = set.Lookup("hero", "static").Exec(testSegment("static"), env("desktop"))
	if out != "<h1>Static SAVE&lt;15&gt;</h1>\n" {
		t.Fatalf("escaping: %q", out)
	}
	out, _ = set.Lookup("sidebar", "deals").Exec(testSegment("deals"), env("desktop", "a", "b", "b"))
	if out != "<ul><li>b</li><li>a</li></ul>\n" {
		t.Fatalf("each: %q", out)
	}
}

func TestLoadProblems(t *testing.T) {
	set, ps := Load("testdata/bad", nil)
	msgs := ps.Error()
	for _, want := range []string{
		"testdata/bad/hero/unclosed.hbs:", // parse error with a line
		`testdata/bad/hero/nopartial.hbs:1: partial "missing" not found`,
		`testdata/bad/hero/typo.hbs:1: unknown field "visitor.vists"`,
		`testdata/bad/hero/badhelper.hbs:1: unknown helper "frobnicate"`,
		"testdata/bad/sidebar/good.yaml:1:",
	} {
		if !strings.Contains(msgs, want) {
			t.Errorf("missing %q in:\n%s", want, msgs)
		}
	}
	// typo.hbs only warns (the field renders empty): it still loads.
	if set.Lookup("hero", "typo") == nil || set.Lookup("hero", "unclosed") != nil || set.Lookup("hero", "nopartial") != nil {
		t.Errorf("wrong blocks kept: %v", set.Blocks())
	}
	if _, ps := Load("testdata/none", nil); len(ps) != 1 || !strings.Contains(ps[0].Msg, "template directory") {
		t.Errorf("missing dir: %v", ps)
	}
}

func TestRenderErrorsAreErrors(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "hero"), 0o755)
	// formatCurrency with a missing argument panics inside raymond.
	os.WriteFile(filepath.Join(dir, "hero", "x.hbs"), []byte(`{{formatCurrency 5}}`), 0o644)
	set, _ := Load(dir, nil)
	b := set.Lookup("hero", "x")
	if b == nil {
		t.Fatal("not loaded")
	}
	if _, err := b.Exec(testSegment("x"), env("mobile")); err == nil || !strings.Contains(err.Error(), "hero/x.hbs") {
		t.Fatalf("want a render error naming the file, got %v", err)
	}
}

func TestHelpers(t *testing.T) {
	for _, tc := range []struct{ tpl, want string }{
		{`{{#if (eq signals.device "mobile")}}m{{else}}d{{/if}}`, "m"},
		{`{{#if (ne signals.device "mobile")}}x{{else}}y{{/if}}`, "y"},
		{`{{default signals.country "somewhere"}}`, "somewhere"},
		{`{{lower "ABC"}}{{upper "def"}}`, "abcDEF"},
		{`{{truncate "hello wonderful world" 9}}`, "hello won…"},
		{`{{formatNumber 1234567.891 2}}`, "1,234,567.89"},
		{`{{formatNumber -1234 0}}`, "-1,234"},
		{`{{formatCurrency 39 "USD"}} {{formatCurrency 1000 "JPY"}} {{formatCurrency 5 "XYZ"}}`, "$39.00 ¥1,000 5.00 XYZ"},
		{`{{pluralize 1 "item" "items"}} {{pluralize 2 "item" "items"}}`, "item items"},
		{`<script>var d = {{json visitor.top_categories}};</script>`, `<script>var d = ["\u003c/script\u003e"];</script>`},
		{`<a href="?q={{urlQuery "a b&c"}}">`, `<a href="?q=a+b%26c">`},
		{`<a href="{{url "javascript:alert(1)"}}">`, `<a href="#">`},
		{`<a href="{{url "/sale?a=1&b=2"}}">`, `<a href="/sale?a=1&amp;b=2">`},
		{`<script>var s = {{js "</script><b>"}};</script>`, `<script>var s = "\u003c/script\u003e\u003cb\u003e";</script>`},
		{`{{formatNumber "abc" 2}}|{{truncate 5 0}}`, "|5"},
	} {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "s"), 0o755)
		os.WriteFile(filepath.Join(dir, "s", "x.hbs"), []byte(tc.tpl), 0o644)
		set, ps := Load(dir, nil)
		if len(ps.Errors()) > 0 {
			t.Fatalf("%s: %v", tc.tpl, ps)
		}
		out, err := set.Lookup("s", "x").Exec(testSegment("x"), env("mobile", "</script>"))
		if err != nil || out != tc.want {
			t.Errorf("%s:\n got %q (%v)\nwant %q", tc.tpl, out, err, tc.want)
		}
	}
}

func TestBlockCacheKey(t *testing.T) {
	set, _ := Load("testdata/good", nil)
	static := set.Lookup("hero", "static")
	k1, _ := static.Key(env("mobile"), nil)
	k2, _ := static.Key(env("desktop", "tv"), nil)
	if k1 != k2 {
		t.Error("static block keyed on visitor values it does not read")
	}
	deals := set.Lookup("hero", "deals")
	a, _ := deals.Key(env("mobile", "tv"), nil)
	b, _ := deals.Key(env("desktop", "tv"), nil)
	c, _ := deals.Key(env("mobile", "sale"), nil)
	if a == b || a == c {
		t.Error("block key ignores a value the block reads")
	}
}

// TestReloadUnderLoad renders continuously from many goroutines while the
// directory is rewritten and reloaded: every render is a complete, valid
// version (old or new), and a broken edit keeps the last good version.
func TestReloadUnderLoad(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "hero"), 0o755)
	write := func(v int) {
		os.WriteFile(filepath.Join(dir, "hero", "deals.hbs"), []byte(fmt.Sprintf("<b>version %d</b>", v)), 0o644)
	}
	write(0)
	store, ps, err := NewStore(dir, config.CacheSize{MaxItems: 100, MaxBytes: 1 << 20}, nil, nil)
	if err != nil || len(ps) > 0 {
		t.Fatal(err, ps)
	}
	seg := testSegment("deals")
	var stop atomic.Bool
	var renders, bad atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := env("mobile")
			for !stop.Load() {
				b := store.Set().Lookup("hero", "deals")
				if b == nil {
					bad.Add(1)
					continue
				}
				out, err := store.Render(b, seg, e)
				if err != nil || !strings.HasPrefix(string(out), "<b>version ") || !strings.HasSuffix(string(out), "</b>") {
					bad.Add(1)
				}
				renders.Add(1)
			}
		}()
	}
	for v := 1; v <= 30; v++ {
		write(v)
		store.Reload()
	}
	// A broken edit: the previous good version keeps serving.
	os.WriteFile(filepath.Join(dir, "hero", "deals.hbs"), []byte("{{#if x}}broken"), 0o644)
	ps = store.Reload()
	stop.Store(true)
	wg.Wait()
	if bad.Load() > 0 {
		t.Fatalf("%d of %d renders were missing or half-done", bad.Load(), renders.Load())
	}
	if len(ps.Errors()) != 1 {
		t.Fatalf("broken edit not reported: %v", ps)
	}
	out, _ := store.Render(store.Set().Lookup("hero", "deals"), seg, env("mobile"))
	if string(out) != "<b>version 30</b>" {
		t.Fatalf("after a broken edit: %q", out)
	}
}

func TestWatchReloads(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "hero"), 0o755)
	os.WriteFile(filepath.Join(dir, "hero", "a.hbs"), []byte("one"), 0o644)
	store, _, _ := NewStore(dir, config.CacheSize{MaxItems: 100, MaxBytes: 1 << 20}, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := store.Watch(ctx); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "sidebar"), 0o755)
	time.Sleep(50 * time.Millisecond)
	os.WriteFile(filepath.Join(dir, "sidebar", "b.hbs"), []byte("two"), 0o644)
	os.WriteFile(filepath.Join(dir, "hero", "a.hbs"), []byte("uno"), 0o644)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		s := store.Set()
		if b := s.Lookup("sidebar", "b"); b != nil {
			if out, _ := s.Lookup("hero", "a").Exec(testSegment("a"), env("m")); out == "uno" {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("watcher did not pick up the changes")
}

func BenchmarkRenderHit(b *testing.B) {
	set, _ := Load("testdata/good", nil)
	store, _, _ := NewStore("testdata/good", config.CacheSize{MaxItems: 100, MaxBytes: 1 << 20}, nil, nil)
	blk := set.Lookup("hero", "deals")
	seg, e := testSegment("deals"), env("mobile", "tv")
	store.Render(blk, seg, e)
	store.BlockCache().Wait()
	b.ReportAllocs()
	for b.Loop() {
		store.Render(blk, seg, e)
	}
}

func BenchmarkRenderMiss(b *testing.B) {
	set, _ := Load("testdata/good", nil)
	blk := set.Lookup("hero", "deals")
	seg, e := testSegment("deals"), env("mobile", "tv")
	b.ReportAllocs()
	for b.Loop() {
		blk.Exec(seg, e)
	}
}
