package templates

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"golang.org/x/net/html"

	"github.com/edgeseg/edgeseg/config"
	"github.com/edgeseg/edgeseg/segments"
	"github.com/edgeseg/edgeseg/segments/profile"
	"github.com/edgeseg/edgeseg/segments/signals"
	"github.com/edgeseg/edgeseg/templates/inject"
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

// TestEditorsAreToldTheNearestName: a misspelt field or partial is told
// the name it is nearest to; the block's own data is checked as well as the
// render context, and a field near nothing lists what there is.
func TestEditorsAreToldTheNearestName(t *testing.T) {
	dir := t.TempDir()
	for name, src := range map[string]string{
		"_partials/price.hbs": `<b>{{amount}}</b>`,
		"hero/a.hbs":          `<p>{{> pricee amount=1}}</p>`,
		"hero/b.hbs":          `<p>{{signals.devise}} {{visitor.pageview}} {{data.hedline}} {{visitor.zzzzzzzzzzzz}}</p>`,
		"hero/b.yaml":         "headline: Hi\nitems: [{t: a}]\n",
		"hero/c.hbs":          `<p>{{data.headline}} {{data.items.[0].t}} {{data.items.length}}{{#each data.items}}{{t}}{{/each}}</p>`,
		"hero/c.yaml":         "headline: Hi\nitems: [{t: a}]\n",
	} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, ps := Load(dir, nil)
	msgs := ps.Error()
	for _, want := range []string{
		`hero/a.hbs:1: partial "pricee" not found in _partials/: did you mean "price"?`,
		`hero/b.hbs:1: unknown field "signals.devise": it renders empty: did you mean "signals.device"?`,
		`hero/b.hbs:1: unknown field "visitor.pageview": it renders empty: did you mean "visitor.pageviews"?`,
		`hero/b.hbs:1: unknown field "data.hedline": it renders empty: did you mean "data.headline"?`,
		`hero/b.hbs:1: unknown field "visitor.zzzzzzzzzzzz": it renders empty (context: segment, signals, visitor, data)`,
	} {
		if !strings.Contains(msgs, want) {
			t.Errorf("missing %q in:\n%s", want, msgs)
		}
	}
	if strings.Contains(msgs, "hero/c.hbs") {
		t.Errorf("fields of the block's own data reported unknown:\n%s", msgs)
	}
}

// TestSegmentDataProblems: a block that writes a field of segment.data
// its segment's config does not give is warned of, with its line and the
// field nearest by name; one it tests first, hands to default, or reads
// inside an {{#each}} or {{#with}} (relative to another value) is not.
func TestSegmentDataProblems(t *testing.T) {
	data := map[string]any{"code": "SAVE10", "offer": map[string]any{"pct": 15}, "tiers": []any{"a"}}
	for _, tc := range []struct {
		name, src, want string
	}{
		{"present", `<b>{{segment.data.code}} {{segment.data.offer.pct}} {{segment.data.tiers.[0]}}</b>`, ""},
		{"missing", "<p>\n<b>{{segment.data.coupon}}</b></p>", `hero/x.hbs:2: segment.data.coupon: segment "deals" has no such data in the config: it renders empty (add it under`},
		{"misspelt", `<b>{{segment.data.cdoe}}</b>`, `hero/x.hbs:1: segment.data.cdoe: segment "deals" has no such data in the config: it renders empty: did you mean "segment.data.code"?`},
		{"nested", `<b>{{segment.data.offer.pc}}</b>`, `did you mean "segment.data.offer.pct"?`},
		{"unescaped", `<b>{{{segment.data.banner}}}</b>`, `segment.data.banner: segment "deals"`},
		{"to a helper", `<a href="{{url segment.data.link}}">x</a>`, `segment.data.link: segment "deals"`},
		{"default", `<b>{{default segment.data.coupon "WELCOME"}}</b>`, ""},
		{"tested", `{{#if segment.data.coupon}}<b>{{segment.data.coupon}}</b>{{/if}}`, ""},
		{"tested unless", `{{#unless segment.data.coupon}}x{{else}}<b>{{segment.data.coupon}}</b>{{/unless}}`, ""},
		{"scoped", `{{#with segment.data.offer}}<b>{{segment.data.nothing}}</b>{{/with}}`, ""},
		{"in a partial", `<p>{{> coupon}}</p>`, `hero/x.hbs: segment.data.coupon (in _partials/coupon.hbs, line 2): segment "deals" has no such data`},
		{"tested in a partial", `<p>{{> tested}}</p>`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			os.MkdirAll(filepath.Join(dir, "hero"), 0o755)
			os.MkdirAll(filepath.Join(dir, "_partials"), 0o755)
			os.WriteFile(filepath.Join(dir, "_partials", "coupon.hbs"), []byte("Use\n<b>{{segment.data.coupon}}</b>"), 0o644)
			os.WriteFile(filepath.Join(dir, "_partials", "tested.hbs"), []byte("{{#if segment.data.coupon}}<b>{{segment.data.coupon}}</b>{{/if}}"), 0o644)
			os.WriteFile(filepath.Join(dir, "hero", "x.hbs"), []byte(tc.src), 0o644)
			os.WriteFile(filepath.Join(dir, "hero", "deals.hbs"), []byte(tc.src), 0o644)
			set, ps := Load(dir, nil)
			if len(ps.Errors()) > 0 {
				t.Fatal(ps)
			}
			// x is the block of a segment the config does not have: left out.
			got := set.SegmentDataProblems(func(name string) *segments.Segment {
				if name == "deals" {
					return &segments.Segment{Name: "deals", Data: data}
				}
				return nil
			})
			msgs := strings.ReplaceAll(got.Error(), "hero/deals.hbs", "hero/x.hbs")
			if tc.want == "" && len(got) != 0 || tc.want != "" && (len(got) != 1 || !got[0].Warning || !strings.Contains(msgs, tc.want)) {
				t.Fatalf("got %q, want %q", msgs, tc.want)
			}
		})
	}
}

func TestRenderErrorsAreErrors(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "hero"), 0o755)
	// formatCurrency with a missing argument panics inside raymond: for a
	// block reading the visitor, when it renders; for one that reads only
	// its data (the same for everyone), when it loads.
	os.WriteFile(filepath.Join(dir, "hero", "x.hbs"), []byte(`{{formatCurrency signals.hour}}`), 0o644)
	os.WriteFile(filepath.Join(dir, "hero", "w.hbs"), []byte(`{{formatCurrency 5}}`), 0o644)
	set, ps := Load(dir, nil)
	if set.Lookup("hero", "w") != nil || len(ps.Errors()) != 1 || !strings.Contains(ps.Error(), "hero/w.hbs: render: ") {
		t.Fatalf("a block failing for every visitor loaded: %v", ps)
	}
	b := set.Lookup("hero", "x")
	if b == nil {
		t.Fatal("not loaded")
	}
	if _, err := b.Exec(testSegment("x"), env("mobile")); err == nil || !strings.Contains(err.Error(), "hero/x.hbs") {
		t.Fatalf("want a render error naming the file, got %v", err)
	}

	// A block whose HTML, as rendered for a visitor, would break the page
	// around its slot is an error for that visitor, and only for them.
	os.WriteFile(filepath.Join(dir, "hero", "y.hbs"), []byte(`<div>{{#if (eq signals.device "mobile")}}m</div>{{/if}}`), 0o644)
	set, _ = Load(dir, nil)
	b = set.Lookup("hero", "y")
	if out, err := b.Exec(testSegment("y"), env("mobile")); err != nil || out != "<div>m</div>" {
		t.Fatalf("mobile: %q %v", out, err)
	}
	if _, err := b.Exec(testSegment("y"), env("desktop")); err == nil || !strings.Contains(err.Error(), "hero/y.hbs: as rendered: <div> is never closed") {
		t.Fatalf("desktop: want an error naming the file and the element, got %v", err)
	}

	// A block rendering more than a page should hold.
	var items strings.Builder
	items.WriteString("items:\n")
	for range 2 {
		items.WriteString("  - " + strings.Repeat("abcdefghij", 30000) + "\n")
	}
	os.WriteFile(filepath.Join(dir, "hero", "z.yaml"), []byte(items.String()), 0o644)
	os.WriteFile(filepath.Join(dir, "hero", "z.hbs"), []byte(`{{signals.device}}{{#each data.items}}{{#each ../data.items}}{{this}}{{/each}}{{/each}}`), 0o644)
	set, _ = Load(dir, nil)
	if _, err := set.Lookup("hero", "z").Exec(testSegment("z"), env("tv")); err == nil || !strings.Contains(err.Error(), "hero/z.hbs: renders 1200002 bytes; a block may render at most 1048576") {
		t.Fatalf("want an error for a block rendering 1.2 MB, got %v", err)
	}
}

// TestVisitorTextIsEscaped: what a visitor chooses (the query string, the
// path, the referrer, the categories their links put in their profile) is
// refused as HTML: a link to the site could carry a script into the page.
func TestVisitorTextIsEscaped(t *testing.T) {
	for _, tc := range []struct {
		tpl     string
		refused string // the path named, or "" when the block loads
	}{
		{`{{{signals.utm.campaign}}}`, "signals.utm.campaign"},
		{`{{{ signals.utm }}}`, "signals.utm"},
		{`{{& signals.path}}`, "signals.path"},
		{`{{{truncate signals.utm.campaign 10}}}`, "signals.utm.campaign"},
		{`{{{default signals.referrer_host "x"}}}`, "signals.referrer_host"},
		{`{{{lower (truncate signals.utm.content 5)}}}`, "signals.utm.content"},
		{`{{{default fallback=visitor.top_category}}}`, "visitor.top_category"},
		{`{{#each visitor.top_categories}}<b>{{{this}}}</b>{{/each}}`, "this"},
		{`{{#each data.items}}{{{../signals.utm.source}}}{{/each}}`, "../signals.utm.source"},
		{`{{#with visitor}}{{{products}}}{{/with}}`, "products"},
		{`{{{@root.signals.utm.term}}}`, "@root.signals.utm.term"},
		{`{{{this}}}`, "this"},
		{`{{{json visitor.products}}}{{{url signals.path}}}{{{js signals.utm.campaign}}}{{{urlQuery signals.language}}}`, ""},
		{`{{#each data.items}}{{{this}}}{{/each}}`, ""},
		{`{{#each visitor.products}}{{{@index}}}{{/each}}`, ""},
		{`{{{data.html}}}{{{segment.data.banner}}}{{{visitor.visits}}}{{{signals.device}}}`, ""},
		{`{{signals.utm.campaign}}{{truncate signals.path 5}}`, ""},
		{`{{> p}}`, "signals.utm.campaign (in _partials/p.hbs, line 2)"},
		{`{{> q v=signals.path}}`, "v (in _partials/q.hbs, line 1)"},
		{`{{> q v=(lower signals.utm.term)}}`, "v (in _partials/q.hbs, line 1)"},
		{`{{> q v=data.html}}`, ""},
		{`{{> r signals.utm}}`, "campaign (in _partials/r.hbs, line 1)"},
		{`{{#each visitor.products}}{{> r}}{{/each}}`, "campaign (in _partials/r.hbs, line 1)"},
		{`{{#each data.items}}{{> r}}{{/each}}`, ""},
		{`{{{this.signals.utm.campaign}}}`, "this.signals.utm.campaign"},
		{`{{{./signals.path}}}`, "./signals.path"},
		{`{{{signals/utm/medium}}}`, "signals/utm/medium"},
		{`{{#each visitor.products as |p|}}{{{p}}}{{/each}}`, "p"},
		{`{{#with signals.utm as |u|}}{{{u.campaign}}}{{/with}}`, "u.campaign"},
		{`{{{lookup signals "path"}}}`, "signals"},
	} {
		want := ""
		if tc.refused != "" {
			want = "{{{ }}} writes " + tc.refused + " into the page as HTML"
		}
		loadRefuses(t, map[string]string{
			"_partials/p.hbs": "x\n{{{signals.utm.campaign}}}",
			"_partials/q.hbs": "{{{v}}}",
			"_partials/r.hbs": "{{{campaign}}}",
			"s/x.yaml":        "items: [a]\nhtml: <b>x</b>\n",
		}, tc.tpl, want)
	}
}

// loadRefuses loads tpl as the block s/x beside files, and fails t unless
// the block is refused with a problem saying want, or, for want "", loads
// without an error.
func loadRefuses(t *testing.T, files map[string]string, tpl, want string) {
	t.Helper()
	dir := t.TempDir()
	files["s/x.hbs"] = tpl
	for name, body := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
		os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644)
	}
	set, ps := Load(dir, nil)
	loaded := set.Lookup("s", "x") != nil
	switch {
	case want == "" && (!loaded || len(ps.Errors()) > 0):
		t.Errorf("%s: refused: %v", tpl, ps)
	case want != "" && loaded:
		t.Errorf("%s: loaded", tpl)
	case want != "" && !strings.Contains(ps.Error(), want):
		t.Errorf("%s: the problem does not say %q: %v", tpl, want, ps)
	}
}

// TestBrokenStaticBlockKeepsItsLastVersion: an editor saving a block that
// would break every page it fills does not take the slot down: the reload
// reports it and keeps serving the version before.
func TestBrokenStaticBlockKeepsItsLastVersion(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "hero"), 0o755)
	os.WriteFile(filepath.Join(dir, "hero", "x.hbs"), []byte(`<div class="promo">{{data.title}}</div>`), 0o644)
	os.WriteFile(filepath.Join(dir, "hero", "x.yaml"), []byte("title: Deals\n"), 0o644)
	prev, ps := Load(dir, nil)
	if len(ps) > 0 || prev.Lookup("hero", "x") == nil {
		t.Fatalf("%v", ps)
	}
	os.WriteFile(filepath.Join(dir, "hero", "x.hbs"), []byte(`<div class="promo">{{data.title}}`), 0o644)
	set, ps := Load(dir, prev)
	if !strings.Contains(ps.Error(), `hero/x.hbs: as rendered: <div class="promo"> is never closed`) {
		t.Fatalf("not reported: %v", ps)
	}
	b := set.Lookup("hero", "x")
	if b == nil {
		t.Fatal("the slot lost its block")
	}
	if out, err := b.Exec(testSegment("x"), env("mobile")); err != nil || out != `<div class="promo">Deals</div>` {
		t.Fatalf("not the last good version: %q %v", out, err)
	}
}

// TestVisitorTextIsPlacedSafely: escaping for HTML makes a visitor's text
// safe in text and quoted attribute values only. Elsewhere, a block
// writing it is refused at load, with what to write instead.
func TestVisitorTextIsPlacedSafely(t *testing.T) {
	for _, tc := range []struct{ tpl, refused string }{
		{`<a href="{{signals.utm.content}}">x</a>`, "signals.utm.content, which a visitor chooses, at the start of the href attribute (it could be a javascript: URL): write it with {{url x}}"},
		{`<img SRC='{{lower signals.utm.content}}'>`, "at the start of the src attribute"},
		{`<a href={{signals.path}}>x</a>`, "in an unquoted attribute value"},
		{`<div class=a{{signals.utm.term}}>x</div>`, "in an unquoted attribute value"},
		{`<div onclick="go('{{signals.utm.term}}')">x</div>`, "in the onclick attribute, which is code"},
		{`<div style="color: {{signals.utm.term}}">x</div>`, "in a style attribute"},
		{`<div {{signals.utm.term}}>x</div>`, "inside a tag"},
		{`<div class="a" {{signals.utm.term}}="b">x</div>`, "inside a tag"},
		{`<script>var c = {{signals.utm.campaign}};</script>`, "in a <script> (it could be code there): write it with {{js x}} (a string) or {{json x}}"},
		{`<SCRIPT type="module">{{#if signals.device}}{{visitor.top_category}}{{/if}}</SCRIPT>`, "in a <script>"},
		{`<style>.a{color:{{signals.utm.term}};}</style>`, "in a <style>"},
		{`<div data-x="{{json signals.utm.term}}">x</div>`, "in an attribute, where the quotes {{json}} writes end the value"},
		{`<iframe srcdoc="{{signals.utm.term}}"></iframe>`, "in an srcdoc attribute"},
		{`{{#each visitor.products}}<a href="{{this}}">x</a>{{/each}}`, "this, which a visitor chooses, at the start of the href attribute"},
		{`{{> h v=signals.utm.term}}`, "v (in _partials/h.hbs, line 1), which a visitor chooses, at the start of the href attribute"},
		{`<!--><a href="{{signals.utm.term}}">x</a>`, "at the start of the href attribute"},
		{`<script>var s = "</scripts>{{signals.utm.term}}";</script>`, "in a <script>"},
		{`<!---><a href="{{signals.utm.term}}">x</a>`, "at the start of the href attribute"},
		{`<!-- a --!><a href="{{signals.utm.term}}">x</a>`, "at the start of the href attribute"},
		{`<a href="{{> t v=signals.utm.term}}">x</a>`, "v (in _partials/t.hbs, line 1), which a visitor chooses, at the start of the href attribute"},
		{`<a href="/x">{{> t v=signals.utm.term}}</a>`, ""},

		{`<a href="/search?q={{signals.utm.term}}">x</a>`, ""},
		{`<a href="{{url signals.utm.content}}">{{signals.utm.content}}</a>`, ""},
		{`<a href="{{urlQuery signals.utm.content}}">x</a><a href=/s?q={{urlQuery signals.path}}>y</a>`, ""},
		{`<a title="{{signals.utm.term}}" href='/s?q={{signals.utm.term}}'>x</a>`, ""},
		{`<script>var c = {{js signals.utm.campaign}}; var d = {{json visitor.products}};</script><p>{{signals.path}}</p>`, ""},
		{`<p>{{signals.utm.campaign}}</p><!-- <a href="{{signals.path}}"> -->`, ""},
		{`<textarea>{{signals.utm.term}}</textarea><title>{{signals.utm.term}}</title>`, ""},
		{`<a href="{{data.base}}{{signals.utm.term}}" class="{{signals.device}}">{{signals.utm.term}}</a>`, ""},
		{`<script>var a = "</p>";</script><a href="/x?{{signals.utm.term}}">x</a>`, ""},
		{`<p>3 < 4 {{signals.utm.term}}</p><p data-a="x>{{signals.utm.term}}">y</p>`, ""},
	} {
		loadRefuses(t, map[string]string{
			"_partials/h.hbs": `<a href="{{v}}">x</a>`,
			"_partials/t.hbs": `{{v}}`,
			"s/x.yaml":        "base: /sale\n",
		}, tc.tpl, tc.refused)
	}
}

// TestFailuresAreReportedOnceAnInterval: a block failing on every request
// is reported once per ReportEvery, with the count of failures since.
func TestFailuresAreReportedOnceAnInterval(t *testing.T) {
	var b Block
	t0 := time.Unix(1_800_000_000, 0)
	if n, ok := b.Failed(t0); !ok || n != 1 {
		t.Fatalf("first failure: %d %v", n, ok)
	}
	for i := range 5 {
		if _, ok := b.Failed(t0.Add(time.Duration(i+1) * time.Second)); ok {
			t.Fatalf("reported again %d s later", i+1)
		}
	}
	if n, ok := b.Failed(t0.Add(ReportEvery)); !ok || n != 6 {
		t.Fatalf("after %s: %d %v, want the 6 failures since", ReportEvery, n, ok)
	}
	if _, ok := b.Failed(t0.Add(ReportEvery + time.Second)); ok {
		t.Fatal("reported again a second later")
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
		{`<a href="?q={{urlQuery "a b&c"}}">x</a>`, `<a href="?q=a+b%26c">x</a>`},
		{`<a href="{{url "javascript:alert(1)"}}">x</a>`, `<a href="#">x</a>`},
		{`<a href="{{url "/sale?a=1&b=2"}}">x</a>`, `<a href="/sale?a=1&amp;b=2">x</a>`},
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
	seg := testSegment("deals")
	deals := set.Lookup("hero", "deals")
	key := func(seg *segments.Segment, e *segments.Env) string { return string(deals.AppendKey(nil, seg, e)) }
	a, b, c := key(seg, env("mobile", "tv")), key(seg, env("desktop", "tv")), key(seg, env("mobile", "sale"))
	if a == b || a == c {
		t.Error("block key ignores a value the block reads")
	}
	other := *seg
	other.Fingerprint = 42 // another config's segment of the same name
	if key(&other, env("mobile", "tv")) == a {
		t.Error("block key ignores the segment's config")
	}
	if !set.Lookup("hero", "static").static || deals.static {
		t.Error("static: a block reading only its segment and data is rendered once per segment; others are not")
	}
	// Lists are counted and delimited: one category named "a,b" is not
	// the two categories a and b.
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "hero"), 0o755)
	os.WriteFile(filepath.Join(dir, "hero", "x.hbs"), []byte(`{{#each visitor.top_categories}}[{{this}}]{{/each}}`), 0o644)
	lists, _ := Load(dir, nil)
	x := lists.Lookup("hero", "x")
	if string(x.AppendKey(nil, seg, env("mobile", "a,b"))) == string(x.AppendKey(nil, seg, env("mobile", "a", "b"))) {
		t.Error("top categories a,b and a + b share a key")
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
				if err != nil || !strings.HasPrefix(string(out.HTML), "<b>version ") || !strings.HasSuffix(string(out.HTML), "</b>") {
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
	if string(out.HTML) != "<b>version 30</b>" {
		t.Fatalf("after a broken edit: %q", out.HTML)
	}
}

// watchedStore is a Store of a new directory holding hero/a.hbs ("one"),
// watched until the test ends.
func watchedStore(t *testing.T) (string, *Store) {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "hero"), 0o755)
	os.WriteFile(filepath.Join(dir, "hero", "a.hbs"), []byte("one"), 0o644)
	store, _, _ := NewStore(dir, config.CacheSize{MaxItems: 100, MaxBytes: 1 << 20}, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := store.Watch(ctx); err != nil {
		t.Fatal(err)
	}
	return dir, store
}

func TestWatchReloads(t *testing.T) {
	dir, store := watchedStore(t)
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

// TestWatchReloadsWhileWritesGoOn: a directory written to without a
// pause long enough to count as quiet (here a file every 50 ms, for 3 s)
// is still reloaded, within watchMaxDelay of the change.
func TestWatchReloadsWhileWritesGoOn(t *testing.T) {
	dir, store := watchedStore(t)
	noise := filepath.Join(dir, "hero", ".a.hbs.swp") // not a template, but an event
	os.WriteFile(filepath.Join(dir, "hero", "a.hbs"), []byte("uno"), 0o644)
	changed := time.Now()
	for time.Since(changed) < 3*time.Second {
		os.WriteFile(noise, []byte(time.Now().String()), 0o644)
		if out, _ := store.Set().Lookup("hero", "a").Exec(testSegment("a"), env("m")); out == "uno" {
			if d := time.Since(changed); d > watchMaxDelay+500*time.Millisecond {
				t.Fatalf("reloaded %v after the change, want within %v", d, watchMaxDelay)
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("not reloaded while the directory kept changing")
}

// TestStaticFailuresAreKept: a block that reads nothing of the visitor
// fails the same way for everyone: it is rendered once, and each use of it
// is counted.
func TestStaticFailuresAreKept(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "hero"), 0o755)
	os.WriteFile(filepath.Join(dir, "hero", "x.hbs"), []byte(`<div class="promo">{{segment.name}}`), 0o644)
	ms := metrics.NewSet()
	store, _, err := NewStore(dir, config.CacheSize{MaxItems: 100, MaxBytes: 1 << 20}, ms, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := store.Set().Lookup("hero", "x")
	if !b.static {
		t.Fatal("not static")
	}
	seg := testSegment("x")
	_, err1 := store.Render(b, seg, env("mobile"))
	kept := b.rendered.Load()
	_, err2 := store.Render(b, seg, env("desktop"))
	if err1 == nil || err2 != err1 || kept == nil || kept.err != err1 || b.rendered.Load() != kept {
		t.Fatalf("failure not kept: %v, %v", err1, err2)
	}
	var out bytes.Buffer
	ms.WritePrometheus(&out)
	if !strings.Contains(out.String(), "edgeseg_template_errors_total 2") {
		t.Errorf("each failed use is not counted:\n%s", out.String())
	}

	// A wait cut short (a busy host) is not the block's failure: not kept.
	os.WriteFile(filepath.Join(dir, "hero", "y.hbs"), []byte(`<ul>{{#each segment.data.items}}<li>{{this}}</li>{{/each}}</ul>`), 0o644)
	store.Reload()
	y := store.Set().Lookup("hero", "y")
	if !y.static || !y.loops {
		t.Fatal("not a static block that loops")
	}
	for range cap(y.renders) {
		y.renders <- struct{}{} // every CPU busy rendering it
	}
	store.renderTime = time.Millisecond
	if _, err := store.Render(y, seg, env("mobile")); !errors.Is(err, ErrTooSlow) {
		t.Fatalf("want a wait cut short, got %v", err)
	}
	for range cap(y.renders) {
		<-y.renders
	}
	store.renderTime = MaxRenderRun
	if out, err := store.Render(y, seg, env("mobile")); err != nil || string(out.HTML) != "<ul></ul>" {
		t.Fatalf("a wait cut short was kept as the block's failure: %q %v", out.HTML, err)
	}
}

// TestSlowBlocksAreNotWaitedFor: a visitor does not wait past the render
// bound for a block; a block whose render runs far past it is not rendered
// again, by anyone, until the templates are reloaded; one only waited on
// too long (a busy host) is tried again.
func TestSlowBlocksAreNotWaitedFor(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "hero"), 0o755)
	var items strings.Builder
	items.WriteString("items:\n")
	for range 150 {
		items.WriteString("  - x\n")
	}
	os.WriteFile(filepath.Join(dir, "hero", "x.yaml"), []byte(items.String()), 0o644)
	os.WriteFile(filepath.Join(dir, "hero", "x.hbs"), []byte(`<p>{{signals.device}}{{#each data.items}}{{#each ../data.items}}{{this}}{{/each}}{{/each}}</p>`), 0o644)
	store, _, err := NewStore(dir, config.CacheSize{MaxItems: 100, MaxBytes: 1 << 20}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := store.Set().Lookup("hero", "x")
	seg := testSegment("x")
	// The fastest of three renders: none is faster, so bounds well under
	// it are always run out of.
	took := time.Hour
	for range 3 {
		full := time.Now()
		if _, err := b.Exec(seg, env("tv")); err != nil {
			t.Fatal(err)
		}
		took = min(took, time.Since(full))
	}
	drain := func() {
		for len(b.renders) > 0 {
			time.Sleep(time.Millisecond) // the renders left running hold the CPUs
		}
	}

	// Waited on too long, as on a busy host: the visitor gets an error,
	// and the block is tried again.
	store.renderTime, store.giveUp = took/20, 100*took+10*time.Second
	// (ErrTooSlow says the wait ran out before the render ended: had it
	// ended first, its output would have been returned.)
	if _, err1 := store.Render(b, seg, env("mobile")); !errors.Is(err1, ErrTooSlow) || !strings.Contains(err1.Error(), "hero/x.hbs") {
		t.Fatalf("a whole render takes %s: %v", took, err1)
	}
	drain()
	if b.tooSlow.Load() != nil {
		t.Fatal("a render waited on too long stopped the block")
	}
	store.renderTime = 100*took + 10*time.Second
	if out, err := store.Render(b, seg, env("mobile")); err != nil || !strings.HasPrefix(string(out.HTML), "<p>mobilexx") {
		t.Fatalf("not tried again: %.20q %v", out.HTML, err)
	}

	// Running past giveUp: the block is done with until a reload.
	store.renderTime, store.giveUp = took/20, took/5
	if _, err := store.Render(b, seg, env("desktop")); !errors.Is(err, ErrTooSlow) {
		t.Fatalf("want a visitor's wait cut short, got %v", err)
	}
	deadline := time.Now().Add(100*took + 10*time.Second)
	for b.tooSlow.Load() == nil && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	stopped := b.tooSlow.Load()
	if stopped == nil || !strings.Contains((*stopped).Error(), "hero/x.hbs: a render ran for over") {
		t.Fatalf("a render running past its bound did not stop the block: %v", stopped)
	}
	drain()
	if _, err := store.Render(b, seg, env("tv")); err != *stopped || len(b.renders) > 0 {
		t.Fatalf("rendered again: %v", err)
	}

	// Visitors asking at once start no more than a few renders of it
	// between them.
	b.tooSlow.Store(nil)
	before := runtime.NumGoroutine()
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			if _, _, err := b.ExecWithin(seg, env(fmt.Sprint("tv", i)), took/20); !errors.Is(err, ErrTooSlow) {
				t.Errorf("%d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if n := runtime.NumGoroutine() - before; n > cap(b.renders) {
		t.Errorf("%d renders running for 16 visitors, want at most %d", n, cap(b.renders))
	}
	drain()

	// A block without an {{#each}} or a partial cannot run long: it is
	// rendered where it is asked for, untimed.
	os.WriteFile(filepath.Join(dir, "hero", "y.hbs"), []byte(`<p>{{signals.device}} {{data.title}}</p>`), 0o644)
	os.WriteFile(filepath.Join(dir, "hero", "y.yaml"), []byte("title: Deals\n"), 0o644)
	store.Reload()
	store.renderTime = time.Nanosecond
	if out, err := store.Render(store.Set().Lookup("hero", "y"), seg, env("mobile")); err != nil || string(out.HTML) != "<p>mobile Deals</p>" {
		t.Fatalf("a simple block: %q %v", out.HTML, err)
	}

	// A fresh set of blocks is tried again.
	b.tooSlow.Store(stopped)
	store.renderTime, store.giveUp = MaxRenderRun, MaxRenderRun
	store.Reload()
	if out, err := store.Render(store.Set().Lookup("hero", "x"), seg, env("mobile")); err != nil || !strings.HasPrefix(string(out.HTML), "<p>mobilexx") {
		t.Fatalf("after a reload: %.20q %v", out.HTML, err)
	}
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

// TestPartialsInTheCacheKey: what a partial reads of the visitor keys the
// block's renders like what the block reads itself, through nested
// partials too, so one visitor's render is never served to another.
func TestPartialsInTheCacheKey(t *testing.T) {
	store := storeOf(t, map[string]string{
		"_partials/dev.hbs":   `{{signals.device}}`,
		"_partials/outer.hbs": `[{{> dev}}]`,
		"hero/x.hbs":          `<b>{{> dev}}</b>`,
		"hero/y.hbs":          `<i>{{> outer}}</i>`,
	})
	rendersPerDevice(t, store, []deviceCase{
		{"x", "<b>mobile</b>", "<b>desktop</b>"},
		{"y", "<i>[mobile]</i>", "<i>[desktop]</i>"},
	})
}

// storeOf writes files (path: content) into a new directory and loads a
// Store from it, without problems.
func storeOf(t *testing.T, files map[string]string) *Store {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755)
		os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644)
	}
	store, ps, err := NewStore(dir, config.CacheSize{MaxItems: 100, MaxBytes: 1 << 20}, nil, nil)
	if err != nil || len(ps) > 0 {
		t.Fatal(err, ps)
	}
	return store
}

// deviceCase is a hero block by segment name and what it renders for a
// mobile and a desktop visitor.
type deviceCase struct{ seg, mobile, desktop string }

// rendersPerDevice renders each block through the store's cache for a
// mobile, a desktop and a mobile visitor again: each gets its own.
func rendersPerDevice(t *testing.T, store *Store, cases []deviceCase) {
	t.Helper()
	for _, tc := range cases {
		b, seg := store.Set().Lookup("hero", tc.seg), testSegment(tc.seg)
		if b == nil {
			t.Fatalf("%s: not loaded", tc.seg)
		}
		for _, device := range []string{"mobile", "desktop", "mobile"} {
			want := tc.mobile
			if device == "desktop" {
				want = tc.desktop
			}
			out, err := store.Render(b, seg, env(device))
			store.BlockCache().Wait()
			if err != nil || string(out.HTML) != want {
				t.Fatalf("%s for %s: got %q (%v), want %q", tc.seg, device, out.HTML, err, want)
			}
		}
	}
}

// TestRecursivePartialsRefused: a partial that calls itself, directly,
// through another, or through a computed name, would render forever (and
// overflow the stack, which no recover catches): such blocks are refused
// at load with the file, line and cycle, and other blocks load.
func TestRecursivePartialsRefused(t *testing.T) {
	dir := t.TempDir()
	for name, src := range map[string]string{
		"_partials/self.hbs": `{{#if signals.device}}{{> self}}{{/if}}`,
		"_partials/a.hbs":    `{{> b}}`,
		"_partials/b.hbs":    `{{> a}}`,
		"_partials/pick.hbs": `{{> (lookup . "name")}}`,
		"_partials/ok.hbs":   `ok`,
		"hero/direct.hbs":    "<b>\n{{> self}}</b>",
		"hero/mutual.hbs":    `{{> a}}`,
		"hero/computed.hbs":  `{{> (lookup data "p")}}`,
		"hero/indirect.hbs":  `{{> pick}}`,
		"hero/fine.hbs":      `[{{> ok}}|{{> ok}}]`,
	} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755)
		os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644)
	}
	set, ps := Load(dir, nil)
	want := map[string]string{
		"direct.hbs":   "self → self",
		"mutual.hbs":   "a → b → a",
		"computed.hbs": "must be written out",
		"indirect.hbs": "pick → (a computed name)",
	}
	for _, p := range ps.Errors() {
		base := filepath.Base(p.File)
		if w, ok := want[base]; !ok || !strings.Contains(p.Msg, w) {
			t.Errorf("unexpected problem: %v", p)
		}
		if base == "direct.hbs" && p.Line != 2 {
			t.Errorf("direct.hbs: line %d, want 2", p.Line)
		}
		delete(want, base)
	}
	if len(want) > 0 {
		t.Errorf("not refused: %v", want)
	}
	for _, seg := range []string{"direct", "mutual", "computed", "indirect"} {
		if set.Lookup("hero", seg) != nil {
			t.Errorf("%s loaded", seg)
		}
	}
	b := set.Lookup("hero", "fine")
	if b == nil {
		t.Fatal("a block calling a partial twice is not a cycle")
	}
	if out, err := b.Exec(testSegment("fine"), env("mobile")); err != nil || out != "[ok|ok]" {
		t.Fatalf("fine: %q %v", out, err)
	}
}

// TestRenderFollowsSegmentConfig: a config reload that changes a segment's
// data gets new renders at once, for blocks that read only the segment
// (kept per segment) and blocks that read the visitor too (block cache).
func TestRenderFollowsSegmentConfig(t *testing.T) {
	store, ps, err := NewStore("testdata/good", config.CacheSize{MaxItems: 100, MaxBytes: 1 << 20}, nil, nil)
	if err != nil || len(ps) > 0 {
		t.Fatal(err, ps)
	}
	segmentFor := func(code string) *segments.Segment {
		cfg := config.Default()
		cfg.Segments = []config.Segment{{Name: "static", Rule: "true", Data: map[string]any{"code": code}},
			{Name: "deals", Rule: "true", Data: map[string]any{"code": code}}}
		eng, err := segments.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return eng.Lookup("static")
	}
	old, next := segmentFor("OLD"), segmentFor("NEW")
	if old.Fingerprint == next.Fingerprint || segmentFor("OLD").Fingerprint != old.Fingerprint {
		t.Fatal("fingerprints must follow the segment's data, and only it")
	}
	static := store.Set().Lookup("hero", "static")
	for _, tc := range []struct {
		seg  *segments.Segment
		want string
	}{{old, "OLD"}, {next, "NEW"}, {old, "OLD"}} {
		out, err := store.Render(static, tc.seg, env("mobile"))
		if err != nil || !strings.Contains(string(out.HTML), tc.want) {
			t.Fatalf("static block for %s: %q %v", tc.want, out.HTML, err)
		}
	}
}

// FuzzTemplate: whatever an editor writes in a block and a partial, the
// set loads (with problems naming the file) and the block renders or
// fails with an error; nothing panics.
func FuzzTemplate(f *testing.F) {
	f.Add(`<h1>{{upper segment.name}}</h1>{{> price}}`, `<b>{{formatCurrency 1234.5 "EUR"}}</b>`)
	f.Add(`{{#each visitor.categories}}{{this}}{{/each}}{{#if (gt visitor.visits 2)}}x{{/if}}`, `{{> price}}`)
	f.Add(`{{#with}}{{/with}}{{lookup}}{{formatCurrency}}{{truncate "x" -5}}{{pluralize}}`, `{{{{raw}}}}{{/raw}}`)
	f.Add(strings.Repeat(`{{#if signals.device}}`, 200)+strings.Repeat(`{{/if}}`, 200), `{{> (lookup . "x")}}`)
	f.Add(`{{{signals.utm.campaign}}}{{> price v=signals.path}}`, `{{{v}}}`)
	f.Add(`{{#each visitor.products}}{{> price}}{{/each}}`, `{{{this}}}`)
	f.Add(`{{#with signals}}{{{utm.term}}}{{/with}}`, `{{{truncate ../signals.os 3}}}`)
	f.Add(`<a href="{{signals.utm.term}}" class={{signals.path}}>{{> price v=signals.utm.content}}</a>`, `<b onclick="f('{{v}}')">`)
	f.Add(`<a href="{{url signals.utm.term}}" title="{{signals.path}}">x</a><script>var a = {{js signals.utm.content}};</script>`, `<i>`)
	f.Add(`<a href="{{> price v=signals.utm.term}}">x</a>`, `{{v}}`)
	f.Fuzz(func(t *testing.T, block, partial string) {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "hero"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dir, "_partials"), 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "hero", "deals.hbs"), []byte(block), 0o644)
		os.WriteFile(filepath.Join(dir, "_partials", "price.hbs"), []byte(partial), 0o644)
		set, ps := Load(dir, nil)
		for _, p := range ps {
			if !strings.HasPrefix(p.File, dir) {
				t.Fatalf("problem does not name a file: %+v", p)
			}
			if strings.Contains(p.Msg, "\n") {
				t.Fatalf("problem spans lines: %q", p.Msg)
			}
		}
		if b := set.Lookup("hero", "deals"); b != nil {
			if _, err := b.Exec(testSegment("deals"), env("mobile", "tv", "sale")); err != nil && (!strings.Contains(err.Error(), "hero/deals.hbs") || strings.Contains(err.Error(), "\n")) {
				t.Fatalf("render error does not name the file in one line: %q", err)
			}
			// No block that loads writes a visitor's text as HTML, or where
			// it could add an attribute or be a URL or code.
			if strings.Contains(block+partial, "x-v") || strings.Contains(block+partial, "xv") {
				return
			}
			out, _, err := b.ExecWithin(testSegment("deals"), hostileEnv(), time.Second)
			if err != nil {
				return
			}
			if strings.Contains(out, "<x-v>") {
				t.Fatalf("a visitor's text written as HTML by %q (partial %q): %q", block, partial, out)
			}
			z := html.NewTokenizer(strings.NewReader(out))
			for tt := z.Next(); tt != html.ErrorToken; tt = z.Next() {
				if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
					continue
				}
				for _, at := range z.Token().Attr {
					val := strings.ToLower(strings.TrimSpace(at.Val))
					if at.Key == "x-v" || urlAttr(at.Key) && strings.HasPrefix(val, "javascript:xv") || (strings.HasPrefix(at.Key, "on") || at.Key == "style") && strings.Contains(val, "xv") {
						t.Fatalf("a visitor's text made %s=%q with %q (partial %q): %q", at.Key, at.Val, block, partial, out)
					}
				}
			}
		}
	})
}

// hostileEnv is a visitor who put markup, an attribute and a javascript:
// URL in everything they can choose.
func hostileEnv() *segments.Env {
	const v = "javascript:xv() x-v=1 \"' x-v=2 <x-v>"
	p := profile.NewFresh(now)
	p.Observe(profile.Event{Name: profile.CategoryView, Category: v, Navigation: true}, now, settings)
	p.Observe(profile.Event{Name: profile.ProductView, Product: v, Navigation: true}, now, settings)
	var e segments.Env
	e.Fill(&signals.Context{Device: "mobile", Browser: v, OS: v, ReferrerHost: v, Country: v, Region: v, Language: v, Path: v,
		UTM: signals.UTM{Source: v, Medium: v, Campaign: v, Term: v, Content: v}}, p, nil, now, settings, 0)
	return &e
}

// TestRootPathsInTheCacheKey: @root.visitor.x reads the visitor as
// visitor.x does, from inside an each or with as from the top; a block
// reading it must not be served from the cache to a visitor whose value
// differs, nor treated as reading nothing of the visitor.
func TestRootPathsInTheCacheKey(t *testing.T) {
	store := storeOf(t, map[string]string{
		"hero/top.hbs":     `{{@root.signals.device}}`,
		"hero/inside.hbs":  `{{#each data.items}}{{this}}:{{@root.signals.device}};{{/each}}`,
		"hero/inside.yaml": "items: [a]\n",
		"hero/whole.hbs":   `{{#with @root}}{{signals.device}}{{/with}}`,
	})
	rendersPerDevice(t, store, []deviceCase{
		{"top", "mobile", "desktop"},
		{"inside", "a:mobile;", "a:desktop;"},
		{"whole", "mobile", "desktop"},
	})
}

// TestOversizeFilesAreProblems: a template over 256 KiB, or a data file
// over 1 MiB (a file dropped in the folder by mistake), is reported with
// its name and not read whole; the other blocks load.
func TestOversizeFilesAreProblems(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "hero"), 0o755)
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, "hero", name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("big.hbs", bytes.Repeat([]byte("x"), maxTemplateBytes+1))
	write("data.hbs", []byte(`{{data.title}}`))
	write("data.yaml", append([]byte("title: t\npad: "), bytes.Repeat([]byte("y"), maxDataBytes)...))
	write("fits.hbs", bytes.Repeat([]byte("x"), maxTemplateBytes))
	set, ps := Load(dir, nil)
	msgs := ps.Error()
	for _, want := range []string{"hero/big.hbs: larger than 256KiB", "hero/data.yaml: larger than 1024KiB"} {
		if !strings.Contains(msgs, want) {
			t.Errorf("missing %q in:\n%s", want, msgs)
		}
	}
	if set.Lookup("hero", "big") != nil || set.Lookup("hero", "data") != nil || set.Lookup("hero", "fits") == nil {
		t.Errorf("wrong blocks kept: %v", set.Blocks())
	}
}

// BenchmarkRenderMissThroughStore: a render the block cache does not hold,
// as a request makes it, of a block with an {{#each}} and a partial: run
// apart and timed (a goroutine, two timers), its HTML checked.
func BenchmarkRenderMissThroughStore(b *testing.B) {
	store, _, _ := NewStore("testdata/good", config.CacheSize{MaxItems: 100, MaxBytes: 1 << 20}, nil, nil)
	blk := store.Set().Lookup("hero", "deals")
	seg, e := testSegment("deals"), env("mobile", "tv")
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := store.exec(blk, seg, e); err != nil {
			b.Fatal(err)
		}
	}
}

// TestEditorsReadOneLine: a template that does not parse, does not render
// or is not UTF-8 is reported in one line an editor can act on, at its
// line, not in the Handlebars engine's dump of its tokens and nodes.
func TestEditorsReadOneLine(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want string // the problem, after "x.hbs"
	}{
		{"<p>\n{{#if visitor.new}}hi", ":2: a block ({{#if}}, {{#each}}, …) is never closed: its {{/…}} is missing"},
		{"{{#if visitor.new}}a{{/each}}", ":1: {{#if}} is closed by {{/each}}"},
		{"<p>{{segment.name</p>", ":1: unexpected character in expression: '<'"},
		{"<p>{{segment.name", ":1: a {{ is never closed by }}"},
		{"{{{{raw}}}} x", ":1: a raw block {{{{x}}}} is never closed by {{{{/x}}}}"},
		{"\n\n{{!-- note", ":3: a comment {{!-- is never closed by --}}"},
		{"{{> }}", `:1: expected a name, found "}}"`},
		{"{{#each visitor.products as |p}}{{/each}}", `:1: expected |, found "}}"`},
		{"{{x.[}}", ":1: unterminated path literal"},
		{"<p>ok</p>\n<p>caf\xe9</p>", ":2: column 7: not UTF-8 text; save the file as UTF-8"},
		{"{{#each}}{{/each}}", ": render: Helper 'each' called with wrong number of arguments, needed 2 but got 0"},
	} {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "s"), 0o755)
		os.WriteFile(filepath.Join(dir, "s", "x.hbs"), []byte(tc.src), 0o644)
		set, ps := Load(dir, nil)
		if set.Lookup("s", "x") != nil || len(ps) != 1 {
			t.Errorf("%q: loaded, or not one problem: %v", tc.src, ps)
			continue
		}
		got := strings.TrimPrefix(ps[0].Error(), filepath.Join(dir, "s", "x.hbs"))
		if got != tc.want {
			t.Errorf("%q:\n got %q\nwant %q", tc.src, got, tc.want)
		}
	}
}

// TestByteOrderMarkIsDropped: Windows editors start UTF-8 files with a
// byte order mark; it would go into every page as an invisible character.
func TestByteOrderMarkIsDropped(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "s"), 0o755)
	os.WriteFile(filepath.Join(dir, "s", "x.hbs"), []byte("\xef\xbb\xbf<p>Café</p>"), 0o644)
	set, ps := Load(dir, nil)
	b := set.Lookup("s", "x")
	if b == nil || len(ps) > 0 {
		t.Fatalf("refused: %v", ps)
	}
	out, err := b.Exec(&segments.Segment{Name: "x"}, &segments.Env{})
	if err != nil || out != "<p>Café</p>" {
		t.Fatalf("rendered %q, %v", out, err)
	}
}

// TestRenderReadsTheShape: a render comes with its block's shape, from the
// cache as from the engine, so the proxy can tell whether it fits a slot
// element without reading it again.
func TestRenderReadsTheShape(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "hero"), 0o755)
	os.WriteFile(filepath.Join(dir, "hero", "deals.hbs"), []byte(`<div>{{segment.name}}</div>`), 0o644)
	os.WriteFile(filepath.Join(dir, "hero", "mobile.hbs"), []byte(`<b>{{signals.device}}</b>`), 0o644)
	store, _, err := NewStore(dir, config.CacheSize{MaxItems: 100, MaxBytes: 1 << 20}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // rendered, then kept
		div, err1 := store.Render(store.Set().Lookup("hero", "deals"), testSegment("deals"), env("mobile"))
		b, err2 := store.Render(store.Set().Lookup("hero", "mobile"), testSegment("mobile"), env("mobile"))
		store.BlockCache().Wait()
		if err1 != nil || err2 != nil || div.Shape&inject.ClosesP == 0 || b.Shape&inject.ClosesP != 0 ||
			inject.Misfit(inject.Place{Element: []byte("p")}, div.Shape) == "" || inject.Misfit(inject.Place{Element: []byte("p")}, b.Shape) != "" {
			t.Fatalf("<div>: %q %b %v; <b>: %q %b %v", div.HTML, div.Shape, err1, b.HTML, b.Shape, err2)
		}
	}
}

// TestStrayFilesAreNamed: a file in a slot folder that looks like a block
// or its data but is never read (a block saved as .html or .HBS, data as
// .yml, data whose block is gone) is a warning naming what it should be;
// other files, hidden files, backups and the blocks themselves are not.
func TestStrayFilesAreNamed(t *testing.T) {
	dir := t.TempDir()
	for name, src := range map[string]string{
		"hero/deals.hbs": "<p>x</p>", "hero/deals.yaml": "a: 1\n",
		"hero/mobile.html": "<p>x</p>", "hero/Luxury.HBS": "<p>x</p>", "hero/promo.handlebars": "<p>x</p>",
		"hero/mobile.yml": "a: 1\n", "hero/gone.yaml": "a: 1\n", "hero/Promo.YAML": "a: 1\n",
		"hero/notes.txt": "x", "hero/README.md": "x", "hero/.DS_Store": "x", "hero/deals.hbs~": "x",
		"hero/.deals.hbs.swp": "x", "hero/deals.bak": "x", "hero/old/a.html": "x",
	} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	set, ps := Load(dir, nil)
	var got []string
	for _, p := range ps {
		if !p.Warning {
			t.Errorf("an error: %v", p)
		}
		got = append(got, strings.TrimPrefix(p.File, dir+string(filepath.Separator))+": "+p.Msg)
	}
	want := []string{
		"hero/Luxury.HBS: not read: a slot's blocks are SEGMENT.hbs (luxury.hbs)",
		"hero/Promo.YAML: not read: a block's data file is SEGMENT.yaml (promo.yaml)",
		"hero/gone.yaml: data for a block gone.hbs that is not there: it is not read",
		"hero/mobile.html: not read: a slot's blocks are SEGMENT.hbs (mobile.hbs)",
		"hero/mobile.yml: not read: a block's data file is SEGMENT.yaml (mobile.yaml)",
		"hero/promo.handlebars: not read: a slot's blocks are SEGMENT.hbs (promo.hbs)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if set.Lookup("hero", "deals") == nil || len(set.Blocks()) != 1 {
		t.Errorf("blocks: %v", set.Blocks())
	}
}
