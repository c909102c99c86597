package inject

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// slotContext places a slot element as pages do: the page before the
// slot, and after it, and the elements of the page around it that Place
// tells of.
type slotContext struct {
	elem, before, after string
	at                  Place
	quirks              bool // the page has no doctype: browsers build it in quirks mode
}

// page is the whole page of a slot placed at, holding content, the slot's
// start tag with attrs.
func (at slotContext) page(attrs, content string) string {
	start := "<!doctype html><html>"
	if at.quirks {
		start = "<html>"
	}
	return start + "<head></head><body>" + at.before + "<" + at.elem + " " + attrs + ">" + content + "</" + at.elem + `><br id="after">` + at.after + "</body></html>"
}

// Places around a slot, for slotContexts.
var (
	inLink   = Place{InLink: true}
	inPara   = Place{InParagraph: true}
	inButton = Place{InButton: true}
	inForm   = Place{InForm: true}
)

// slotContexts are the slot elements of each kind the tests place blocks
// in, by name.
var slotContexts = map[string]slotContext{
	"div":            {"div", "<main>", "</main>", Place{}, false},
	"p":              {"p", "<main>", "</main>", Place{}, false},
	"h2":             {"h2", "<main>", "</main>", Place{}, false},
	"a":              {"a", "<main><nav>", "</nav></main>", Place{}, false},
	"button":         {"button", "<main><form>", "</form></main>", inForm, false},
	"table":          {"table", "<main>", "</main>", Place{}, false},
	"tbody":          {"tbody", "<main><table>", "</table></main>", Place{}, false},
	"tr":             {"tr", "<main><table><tbody>", "</tbody></table></main>", Place{}, false},
	"td":             {"td", "<main><table><tbody><tr>", "</tr></tbody></table></main>", Place{}, false},
	"select":         {"select", "<main><form>", "</form></main>", inForm, false},
	"li":             {"li", "<main><ul>", "</ul></main>", Place{}, false},
	"dd":             {"dd", "<main><dl><dt>t", "</dl></main>", Place{}, false},
	"span":           {"span", "<main><div>", "</div></main>", Place{}, false},
	"b":              {"b", "<main><div>", "</div></main>", Place{}, false},
	"label":          {"label", "<main><form>", "</form></main>", inForm, false},
	"section":        {"section", "<main>", "</main>", Place{}, false},
	"x-widget":       {"x-widget", "<main>", "</main>", Place{}, false},
	"form":           {"form", "<main>", "</main>", Place{}, false},
	"div in a":       {"div", `<main><a href="/card">`, "</a></main>", inLink, false},
	"span in a":      {"span", `<main><nav><a href="/card">`, "</a></nav></main>", inLink, false},
	"span in p":      {"span", "<main><p>Get ", " today</p></main>", inPara, false},
	"a in p":         {"a", "<main><p>See ", " now</p></main>", inPara, false},
	"b in p":         {"b", "<main><p>", "</p></main>", inPara, false},
	"span in button": {"span", "<main><button>", "</button></main>", inButton, false},
	"div in form":    {"div", `<main><form action="/postback">`, `<input name="state"></form></main>`, inForm, false},
	"span in li":     {"span", "<main><ul><li>", "</li></ul></main>", Place{InListItem: true}, false},
	"b in dd":        {"b", "<main><dl><dt>t<dd>", "</dl></main>", Place{InTerm: true}, false},
	"svg text":       {"text", `<main><svg viewBox="0 0 9 9">`, "</svg></main>", Place{InForeign: true}, false},
	"svg g":          {"g", `<main><svg><a href="/x">`, "</a></svg></main>", Place{InForeign: true}, false},
	"mathml mrow":    {"mrow", "<main><math>", "</math></main>", Place{InForeign: true, InMath: true}, false},
}

// staysInSlot is what a browser does with block in a slot placed at:
// parsed with HTML's tree construction (x/net/html), whether every element
// and all the text of the block end up inside the slot element, none of
// it dropped, and the page after the slot outside it. The block's own elements are told from those the parser
// makes up (a <tbody> around rows) by an attribute added to each of its
// start tags.
func staysInSlot(t *testing.T, at slotContext, block string) bool {
	t.Helper()
	marked := markStartTags(block)
	slot, total := parseSlot(t, at, marked)
	if slot == nil {
		return false
	}
	if empty, _ := parseSlot(t, at, ""); ancestors(slot) != ancestors(empty) {
		return false // the block moved the slot out of an element around it
	}
	for n := range slot.Descendants() {
		for _, a := range n.Attr {
			if a.Key == "id" && a.Val == "after" {
				return false // the slot's end tag did not end it: the page after it went in
			}
		}
	}
	inText, inElems := readTree(slot.Descendants())
	text, elems := blockText(block)
	return inElems == total && total == elems && textChars(inText) == textChars(text)
}

// blockText is the text of block and how many elements its start tags
// make, read by a tokenizer alone.
func blockText(block string) (string, int) {
	var text strings.Builder
	elems := 0
	z := html.NewTokenizer(strings.NewReader(block))
	for tt := z.Next(); tt != html.ErrorToken; tt = z.Next() {
		switch tt {
		case html.TextToken:
			text.Write(z.Text())
		case html.StartTagToken, html.SelfClosingTagToken:
			elems++
		}
	}
	return text.String(), elems
}

// textChars is the characters of s but white space, sorted: the parser
// drops some white space (a newline after <pre>, blanks in a table), and
// moves text of a table the block opened before that table, still inside
// the slot.
func textChars(s string) string {
	r := []rune(strings.Join(strings.Fields(s), ""))
	slices.Sort(r)
	return string(r)
}

// parseSlot parses the page of a slot placed at holding block, and
// returns the slot element and how many of the block's marked elements
// the page holds.
func parseSlot(t *testing.T, at slotContext, block string) (slot *html.Node, marked int) {
	t.Helper()
	page := at.page(`id="slot"`, block)
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		for _, a := range n.Attr {
			switch {
			case a.Key == "id" && a.Val == "slot":
				slot = n
			case a.Key == blockMark:
				marked++
			}
		}
	}
	return slot, marked
}

// ancestors names the elements around n, innermost first.
func ancestors(n *html.Node) string {
	var names []string
	for p := n.Parent; p != nil; p = p.Parent {
		names = append(names, p.Data)
	}
	return strings.Join(names, "<")
}

// blockMark is the attribute markStartTags adds.
const blockMark = "data-from-block"

// markStartTags adds blockMark to every start tag of block.
func markStartTags(block string) string {
	var out strings.Builder
	z := html.NewTokenizer(strings.NewReader(block))
	for tt := z.Next(); tt != html.ErrorToken; tt = z.Next() {
		raw := string(z.Raw())
		if tt == html.StartTagToken || tt == html.SelfClosingTagToken {
			name, _ := z.TagName()
			raw = raw[:1+len(name)] + " " + blockMark + raw[1+len(name):]
		}
		out.WriteString(raw)
	}
	return out.String()
}

// readTree returns the text of nodes and how many of them are the block's
// elements.
func readTree(nodes func(func(*html.Node) bool)) (string, int) {
	var text strings.Builder
	elems := 0
	for n := range nodes {
		switch n.Type {
		case html.TextNode:
			text.WriteString(n.Data)
		case html.ElementNode:
			for _, a := range n.Attr {
				if a.Key == blockMark {
					elems++
				}
			}
		}
	}
	return text.String(), elems
}

// TestEndTagsThatLeaveSVG: in SVG and MathML, </br> and </p> break out
// of them, as HTML's tree construction has it ("in foreign content");
// x/net/html keeps them in, so TestMisfitAgreesWithBrowsers cannot judge
// them.
func TestEndTagsThatLeaveSVG(t *testing.T) {
	for _, b := range []string{`<tspan>x</tspan></br>`, `x</br>`} {
		shape, err := ReadBlock([]byte(b))
		if err != nil {
			t.Fatalf("%q: %v", b, err)
		}
		for _, at := range []Place{{InForeign: true}, {InForeign: true, InMath: true}} {
			if Misfit(at, shape) == "" {
				t.Errorf("%q fits a slot at %+v", b, at)
			}
		}
		if why := Misfit(Place{Element: []byte("div")}, shape); why != "" {
			t.Errorf("%q does not fit a <div>: %s", b, why)
		}
	}
}

// TestMisfitAgreesWithBrowsers: for blocks in slot elements of each kind,
// Misfit refuses exactly the blocks a browser moves (or drops) out of the
// slot, as HTML's tree construction (x/net/html's parser) places them.
func TestMisfitAgreesWithBrowsers(t *testing.T) {
	for name := range slotContexts {
		for _, b := range misfitBlocks {
			checkMisfit(t, name, b, true)
		}
	}
}

// mergedTag matches the start tags a browser may merge into an element
// already open or drop without harm (a second <body>), or drops in a way
// the block itself causes wherever it is (a form inside a form of its
// own): a block with one is not compared. The blocks with a form that
// misfitBlocks holds are.
//
// A <caption> is left out too: x/net/html drops a cell that closes one
// (<caption><th>), where HTML's tree construction closes the caption and
// makes the cell.
var mergedTag = regexp.MustCompile(`(?i)<(html|head|body|form|select|frameset|frame|image|isindex|keygen|noscript|nobr|svg|math|caption)`)

// FuzzMisfit: for any block CheckBlock lets through, Misfit refuses it in
// a slot element whenever a browser would not keep it inside. It may
// refuse more, for odd markup its model of the block's open elements
// reads as left open (<li><li></li>); TestMisfitAgreesWithBrowsers holds
// it to exactly the browser's verdict for the blocks editors write.
func FuzzMisfit(f *testing.F) {
	for _, b := range misfitBlocks {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b string) {
		if _, err := ReadBlock([]byte(b)); err != nil || strings.ContainsAny(b, "\x00\r") || strings.Contains(b, "id=") || strings.Contains(b, blockMark) || mergedTag.MatchString(b) ||
			strings.Contains(strings.ToLower(b), "</br") { // a <template> reads no <br> in it, as the page does

			return
		}
		for name := range slotContexts {
			checkMisfit(t, name, b, false)
		}
	})
}

// checkMisfit compares Misfit's verdict on b in the slot context named
// name with the browser's; unless exact, only a block browsers move out
// and Misfit lets through fails.
func checkMisfit(t *testing.T, name, b string, exact bool) {
	t.Helper()
	shape, err := ReadBlock([]byte(b))
	if err != nil {
		t.Fatalf("%q: %v", b, err)
	}
	at := slotContexts[name]
	place := at.at
	place.Element = []byte(at.elem)
	why := Misfit(place, shape)
	if stays := staysInSlot(t, at, b); stays != (why == "") && (exact || !stays) {
		t.Errorf("%s slot, block %q: browsers keep it inside: %v; Misfit: %q", name, b, stays, why)
	}
}

var misfitBlocks = []string{
	"<b>Deal</b> of the day",
	"<div>Deal</div>",
	"<p>Deal</p>",
	"<span>x</span><p>y",
	"<ul><li>a</ul><p>y",
	"<li>a",
	"<ul><li>a<li>b</ul>",
	"<h3>Deals</h3><em>now</em>",
	"<a href=/sale>Sale</a>",
	"<button>Buy</button>",
	"<table><tr><td><div>x</div></td></tr></table>",
	"<table><tr><td><a href=/x>x</a></td></tr></table>",
	"<object><p>x</p></object>",
	"<svg><foreignObject><div>x</div></foreignObject></svg>",
	"<svg><circle r=1 /></svg>",
	`<tspan font-weight="bold">20%</tspan> off`,
	`<a href="/deals"><tspan>Deal</tspan></a>`,
	`<circle r="1"></circle>`,
	`<font color="red">x</font>`,
	`<font>x</font>`,
	`<tspan>x</tspan><br>`,
	`<g><text>x</text></g>`,
	`<mi>x</mi><mo>+</mo>`,
	`<math><mi><div>x</div></mi></math>`,
	`<math><annotation-xml encoding="text/html"><div>x</div></annotation-xml></math>`,
	`<math><annotation-xml><svg><foreignObject><div>x</div></foreignObject></svg></annotation-xml></math>`,
	`<svg><desc><b>x</b></desc></svg>`,
	`<textarea><div>x</div></textarea>`,
	`<script>if (a<b) {}</script>`,
	"<td>a</td><td>b</td>",
	"<tr><td>a</td></tr>",
	"<tbody><tr><td>a</td></tr></tbody>",
	"<caption>c</caption><tr><td>a</td></tr>",
	"text <td>a</td>",
	"\n  <td>a</td>\n",
	"<option>a</option><option>b</option>",
	"<optgroup label=g><option>a</optgroup>",
	"<li>one</li><li>two</li>",
	"<div><li>one</li></div>",
	"<span><li>one</li></span>",
	"<b><dd>d</dd></b>",
	"<ol><li>one</li></ol>",
	"<dd>d</dd>",
	"<hr>",
	"<img src=/x.png alt=x>",
	"<script>var a = 1;</script>",
	"<template><div>x</div></template>",
	"<button><div>x</div></button>",
	`<form action="/subscribe"><input name="email"><button>Join</button></form>`,
	"<template><form></form></template>",
	// Blocks as editors write them, each compared in every slot context.
	`<a href=/x><div>card</div></a>`,
	`<p>one<p>two`,
	`<figure><img src=x><figcaption>c</figcaption></figure>`,
	`<details><summary>s</summary>d</details>`,
	`<label>Email <input name=e></label>`,
	`<select name=s><option>a</option></select>`,
	`<dl><dt>t<dd>d</dl>`,
	`<em><p>x</p></em>`,
	`<b><div>x</div></b>`,
	`<nobr>a</nobr>`,
	`<table><caption>c</caption><tr><td>x</td></tr></table>`,
	`<ruby>a<rt>b</rt></ruby>`,
	`<picture><source srcset=x><img src=y></picture>`,
	`<video controls><source src=x></video>`,
	`<iframe src=/x></iframe>`,
	`<math><mi>x</mi></math>`,
	`<svg><title>t</title></svg><p>x</p>`,
	`<noscript><p>x</p></noscript>`,
	`<h2>x</h2><p>y</p>`,
	`<span><dd>d</dd></span>`,
	`<a href=/1>1</a><a href=/2>2</a>`,
	`<button><a href=/x>x</a></button>`,
	`<label><button>b</button></label>`,
	`<p><button>x</button></p>`,
	`<object><a href=/x>x</a></object>`,
	`<marquee>x</marquee>`,
	`<center>x</center>`,
	`<listing>x</listing>`,
	`<xmp><p>x</xmp>`,
	`<textarea><p>x</textarea>`,
	`<input type=checkbox><label>x</label>`,
	`<img src=x><br>text`,
	`<ul><li><a href=/a>a</a></li></ul>`,
	`<span><p>x</p></span>`,
	`<a href=/x><li>x</li></a>`,
	`<div><dd>x</dd></div>`,
	`<section><h2>x</h2></section>`,
	`<b><li>x</li></b>`,
	`<i><button>x</button></i>`,
	`<span><a href=/x>x</a></span>`,
	`<table><tr><td><li>x</li></td></tr></table>`,
	`<dialog><li>x</li></dialog>`,
	`<form><li>x</li></form>`,
	`<fieldset><legend>l</legend><input name=a></fieldset>`,
	`<span><h3>x</h3></span>`,
	`<blockquote>q</blockquote>`,
	`<pre>x</pre>`,
	`<address><li>x</li></address>`,
	"plain text",
	"",
}

// TestLookupIsToldTheSlotsPlace: whether a page is rewritten from its plan
// or as it streams, Lookup learns each slot's element, lower case ("" for
// a long custom element name), whether it is inside a link ("+" below)
// inside a paragraph ("~"), inside a button ("!"), inside a form ("#") and
// an SVG or MathML element ("^"),
// whichever slots were filled before it. Neither the end tag of an element
// it does not know (</x-y>) nor a <button> that has ended closes a
// paragraph.
func TestLookupIsToldTheSlotsPlace(t *testing.T) {
	page := []byte(`<P data-edgeseg-slot="a">x</P><table><tr data-edgeseg-slot="b"><td>y</td></tr></table>` +
		`<product-carousel data-edgeseg-slot="c">z</product-carousel><div data-edgeseg-slot="d"><span data-edgeseg-slot="e">w</span></div>` +
		`<A href="/card" data-edgeseg-slot="f"><span data-edgeseg-slot="g">v</span></A><div data-edgeseg-slot="h">u</div>` +
		`<a href="/x"><img src="/i.png"> <div data-edgeseg-slot="i">t</div></a><svg><a><text data-edgeseg-slot="j">s</text></a></svg>` +
		`<p>Get <b>now</b> <span data-edgeseg-slot="k">r</span> today<div data-edgeseg-slot="l">q</div>` +
		`<p>a <x-y>b</x-y> <em data-edgeseg-slot="m">c</em></p><span data-edgeseg-slot="n">o</span>` +
		`<p><button>b</button><span data-edgeseg-slot="o">n</span></p>` +
		`<form action="/p"><div data-edgeseg-slot="p">m</div><BUTTON type="submit"><span data-edgeseg-slot="q">Buy</span></BUTTON>` +
		`<span data-edgeseg-slot="r">l</span></form><div data-edgeseg-slot="s">k</div><Form data-edgeseg-slot="t">j</Form>` +
		`<button data-edgeseg-slot="u">i</button><span data-edgeseg-slot="v">h</span><svg><form><text data-edgeseg-slot="w">g</text></form></svg>` +
		`<p>Buy <button data-edgeseg-slot="x">now</button> or <span data-edgeseg-slot="y">later</span>` +
		`<object data-edgeseg-slot="z">o</object> <b data-edgeseg-slot="zz">b</b></p>`)
	for _, tc := range []struct {
		fill bool
		want string
	}{
		{false, "a=p b=tr c= d=div e=span f=a g=span+ h=div i=div+ j=text^ k=span~ l=div m=em~ n=span o=span~ p=div# q=span!# r=span# s=div t=form u=button v=span w=text^ x=button y=span~ z=object zz=b~"},
		{true, "a=p b=tr c= d=div f=a h=div i=div+ j=text^ k=span~ l=div m=em~ n=span o=span~ p=div# q=span!# r=span# s=div t=form u=button v=span w=text^ x=button y=span~ z=object zz=b~"}, // e and g are inside filled slots
	} {
		var got []string
		lookup := func(slot []byte, at Place) (Block, bool) {
			mark := ""
			if at.InLink {
				mark += "+"
			}
			if at.InParagraph {
				mark += "~"
			}
			if at.InButton {
				mark += "!"
			}
			if at.InForm {
				mark += "#"
			}
			if at.InForeign {
				mark += "^"
			}
			got = append(got, string(slot)+"="+string(at.Element)+mark)
			return Block{HTML: []byte("<b>B</b>")}, tc.fill
		}
		Scan(page).Apply(nil, page, lookup, nil)
		if g := strings.Join(got, " "); g != tc.want {
			t.Errorf("plan, filling %v:\n got %s\nwant %s", tc.fill, g, tc.want)
		}
		got = nil
		var out strings.Builder
		r := NewRewriter(&out, lookup, nil)
		for i := 0; i < len(page); i += 7 {
			r.Write(page[i:min(i+7, len(page))])
		}
		r.Close()
		if g := strings.Join(got, " "); g != tc.want {
			t.Errorf("stream, filling %v:\n got %s\nwant %s", tc.fill, g, tc.want)
		}
	}
}

// TestDeepBlocksAreReadInLinearTime: a block nesting thousands of elements
// (up to the 1 MiB a render may be) is read without looking through all
// of them at each tag, and fits no slot element; one nesting a few fits.
func TestDeepBlocksAreReadInLinearTime(t *testing.T) {
	for _, n := range []int{10, maxShapeDepth + 1, 60000} {
		b := strings.Repeat("<span><div>", n) + "x" + strings.Repeat("</div></span>", n)
		shape, err := ReadBlock([]byte(b))
		if err != nil {
			t.Fatal(err)
		}
		why := Misfit(Place{Element: []byte("div")}, shape)
		if deep := 2*n > maxShapeDepth; deep != (why != "") || deep && !strings.Contains(why, "64 deep") {
			t.Errorf("%d levels: %q", 2*n, why)
		}
	}
}

func BenchmarkReadDeepBlock(b *testing.B) {
	block := []byte(strings.Repeat("<span><div>", 60000) + "x" + strings.Repeat("</div></span>", 60000))
	b.SetBytes(int64(len(block)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadBlock(block); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMisfit is what each filled slot of each request pays.
func BenchmarkMisfit(b *testing.B) {
	shape, err := ReadBlock([]byte(`<div class="promo"><h2>Deals</h2><p>20% off <a href="/sale">sale</a></p></div>`))
	if err != nil {
		b.Fatal(err)
	}
	places := []Place{{Element: []byte("div")}, {Element: []byte("p")}, {Element: []byte("section")}, {Element: []byte("span"), InLink: true}, {}}
	b.ReportAllocs()
	for b.Loop() {
		for _, at := range places {
			Misfit(at, shape)
		}
	}
}
