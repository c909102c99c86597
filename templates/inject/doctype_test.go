package inject

import (
	"bufio"
	"os"
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
// whole and streamed in pieces (slotsOf).
func TestDocumentModes(t *testing.T) {
	for _, ds := range readDocumentStarts(t) {
		places, _ := slotsOf(t, ds.start+paragraphAroundTable)
		place, found := places["s"]
		if !found {
			t.Errorf("%q: no slot found", ds.start)
			continue
		}
		if place.InParagraph != ds.quirks {
			t.Errorf("%q: quirks mode %v, but the scanner tells the slot InParagraph %v", ds.start, ds.quirks, place.InParagraph)
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
	f.Add("<!DOCTYPE html>")
	f.Add(`<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01 Transitional//EN" "http://www.w3.org/TR/html4/loose.dtd">`)
	f.Add(`<!DOCTYPE html PUBLIC "x" 'y' z>`)
	f.Add("\ufeff<!-- c --><!doctype html>")
	f.Add("<!doctype")
	f.Fuzz(func(t *testing.T, start string) {
		doctypeMode([]byte(start))
		page := start + paragraphAroundTable
		if out, _ := Slots(nil, []byte(page), func([]byte, Place) (Block, bool) { return Block{}, false }, nil); string(out) != page {
			t.Fatalf("%q: the page changed", start)
		}
		slotsOf(t, page)
	})
}
