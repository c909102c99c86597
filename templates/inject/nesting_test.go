package inject

import (
	"bytes"

	"golang.org/x/net/html"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
)

// openers are the elements pages put around a slot, as the page opens
// them (and closes them, after the slot).
var openers = []struct{ open, close string }{
	{`<a href="/card">`, `</a>`},
	{`<p>Get `, ` today</p>`},
	{`<button type="submit">`, `</button>`},
	{`<form action="/p">`, `<input name="state"></form>`},
	{`<ul><li>`, `</li></ul>`},
	{`<table><tbody><tr><td>`, `</td></tr></tbody></table>`},
	{`<div class="card">`, `</div>`},
	{`<span>`, `</span>`},
	{`<h2>`, `</h2>`},
	{`<label>`, `</label>`},
	{`<dl><dd>`, `</dd></dl>`},
	{`<section>`, `</section>`},
	{`<b>`, `</b>`},
	{`<nav>`, `</nav>`},
	{`<p>Buy <button>`, `</button> now</p>`},
	{`<table><caption>`, `</caption></table>`},
	{`<object>`, `</object>`},
	{`<x-card>`, `</x-card>`},
	{`<ol><li><p>`, `</p></li></ol>`},
	{`<dl><dt>`, `</dt></dl>`},
	{`<details><summary>`, `</summary></details>`},
	{`<figure><figcaption>`, `</figcaption></figure>`},
	{`<header>`, `</header>`},
	{`<marquee>`, `</marquee>`},
	{`<i>`, `</i>`},
	{`<svg viewBox="0 0 9 9"><foreignObject>`, `</foreignObject></svg>`},
	{`<math><mtext>`, `</mtext></math>`},
	{`<svg viewBox="0 0 9 9">`, `</svg>`},
	{`<svg><text x="1">`, `</text></svg>`},
	{`<math>`, `</math>`},
	{`<x-card><template shadowrootmode="open">`, `</template></x-card>`},
}

// passed are whole elements pages have before a slot, inside what is
// open around it: after them, what was open is again.
var passed = []string{
	`<ul><li>a</li></ul>`, `<ol><li>a<li>b</ol>`, `<p>done</p>`, `<a href="/x">x</a>`, `<button>b</button>`, `<form></form>`,
	`<dl><dt>t<dd>d</dl>`, `<img src="/i.png" alt="">`, `<br>`, `<table><tr><td>c</td></tr></table>`,
	`<span>s</span>`, `<li>loose</li>`, `<div><p>x</div>`, `<object></object>`, `<table><caption>c</caption></table>`,
	`<x-y>z</x-y>`, `<input name="q">`, `<p>left open`, `<li>left open`, `<dd>left open`, `</p>`, `</div>`, `</li>`,
	`<hr>`, `<h3>h</h3>`, `<svg><circle r="1"/></svg>`, `<label>l</label>`, `<select><option>o</select>`,
	`<a href="/x"><div>x</div></a>`, `<a href="/y">left open`, `<b>bold`, `<table><tr><td>left open`, `</button>`,
	`</table>`, `<template><p>t</template>`, `<button>left open`, `<object>left open`, `</form>`,
	`<svg><g>left open`, `<svg><path d="M0 0"/><title>t</title></svg>`, `<math><mi>x</mi></math>`,
	`<svg><style>.a{fill:red}</style></svg>`, `<svg><script>"<p>"</script></svg>`, `<svg><font color="red">x</font></svg>`,
	`<math><annotation-xml encoding="text/html"><p>x</annotation-xml></math>`, `<![CDATA[<p>]]>`, `<svg><![CDATA[<p>]]></svg>`,
	`<x-c><template shadowrootmode="open"><p>x<a href="/y">y<svg><g></template></x-c>`, `<x-c><template shadowrootmode="open"><div>d</div></template></x-c>`,
	`<span class="icon"><svg><path d="M0 0"></span>`, `<i><svg><g></i>`, `<svg><g></x-y></g></svg>`,
}

// slotNames are the elements a slot is put on, inside the openers.
var slotNames = []string{"div", "span", "p", "a", "li", "button", "td", "b", "section", "h3", "em", "label", "form", "tspan", "g", "mrow"}

// TestFilledBlocksStayInTheirSlots: on pages nesting a slot in the
// elements pages nest it in, a block the scanner and Misfit let fill the
// slot stays inside it as HTML's tree construction (x/net/html's parser)
// builds the page: what the scanner tells of the slot's place is enough
// for the check. Pages are drawn at random with a fixed seed.
// nestingSeed seeds the random nesting tests: 1 unless
// EDGESEG_NESTING_SEED says otherwise, to look at pages the usual runs do
// not draw (with EDGESEG_NESTING_PAGES for how many). A failure names it.
func nestingSeed(t *testing.T) uint64 {
	if v, err := strconv.ParseUint(os.Getenv("EDGESEG_NESTING_SEED"), 10, 64); err == nil {
		t.Logf("EDGESEG_NESTING_SEED=%d", v)
		return v
	}
	return 1
}

func TestFilledBlocksStayInTheirSlots(t *testing.T) {
	rng := rand.New(rand.NewPCG(nestingSeed(t), 2))
	n := 4000
	if v, err := strconv.Atoi(os.Getenv("EDGESEG_NESTING_PAGES")); err == nil {
		n = v // more, when looking for trouble
	}
	if testing.Short() {
		n = 500
	}
	filled := 0
	for range n {
		var before, after strings.Builder
		depth := rng.IntN(4)
		var closes []string
		for range depth {
			o := openers[rng.IntN(len(openers))]
			before.WriteString(o.open)
			closes = append(closes, o.close)
			if rng.IntN(3) == 0 {
				before.WriteString(passed[rng.IntN(len(passed))])
			}
		}
		for i := len(closes) - 1; i >= 0; i-- {
			after.WriteString(closes[i])
		}
		at := slotContext{elem: slotNames[rng.IntN(len(slotNames))], before: "<main>" + before.String(), after: after.String() + "</main>",
			quirks: rng.IntN(4) == 0}
		b := misfitBlocks[rng.IntN(len(misfitBlocks))]
		foreignAt := min(indexOr(at.before, "<svg"), indexOr(at.before, "<math"))
		if strings.Contains(b, "<template") && foreignAt < len(at.before) || strings.Contains(at.before[foreignAt:], "<template") {
			// x/net/html drops a <template> inside SVG's or MathML's HTML
			// (the block's, or the page's before the slot), and the page
			// after it; browsers keep both.
			continue
		}
		if ok := fillAndCheck(t, at, b); ok {
			filled++
		}
	}
	if filled < n/4 {
		t.Errorf("only %d of %d pages had their slot filled: the test checks too little", filled, n)
	}
}

// indexOr is the index of sub in s, or len(s).
func indexOr(s, sub string) int {
	if i := strings.Index(s, sub); i >= 0 {
		return i
	}
	return len(s)
}

// fillAndCheck fills the slot of the page at places with block, if the
// scanner and Misfit let it, and reports whether it did; a filled block
// must stay inside the slot as browsers parse the page.
func fillAndCheck(t *testing.T, at slotContext, block string) bool {
	t.Helper()
	shape, err := ReadBlock([]byte(block))
	if err != nil {
		t.Fatalf("%q: %v", block, err)
	}
	page := at.page(`id="slot" data-edgeseg-slot="s"`, "x")
	var place Place
	found := false
	Scan([]byte(page)).Apply(nil, []byte(page), func(_ []byte, p Place) (Block, bool) {
		place, found = p, true
		return Block{}, false
	}, nil)
	// Rewritten as it streams, in pieces, the slot is told the same place.
	var streamed Place
	var out strings.Builder
	r := NewRewriter(&out, func(_ []byte, p Place) (Block, bool) {
		streamed = p
		return Block{}, false
	}, nil)
	for i := 0; i < len(page); i += 3 {
		r.Write([]byte(page[i:min(i+3, len(page))]))
	}
	r.Close()
	if streamed.InLink != place.InLink || streamed.InParagraph != place.InParagraph || streamed.InButton != place.InButton ||
		streamed.InForm != place.InForm || streamed.InListItem != place.InListItem || streamed.InTerm != place.InTerm ||
		streamed.InForeign != place.InForeign || streamed.InMath != place.InMath {
		t.Errorf("page %q: the plan tells the slot %+v, the stream %+v", page, place, streamed)
	}
	if !found {
		return false // the scanner found no fillable slot (a <form> in a form is dropped, say)
	}
	if Misfit(place, shape) != "" {
		return false
	}
	// A page whose markup moves even the origin's own text out of the
	// slot (<p><a><div>, whose link browsers open again inside the slot)
	// is not one to judge a block by.
	if !staysInSlot(t, at, "x") {
		return false
	}
	if !staysInSlot(t, at, block) {
		t.Errorf("a <%s> slot after %q (place %+v) filled with %q: browsers move the block out", at.elem, at.before, place, block)
	}
	return true
}

// slotContents are what pages hold inside a slot, {e} standing for the
// slot's element: elements of its name, closed with "/>" or not, in HTML,
// in SVG and MathML (where "/>" closes), in the HTML these hold, and after
// an HTML tag broke out of them.
var slotContents = []string{
	`x`, `<{e}>t</{e}>`, `<{e}/>t</{e}>`, `<svg><{e}/></svg>`, `<svg><path d=""/><{e}/>t</{e}>`,
	`<svg><foreignObject><{e}/>t</{e}></foreignObject></svg>`, `<math><mtext><{e}/>t</{e}></mtext></math>`,
	`<math><mi><{e}>t</{e}></mi></math>`, `<svg><desc><{e}/>t</{e}></desc></svg>`, `<svg><g>`, `</svg>`,
	`<svg><title>t</title></svg>`, `<svg><style>.a{}</style></svg>`, `<script>"</{e}>"</script>`, `<!--</{e}>-->`,
	`<svg><foreignObject><svg><{e}/></svg></foreignObject></svg>`, `<svg><{e}>t</{e}></svg>`, `<math><{e}/></math>`,
	`<math><annotation-xml encoding="text/html"><{e}/>t</{e}></annotation-xml></math>`,
	`<math><annotation-xml encoding="Application/XHTML+XML"><{e}/>t</{e}></annotation-xml></math>`,
	`<math><annotation-xml><{e}/>t</{e}></annotation-xml></math>`,
	`<svg><font color="red"><{e}/>t</{e}>`, `<svg><FONT Size=2><{e}/>t</{e}>`, `<svg><font><{e}/></font></svg>`,
	`<svg><a href="/x"/><{e}/>t</{e}></svg>`, `<svg><foreignObject><p>t</foreignObject></svg>`,
	`<svg><script>"</{e}>"</script></svg>`, `<svg><style><{e}/>t</{e}></style></svg>`, `<svg><![CDATA[</{e}>]]></svg>`,
	`<![CDATA[</{e}>]]>`, `<svg><title><{e}/>t</{e}></title></svg>`, `<math><mi><script>"</{e}>"</script></mi></math>`,
	`<template><{e}>t</template>`, `<x-c><template shadowrootmode="open"><{e}><{e}>t</template></x-c>`, `<template><script>"</template>"</script></{e}></template>`,
	`<svg><template><{e}>t</{e}></template></svg>`, `<template><svg><{e}></template>`,
}

// slotPlaces are what is open around a slot, with the elements a slot is
// put on there.
var slotPlaces = []struct {
	before string
	elems  []string
}{
	{``, []string{"div", "span", "p", "a", "b", "section", "li"}},
	{`<svg>`, []string{"g", "text", "a", "span", "foreignObject"}},
	{`<svg><foreignObject>`, []string{"div", "span"}},
	{`<math><mtext>`, []string{"div", "span"}},
	{`<math>`, []string{"mrow", "mtext"}},
}

// TestFilledSlotsKeepThePageAroundThem: whatever a slot holds, filling it
// leaves the page after it where it was, as HTML's tree construction
// (x/net/html's parser) builds both pages: the scanner replaces no tag
// that, in the origin's page, closed or opened an element around the
// slot. (Where the origin's markup inside the slot is broken so that the
// slot, or an element inside it, never ends, the page after it was inside
// it; a block may end that.)
func TestFilledSlotsKeepThePageAroundThem(t *testing.T) {
	rng := rand.New(rand.NewPCG(nestingSeed(t)+2, 4))
	const marker = "@@block@@"
	fill := func([]byte, Place) (Block, bool) { return Block{HTML: []byte(marker)}, true }
	n, filled, judged := 3000, 0, 0
	if v, err := strconv.Atoi(os.Getenv("EDGESEG_NESTING_PAGES")); err == nil {
		n = v
	}
	if testing.Short() {
		n = 500
	}
	for range n {
		at := slotPlaces[rng.IntN(len(slotPlaces))]
		e := at.elems[rng.IntN(len(at.elems))]
		var content strings.Builder
		for range 1 + rng.IntN(3) {
			content.WriteString(strings.ReplaceAll(slotContents[rng.IntN(len(slotContents))], "{e}", e))
		}
		pageOf := func(content string) string {
			return "<!doctype html><html><head></head><body>" + at.before + "<" + e + ` id="slot" data-edgeseg-slot="s">` +
				content + "</" + e + "><i>after</i></body></html>"
		}
		page := pageOf(content.String())
		out, _ := Slots(nil, []byte(page), fill, nil)
		var streamed bytes.Buffer
		r := NewRewriter(&streamed, fill, nil)
		for i := 0; i < len(page); i += 5 {
			r.Write([]byte(page[i:min(i+5, len(page))]))
		}
		r.Close()
		if !bytes.Equal(streamed.Bytes(), out) {
			t.Errorf("page %q: streamed %q, whole %q", page, streamed.Bytes(), out)
		}
		if !bytes.Contains(out, []byte(marker)) {
			continue // left as sent: no end found
		}
		filled++
		// With the slot's content marked, to tell the elements it opened.
		was, inSlot := placeOfAfter(t, pageOf(markStartTags(content.String())))
		if inSlot || was == "" {
			// was == "": x/net/html lost the page after the slot. It
			// drops a <template> inside SVG's or MathML's HTML, and what
			// follows it; browsers keep both.
			continue
		}
		judged++
		if is, _ := placeOfAfter(t, string(out)); is != was {
			t.Errorf("page %q\nfilled %q\nmoves what follows the slot from %s to %s", page, out, was, is)
		}
	}
	if filled < n/3 || judged < n/4 {
		t.Errorf("only %d of %d slots were filled, %d judged: the test checks too little", filled, n, judged)
	}
}

// formatting are the elements browsers open again after an element that
// closed them ended (<div><b>x</div>y: y is bold); left unclosed in a
// slot's content, they reach past it, and a block ends that.
var formatting = map[string]bool{"a": true, "b": true, "big": true, "code": true, "em": true, "font": true, "i": true,
	"nobr": true, "s": true, "small": true, "strike": true, "strong": true, "tt": true, "u": true}

// placeOfAfter is where the text "after" is in page, as HTML's tree
// construction builds it: the elements around it but formatting ones, and
// whether the slot, or an element marked as the slot's content, is one of
// them.
func placeOfAfter(t *testing.T, page string) (place string, inSlot bool) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	for n := range doc.Descendants() {
		if n.Type != html.TextNode || n.Data != "after" {
			continue
		}
		for p := n.Parent; p != nil; p = p.Parent {
			for _, a := range p.Attr {
				inSlot = inSlot || a.Key == "id" && a.Val == "slot" || a.Key == blockMark
			}
		}
		var names []string
		for p := n.Parent; p != nil; p = p.Parent {
			if !formatting[p.Data] {
				names = append(names, p.Data)
			}
		}
		return strings.Join(names, "<"), inSlot
	}
	return "", false
}
