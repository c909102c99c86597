package inject

import (
	"os"
	"testing"
)

// BenchmarkScanner tokenizes whole documents as a page that changes on
// every request is (no plan to reuse): the real pages of the corpus, one
// after another, a page of 400 web components with their shadow roots,
// and the 60 KB bench page with its three slots filled. It is the cost
// that grows with a dynamic page's size.
func BenchmarkScanner(b *testing.B) {
	var corpus [][]byte
	size := 0
	for _, p := range realPages(b) {
		corpus = append(corpus, p.html)
		size += len(p.html)
	}
	page, err := os.ReadFile("../../bench/testdata/page-60k.html")
	if err != nil {
		b.Fatal(err)
	}
	block := Block{HTML: []byte("<h1>Deals picked for you</h1>"), Segment: "deal-seekers"}
	lookup := func(_ []byte, _ Place) (Block, bool) { return block, true }
	var out []byte
	b.Run("real-pages", func(b *testing.B) {
		b.SetBytes(int64(size))
		b.ReportAllocs()
		for b.Loop() {
			for _, html := range corpus {
				out, _ = Slots(out[:0], html, lookup, nil)
			}
		}
	})
	// A page of web components rendered on the server: every card's
	// shadow tree is a <template shadowrootmode>, read as markup.
	var components []byte
	for range 400 {
		components = append(components, `<product-card><template shadowrootmode="open"><style>:host{display:block}</style>`+
			`<a href="/p/1" part="link"><slot name="title"></slot></a><span data-edgeseg-slot="badge">New</span>`+
			`<price-tag><template shadowrootmode="open"><b>$20</b></template></price-tag></template>`+
			`<h3 slot="title">Lamp</h3></product-card>`...)
	}
	b.Run("shadow-roots", func(b *testing.B) {
		b.SetBytes(int64(len(components)))
		b.ReportAllocs()
		for b.Loop() {
			var n int
			out, n = Slots(out[:0], components, lookup, nil)
			if n != MaxSlots {
				b.Fatalf("filled %d slots, want %d", n, MaxSlots)
			}
		}
	})
	b.Run("bench-60k", func(b *testing.B) {
		b.SetBytes(int64(len(page)))
		b.ReportAllocs()
		for b.Loop() {
			var n int
			out, n = Slots(out[:0], page, lookup, nil)
			if n != 3 {
				b.Fatalf("filled %d slots, want 3", n)
			}
		}
	})
	// Icons whose <font color> breaks out of their SVG, and MathML
	// annotations: tags whose attributes decide how what follows is read.
	var fonts []byte
	for len(fonts) < 1<<20 {
		fonts = append(fonts, `<svg><font color="red">x</font><math><annotation-xml encoding="text/html"><p>y</p></annotation-xml></math>`...)
	}
	b.Run("font-in-svg", func(b *testing.B) {
		b.SetBytes(int64(len(fonts)))
		b.ReportAllocs()
		for b.Loop() {
			out, _ = Slots(out[:0], fonts, lookup, nil)
		}
	})
}
