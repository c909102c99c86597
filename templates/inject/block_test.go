package inject

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

func TestCheckBlock(t *testing.T) {
	for _, tc := range []struct {
		name, block string
		want        string // "" when the block keeps to its slot; else part of the error
		// recovers: refused, though a browser puts the page back together
		// around it: a block closes only what it opened.
		recovers bool
	}{
		{"text", `Deals picked for you`, "", false},
		{"empty", ``, "", false},
		{"nested", `<div class="promo"><h2>Deals</h2><p>20% off <a href="/sale">sale</a></p></div>`, "", false},
		{"void elements", `<img src="a.png" alt=""><br><hr/><input type=text>`, "", false},
		{"optional end tags", `<ul><li>a<li>b</ul><p>one<p>two<table><tr><td>x<td>y</table><select><option>a<option>b</select>`, "", false},
		{"left open, optional", `<li>a<li>b`, "", false},
		{"end tag closes optional ones", `<div><p>a<ul><li>x</ul></div><table><tr><td>a</table><dl><dt>a<dd>b</dl>`, "", false},
		{"script and style", `<style>.a>b{}</style><script>if (a<b && "</div>") {}</script>`, "", false},
		{"comment", `<!-- promo v2 --><b>x</b><!---->`, "", false},
		{"svg", `<svg viewBox="0 0 1 1"><path d="M0 0"/><use href="#i"/></svg>`, "", false},
		{"svg script holds markup", `<svg><script>a</script><g/></svg>`, "", false},
		{"cdata in svg", `<svg><![CDATA[ a > b ]]></svg>`, "", false},
		{"br end tag", `a</br>b`, "", false},
		{"text that looks like markup", `3 < 4 & x <- y`, "", false},

		{"unclosed div", `<div class="promo"><h2>Deals</h2>`, `<div class="promo"> is never closed`, false},
		{"self-closed div", `<div class="clear"/>`, `"/>" does not close`, false},
		{"stray end tag", `<b>x</b></div>`, `</div> closes an element the block did not open`, false},
		{"stray p end tag", `x</p>`, `</p> closes`, false},
		{"misnested", `<b><i>x</b></i>`, `<i> is not closed before </b>`, true},
		{"misnested, reopened after the slot", `<b><i>x</b>y`, `<i> is not closed before </b>`, false},
		{"closed out of order", `<section><div><span>x</section>`, `<div> is not closed before </section>`, true},
		{"cell left open for a div", `<div><table><tr><td>x</div>`, `<table> is not closed before </div>`, false},
		{"paragraph left open for a span", `<span><p>x</span>`, `<p> is not closed before </span>`, false},
		{"bogus comment", `x </ y`, `</ y is never closed`, false},
		{"unclosed comment", `<b>x</b><!-- TODO: link`, `<!-- TODO: link is never closed`, false},
		{"comment closed only by space dash", `<!-- a -- >`, `is never closed`, false},
		{"unclosed script", `<script>track()`, `<script> is never closed`, false},
		{"self-closed script", `<script src="/a.js"/>x`, `<script src="/a.js"/> is never closed`, false},
		{"unclosed textarea", `<textarea>x`, `<textarea> is never closed`, false},
		{"unclosed tag", `<a href="/sale`, `ends inside the tag <a href="/sale`, false},
		{"unclosed attribute value", `<a title="x>y</a>`, `ends inside the tag`, false},
		{"plaintext", `<plaintext>x`, `<plaintext> turns`, false},
		{"unclosed svg", `<svg><path/>`, `<svg> is never closed`, false},
		{"body end tag", `x</body>`, `</body> closes`, true},
		{"long tag quoted short", `<div data-x="` + strings.Repeat("a", 100) + `">`, `...`, false},
		{"control bytes quoted", "<div title=\"\x01\">", `"<div title=\"\x01\">"`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckBlock([]byte(tc.block))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("CheckBlock(%q) = %v, want no error", tc.block, err)
			case tc.want != "" && err == nil:
				t.Fatalf("CheckBlock(%q) = nil, want an error with %q", tc.block, tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("CheckBlock(%q) = %v, want it to say %q", tc.block, err, tc.want)
			}
			// What CheckBlock says is what a browser does with the block in
			// a slot: the page around the slot stays as it was, or not (in
			// one of the pages).
			switch {
			case tc.want == "" && !keepsToSlot(t, tc.block, slotPages[0]):
				t.Errorf("in a browser the block changes the page around its slot")
			case tc.want != "" && !tc.recovers && !changesSomePage(t, tc.block):
				t.Errorf("in a browser the block keeps the page around its slot in every page tried")
			case tc.recovers && !keepsToSlot(t, tc.block, slotPages[0]):
				t.Errorf("in a browser the block changes the page around its slot")
			}
		})
	}
}

// slotPages are pages with a slot (id=slot), where BLOCK goes, followed
// by #after. The first holds any block that keeps to its slot; the others
// are slots on elements that hold less (a span in a paragraph; an SVG, for
// SVG blocks only: HTML in SVG leaves it), where a block must keep to their
// content model too.
var slotPages = []string{
	`<!doctype html><body><main><div id=wrap><p>b</p><div id=slot>BLOCK</div><p id=after>after</p></div></main><!--end--><footer>f</footer>`,
	`<!doctype html><body><main><p id=wrap>b <span id=slot>BLOCK</span><span id=after>after</span></p></main><!--end--><footer>f</footer>`,
	`<!doctype html><body><main><svg id=wrap><svg id=slot>BLOCK</svg><g id=after>after</g></svg></main><!--end--><footer>f</footer>`,
}

// keepsToSlot parses page with block in its slot, as a browser does, and
// reports whether the slot and what follows it are where the page has them
// without the block: the slot and #after children of #wrap, in <main>, and
// the comment and footer after main.
func keepsToSlot(t testing.TB, block, page string) bool {
	doc, err := html.Parse(strings.NewReader(strings.Replace(page, "BLOCK", block, 1)))
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]*html.Node{}
	for n := range doc.Descendants() {
		for _, a := range n.Attr {
			if a.Key == "id" && ids[a.Val] == nil {
				ids[a.Val] = n
			}
		}
	}
	wrap, slot, after := ids["wrap"], ids["slot"], ids["after"]
	if wrap == nil || slot == nil || after == nil || slot.Parent != wrap || slot.NextSibling != after || after.Parent != wrap {
		return false
	}
	if after.FirstChild == nil || after.FirstChild.Data != "after" || after.NextSibling != nil {
		return false
	}
	main := wrap.Parent
	if main == nil || main.Data != "main" || main.Parent == nil || main.Parent.Data != "body" {
		return false
	}
	end := main.NextSibling
	return end != nil && end.Type == html.CommentNode && end.Data == "end" &&
		end.NextSibling != nil && end.NextSibling.Data == "footer"
}

// changesSomePage reports whether block in one of slotPages changes it
// around its slot.
func changesSomePage(t testing.TB, block string) bool {
	pages := slotPages[:2]
	if strings.HasPrefix(block, "<svg") {
		pages = slotPages
	}
	for _, page := range pages {
		if !keepsToSlot(t, block, page) {
			return true
		}
	}
	return false
}

// FuzzCheckBlock: a block CheckBlock passes keeps, in a browser, to its
// slot; CheckBlock never panics.
func FuzzCheckBlock(f *testing.F) {
	for _, s := range []string{
		`<div><p>x</div>`, `<ul><li>a<li>b</ul>`, `<!-- c -->`, `<svg><path/></svg>`, `<table><tr><td>x</table>`,
		`<select><option>a</select>`, `<script>"</div>"</script>`, `<b>x</b></div>`, `<a href=x>y</a>`, `<template><div></template>`,
		`<svg><foreignObject><div/></foreignObject></svg>`, `<math><mi>x</mi></math>`, `<form><input></form>`, `<noscript><p>x</noscript>`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, block string) {
		if CheckBlock([]byte(block)) != nil {
			return
		}
		if bytes.ContainsAny([]byte(block), "\x00\r") {
			return // NUL and CR are rewritten by the parser; the test's page comparison is not about them
		}
		if !keepsToSlot(t, block, slotPages[0]) {
			t.Fatalf("CheckBlock passed %q, which changes the page around its slot", block)
		}
	})
}

// BenchmarkCheckBlock: the check a block's HTML gets each time it is
// rendered (not each time it is served: renders are cached).
func BenchmarkCheckBlock(b *testing.B) {
	block := []byte(`<div class="promo promo--deals"><h2>Deals picked for you</h2><p>Extra 20% off <a href="/sale?utm_source=edgeseg">sale items</a> today.</p><ul><li>Free returns<li>Price match</ul></div>`)
	b.SetBytes(int64(len(block)))
	b.ReportAllocs()
	for b.Loop() {
		if err := CheckBlock(block); err != nil {
			b.Fatal(err)
		}
	}
}
