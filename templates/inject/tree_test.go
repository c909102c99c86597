package inject

import (
	"bytes"
	"fmt"
	"testing"

	"golang.org/x/net/html"
)

// TestFilledSlotsChangeOnlyTheirContent parses pages as a browser does
// (golang.org/x/net/html builds the HTML5 tree) before and after their
// slots are filled: the trees must be the same but for each filled slot's
// children, which become the block. It catches a slot whose end is found
// elsewhere than where a browser ends the element: the block would then
// leave part of the old content, or swallow what follows. The pages are
// the real pages of the corpus with every third element of a kind that
// holds flow content marked as a slot, and cases of HTML that browsers
// read differently from XML. (Malformed content inside a slot, such as an
// unclosed <b> a browser carries on past the slot's end, is left out:
// there the block, as intended, replaces it and its effects alike.)
func TestFilledSlotsChangeOnlyTheirContent(t *testing.T) {
	var docs [][]byte
	for _, p := range realPages(t) {
		raw := p.html
		for _, name := range []string{"div", "p", "li", "span", "a", "td", "section", "form", "h2", "figure"} {
			docs = append(docs, markEvery(raw, name, 3))
		}
	}
	for _, in := range []string{
		`<body><main><div data-edgeseg-slot=a><div class="x"/><p>in</p></div>tail</div><p>out</p></main>`,
		`<body><main><span data-edgeseg-slot=a>x<span/>y</span>z</span><p>out</p></main>`,
		`<body><svg><g data-edgeseg-slot=a><g/>in</g>z</svg><p>out</p>`,
		`<body><div data-edgeseg-slot=a><svg><use href="#i"/></svg><div/>x</div></div><p>out</p>`,
		`<body><div data-edgeseg-slot=a><script>"</div>"</script><!-- </div> --><textarea></div></textarea></div><p>out</p>`,
		`<body><div data-edgeseg-slot=a><!-- a --!> </div><p>out</p>`,
		`<body><script src=a.js /><div data-edgeseg-slot=a>x</div></script><div data-edgeseg-slot=b>y</div><p>out</p>`,
		`<body><div data-edgeseg-slot=a><iframe src=f.html /></div></iframe></div><p>out</p>`,
		`<body><svg><script href=a.js /><g data-edgeseg-slot=a>x</g></svg><p>out</p>`,
	} {
		docs = append(docs, []byte(in))
	}
	filled := 0
	for _, in := range docs {
		out, n := Slots(nil, in, func(_ []byte, _ Place) (Block, bool) { return Block{HTML: []byte("BLOCK"), Segment: "s"}, true }, nil)
		filled += n
		want, err := html.Parse(bytes.NewReader(in))
		if err != nil {
			t.Fatal(err)
		}
		got, err := html.Parse(bytes.NewReader(out))
		if err != nil {
			t.Fatal(err)
		}
		// In the page as sent, each slot the output shows filled gets
		// the block for children; the output loses the segment attribute.
		done := map[string]bool{}
		for _, g := range slotElements(got) {
			if attr(g, SegmentAttr) != "" {
				done[attr(g, SlotAttr)] = true
			}
			g.Attr = dropAttr(g.Attr, SegmentAttr)
		}
		for _, w := range slotElements(want) {
			if done[attr(w, SlotAttr)] {
				for w.FirstChild != nil {
					w.RemoveChild(w.FirstChild)
				}
				w.AppendChild(&html.Node{Type: html.TextNode, Data: "BLOCK"})
			}
		}
		if len(done) != n {
			t.Fatalf("%d slots filled, %d seen filled in the output of %.80q", n, len(done), in)
		}
		if a, b := renderTree(t, want), renderTree(t, got); a != b {
			i := 0
			for i < len(a) && i < len(b) && a[i] == b[i] {
				i++
			}
			from := max(0, i-200)
			t.Fatalf("filling the slots of %.80q changed the tree outside them:\nwant …%s\n got …%s", in, a[from:min(len(a), i+200)], b[from:min(len(b), i+200)])
		}
	}
	if filled < 500 {
		t.Fatalf("only %d slots filled", filled)
	}
}

// markEvery makes every nth <name ...> start tag of in a slot.
func markEvery(in []byte, name string, nth int) []byte {
	var out []byte
	open := []byte("<" + name + " ")
	rest := in
	for k := 0; ; k++ {
		j := bytes.Index(rest, open)
		if j < 0 {
			break
		}
		out = append(out, rest[:j+len(open)]...)
		if k%nth == 0 {
			out = fmt.Appendf(out, `%s="s%d" `, SlotAttr, k)
		}
		rest = rest[j+len(open):]
	}
	return append(out, rest...)
}

func slotElements(n *html.Node) []*html.Node {
	var found []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && attr(n, SlotAttr) != "" {
			found = append(found, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return found
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func dropAttr(attrs []html.Attribute, key string) []html.Attribute {
	var kept []html.Attribute
	for _, a := range attrs {
		if a.Key != key {
			kept = append(kept, a)
		}
	}
	return kept
}

func renderTree(t *testing.T, n *html.Node) string {
	var b bytes.Buffer
	if err := html.Render(&b, n); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
