package inject

import (
	"bufio"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// documentStart is one line of testdata/doctypes.txt.
type documentStart struct {
	start  string
	quirks bool
}

func readDocumentStarts(t *testing.T) []documentStart {
	t.Helper()
	f, err := os.Open("testdata/doctypes.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var starts []documentStart
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if text == "" || text[0] == '#' {
			continue
		}
		mode, quoted, ok := strings.Cut(text, "\t")
		start, err := strconv.Unquote(quoted)
		if !ok || err != nil || mode != "quirks" && mode != "standards" {
			t.Fatalf("testdata/doctypes.txt:%d: want mode<TAB>\"start\", got %q", line, text)
		}
		starts = append(starts, documentStart{start, mode == "quirks"})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return starts
}

// paragraphAroundTable is a page's body where the mode shows: in quirks
// mode the <table> leaves the paragraph open, and the slot after it is in
// the paragraph; in standards mode the table closed it.
const paragraphAroundTable = `<p>Deals<table><tr><td>1</td></tr></table><span data-edgeseg-slot="s">x</span> today</p>`

// TestDocumentModes: the scanner reads each page start as browsers do,
// whole and streamed in pieces of every size up to 9 bytes.
func TestDocumentModes(t *testing.T) {
	for _, ds := range readDocumentStarts(t) {
		page := ds.start + paragraphAroundTable
		var place Place
		found := false
		Scan([]byte(page)).Apply(nil, []byte(page), func(_ []byte, p Place) (Block, bool) {
			place, found = p, true
			return Block{}, false
		}, nil)
		if !found {
			t.Errorf("%q: no slot found", ds.start)
			continue
		}
		if place.InParagraph != ds.quirks {
			t.Errorf("%q: quirks mode %v, but the scanner tells the slot InParagraph %v", ds.start, ds.quirks, place.InParagraph)
		}
		for size := 1; size <= 9; size++ {
			var streamed Place
			var out strings.Builder
			r := NewRewriter(&out, func(_ []byte, p Place) (Block, bool) {
				streamed = p
				return Block{}, false
			}, nil)
			for i := 0; i < len(page); i += size {
				r.Write([]byte(page[i:min(i+size, len(page))]))
			}
			r.Close()
			if streamed.InParagraph != place.InParagraph || out.String() != page {
				t.Errorf("%q in pieces of %d: InParagraph %v (whole: %v), output %q", ds.start, size, streamed.InParagraph, place.InParagraph, out.String())
			}
		}
	}
}

// TestQuirksModeKeepsBlocksInTheParagraph: on a page without a doctype a
// block that would close the paragraph around its slot is refused, as it
// is on a page with one where nothing closed the paragraph.
func TestQuirksModeKeepsBlocksInTheParagraph(t *testing.T) {
	div, err := ReadBlock([]byte(`<div class="deal">20% off</div>`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		page string
		fits bool
	}{
		{"<!doctype html>" + paragraphAroundTable, true},
		{paragraphAroundTable, false},
		{"<html><body>" + paragraphAroundTable, false},
		{"<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 4.0 Transitional//EN\">" + paragraphAroundTable, false},
	} {
		lookup := func(_ []byte, p Place) (Block, bool) {
			return Block{HTML: []byte(`<div class="deal">20% off</div>`)}, Misfit(p, div) == ""
		}
		out, n := Slots(nil, []byte(tc.page), lookup, nil)
		if fits := n == 1; fits != tc.fits {
			t.Errorf("%q: filled %v, want %v: %s", tc.page, fits, tc.fits, out)
		}
	}
}

// FuzzDocumentMode: whatever starts a page, the scanner reads it alike
// whole and in pieces, and passes the page through unchanged.
func FuzzDocumentMode(f *testing.F) {
	f.Add("<!DOCTYPE html>", 1)
	f.Add(`<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01 Transitional//EN" "http://www.w3.org/TR/html4/loose.dtd">`, 3)
	f.Add(`<!DOCTYPE html PUBLIC "x" 'y' z>`, 2)
	f.Add("\ufeff<!-- c --><!doctype html>", 1)
	f.Add("<!doctype", 4)
	f.Fuzz(func(t *testing.T, start string, size int) {
		doctypeMode([]byte(start))
		size = 1 + (size&0xff)%16
		page := start + paragraphAroundTable
		var whole, streamed Place
		out, _ := Slots(nil, []byte(page), func(_ []byte, p Place) (Block, bool) {
			whole = p
			whole.Element = slices.Clone(p.Element) // the page's bytes, for the call only
			return Block{}, false
		}, nil)
		var w strings.Builder
		r := NewRewriter(&w, func(_ []byte, p Place) (Block, bool) {
			streamed = p
			streamed.Element = slices.Clone(p.Element)
			return Block{}, false
		}, nil)
		for i := 0; i < len(page); i += size {
			r.Write([]byte(page[i:min(i+size, len(page))]))
		}
		r.Close()
		if string(out) != page || w.String() != page {
			t.Fatalf("%q: the page changed", start)
		}
		if !reflect.DeepEqual(whole, streamed) {
			t.Fatalf("%q: whole %+v, in pieces of %d %+v", start, whole, size, streamed)
		}
	})
}
