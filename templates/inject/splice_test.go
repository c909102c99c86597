package inject

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// TestSplice: a Splice reads, writes and appends the same bytes Apply
// would write, however it is read, and after Reset holds nothing of the
// page before.
func TestSplice(t *testing.T) {
	html := []byte(`<html><head><title>t</title></head><body>` +
		`<div data-edgeseg-slot="hero">Default hero</div><p>between</p>` +
		`<aside data-edgeseg-slot="side" data-edgeseg-segment="x">Default side</aside>` +
		`<footer data-edgeseg-slot="unfilled">kept</footer></body></html>`)
	plan := Scan(html)
	lookup := func(slot []byte, _ Place) (Block, bool) {
		switch string(slot) {
		case "hero":
			return Block{HTML: []byte("<b>Deals</b>"), Segment: "deal-seekers"}, true
		case "side":
			return Block{HTML: []byte("<i>Sale</i>"), Segment: "deal-seekers"}, true
		}
		return Block{}, false
	}
	opts := &Options{HeadSnippet: []byte("<script>x</script>")}
	want, filled := plan.Apply(nil, html, lookup, opts)
	if filled != 2 || !bytes.Contains(want, []byte(`data-edgeseg-segment="deal-seekers"><b>Deals</b></div>`)) ||
		!bytes.Contains(want, []byte("<script>x</script></head>")) || !bytes.Contains(want, []byte("<i>Sale</i></aside>")) {
		t.Fatalf("Apply: %d filled\n%s", filled, want)
	}

	var s Splice
	s.Reset([]byte("an earlier page"))
	s.add([]byte("made before"))
	if n := plan.ApplySplice(&s, html, lookup, opts); n != filled {
		t.Fatalf("ApplySplice filled %d, Apply %d", n, filled)
	}
	if s.Len() != len(want) {
		t.Fatalf("Len %d, want %d", s.Len(), len(want))
	}
	if got := s.AppendTo([]byte("x")); !bytes.Equal(got[1:], want) {
		t.Fatalf("AppendTo:\n%s\nwant\n%s", got[1:], want)
	}
	for _, size := range []int{1, 3, 7, 64, 4096} {
		s.at, s.off = 0, 0
		var got []byte
		buf := make([]byte, size)
		for {
			n, err := s.Read(buf)
			got = append(got, buf[:n]...)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil || n == 0 {
				t.Fatalf("Read(%d bytes): %d, %v", size, n, err)
			}
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("Read in %d-byte parts:\n%s", size, got)
		}
	}
	var whole Splice
	whole.ResetWhole(html)
	if whole.Len() != len(html) || !bytes.Equal(whole.AppendTo(nil), html) {
		t.Fatalf("ResetWhole: %d bytes, want the page's %d", whole.Len(), len(html))
	}
	// Read part of it, then WriteTo the rest, through a writer that
	// fails once midway: a retry goes on from where it stopped.
	s.at, s.off = 0, 0
	head := make([]byte, 50)
	if n, err := io.ReadFull(&s, head); n != 50 || err != nil {
		t.Fatalf("ReadFull: %d, %v", n, err)
	}
	w := &failingWriter{failAt: 90}
	n1, err := s.WriteTo(w)
	if err == nil {
		t.Fatal("WriteTo: the writer's error was lost")
	}
	n2, err := s.WriteTo(w)
	if err != nil || n1+n2 != int64(len(want)-50) || !bytes.Equal(append(head, w.b...), want) {
		t.Fatalf("WriteTo in two goes: %d+%d bytes, %v:\n%s", n1, n2, err, append(head, w.b...))
	}
}

// failingWriter takes bytes until failAt of them, fails once, then takes
// the rest.
type failingWriter struct {
	b      []byte
	failAt int
	failed bool
}

func (w *failingWriter) Write(p []byte) (int, error) {
	if !w.failed && len(w.b)+len(p) > w.failAt {
		n := w.failAt - len(w.b)
		w.b = append(w.b, p[:n]...)
		w.failed = true
		return n, errors.New("broken")
	}
	w.b = append(w.b, p...)
	return len(p), nil
}
