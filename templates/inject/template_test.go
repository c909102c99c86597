package inject

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// slotsOf scans page, whole, and returns the Place of each slot found
// fillable, by slot name, and the markers ignored; streamed in pieces of
// every size up to 7 bytes, the page must give the same, and pass through
// unchanged.
func slotsOf(t *testing.T, page string) (map[string]Place, []Ignored) {
	t.Helper()
	collect := func(places map[string]Place) Lookup {
		return func(slot []byte, p Place) (Block, bool) {
			p.Element = slices.Clone(p.Element)
			places[string(slot)] = p
			return Block{}, false
		}
	}
	whole := map[string]Place{}
	plan := Scan([]byte(page))
	plan.Apply(nil, []byte(page), collect(whole), nil)
	for size := 1; size <= 7; size++ {
		streamed := map[string]Place{}
		var out strings.Builder
		r := NewRewriter(&out, collect(streamed), nil)
		for i := 0; i < len(page); i += size {
			r.Write([]byte(page[i:min(i+size, len(page))]))
		}
		r.Close()
		if !reflect.DeepEqual(whole, streamed) || !reflect.DeepEqual(plan.Ignored(), r.Ignored()) || out.String() != page {
			t.Errorf("%s\nin pieces of %d: %+v %v; whole: %+v %v", page, size, streamed, r.Ignored(), whole, plan.Ignored())
		}
	}
	return whole, plan.Ignored()
}

// TestTemplates: a <template>'s content is not shown, and its slots are
// not filled; a declarative shadow root's is, and its slots are filled
// for their place in it: nothing open around the template is open inside
// it, and everything is again after it.
func TestTemplates(t *testing.T) {
	const dsd = `<x-card><template shadowrootmode="open">`
	for _, tc := range []struct {
		name, page string
		want       map[string]Place // the slots filled, with their places
		ignored    []string         // the slots left, inside a template
	}{
		{"inert", `<template><div data-edgeseg-slot="a">x</div></template><div data-edgeseg-slot="b">y</div>`,
			map[string]Place{"b": {}}, []string{"a"}},
		{"on a template", `<template data-edgeseg-slot="a"><p>x</p></template>`, map[string]Place{}, []string{"a"}},
		{"shadow root", `<p>Get ` + dsd + `<span data-edgeseg-slot="a">x</span></template></x-card></p>`,
			map[string]Place{"a": {}}, nil},
		{"closed shadow root, any case", `<a href="/">` + `<x-card><template ShadowRootMode="CLOSED"><span data-edgeseg-slot="a">x</span></template></x-card></a>`,
			map[string]Place{"a": {}}, nil},
		{"not a mode", `<x-card><template shadowrootmode="none"><span data-edgeseg-slot="a">x</span></template></x-card>`,
			map[string]Place{}, []string{"a"}},
		{"fresh inside", `<form><ul><li><button>` + dsd + `<span data-edgeseg-slot="a">x</span></template></x-card></button></li></ul></form>`,
			map[string]Place{"a": {}}, nil},
		{"its own places", dsd + `<p>Get <a href="/"><span data-edgeseg-slot="a">x</span></a></p></template></x-card>`,
			map[string]Place{"a": {InParagraph: true, InLink: true}}, nil},
		{"the page's again after it", `<p>Get <a href="/">` + dsd + `<div>d</div><p>left open</template></x-card><span data-edgeseg-slot="a">x</span></a></p>`,
			map[string]Place{"a": {InParagraph: true, InLink: true}}, nil},
		{"ends from inside SVG", dsd + `<svg><g></template></x-card><span data-edgeseg-slot="a">x</span>`,
			map[string]Place{"a": {}}, nil},
		{"an SVG template is SVG's", `<svg><template><text data-edgeseg-slot="a">x</text></template></svg>`,
			map[string]Place{"a": {InForeign: true}}, nil},
		{"an SVG template's end tag", dsd + `<svg><template><g></template><text data-edgeseg-slot="a">x</text></svg></template></x-card>`,
			map[string]Place{"a": {InForeign: true}}, nil},
		{"nested", `<template><template>t</template><div data-edgeseg-slot="a">x</div></template><div data-edgeseg-slot="b">y</div>`,
			map[string]Place{"b": {}}, []string{"a"}},
		{"shadow root in a template", `<template>` + dsd + `<i data-edgeseg-slot="a">x</i></template></x-card></template>`,
			map[string]Place{}, []string{"a"}},
		{"shadow roots nested", dsd + `<x-b><template shadowrootmode="open"><p><i data-edgeseg-slot="a">x</i></template></x-b><i data-edgeseg-slot="b">y</i></template></x-card>`,
			map[string]Place{"a": {InParagraph: true}, "b": {}}, nil},
		{"end tag in a script", `<template><script>"</template>"</script><div data-edgeseg-slot="a">x</div></template><div data-edgeseg-slot="b">y</div>`,
			map[string]Place{"b": {}}, []string{"a"}},
		{"stray end tag", `<p>Get </template><span data-edgeseg-slot="a">x</span></p>`,
			map[string]Place{"a": {InParagraph: true}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			places, ignored := slotsOf(t, tc.page)
			for name, p := range places {
				p.Element = nil
				places[name] = p
			}
			if !reflect.DeepEqual(places, tc.want) {
				t.Errorf("slots filled %+v, want %+v", places, tc.want)
			}
			var left []string
			for _, ig := range ignored {
				if ig.Reason != IgnoredTemplate {
					t.Errorf("slot %s ignored: %s", ig.Slot, ig.Reason)
				}
				left = append(left, ig.Slot)
			}
			if !slices.Equal(left, tc.ignored) {
				t.Errorf("slots left %v, want %v", left, tc.ignored)
			}
		})
	}
}

// TestTemplatesInsideSlots: a slot's content may hold templates; elements
// of the slot's name inside one do not nest in the slot, and the slot ends
// at its own end tag.
func TestTemplatesInsideSlots(t *testing.T) {
	lookup := func(slot []byte, _ Place) (Block, bool) { return Block{HTML: []byte("<b>deal</b>")}, true }
	for _, tc := range []struct{ in, want string }{
		{`<div data-edgeseg-slot="a"><template><div></template>x</div>z`, `<div data-edgeseg-slot="a"><b>deal</b></div>z`},
		{`<div data-edgeseg-slot="a"><x-c><template shadowrootmode="open"><div>in</div><div></template></x-c></div>z`,
			`<div data-edgeseg-slot="a"><b>deal</b></div>z`},
		{`<div data-edgeseg-slot="a"><template><script>"</template></div>"</script></template></div>z`, `<div data-edgeseg-slot="a"><b>deal</b></div>z`},
		// Left open, a template holds the rest of the page: the slot has no end.
		{`<div data-edgeseg-slot="a"><template></div>z`, `<div data-edgeseg-slot="a"><template></div>z`},
		{`<svg><g data-edgeseg-slot="a"><template><g></g></template></g>z</svg>`, `<svg><g data-edgeseg-slot="a"><b>deal</b></g>z</svg>`},
	} {
		if got, _ := Slots(nil, []byte(tc.in), lookup, nil); string(got) != tc.want {
			t.Errorf("%s\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
}

// TestHeadSnippetNotInATemplate: a </head> inside a template's content is
// the fragment's, not the page's: the head snippet goes before the page's
// own, where it runs.
func TestHeadSnippetNotInATemplate(t *testing.T) {
	page := `<!doctype html><html><head><template id="t"><b>x</b></head></template><title>T</title></head><body>b</body></html>`
	want := `<!doctype html><html><head><template id="t"><b>x</b></head></template><title>T</title><script>dl</script></head><body>b</body></html>`
	none := func([]byte, Place) (Block, bool) { return Block{}, false }
	opts := &Options{HeadSnippet: []byte("<script>dl</script>")}
	if got, _ := Slots(nil, []byte(page), none, opts); string(got) != want {
		t.Errorf("whole:\n got %s\nwant %s", got, want)
	}
	if got, _ := Scan([]byte(page)).Apply(nil, []byte(page), none, opts); string(got) != want {
		t.Errorf("by its plan:\n got %s\nwant %s", got, want)
	}
}
