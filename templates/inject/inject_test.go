package inject

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

var update = flag.Bool("update", false, "rewrite golden files")

// testLookup fills every slot with a block naming it, except slots whose
// name starts with "keep", which keep the origin's content.
func testLookup(slot []byte, _ Place) (Block, bool) {
	if bytes.HasPrefix(slot, []byte("keep")) {
		return Block{}, false
	}
	return Block{HTML: []byte("<b>block:" + string(slot) + "</b>"), Segment: "seg-" + string(slot)}, true
}

func TestGoldenCases(t *testing.T) {
	files, _ := filepath.Glob("testdata/cases/*.html")
	if len(files) < 20 {
		t.Fatalf("only %d cases", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			in, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := Slots(nil, in, testLookup, nil)
			golden := strings.TrimSuffix(f, ".html") + ".golden"
			if *update {
				os.WriteFile(golden, got, 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("no golden file (run with -update): %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("output differs from %s:\n got: %q\nwant: %q", golden, got, want)
			}
			checkChunked(t, in, got)
			checkOutside(t, in)
		})
	}
}

// TestSpecificBehaviour pins down the rules the golden files encode, so a
// wrong golden file cannot hide a wrong rule.
func TestSpecificBehaviour(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"fills", `<div data-edgeseg-slot="hero">d</div>`, `<div data-edgeseg-slot="hero" data-edgeseg-segment="seg-hero"><b>block:hero</b></div>`},
		{"keeps", `<div data-edgeseg-slot="keep">d</div>`, `<div data-edgeseg-slot="keep">d</div>`},
		{"nested same tag", `<div data-edgeseg-slot="a"><div>x</div>y</div>z`, `<div data-edgeseg-slot="a" data-edgeseg-segment="seg-a"><b>block:a</b></div>z`},
		{"comment ignored", `<!--<div data-edgeseg-slot="a">c</div>-->`, `<!--<div data-edgeseg-slot="a">c</div>-->`},
		{"script ignored", `<script>"<div data-edgeseg-slot=a>"</script>`, `<script>"<div data-edgeseg-slot=a>"</script>`},
		{"template ignored", `<template><i data-edgeseg-slot="a">t</i></template>`, `<template><i data-edgeseg-slot="a">t</i></template>`},
		{"unterminated kept", `<div data-edgeseg-slot="a">x`, `<div data-edgeseg-slot="a">x`},
		{"void kept", `<img data-edgeseg-slot="a">`, `<img data-edgeseg-slot="a">`},
		{"self-closing kept", `<div data-edgeseg-slot="a"/>x`, `<div data-edgeseg-slot="a"/>x`},
		// In HTML "/>" closes nothing: <div/> opens a div, as <div> does.
		{"self-closed same tag nested", `<div data-edgeseg-slot="a"><div class="x"/>in</div>tail</div>z`, `<div data-edgeseg-slot="a" data-edgeseg-segment="seg-a"><b>block:a</b></div>z`},
		{"self-closed span nested", `<span data-edgeseg-slot="a">x<span/>y</span>z</span>w`, `<span data-edgeseg-slot="a" data-edgeseg-segment="seg-a"><b>block:a</b></span>w`},
		// In SVG and MathML it does.
		{"self-closed in svg", `<svg><g data-edgeseg-slot="a"><g/>in</g>z</svg><div data-edgeseg-slot="b"><div/></div></div>`,
			`<svg><g data-edgeseg-slot="a" data-edgeseg-segment="seg-a"><b>block:a</b></g>z</svg><div data-edgeseg-slot="b" data-edgeseg-segment="seg-b"><b>block:b</b></div>`},
		{"svg slot", `<svg data-edgeseg-slot="a"><svg/><path/></svg>z`, `<svg data-edgeseg-slot="a" data-edgeseg-segment="seg-a"><b>block:a</b></svg>z`},
		{"html again after svg", `<div data-edgeseg-slot="a"><svg><use href="#i"/><path d=""/></svg><div/>x</div></div>z`, `<div data-edgeseg-slot="a" data-edgeseg-segment="seg-a"><b>block:a</b></div>z`},
		// A raw-text element stays open when "/>" ends its tag in HTML, as
		// in a browser: its text runs to its end tag. In SVG it is closed.
		{"self-closed script opens", `<script src="a.js"/><div data-edgeseg-slot="a">x</div></script><div data-edgeseg-slot="b">y</div>`,
			`<script src="a.js"/><div data-edgeseg-slot="a">x</div></script><div data-edgeseg-slot="b" data-edgeseg-segment="seg-b"><b>block:b</b></div>`},
		{"self-closed script in a slot", `<div data-edgeseg-slot="a"><script src="a.js"/></div></script></div>z`, `<div data-edgeseg-slot="a" data-edgeseg-segment="seg-a"><b>block:a</b></div>z`},
		// HTML again inside an SVG or MathML element that holds it, or
		// after an HTML tag broke out of them: <div/> opens a div there.
		{"html in foreignObject in a slot", `<div data-edgeseg-slot="a"><svg><foreignObject><div/>x</div></foreignObject></svg></div>z`,
			`<div data-edgeseg-slot="a" data-edgeseg-segment="seg-a"><b>block:a</b></div>z`},
		{"html in mtext in a slot", `<span data-edgeseg-slot="a"><math><mtext><span/>x</span></mtext></math></span>z`,
			`<span data-edgeseg-slot="a" data-edgeseg-segment="seg-a"><b>block:a</b></span>z`},
		{"broken out of svg in a slot", `<div data-edgeseg-slot="a"><svg><path d=""/><div/>x</div></div>z`,
			`<div data-edgeseg-slot="a" data-edgeseg-segment="seg-a"><b>block:a</b></div>z`},
		{"svg again inside foreignObject in a slot", `<div data-edgeseg-slot="a"><svg><foreignObject><svg><path/></svg><div/>x</div></foreignObject></svg></div>z`,
			`<div data-edgeseg-slot="a" data-edgeseg-segment="seg-a"><b>block:a</b></div>z`},
		// The <div/> broke out of the inner <svg> and opened a div in the
		// <foreignObject>: the end tags after it close that div only.
		{"no end after a break-out in a slot", `<div data-edgeseg-slot="a"><svg><foreignObject><svg><div/></svg></foreignObject></svg></div>z`,
			`<div data-edgeseg-slot="a"><svg><foreignObject><svg><div/></svg></foreignObject></svg></div>z`},
		// In SVG a <script> holds markup: its </div> closes the slot. The
		// content before it leaves an <svg> open, as a block may not, so
		// the slot keeps it.
		{"markup in an svg script", `<div data-edgeseg-slot="a"><svg><script>"</div>"</script></svg></div>z`,
			`<div data-edgeseg-slot="a"><svg><script>"</div>"</script></svg></div>z`},
		// The slot's own content does not keep to it: the browser ends the
		// slot before the end tag that matches by name, and filling up to
		// that would take the page after the slot with it. It keeps its
		// content.
		{"misnested formatting", `<li><span data-edgeseg-slot="a"><em><span>Sale</em></span> ends <b>today</b></span></li>`,
			`<li><span data-edgeseg-slot="a"><em><span>Sale</em></span> ends <b>today</b></span></li>`},
		{"unclosed slot", `<div><span data-edgeseg-slot="a">a</div>b</span><p>c</p>`, `<div><span data-edgeseg-slot="a">a</div>b</span><p>c</p>`},
		{"end tag ignored", `<span data-edgeseg-slot="a"><div>a</span>b</div>c</span>`, `<span data-edgeseg-slot="a"><div>a</span>b</div>c</span>`},
		{"formatting around", `<b><span data-edgeseg-slot="a">a</b>c</span>`, `<b><span data-edgeseg-slot="a">a</b>c</span>`},
		{"block in a paragraph's slot", `<p><span data-edgeseg-slot="a">a<div>b</div>c</span>d</p>`, `<p><span data-edgeseg-slot="a">a<div>b</div>c</span>d</p>`},
		{"item in an item's slot", `<li><span data-edgeseg-slot="a">a<li>b</li>c</span>d</li>`, `<li><span data-edgeseg-slot="a">a<li>b</li>c</span>d</li>`},
		// Content that keeps to the slot as browsers read it, end tags
		// HTML lets a page leave out included, is replaced.
		{"paragraphs left open", `<div data-edgeseg-slot="a"><p>a<p>b</div>z`, `<div data-edgeseg-slot="a" data-edgeseg-segment="seg-a"><b>block:a</b></div>z`},
		{"items left open", `<ul data-edgeseg-slot="a"><li>a<li>b</ul>z`, `<ul data-edgeseg-slot="a" data-edgeseg-segment="seg-a"><b>block:a</b></ul>z`},
		{"stray br end tag", `<span data-edgeseg-slot="a">a</br>b</span>z`, `<span data-edgeseg-slot="a" data-edgeseg-segment="seg-a"><b>block:a</b></span>z`},
		{"slot in an svg style", `<svg><style><g data-edgeseg-slot="a">x</g></style></svg>`,
			`<svg><style><g data-edgeseg-slot="a" data-edgeseg-segment="seg-a"><b>block:a</b></g></style></svg>`},
		// A CDATA section is one in SVG and MathML only; in HTML the next
		// '>' ends it, as a comment.
		{"cdata in svg", `<svg><![CDATA[<g data-edgeseg-slot="a">x</g>]]></svg>`, `<svg><![CDATA[<g data-edgeseg-slot="a">x</g>]]></svg>`},
		{"cdata in html", `<![CDATA[><div data-edgeseg-slot="a">x</div>]]>`,
			`<![CDATA[><div data-edgeseg-slot="a" data-edgeseg-segment="seg-a"><b>block:a</b></div>]]>`},
		{"self-closed script in svg", `<svg><script href="a.js"/><g data-edgeseg-slot="a">x</g></svg>`, `<svg><script href="a.js"/><g data-edgeseg-slot="a" data-edgeseg-segment="seg-a"><b>block:a</b></g></svg>`},
		{"upper case", `<SECTION Data-EdgeSeg-Slot='a'>x</SECTION>`, `<SECTION Data-EdgeSeg-Slot='a' data-edgeseg-segment="seg-a"><b>block:a</b></SECTION>`},
		{"end tag in script inside slot", `<div data-edgeseg-slot="a"><script>"</div>"</script></div>!`, `<div data-edgeseg-slot="a" data-edgeseg-segment="seg-a"><b>block:a</b></div>!`},
		{"void upper case kept", `<IMG data-edgeseg-slot="a">x`, `<IMG data-edgeseg-slot="a">x`},
		{"void keygen kept", `<KeyGen data-edgeseg-slot="a">x`, `<KeyGen data-edgeseg-slot="a">x`},
		{"look-alike names are not raw text", `<scripts><div data-edgeseg-slot="a">x</div></scripts><tit><i data-edgeseg-slot="b">y</i></tit>`,
			`<scripts><div data-edgeseg-slot="a" data-edgeseg-segment="seg-a"><b>block:a</b></div></scripts><tit><i data-edgeseg-slot="b" data-edgeseg-segment="seg-b"><b>block:b</b></i></tit>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := Slots(nil, []byte(tc.in), testLookup, nil)
			if string(got) != tc.want {
				t.Fatalf("\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestRawTextInAnyCase: a marker inside any raw-text element, its name
// written in any case, is not a slot; after its end tag, slots are live.
func TestRawTextInAnyCase(t *testing.T) {
	for _, name := range []string{"script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "noscript", "template"} {
		for _, written := range []string{name, strings.ToUpper(name), strings.ToUpper(name[:1]) + name[1:]} {
			in := "<" + written + `><div data-edgeseg-slot="a">x</div></` + written + `><p data-edgeseg-slot="b">y</p>`
			want := "<" + written + `><div data-edgeseg-slot="a">x</div></` + written + `><p data-edgeseg-slot="b" data-edgeseg-segment="seg-b"><b>block:b</b></p>`
			got, _ := Slots(nil, []byte(in), testLookup, nil)
			if string(got) != want {
				t.Errorf("%s:\n got %q\nwant %q", written, got, want)
			}
		}
	}
	// <plaintext> never ends: nothing after it is markup.
	in := `<PlainText><div data-edgeseg-slot="a">x</div>`
	if got, _ := Slots(nil, []byte(in), testLookup, nil); string(got) != in {
		t.Errorf("plaintext: got %q", got)
	}
}

// FuzzIndexNear: the word-at-a-time search finds what bytes.IndexByte
// finds, wherever the byte is and however long the input.
func FuzzIndexNear(f *testing.F) {
	f.Add([]byte("class=\"card\""), byte('"'))
	f.Add(bytes.Repeat([]byte{0x80}, 40), byte(0x7f))
	f.Add(append(bytes.Repeat([]byte("a"), 33), '<'), byte('<'))
	f.Fuzz(func(t *testing.T, v []byte, q byte) {
		if got, want := indexNear(v, q), bytes.IndexByte(v, q); got != want {
			t.Fatalf("indexNear(%q, %q) = %d, want %d", v, q, got, want)
		}
	})
}

func TestHeadSnippet(t *testing.T) {
	opts := &Options{HeadSnippet: []byte("<script>x</script>")}
	for in, want := range map[string]string{
		"<html><head><title>t</title></head><body></body></html>": "<html><head><title>t</title><script>x</script></head><body></body></html>",
		"<head><script>'</head>'</script></HEAD></head>":          "<head><script>'</head>'</script><script>x</script></HEAD></head>",
		"<p>no head</p>": "<p>no head</p>",
	} {
		got, _ := Slots(nil, []byte(in), testLookup, opts)
		if string(got) != want {
			t.Errorf("%q:\n got %q\nwant %q", in, got, want)
		}
	}
}

// TestRealPagesPassThrough: real pages without slots come out byte-identical.
func TestRealPagesPassThrough(t *testing.T) {
	pages := realPages(t)
	if len(pages) < 20 {
		t.Fatalf("corpus missing: %d files", len(pages))
	}
	for _, p := range pages {
		got, n := Slots(nil, p.html, testLookup, nil)
		if n != 0 || !bytes.Equal(got, p.html) {
			t.Errorf("%s: changed (%d slots)", p.name, n)
		}
	}
}

// TestRealPagesWithSlots marks elements of real pages as slots and checks
// that exactly those are replaced: golden files for a few pages, the
// outside-slots invariant and chunking for all.
func TestRealPagesWithSlots(t *testing.T) {
	goldens := map[string]bool{"001.html": true, "ehow-1.html": true, "table-style-attributes.html": true, "comment-inside-script-parsing.html": true}
	for _, p := range realPages(t) {
		marked := markSlots(p.html, 3)
		got, n := Slots(nil, marked, testLookup, nil)
		base := filepath.Base(p.name)
		if bytes.Count(marked, []byte(SlotAttr)) > 0 && n == 0 {
			t.Errorf("%s: marked slots but none filled", base)
		}
		if goldens[base] {
			golden := filepath.Join("testdata", "golden", strings.TrimSuffix(base, ".html")+".slots.golden")
			if *update {
				os.MkdirAll(filepath.Dir(golden), 0o755)
				os.WriteFile(golden, got, 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%s: %v (run with -update)", golden, err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s: differs from golden", base)
			}
		}
		checkOutside(t, marked)
		if len(p.html) < 400_000 {
			checkChunkedRandom(t, marked, got, 5)
		}
	}
}

// realPage is a page of the corpus: real sites' HTML, as saved.
type realPage struct {
	name string // its path
	html []byte
}

// realPages reads the corpus's real pages, in name order.
func realPages(tb testing.TB) []realPage {
	tb.Helper()
	files, _ := filepath.Glob("testdata/corpus/real-pages/*.html")
	pages := make([]realPage, 0, len(files))
	for _, f := range files {
		html, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		pages = append(pages, realPage{f, html})
	}
	return pages
}

// markSlots turns the first n <div start tags that follow <body into slots.
func markSlots(in []byte, n int) []byte {
	body := bytes.Index(bytes.ToLower(in), []byte("<body"))
	if body < 0 {
		body = 0
	}
	out := append([]byte(nil), in[:body]...)
	rest := in[body:]
	for i := 0; i < n; i++ {
		j := bytes.Index(rest, []byte("<div "))
		if j < 0 {
			break
		}
		out = append(out, rest[:j]...)
		out = append(out, []byte("<div data-edgeseg-slot=\"s"+string(rune('0'+i))+"\" ")...)
		rest = rest[j+5:]
	}
	return append(out, rest...)
}

// checkChunked feeds in one byte at a time and at every split point of two
// and checks the output does not depend on chunking.
func checkChunked(t *testing.T, in, want []byte) {
	t.Helper()
	for split := 0; split <= len(in); split++ {
		var out bytes.Buffer
		r := NewRewriter(&out, testLookup, nil)
		r.Write(in[:split])
		r.Write(in[split:])
		r.Close()
		if !bytes.Equal(out.Bytes(), want) {
			t.Fatalf("split at %d: %q, want %q", split, out.Bytes(), want)
		}
	}
	var out bytes.Buffer
	r := NewRewriter(&out, testLookup, nil)
	for i := range in {
		r.Write(in[i : i+1])
	}
	r.Close()
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("byte at a time: %q, want %q", out.Bytes(), want)
	}
}

func checkChunkedRandom(t *testing.T, in, want []byte, rounds int) {
	t.Helper()
	rng := rand.New(rand.NewSource(int64(len(in))))
	for round := 0; round < rounds; round++ {
		var out bytes.Buffer
		r := NewRewriter(&out, testLookup, nil)
		for i := 0; i < len(in); {
			n := 1 + rng.Intn(8192)
			if i+n > len(in) {
				n = len(in) - i
			}
			r.Write(in[i : i+n])
			i += n
		}
		r.Close()
		if !bytes.Equal(out.Bytes(), want) {
			t.Fatalf("random chunking (round %d) changed the output", round)
		}
	}
}

const sentinel = "\x00SLOT\x00"

// checkOutside fills every slot with a sentinel and checks that the text
// between sentinels is, in order, taken from the input unchanged: the
// rewrite touched nothing outside the slots it filled (and the segment
// attribute it added, which is left out here).
func checkOutside(t *testing.T, in []byte) {
	t.Helper()
	got, n := Slots(nil, in, func(_ []byte, _ Place) (Block, bool) { return Block{HTML: []byte(sentinel)}, true }, nil)
	if bytes.Count(got, []byte(sentinel)) != n {
		t.Fatalf("sentinel count %d != filled %d", bytes.Count(got, []byte(sentinel)), n)
	}
	if err := outsideUnchanged(in, got); err != "" {
		t.Fatal(err)
	}
}

func outsideUnchanged(in, got []byte) string {
	parts := bytes.Split(got, []byte(sentinel))
	if !bytes.HasPrefix(in, parts[0]) {
		return "output does not start with the input's first part"
	}
	pos := len(parts[0])
	for _, p := range parts[1:] {
		j := bytes.Index(in[pos:], p)
		if j < 0 {
			return "a part of the output outside slots is not in the input: " + string(p[:min(len(p), 80)])
		}
		pos += j + len(p)
	}
	if len(parts) > 0 && !bytes.HasSuffix(in, parts[len(parts)-1]) {
		return "output does not end with the input's last part"
	}
	return ""
}

// html5libInputs returns the inputs of the html5lib tokenizer tests.
func html5libInputs(t testing.TB) []string {
	files, _ := filepath.Glob("testdata/corpus/html5lib/*.test")
	var inputs []string
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		var doc struct {
			Tests []struct {
				Input string `json:"input"`
			} `json:"tests"`
		}
		if json.Unmarshal(raw, &doc) != nil {
			continue
		}
		for _, tc := range doc.Tests {
			inputs = append(inputs, tc.Input)
		}
	}
	return inputs
}

func TestHTML5LibInputs(t *testing.T) {
	inputs := html5libInputs(t)
	if len(inputs) < 500 {
		t.Fatalf("only %d html5lib inputs", len(inputs))
	}
	for _, in := range inputs {
		b := []byte(in)
		got, _ := Slots(nil, b, func(_ []byte, _ Place) (Block, bool) { return Block{}, false }, nil)
		if !bytes.Equal(got, b) {
			t.Fatalf("%q changed without slots: %q", in, got)
		}
		// With a slot wrapped around it, the malformed input stays outside.
		wrapped := []byte("<p>pre</p><div data-edgeseg-slot=\"x\">" + in + "</div><p>post</p>" + in)
		checkOutside(t, wrapped)
	}
}

func FuzzSlots(f *testing.F) {
	files, _ := filepath.Glob("testdata/cases/*.html")
	for _, file := range files {
		b, _ := os.ReadFile(file)
		f.Add(b, uint16(7))
	}
	for _, in := range html5libInputs(f) {
		f.Add([]byte("<div data-edgeseg-slot=a>"+in+"</div>"), uint16(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, split uint16) {
		got, _ := Slots(nil, in, testLookup, nil)
		// chunking does not change the output
		s := int(split) % (len(in) + 1)
		var out bytes.Buffer
		r := NewRewriter(&out, testLookup, nil)
		r.Write(in[:s])
		r.Write(in[s:])
		r.Close()
		if !bytes.Equal(out.Bytes(), got) {
			t.Fatalf("split at %d changed the output", s)
		}
		// nor does feeding it in many small pieces, with pauses (Settle)
		// after some
		out.Reset()
		r = NewRewriter(&out, testLookup, nil)
		for rest, n, i := in, int(split)%61+1, 0; len(rest) > 0; rest, i = rest[min(n, len(rest)):], i+1 {
			r.Write(rest[:min(n, len(rest))])
			if split>>8&(1<<(i%8)) != 0 {
				r.Settle()
			}
		}
		r.Close()
		if !bytes.Equal(out.Bytes(), got) {
			t.Fatalf("pieces of %d bytes (pauses %08b) changed the output", int(split)%61+1, split>>8)
		}
		// nothing outside slots changes
		sent, n := Slots(nil, in, func(_ []byte, _ Place) (Block, bool) { return Block{HTML: []byte(sentinel)}, true }, nil)
		if bytes.Count(in, []byte(sentinel)) == 0 {
			if bytes.Count(sent, []byte(sentinel)) != n {
				t.Fatal("sentinel count")
			}
			if err := outsideUnchanged(in, sent); err != "" {
				t.Fatal(err)
			}
		}
		// no slot filled: identical
		same, _ := Slots(nil, in, func(_ []byte, _ Place) (Block, bool) { return Block{}, false }, nil)
		if !bytes.Equal(same, in) {
			t.Fatal("unfilled output differs from input")
		}
	})
}

// TestPlanMatchesScanner: applying a cached Plan gives exactly what a full
// scan gives, on every case, the real pages and the html5lib inputs, with
// lookups that fill all, none, or some slots, and with a head snippet.
func TestPlanMatchesScanner(t *testing.T) {
	var docs [][]byte
	for _, g := range []string{"testdata/cases/*.html", "testdata/corpus/real-pages/*.html"} {
		files, _ := filepath.Glob(g)
		for _, f := range files {
			b, _ := os.ReadFile(f)
			docs = append(docs, b, markSlots(b, 3))
		}
	}
	for _, in := range html5libInputs(t) {
		docs = append(docs, []byte(in), []byte(`<head></head><div data-edgeseg-slot="a">`+in+`</div>`+in))
	}
	some := func(s []byte, _ Place) (Block, bool) {
		if len(s)%2 == 0 {
			return Block{}, false
		}
		return testLookup(s, Place{})
	}
	for _, doc := range docs {
		plan := Scan(doc)
		for li, lookup := range []Lookup{testLookup, func(_ []byte, _ Place) (Block, bool) { return Block{}, false }, some} {
			for _, opts := range []*Options{nil, {HeadSnippet: []byte("<script>dl</script>")}} {
				want, wn := Slots(nil, doc, lookup, opts)
				got, gn := plan.Apply(nil, doc, lookup, opts)
				if !bytes.Equal(got, want) || gn != wn {
					t.Fatalf("lookup %d opts %v: plan differs from scan on %q\n got %q\nwant %q", li, opts != nil, trunc(doc), trunc(got), trunc(want))
				}
			}
		}
	}
}

func trunc(b []byte) []byte {
	if len(b) > 300 {
		return b[:300]
	}
	return b
}

func FuzzPlan(f *testing.F) {
	files, _ := filepath.Glob("testdata/cases/*.html")
	for _, file := range files {
		b, _ := os.ReadFile(file)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		opts := &Options{HeadSnippet: []byte("<x>")}
		want, _ := Slots(nil, in, testLookup, opts)
		plan := Scan(in)
		got, _ := plan.Apply(nil, in, testLookup, opts)
		if !bytes.Equal(got, want) {
			t.Fatalf("plan differs from scan")
		}
		if plan.Slots() > 0 && !MayHaveSlots(in) {
			t.Fatalf("MayHaveSlots misses a slot")
		}
	})
}

// TestHostileMarkers: thousands of unclosed slot markers in a large page
// neither take long nor change a byte; a closed slot after the limit is
// left alone, one before it is filled. "Long" is measured against a page
// of the same size with ordinary markup, in the same run, so a slow or
// busy machine (or the race detector) does not fail it. The hostile page
// is more work by design (up to MaxSlots markers each search a bounded
// window for their end tag: 20-50 times the ordinary page here), but work
// that grew with the number of markers times the page would take tens of
// thousands of times longer.
func TestHostileMarkers(t *testing.T) {
	page := func(filler string) []byte {
		var b bytes.Buffer
		b.WriteString(`<div data-edgeseg-slot="hero">d</div>`)
		for b.Len() < 2<<20 {
			b.WriteString(filler)
		}
		b.WriteString(`<div data-edgeseg-slot="late">d</div>`)
		return b.Bytes()
	}
	timed := func(in []byte) ([]byte, int, *Plan, time.Duration) {
		start := time.Now()
		out, n := Slots(nil, in, testLookup, nil)
		plan := Scan(in)
		return out, n, plan, time.Since(start)
	}
	_, _, _, ordinary := timed(page(`<p class="x">closed</p> `))
	in := page(`<p data-edgeseg-slot="x">unclosed `)
	out, n, plan, hostile := timed(in)
	if hostile > 200*ordinary+200*time.Millisecond {
		t.Fatalf("hostile markers took %v, an ordinary page of the same size %v", hostile, ordinary)
	}
	if n != 1 || !bytes.HasPrefix(out, []byte(`<div data-edgeseg-slot="hero" data-edgeseg-segment="seg-hero">`)) || !bytes.HasSuffix(out, []byte(`<div data-edgeseg-slot="late">d</div>`)) {
		t.Fatalf("filled %d", n)
	}
	if got, _ := plan.Apply(nil, in, testLookup, nil); !bytes.Equal(got, out) {
		t.Fatal("plan differs from scan")
	}
}

func TestMayHaveSlots(t *testing.T) {
	cases := []struct {
		html string
		want bool
	}{
		{`<div data-edgeseg-slot="hero">`, true},
		{`<DIV DATA-EDGESEG-SLOT=hero>`, true},
		{`<div Data-EdgeSeg-Slot='hero'>`, true},
		{`edgeseg-slot`, true}, // at both ends of the input
		{`<p class="a-b c-d">no marker</p>`, false},
		{`<div data-edgeseg_slot="x">`, false},
		{`<div data-edgeseg-slo`, false},
		{`-slot edgeseg-`, false},
		{``, false},
		{`-`, false},
	}
	for _, c := range cases {
		if got := MayHaveSlots([]byte(c.html)); got != c.want {
			t.Errorf("MayHaveSlots(%q) = %v, want %v", c.html, got, c.want)
		}
	}
	// Every case file with a fillable slot has the marker.
	files, _ := filepath.Glob("testdata/cases/*.html")
	for _, file := range files {
		b, _ := os.ReadFile(file)
		if Scan(b).Slots() > 0 && !MayHaveSlots(b) {
			t.Errorf("%s: slots found, marker not", file)
		}
	}
}

// TestSkipThenRewrite: a page whose start was sent on untouched while no
// marker had been seen, and which is rewritten from there (after Skip over
// what was sent), comes out exactly as rewriting it whole would.
func TestSkipThenRewrite(t *testing.T) {
	var docs [][]byte
	cases, _ := filepath.Glob("testdata/cases/*.html")
	for _, f := range cases {
		b, _ := os.ReadFile(f)
		docs = append(docs, b)
	}
	for _, p := range realPages(t) {
		docs = append(docs, markSlots(p.html, 3))
	}
	rng := rand.New(rand.NewSource(1))
	resumed := 0
	for i, in := range docs {
		want, _ := Slots(nil, in, testLookup, nil)
		// Split points before the first marker: every one for small pages,
		// 40 random ones for large.
		limit := len(in)
		for limit > 0 && MayHaveSlots(in[:limit]) {
			limit = bytes.Index(bytes.ToLower(in), []byte("edgeseg-slot"))
		}
		splits := []int{0, limit}
		if limit < 2000 {
			for k := 1; k < limit; k++ {
				splits = append(splits, k)
			}
		} else {
			for n := 0; n < 40; n++ {
				splits = append(splits, rng.Intn(limit))
			}
		}
		for _, k := range splits {
			if MayHaveSlots(in[:k]) {
				continue
			}
			var out bytes.Buffer
			r := NewRewriter(&out, testLookup, nil)
			held := append([]byte(nil), r.Skip(in[:k])...)
			r.Write(in[k:])
			r.Close()
			if !bytes.HasPrefix(out.Bytes(), held) {
				t.Fatalf("doc %d split %d: output does not begin with the held bytes", i, k)
			}
			got := append(append([]byte(nil), in[:k]...), out.Bytes()[len(held):]...)
			if !bytes.Equal(got, want) {
				t.Fatalf("doc %d split %d: differs from a whole rewrite", i, k)
			}
		}
		// Rewriting, then sending on a stretch without markers while
		// nothing is pending, then rewriting again.
		for n := 0; n < 40; n++ {
			a := rng.Intn(len(in) + 1)
			b := a + rng.Intn(len(in)-a+1)
			var out bytes.Buffer
			r := NewRewriter(&out, testLookup, nil)
			r.Write(in[:a])
			if r.Pending() != 0 || MayHaveSlots(in[max(0, a-len(SlotAttr)):b]) {
				continue
			}
			got := append([]byte(nil), out.Bytes()...)
			got = append(got, in[a:b]...)
			out.Reset()
			held := append([]byte(nil), r.Skip(in[a:b])...)
			r.Write(in[b:])
			r.Close()
			if !bytes.HasPrefix(out.Bytes(), held) {
				t.Fatalf("doc %d resumed at %d-%d: output does not begin with the held bytes", i, a, b)
			}
			got = append(got, out.Bytes()[len(held):]...)
			if !bytes.Equal(got, want) {
				t.Fatalf("doc %d resumed at %d-%d: differs from a whole rewrite", i, a, b)
			}
			resumed++
		}
	}
	if resumed < 100 {
		t.Fatalf("only %d resumed rewrites were tried", resumed)
	}
	t.Logf("%d resumed rewrites", resumed)
}

// TestRewriterReset: one Rewriter reset between documents rewrites each as
// a new one would, whatever the last one left in it.
func TestRewriterReset(t *testing.T) {
	files, _ := filepath.Glob("testdata/cases/*.html")
	var out bytes.Buffer
	r := NewRewriter(&out, testLookup, nil)
	for _, f := range files {
		in, _ := os.ReadFile(f)
		want, _ := Slots(nil, in, testLookup, nil)
		for _, cut := range []int{len(in) / 2, len(in)} {
			out.Reset()
			r.Reset(&out, testLookup, nil)
			r.Write(in[:cut]) // the first pass stops mid-document
			if cut == len(in) {
				r.Close()
				if !bytes.Equal(out.Bytes(), want) {
					t.Fatalf("%s: reused Rewriter differs", f)
				}
			}
		}
	}
}

// FuzzSkip: sending on a stretch without markers untokenized (Skip), at
// the start or once nothing is pending, never changes the page a whole
// rewrite makes.
func FuzzSkip(f *testing.F) {
	files, _ := filepath.Glob("testdata/cases/*.html")
	for _, file := range files {
		b, _ := os.ReadFile(file)
		f.Add(b, uint16(0), uint16(len(b)/3))
	}
	f.Fuzz(func(t *testing.T, in []byte, a16, b16 uint16) {
		want, _ := Slots(nil, in, testLookup, nil)
		a := int(a16) % (len(in) + 1)
		b := a + int(b16)%(len(in)-a+1)
		var out bytes.Buffer
		r := NewRewriter(&out, testLookup, nil)
		r.Write(in[:a])
		if r.Pending() != 0 || MayHaveSlots(in[max(0, a-len(SlotAttr)):b]) {
			return
		}
		got := append(append([]byte(nil), out.Bytes()...), in[a:b]...)
		out.Reset()
		held := append([]byte(nil), r.Skip(in[a:b])...)
		r.Write(in[b:])
		r.Close()
		if !bytes.HasPrefix(out.Bytes(), held) {
			t.Fatalf("output does not begin with the held bytes %q", held)
		}
		if got = append(got, out.Bytes()[len(held):]...); !bytes.Equal(got, want) {
			t.Fatalf("skipping %d-%d changed the page:\n got %q\nwant %q", a, b, got, want)
		}
	})
}

// TestLongSkippedContentIsNotHeld: a streamed page whose script, comment
// or other skipped construct runs for megabytes — or never ends, as on a
// broken page — is let go of as it comes: the Rewriter holds back only
// the few bytes that may begin its end, and the output matches the page
// rewritten whole.
func TestLongSkippedContentIsNotHeld(t *testing.T) {
	const chunk, chunks = 16 << 10, 320 // 5 MiB
	filler := bytes.Repeat([]byte("if (a < b && c-- > 0) { x = '</scrip' + \"]]\" + '-->'.length; } // 0123\n"), chunk/40)[:chunk]
	for _, tc := range []struct{ name, open, close string }{
		{"script", "<script>", "</script>"},
		{"style", "<STYLE media=all>", "</style >"},
		{"textarea", "<textarea>", "</TextArea>"},
		{"comment", "<!-- ", "--!>"},
		{"cdata", "<![CDATA[", "]]>"},
		{"bogus comment", "<?xml ", ">"},
		{"doctype-like", "<!x ", ">"},
	} {
		for _, closed := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/closed=%v", tc.name, closed), func(t *testing.T) {
				body := filler
				if tc.name == "bogus comment" || tc.name == "doctype-like" {
					body = bytes.ReplaceAll(filler, []byte(">"), []byte(")")) // '>' would end it
				}
				if tc.name == "comment" {
					body = bytes.ReplaceAll(body, []byte("-->"), []byte("- >"))
				}
				if tc.name == "cdata" {
					body = bytes.ReplaceAll(body, []byte("]]"), []byte("] ]"))
				}
				var in, out bytes.Buffer
				r := NewRewriter(&out, testLookup, nil)
				write := func(b []byte) {
					in.Write(b)
					r.Write(b)
				}
				write([]byte(`<div data-edgeseg-slot="a">x</div>` + tc.open))
				for range chunks {
					write(body)
					if p := r.Pending(); p > 64 {
						t.Fatalf("holds %d bytes back", p)
					}
				}
				if closed {
					write([]byte(tc.close + `<div data-edgeseg-slot="b">y</div>`))
				}
				r.Close()
				want, n := Slots(nil, in.Bytes(), testLookup, nil)
				if !bytes.Equal(out.Bytes(), want) {
					t.Fatalf("streamed output differs from the page rewritten whole")
				}
				if wantN := 1 + btoi(closed); n != wantN {
					t.Fatalf("filled %d slots, want %d", n, wantN)
				}
			})
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestUnendingTagsAreNotHeld: a tag that never ends (a quoted attribute
// value left open) is held back only up to MaxSlotBytes; past that, the
// rest of the page passes as it is.
func TestUnendingTagsAreNotHeld(t *testing.T) {
	var in, out bytes.Buffer
	r := NewRewriter(&out, testLookup, &Options{MaxSlotBytes: 64 << 10})
	write := func(b []byte) {
		in.Write(b)
		r.Write(b)
	}
	write([]byte(`<div data-edgeseg-slot="a">x</div><img alt="`))
	filler := bytes.Repeat([]byte("no quote here <div data-edgeseg-slot=b>z</div> "), 400)
	for range 100 {
		write(filler)
		if p := r.Pending(); p > 64<<10+len(filler) {
			t.Fatalf("holds %d bytes back", p)
		}
	}
	r.Close()
	want := strings.Replace(in.String(), `<div data-edgeseg-slot="a">x</div>`, `<div data-edgeseg-slot="a" data-edgeseg-segment="seg-a"><b>block:a</b></div>`, 1)
	if out.String() != want {
		t.Fatal("the page after the first slot was not passed on as it is")
	}
}

// TestSplitEndsOfSkippedContent: the end of a skipped construct split
// across two writes at any point is still found.
func TestSplitEndsOfSkippedContent(t *testing.T) {
	for _, in := range []string{
		`<div data-edgeseg-slot="a">x</div><script>a</scr</scrip </script foo><div data-edgeseg-slot="b">y</div>`,
		`<div data-edgeseg-slot="a">x</div><!-- a -- b --!x ---><div data-edgeseg-slot="b">y</div>`,
		`<div data-edgeseg-slot="a">x</div><!-- a --!><div data-edgeseg-slot="b">y</div>-->`,
		`<div data-edgeseg-slot="a">x</div><!---><div data-edgeseg-slot="b">y</div>`,
		`<div data-edgeseg-slot="a">x</div><![cdata[ ]] ]]><div data-edgeseg-slot="b">y</div>`,
		`<div data-edgeseg-slot="a">x</div><?php echo 1 ?><div data-edgeseg-slot="b">y</div>`,
	} {
		want, _ := Slots(nil, []byte(in), testLookup, nil)
		checkChunked(t, []byte(in), want)
	}
}

// TestPlanNamesIgnoredMarkers: a Plan lists the slot markers it cannot
// fill, and why, so that an editor whose slot keeps its default can be told.
func TestPlanNamesIgnoredMarkers(t *testing.T) {
	doc := `<title data-edgeseg-slot="title">Shop</title><div data-edgeseg-slot="ok">x</div><div data-edgeseg-slot="closed"/><img data-edgeseg-slot="img">` +
		`<!-- <div data-edgeseg-slot="commented"> --><script>"<div data-edgeseg-slot=scripted>"</script>` +
		`<TEXTAREA data-edgeseg-slot="note">a <b data-edgeseg-slot="inner">b</b></TEXTAREA>` +
		`<p><span data-edgeseg-slot="misnested"><em><span>Sale</em></span> ends today</span></p>` +
		`<section data-edgeseg-slot="open">never ends`
	want := []Ignored{{"title", IgnoredText, ""}, {"closed", IgnoredSelfClosing, ""}, {"img", IgnoredVoid, ""}, {"note", IgnoredText, ""},
		{"misnested", IgnoredMisnested, "<span> is not closed before </em>"}, {"open", IgnoredNoEnd, ""}}
	if got := Scan([]byte(doc)).Ignored(); !slices.Equal(got, want) {
		t.Errorf("ignored %v, want %v", got, want)
	}
	// As the page streams in pieces, the same.
	var out strings.Builder
	r := NewRewriter(&out, testLookup, nil)
	for i := 0; i < len(doc); i += 5 {
		r.Write([]byte(doc[i:min(i+5, len(doc))]))
	}
	r.Close()
	if got := r.Ignored(); !slices.Equal(got, want) {
		t.Errorf("streamed: ignored %v, want %v", got, want)
	}
	var many strings.Builder
	for i := range MaxSlots + 1 {
		fmt.Fprintf(&many, `<p data-edgeseg-slot="s%d">x</p>`, i)
	}
	want = []Ignored{{fmt.Sprintf("s%d", MaxSlots), IgnoredTooMany, ""}}
	if got := Scan([]byte(many.String())).Ignored(); !slices.Equal(got, want) {
		t.Errorf("ignored %v, want %v", got, want)
	}
	if got := Scan([]byte(`<div data-edgeseg-slot="a"><p>b</p></div>`)).Ignored(); got != nil {
		t.Errorf("ignored %v in a page whose slots all fill", got)
	}
}

// TestRewriterNamesIgnoredMarkers: a page rewritten as it streams names the
// same markers that cannot be filled as the Plan of the whole page does.
func TestRewriterNamesIgnoredMarkers(t *testing.T) {
	doc := []byte(`<div data-edgeseg-slot="ok">x</div><div data-edgeseg-slot="closed"/><img data-edgeseg-slot="img">` +
		`<section data-edgeseg-slot="open">never ends`)
	want := Scan(doc).Ignored()
	for split := range len(doc) + 1 {
		r := NewRewriter(io.Discard, testLookup, nil)
		r.Write(doc[:split])
		r.Write(doc[split:])
		r.Close()
		if got := r.Ignored(); !slices.Equal(got, want) {
			t.Fatalf("split at %d: ignored %v, want %v", split, got, want)
		}
	}
}

// TestEndTagsAroundAnUnclosedSVG: the end tag of a button, link, list item
// or cell around an <svg> left unclosed (an icon's) closes the SVG as
// well, as browsers read it; a </form> does not, nor an end tag that a
// <foreignObject> between keeps from the element around.
func TestEndTagsAroundAnUnclosedSVG(t *testing.T) {
	for _, tc := range []struct {
		page string
		want Place
	}{
		{`<p>Buy <button><svg><use href="#i"></button><span data-edgeseg-slot="s">x</span>`, Place{InParagraph: true}},
		{`<a href="/"><svg><path d=""></a><span data-edgeseg-slot="s">x</span>`, Place{}},
		{`<ul><li><svg><g></li><li><b data-edgeseg-slot="s">x</b></li></ul>`, Place{InListItem: true}},
		{`<table><tr><td><svg><g></td></tr></table><span data-edgeseg-slot="s">x</span>`, Place{}},
		{`<form><math></form><mrow data-edgeseg-slot="s">x</mrow>`, Place{InForm: true, InForeign: true, InMath: true}},
		// Ignored: HTML's scopes end at the <foreignObject>, where the
		// <span> then goes, out of reach of the button around it.
		{`<button><svg><foreignObject><svg><g></button><span data-edgeseg-slot="s">x</span>`, Place{}},
		// Nor past a <marquee> (or an <object>, a cell) opened inside.
		{`<ul><li><marquee><svg><text x="1"></li><g data-edgeseg-slot="s">x</g>`, Place{InListItem: true, InForeign: true}},
		{`<a href="/"><marquee><svg><g></a><g data-edgeseg-slot="s">x</g>`, Place{InLink: true, InForeign: true}},
		{`<button><marquee><svg><g></button><g data-edgeseg-slot="s">x</g>`, Place{InForeign: true}},
		// A form's end tag takes the form out and leaves the MathML
		// opened in it open.
		{`<svg><foreignObject><form><math></form><mrow data-edgeseg-slot="s">x</mrow>`, Place{InForm: true, InForeign: true, InMath: true}},
		// Inside an <annotation-xml> of HTML, its end tag, the <math>'s and
		// the button's are ignored while a <p> is open in it.
		{`<button><math><annotation-xml encoding="text/html"><p>x</annotation-xml></math><span></button><label data-edgeseg-slot="s">x</label>`, Place{InParagraph: true}},
		// A button's end tag does not reach past a table: ignored, it
		// leaves the SVG open.
		{`<button><table><tr><td><svg><g></button><text data-edgeseg-slot="s">x</text>`, Place{InForeign: true}},
		// Nor an item's past a list.
		{`<ul><li><ol><svg><g></li><text data-edgeseg-slot="s">x</text>`, Place{InForeign: true}},
	} {
		var got Place
		found := false
		lookup := func(_ []byte, at Place) (Block, bool) {
			got, found = at, true
			return Block{}, false
		}
		Scan([]byte(tc.page)).Apply(nil, []byte(tc.page), lookup, nil)
		got.Element = nil
		if !found || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: slot told %+v (found %v), want %+v", tc.page, got, found, tc.want)
		}
	}
}

// TestEndTagsOfElementsAroundTheSVG: an end tag inside an <svg> that
// names none of its elements, and no element the scanner follows (a
// </span> around an icon's unclosed <svg>), leaves the SVG if an HTML
// element of that name is open around it, and is ignored if not. The
// scanner cannot tell which: a slot is not filled until the SVG is closed
// either way (a tag that breaks out of it, its end tag, an end tag the
// scanner follows), nor any after a tag the two readings take differently.
// Where a slot is filled, x/net/html's tree agrees with its place.
func TestEndTagsOfElementsAroundTheSVG(t *testing.T) {
	const unclear = "unclear"
	for _, tc := range []struct {
		page string
		want any // a Place, or unclear
	}{
		{`<div class="icon"><svg><path d="M0 0"></div><section data-edgeseg-slot="s">x</section>`, unclear},
		{`<span><svg><g></span><a href="/x" data-edgeseg-slot="s">x</a>`, unclear},
		{`<main><svg><g></div><text data-edgeseg-slot="s">x</text></g></svg>`, unclear},
		{`<math><mrow></span><mrow data-edgeseg-slot="s">x</mrow>`, unclear},
		// Closed either way.
		{`<div class="icon"><svg><path d="M0 0"></div><div data-edgeseg-slot="s">x</div>`, Place{}},
		{`<span><svg><g></span></svg><span data-edgeseg-slot="s">x</span>`, Place{}},
		{`<p><span><svg><g></span>more</p><span data-edgeseg-slot="s">x</span>`, Place{}},
		{`<a href="/x"><i class="icon"><svg><use href="#i"></i>Cart</a><span data-edgeseg-slot="s">x</span>`, Place{}},
		{`<span><svg><g></span><circle r="1"/><ul><li data-edgeseg-slot="s">x</li></ul>`, Place{}},
		// Read one way or the other, the tag in between changes what is
		// open after the SVG: the rest of the page is not filled.
		{`<span><svg><g></span><a href="/x">x</a><div data-edgeseg-slot="s">x</div>`, unclear},
		{`<span><svg></span><script>"<div data-edgeseg-slot=s>x</div>"</script>`, unclear},
		{`<span><svg></span><![CDATA[ > <a href="/x"> ]]><div data-edgeseg-slot="s">x</div>`, unclear},
		{`<span><svg></span><foreignObject><div>d</div></foreignObject></svg><div data-edgeseg-slot="s">x</div>`, unclear},
		// An end tag the scanner can read: of an element it follows, of
		// one that never holds an <svg>, or of an HTML element inside a
		// <foreignObject>, under a second <svg>.
		{`<form><svg><g></form><text data-edgeseg-slot="s">x</text>`, Place{InForm: true, InForeign: true}},
		{`<svg><g></body><text data-edgeseg-slot="s">x</text>`, Place{InForeign: true}},
		{`<svg><foreignObject><div><svg><g></div><text data-edgeseg-slot="s">x</text>`, Place{}},
		{`<svg><foreignObject><div><svg><g></span><text data-edgeseg-slot="s">x</text>`, Place{InForeign: true}},
		{`<svg><foreignObject><span><svg><g></span><text data-edgeseg-slot="s">x</text>`, Place{}},
		{`<svg><foreignObject><div><svg><g></foreignObject><text data-edgeseg-slot="s">x</text>`, Place{InForeign: true}},
		{`<svg><foreignObject><div><span><svg><g></div><text data-edgeseg-slot="s">x</text>`, Place{}},
		{`<svg><foreignObject><svg><g></div><text data-edgeseg-slot="s">x</text>`, Place{InForeign: true}},
	} {
		places, ignored := slotsOf(t, tc.page)
		got, found := places["s"]
		got.Element = nil
		switch want := tc.want.(type) {
		case Place:
			if !found || !reflect.DeepEqual(got, want) {
				t.Errorf("%s: slot told %+v (found %v, ignored %v), want %+v", tc.page, got, found, ignored, want)
			}
			if ns := slotNamespace(t, tc.page); (ns != "") != want.InForeign {
				t.Errorf("%s: x/net/html puts the slot in namespace %q, the scanner InForeign=%v", tc.page, ns, want.InForeign)
			}
		default:
			if found || len(ignored) != 1 || ignored[0].Reason != IgnoredUnclear || !strings.Contains(ignored[0].Detail, "inside <") {
				t.Errorf("%s: slot told %+v (found %v), ignored %+v; want it ignored as %q", tc.page, got, found, ignored, IgnoredUnclear)
			}
		}
	}
}

// slotNamespace is the namespace x/net/html's tree puts the element
// marked as slot "s" in: "" for HTML, "svg" or "math".
func slotNamespace(t *testing.T, page string) string {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	for n := range doc.Descendants() {
		for _, a := range n.Attr {
			if a.Key == SlotAttr && a.Val == "s" {
				return n.Namespace
			}
		}
	}
	t.Fatalf("%s: no slot in x/net/html's tree", page)
	return ""
}

// TestEndTagsInsideElementsThatHoldHTML: inside a <foreignObject>, an
// <mi>, an <annotation-xml> of HTML, an end tag is read as in SVG and
// MathML while no HTML element is open in it: it closes the element, or
// one of its name around it (an </svg> right after the content closes
// both). With one open, browsers ignore it.
func TestEndTagsInsideElementsThatHoldHTML(t *testing.T) {
	for _, tc := range []struct {
		page string
		want Place
	}{
		{`<svg><g><svg><foreignObject><div>t</div></svg><text data-edgeseg-slot="s">x</text></g></svg>`, Place{InForeign: true}},
		{`<svg><g><svg><foreignObject><div>t</svg><text data-edgeseg-slot="s">x</text>`, Place{}},
		{`<svg><foreignObject><p>t</foreignObject><text data-edgeseg-slot="s">x</text>`, Place{InParagraph: true}},
		{`<svg><foreignObject><p>t<div>d</div></foreignObject><text data-edgeseg-slot="s">x</text>`, Place{InForeign: true}},
		{`<svg><foreignObject><b>t</foreignObject><text data-edgeseg-slot="s">x</text>`, Place{}},
		{`<math><mi><b>x</mi><mrow data-edgeseg-slot="s">x</mrow>`, Place{}},
		{`<math><mi><b>x</b></mi><mrow data-edgeseg-slot="s">x</mrow>`, Place{InForeign: true, InMath: true}},
		{`<math><annotation-xml encoding="text/html"><p>x</annotation-xml></math><mrow data-edgeseg-slot="s">x</mrow>`, Place{InParagraph: true}},
		{`<math><annotation-xml encoding="text/html"><ul><li>a<li>b</ul></annotation-xml><mrow data-edgeseg-slot="s">x</mrow>`, Place{InForeign: true, InMath: true}},
		// A <font color> breaks out of the inner SVG into the
		// <foreignObject>; closed, it leaves nothing open there.
		{`<svg><g><svg><foreignObject><svg><font color="red">x</font></svg><text data-edgeseg-slot="s">x</text>`, Place{InForeign: true}},
	} {
		places, _ := slotsOf(t, tc.page)
		got, found := places["s"]
		got.Element = nil
		if !found || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: slot told %+v (found %v), want %+v", tc.page, got, found, tc.want)
		}
	}
}

// FuzzReadOtherwise: what readOtherwise reads of a <font>'s and an
// <annotation-xml>'s attributes (a color, face or size; an encoding of
// HTML) is what the tokenizer reads of them.
func FuzzReadOtherwise(f *testing.F) {
	for _, s := range []string{` color="red"`, ` COLOR=red`, ` class=x size`, `/face=a`, ` =color`, ` colors=1`, ` a="color"`,
		` encoding="text/html"`, ` encoding=TEXT/HTML`, ` encoding='application/xhtml+xml'`, ` encoding="text&sol;html"`,
		` encoding="image/svg+xml" encoding="text/html"`, ` encoding = "text/html" `, ` x='>' color`, ` encoding=text/html/`} {
		f.Add("font", s)
		f.Add("annotation-xml", s)
	}
	f.Fuzz(func(t *testing.T, name, attrs string) {
		if name != "font" && name != "annotation-xml" && name != "FONT" && name != "Annotation-XML" {
			return
		}
		data := []byte("<" + name + attrs + ">")
		var tg tag
		if !parseTag(data, 0, &tg, nil) || tg.end != len(data) || tg.nameEnd-tg.nameAt != len(name) {
			return // not one tag of that name
		}
		kind, by := otherFont, breaksOut
		if len(name) > 4 {
			kind, by = otherAnnotation, annotationOfHTML
		}
		if got, want := tg.readOtherwise(data, kind), tg.tokenized(data, by); got != want {
			t.Fatalf("%q: parseTag reads %v, the tokenizer %v", data, got, want)
		}
	})
}

// TestForeignSlotsWhoseContentLeavesThem: an SVG or MathML slot whose
// content breaks out of it (an HTML <b> in an SVG <text>, which ends the
// SVG) or closes an element around it ends before its end tag, as
// browsers read it: it is not filled, in a Plan or as the page streams.
func TestForeignSlotsWhoseContentLeavesThem(t *testing.T) {
	for _, tc := range []struct {
		page   string
		filled bool
	}{
		{`<svg><text data-edgeseg-slot="s">Hello <b>world</b></text></svg><p>after</p>`, false},
		{`<math><section data-edgeseg-slot="s"><b></section></b><x-unit data-edgeseg-slot="u"></x-unit>`, false},
		{`<svg><g><text data-edgeseg-slot="s">a</g>b</text></svg>`, false},
		{`<svg><text data-edgeseg-slot="s">Hello <tspan>world</tspan></text></svg>`, true},
		{`<svg><g data-edgeseg-slot="s"><foreignObject><div><b>x</b></div></foreignObject></g></svg>`, true},
		{`<svg><g data-edgeseg-slot="s"><g><path d=""/></g></g></svg>`, true},
	} {
		plan := Scan([]byte(tc.page))
		filled := false
		for _, sl := range plan.PlacedSlots() {
			filled = filled || sl.Slot == "s"
		}
		if filled != tc.filled {
			t.Errorf("%s: slot fillable %v, want %v (ignored %v)", tc.page, filled, tc.filled, plan.Ignored())
		}
		if !tc.filled && (len(plan.Ignored()) == 0 || plan.Ignored()[0].Reason != IgnoredMisnested) {
			t.Errorf("%s: ignored %v, want it misnested", tc.page, plan.Ignored())
		}
		want, _ := Slots(nil, []byte(tc.page), testLookup, nil)
		got, _ := plan.Apply(nil, []byte(tc.page), testLookup, nil)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: plan gives %q, the stream %q", tc.page, got, want)
		}
	}
}

// TestScriptEscapes: a script's text goes through the tokenizer's escape
// states, as in a browser. After "<!--" then "<script", a "</script" does
// not end it, so a marker after that one is script text, not a slot; in
// any other case the first "</script" ends it. The markers filled are
// those x/net/html parses as elements; sent whole or in pieces cut
// anywhere, alike.
func TestScriptEscapes(t *testing.T) {
	const a, b = `<div data-edgeseg-slot="a">x</div>`, `<p data-edgeseg-slot="b">y</p>`
	for _, tc := range []struct {
		script string
		filled string // the markers a browser sees as elements
	}{
		{`<script><!--<script></script>` + a + `--></script>` + b, "b"},
		{`<SCRIPT><!-- <SCRIPT src=x></SCRIPT >` + a + `// --></SCRIPT>` + b, "b"},
		{`<script><!--<script>` + a + `</script>` + a + `</script>` + b, "b"},
		{`<script><!-- legacy //--></script>` + a + b, "ab"},
		{`<script><!--></script>` + a + b, "ab"},
		{`<script><!---></script>` + a + b, "ab"},
		{`<script><!--<scripts></script>` + a + b, "ab"},
		{`<script><!--<script>--></script>` + a + b, "ab"},
		{`<script><!--<script>---></script>` + a + b, "ab"},
		{`<script>if (a<!--b) x = "<script>"</script>` + a + b, ""},
		{`<script>if (a<!--b) x = "<script>"</script>` + a + `</script>` + b, "b"},
		{`<style><!--<script></style>` + a + b, "ab"},
	} {
		got, n := Slots(nil, []byte(tc.script), testLookup, nil)
		filled := ""
		for _, name := range []string{"a", "b"} {
			if bytes.Contains(got, []byte(`"seg-`+name+`"`)) {
				filled += name
			}
		}
		doc, err := html.Parse(strings.NewReader(tc.script))
		if err != nil {
			t.Fatal(err)
		}
		parsed := ""
		for _, el := range slotElements(doc) {
			parsed += attr(el, SlotAttr)
		}
		if filled != tc.filled || n != len(tc.filled) || parsed != tc.filled {
			t.Errorf("%s:\nfilled %q (%d), x/net/html sees %q, want %q\n%s", tc.script, filled, n, parsed, tc.filled, got)
			continue
		}
		checkChunked(t, []byte(tc.script), got)
	}
}
