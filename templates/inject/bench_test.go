package inject

import (
	"os"
	"testing"
)

// BenchmarkScanner tokenizes whole documents as a page that changes on
// every request is (no plan to reuse): the real pages of the corpus, one
// after another, and the 60 KB bench page with its three slots filled. It
// is the cost that grows with a dynamic page's size.
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
}
