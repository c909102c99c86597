package inject

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// outside renders page's tree with the children of the element marked
// id="zzprobe" removed.
func outside(page []byte) string {
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		return "ERR"
	}
	for n := range doc.Descendants() {
		if n.Type == html.ElementNode {
			for _, a := range n.Attr {
				if a.Key == "id" && a.Val == "zzprobe" {
					for c := n.FirstChild; c != nil; {
						next := c.NextSibling
						n.RemoveChild(c)
						c = next
					}
				}
			}
		}
	}
	var b bytes.Buffer
	html.Render(&b, doc)
	return b.String()
}

// TestRealPagesElementsAsSlots marks elements of the real pages of the
// corpus as slots, a few drawn at random from each, and fills each: the
// page outside the slot must be as HTML's tree construction (x/net/html)
// builds it from the origin's page. A slot the scanner refuses for its
// content (IgnoredMisnested) must be one that filling up to its end tag by
// name would have broken. Set EDGESEG_CORPUS_SLOTS for more per page.
func TestRealPagesElementsAsSlots(t *testing.T) {
	files, _ := filepath.Glob("testdata/corpus/real-pages/*.html")
	// Elements a site would mark, and some it would not.
	re := regexp.MustCompile(`<(div|span|p|li|section|a|td|tr|ul|ol|h[1-6]|em|b|i|strong|font|small|label|button|header|footer|nav|article|aside|table)[\s>]`)
	rng := rand.New(rand.NewPCG(5, 6))
	per := 12
	if v, err := strconv.Atoi(os.Getenv("EDGESEG_CORPUS_SLOTS")); err == nil {
		per = v
	}
	var probes, filledOK, filledBad, refusedWouldBeOK, refusedWouldBeBad, other int
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		locs := re.FindAllIndex(raw, -1)
		rng.Shuffle(len(locs), func(i, j int) { locs[i], locs[j] = locs[j], locs[i] })
		if len(locs) > per {
			locs = locs[:per]
		}
		probes += len(locs)
		for _, l := range locs {
			nameEnd := l[1] - 1
			page := make([]byte, 0, len(raw)+64)
			page = append(page, raw[:nameEnd]...)
			page = append(page, ` id="zzprobe" data-edgeseg-slot="zzprobe"`...)
			page = append(page, raw[nameEnd:]...)
			plan := Scan(page)
			ign := ""
			for _, ig := range plan.Ignored() {
				if ig.Slot == "zzprobe" {
					ign = ig.Reason + ": " + ig.Detail
				}
			}
			var placed *PlacedSlot
			for _, ps := range plan.PlacedSlots() {
				if string(ps.Slot) == "zzprobe" {
					p := ps
					placed = &p
				}
			}
			orig := outside(page)
			if placed != nil {
				out, _ := plan.Apply(nil, page, func(slot []byte, at Place) (Block, bool) {
					if string(slot) == "zzprobe" {
						return Block{HTML: []byte("<!--x-->")}, true
					}
					return Block{}, false
				}, &Options{})
				if outside(out) == orig {
					filledOK++
				} else {
					filledBad++
					t.Errorf("%s: the slot at %d changes the page around it when filled: %q", filepath.Base(f), l[0], page[l[0]:min(l[0]+200, len(page))])
				}
				continue
			}
			if !strings.HasPrefix(ign, IgnoredMisnested) {
				other++
				continue
			}
			// What the naive end would have done.
			start := l[0]
			var tg tag
			if !parseTag(page, start, &tg, nil) {
				other++
				continue
			}
			_, cs, _ := findSlotEnd(page, tg.end, page[tg.nameAt:tg.nameEnd], foreignStack{}, &contentCheck{})
			if cs < 0 {
				other++
				continue
			}
			naive := append(append(append([]byte{}, page[:tg.end]...), "<!--x-->"...), page[cs:]...)
			if outside(naive) == orig {
				refusedWouldBeOK++
				t.Errorf("%s: the slot at %d is refused (%s), but filling it keeps the page: %q", filepath.Base(f), l[0], ign, page[tg.end:min(cs, tg.end+300)])
			} else {
				refusedWouldBeBad++
			}
		}
	}
	t.Logf("filled and the page kept %d, changed %d; refused for their content %d (rightly %d); not fillable otherwise %d",
		filledOK, filledBad, refusedWouldBeOK+refusedWouldBeBad, refusedWouldBeBad, other)
	if filledOK < probes*3/4 {
		t.Errorf("only %d slots filled: the test checks too little", filledOK)
	}
}

// FuzzContentCheck: content the quick check calls plainly well formed is
// content the complete check (ReadBlock and Misfit, for the slot's place)
// lets stay: the quick one only spares the other's cost.
func FuzzContentCheck(f *testing.F) {
	for _, s := range []string{
		"a<b>b</b>", "<div><p>x</p></div>", "<em><span>Sale</em></span>", "<ul><li>a</li></ul>", "<a href=/>x</a>",
		"<p>a<div>b</div></p>", "<x-card><span>a</span></x-card>", "<script>'</span>'</script>t", "<br></br>", "<hr>",
		"<svg><g/></svg>", "<template><div></template>", "<table><tr><td>a</td></tr></table>", "<div/>",
		"<table> <tbody><tr><th>a</th><td><p>b</p></td></tr></tbody></table>", "<table><colgroup><col></colgroup><caption>c</caption></table>",
		"<form><label>a<input></label><button>b</button></form>", "<dl><dt>a</dt><dd>b</dd></dl>", "<textarea>a</b></textarea><iframe>x</iframe>",
		"<svg><g><path/></g><text>a</text></svg>", "<math><mi>x</mi></math>", "<svg><foreignObject><b>a</b></foreignObject></svg>",
		"<table><!-- c --><tr><td>a</td></tr>&nbsp;</table>", "<ul><li><table><tr><td>a</td></tr></table></li></ul>",
		"<noscript><img src=/p.gif></noscript>", "<object data=/v><param name=a><a href=/v>v</a></object>", "<xmp><p></xmp>",
	} {
		f.Add(s, uint8(0), uint8(0))
		f.Add(s, uint8(3), uint8(0x1f))
	}
	elements := []string{"span", "div", "p", "a", "li", "td", "h2", "section", "b", "button", "ul", "x-slot", "dl", "form", "ol", "th", "caption", "dd"}
	f.Fuzz(func(t *testing.T, content string, el, flags uint8) {
		name := elements[int(el)%len(elements)]
		at := Place{Element: []byte(name), InParagraph: flags&1 != 0, InLink: flags&2 != 0, InListItem: flags&4 != 0,
			InButton: flags&8 != 0, InForm: flags&16 != 0, InTerm: flags&32 != 0}
		data := []byte(content + "</" + name + ">")
		chk := newContentCheck(data, 0, &at)
		_, cs, _ := findSlotEnd(data, 0, []byte(name), foreignStack{}, &chk)
		if cs < 0 || !chk.done() {
			return
		}
		if why := contentMisfit(data[:cs], at); why != "" {
			t.Fatalf("<%s> slot (%+v): %q passes the quick check, but: %s", name, at, data[:cs], why)
		}
	})
}

// TestContentCheck: the content of slots as sites write them passes the
// quick check (no tokenizer is run for it); content a browser reads with
// more than nesting does not, and gets the complete check.
func TestContentCheck(t *testing.T) {
	for _, tc := range []struct {
		slot, content string
		inP           bool
		regular       bool
	}{
		{"section", `<h1>Welcome to our shop</h1><p>Great prices every day.</p>`, false, true},
		{"aside", `<p>Sign up for our <a href="/n">newsletter</a></p>`, false, true},
		{"div", `<div class="card"><img src="a.png" alt=""><span>New</span><br><x-price value="9">9</x-price></div>`, false, true},
		{"div", `<ul><li>a</li><li>b</li></ul><script>if (a</b) {}</script>`, false, true},
		{"span", `<em>Sale</em> ends <b>today</b>`, true, true},
		{"div", `<p>a<p>b`, false, false},                    // left open
		{"span", `<em><span>Sale</em></span>`, false, false}, // misnested
		{"span", `<div>x</div>`, true, false},                // closes the paragraph around
		{"div", `<p><div>x</div></p>`, false, false},         // closes its own paragraph
		{"div", `<h2>a<h3>b</h3></h2>`, false, false},        // a heading in a heading
		{"div", `<li>a</li>`, false, false},                  // an item outside a list
		{"div", `<table> <tr><td>a</td></tr> </table>`, false, true},
		{"div", `<table><caption>c</caption><thead><tr><th>h</th></tr></thead><tbody><tr><td><p>a</p></td></tr></tbody></table>`, false, true},
		{"div", `<form action="/s"><label>Mail <input name="m"></label><button>Go</button></form>`, false, true},
		{"div", `<dl><dt>a</dt><dd>b</dd></dl><textarea>x</textarea>`, false, true},
		{"div", `<svg viewBox="0 0 9 9"><g><path d="M0 0"/></g><use href="#i"/></svg> Sale`, false, true},
		{"div", `<table>x<tr><td>a</td></tr></table>`, false, false},                // text moved out of the table
		{"div", `<table><tr><div>a</div></tr></table>`, false, false},               // an element moved out of the table
		{"div", `<table><tr><td>a</tr></table>`, false, false},                      // a cell left open
		{"div", `<td>a</td>`, false, false},                                         // a cell outside a table
		{"div", `<svg><div>x</div></svg>`, false, false},                            // breaks out of SVG
		{"div", `<svg><foreignObject><p>x</p></foreignObject></svg>`, false, false}, // HTML in SVG
		{"div", `<svg><style>a{}</style></svg>`, false, false},                      // markup, in SVG
		{"div", `<select><option>a</option></select>`, false, false},                // a select's parsing
		{"div", `<form><form></form></form>`, false, false},                         // a form in a form
		{"section", `<div/>`, false, false},                                         // "/>" closes nothing
		{"div", `<template><p>x</template>`, false, false},                          // a template
		{"div", `</ </div>x`, false, false},                                         // a bogus comment
		{"a", `<span><a href="/">x</a></span>`, false, false},                       // a link in a link
		{"span", `<xmp>x</xmp>`, true, false},                                       // an <xmp> closes the paragraph around
		{"div", `<xmp><b>x</xmp><p>y</p>`, false, true},                             // raw text
		{"div", `<noscript><img src="/pixel.gif"></noscript><p>y</p>`, false, true}, // text where scripts run
		{"div", `<table><tr><noscript>x</noscript></tr></table>`, false, false},     // moved out of the table
		{"div", `<object data="/v.mp4"><param name="a" value="b"><a href="/v.mp4">video</a></object>`, false, true},
		{"span", `<object><div>x</div></object>`, true, false}, // out of the paragraph's reach: the complete check tells
		{"div", `<ruby>a<rt>b</ruby>`, false, false},           // ruby's parsing
	} {
		at := Place{Element: []byte(tc.slot), InParagraph: tc.inP}
		data := []byte(tc.content + "</" + tc.slot + ">")
		chk := newContentCheck(data, 0, &at)
		_, cs, _ := findSlotEnd(data, 0, []byte(tc.slot), foreignStack{}, &chk)
		if cs < 0 {
			t.Errorf("%q: no end", tc.content)
			continue
		}
		if chk.done() != tc.regular {
			t.Errorf("<%s> %q: regular %v, want %v", tc.slot, tc.content, chk.done(), tc.regular)
		}
	}
}
