package inject

import (
	"bytes"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// followPages are the pages the follower is tried on: the reference page,
// the golden cases and the real pages.
func followPages(t testing.TB) [][]byte {
	files, _ := filepath.Glob("testdata/cases/*.html")
	real, _ := filepath.Glob("testdata/corpus/real-pages/*.html")
	pages := [][]byte{[]byte(referencePage)}
	for _, f := range append(files, real...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, b)
	}
	return pages
}

// countingLookup fills the slots lookup fills, keeping every slot name it
// was asked for.
type countingLookup struct {
	lookup Lookup
	asked  []string
}

func (c *countingLookup) Lookup(slot []byte, at Place) (Block, bool) {
	c.asked = append(c.asked, string(slot))
	return c.lookup(slot, at)
}

// someLookup fills about half the slots, by their names: slots inside
// slots that are not filled are then filled.
func someLookup(slot []byte, at Place) (Block, bool) {
	h := fnv.New32a()
	h.Write(slot)
	if h.Sum32()%2 == 0 {
		return Block{}, false
	}
	return testLookup(slot, at)
}

// followOnce writes doc through a Rewriter following ref, in chunks cut at
// random, and checks it writes what a Rewriter that does not follow
// writes, asking lookup for the same slots. It returns whether the
// Rewriter still followed at the end.
func followOnce(t *testing.T, ref *Reference, doc []byte, lookup Lookup, opts *Options, rng *rand.Rand) bool {
	t.Helper()
	plain := countingLookup{lookup: lookup}
	var want bytes.Buffer
	pr := NewRewriter(&want, plain.Lookup, opts)
	pr.Write(doc)
	pr.Close()
	if whole, n := Slots(nil, doc, lookup, opts); !bytes.Equal(whole, want.Bytes()) || n != pr.Filled() {
		t.Fatalf("the Rewriter and Slots disagree")
	}

	fol := countingLookup{lookup: lookup}
	var got bytes.Buffer
	fr := NewRewriter(&got, fol.Lookup, opts)
	if !fr.Follow(ref) {
		t.Fatalf("cannot follow")
	}
	maxChunk := 1 + rng.IntN(4)*rng.IntN(len(doc)+1)
	for rest := doc; len(rest) > 0; {
		k := min(len(rest), 1+rng.IntN(maxChunk))
		if _, err := fr.Write(rest[:k]); err != nil {
			t.Fatal(err)
		}
		rest = rest[k:]
		if fr.Pending() > len(doc) {
			t.Fatalf("holds %d bytes of a %d-byte document", fr.Pending(), len(doc))
		}
	}
	following := fr.Following()
	if err := fr.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		i := firstDiff(got.Bytes(), want.Bytes())
		t.Fatalf("following writes otherwise (followed to the end: %v) at %d:\n got %q\nwant %q", fr.Following(), i,
			clip(got.Bytes(), i), clip(want.Bytes(), i))
	}
	if fr.Filled() != pr.Filled() {
		t.Fatalf("following filled %d slots, reading %d", fr.Filled(), pr.Filled())
	}
	if !reflect.DeepEqual(fol.asked, plain.asked) {
		t.Fatalf("following asked lookup for %q, reading for %q", fol.asked, plain.asked)
	}
	if fr.Following() && !following {
		t.Fatalf("Close followed again")
	}
	if fr.Following() && !reflect.DeepEqual(fr.Ignored(), pr.Ignored()) {
		t.Fatalf("following ignores %v, reading %v", fr.Ignored(), pr.Ignored())
	}
	if fr.HeadPending() != pr.HeadPending() {
		t.Fatalf("following has the head snippet to place: %v, reading: %v", fr.HeadPending(), pr.HeadPending())
	}
	return fr.Following()
}

// scannerFor is a scanner as a Rewriter with opts starts.
func scannerFor(opts *Options) *scanner {
	var s scanner
	s.init(testLookup, opts)
	return &s
}

// followOptions are the options pages are followed with: none, a head
// snippet, one made for the page's <meta> policies, and a head read for
// them with no snippet.
var followOptions = []*Options{nil, {HeadSnippet: []byte(`<script>dataLayer=[{"s":"x"}]</script>`)},
	{HeadSnippet: []byte(`<s>`), MetaPolicy: echoPolicy{}}, {ReadHead: true, MetaPolicy: echoPolicy{}}}

func clip(b []byte, i int) []byte {
	return b[max(0, i-40):min(len(b), i+40)]
}

// TestFollowerWritesWhatTheScannerWrites follows each page with itself, with
// its attribute values rewritten (as TestReferenceAgreesWithScan does) and
// with bytes written over or inserted anywhere, in chunks cut at random:
// the output, the slots filled and the lookups made are a plain
// Rewriter's, whether the page keeps to its Reference or departs from it.
func TestFollowerWritesWhatTheScannerWrites(t *testing.T) {
	const alphabet = `aZ09-_ "'<>&=/!?` + "\t\n\x00"
	rng := rand.New(rand.NewPCG(3, 4))
	followed, departed := 0, 0
	count := func(ok bool) {
		if ok {
			followed++
		} else {
			departed++
		}
	}
	for _, page := range followPages(t) {
		ref := ScanReference(page)
		for _, opts := range followOptions {
			if !ref.followable(scannerFor(opts)) {
				continue
			}
			if opts != nil && opts.HeadSnippet != nil && opts.MetaPolicy != nil && len(ref.plan.metaCSP) == 0 {
				continue // the plain snippet's case again, on a page without <meta> policies
			}
			for _, lookup := range []Lookup{testLookup, someLookup} {
				if !followOnce(t, ref, page, lookup, opts, rng) {
					t.Fatalf("a page does not keep to its own Reference")
				}
				followed++
				v := ref.values
				step := max(2, len(v)/2/10*2)
				for k := rng.IntN(step/2) * 2; k+1 < len(v); k += step {
					b := bytes.Clone(page)
					if rng.IntN(2) == 0 {
						for i := int(v[k]); i < int(v[k+1]); i++ {
							if rng.IntN(3) == 0 {
								b[i] = alphabet[rng.IntN(len(alphabet))]
							}
						}
					} else {
						val := make([]byte, rng.IntN(2*int(v[k+1]-v[k])+4))
						for i := range val {
							val[i] = "abcXYZ09-_"[rng.IntN(10)]
						}
						b = append(append(append([]byte(nil), b[:v[k]]...), val...), b[v[k+1]:]...)
					}
					count(followOnce(t, ref, b, lookup, opts, rng))
				}
				for range 10 {
					b := bytes.Clone(page)
					at := rng.IntN(len(b))
					repl := make([]byte, 1+rng.IntN(3))
					for i := range repl {
						repl[i] = alphabet[rng.IntN(len(alphabet))]
					}
					if rng.IntN(2) == 0 {
						copy(b[at:], repl)
					} else {
						b = append(append(append([]byte(nil), b[:at]...), repl...), b[at:]...)
					}
					count(followOnce(t, ref, b, lookup, opts, rng))
				}
				// cut short, or longer
				count(followOnce(t, ref, page[:rng.IntN(len(page))], lookup, opts, rng))
				count(followOnce(t, ref, append(bytes.Clone(page), "<p>more</p>"...), lookup, opts, rng))
			}
		}
	}
	t.Logf("followed to the end %d, departed %d", followed, departed)
	if followed < 100 || departed < 100 {
		t.Fatalf("followed %d, departed %d: the test does not exercise both", followed, departed)
	}
}

// TestFollowerRefuses: a Rewriter with another slot bound does not
// follow, nor one that has been written to.
func TestFollowerRefuses(t *testing.T) {
	ref := ScanReference([]byte(referencePage))
	var out bytes.Buffer
	for _, tc := range []struct {
		name string
		opts *Options
		pre  string
	}{
		{"another slot bound", &Options{MaxSlotBytes: 100}, ""},
		{"written to", nil, "<!doctype html>"},
	} {
		r := NewRewriter(&out, testLookup, tc.opts)
		r.Write([]byte(tc.pre))
		if r.Follow(ref) {
			t.Errorf("%s: follows", tc.name)
		}
	}
	noEnd := ScanReference([]byte(`<div data-edgeseg-slot="a">never ended`))
	if NewRewriter(&out, testLookup, nil).Follow(noEnd) {
		t.Errorf("follows a Reference with a slot whose end was not found")
	}
	if NewRewriter(&out, testLookup, nil).Follow(nil) {
		t.Errorf("follows no Reference")
	}
}

// FuzzFollow: a page written over anywhere, with anything, and sent in
// chunks of any size, is written by a following Rewriter as by one that
// reads it.
func FuzzFollow(f *testing.F) {
	f.Add([]byte(referencePage), uint16(230), []byte("BBBB"), uint8(7), false)
	f.Add([]byte(referencePage), uint16(80), []byte("fedcba"), uint8(1), true)
	f.Add([]byte(referencePage), uint16(228), []byte("'"), uint8(200), false)
	metaPage := `<html><head><meta http-equiv="Content-Security-Policy" content="script-src 'nonce-a'"><title>t</title></head><body><div data-edgeseg-slot="x">d</div></body></html>`
	f.Add([]byte(metaPage), uint16(80), []byte("b"), uint8(5), false)
	files, _ := filepath.Glob("testdata/cases/*.html")
	for _, file := range files {
		b, _ := os.ReadFile(file)
		f.Add(b, uint16(len(b)/2), []byte(`x"`), uint8(13), true)
	}
	f.Fuzz(func(t *testing.T, page []byte, at uint16, repl []byte, chunk uint8, insert bool) {
		if len(page) == 0 {
			return
		}
		ref := ScanReference(page)
		b := bytes.Clone(page)
		i := int(at) % len(page)
		if insert {
			b = append(append(append([]byte(nil), page[:i]...), repl...), page[i:]...)
		} else {
			copy(b[i:], repl)
		}
		rng := rand.New(rand.NewPCG(uint64(chunk), uint64(at)))
		for _, opts := range followOptions {
			if !ref.followable(scannerFor(opts)) {
				continue
			}
			followOnce(t, ref, b, testLookup, opts, rng)
			followOnce(t, ref, b, someLookup, opts, rng)
		}
	})
}

// BenchmarkFollow60k writes the 60 KB bench page, with another token than
// its Reference's, in 16 KB chunks: following the Reference against
// tokenizing it.
func BenchmarkFollow60k(b *testing.B) {
	page, err := os.ReadFile("../../bench/testdata/page-60k.html")
	if err != nil {
		b.Fatal(err)
	}
	withToken := func(tok string) []byte {
		return bytes.Replace(page, []byte("<head>"), []byte(`<head><meta name="csrf-token" content="`+tok+`">`), 1)
	}
	ref := ScanReference(withToken("0123456789abcdef"))
	doc := withToken("fedcba9876543210ff")
	for _, follow := range []bool{true, false} {
		name := "tokenize"
		if follow {
			name = "follow"
		}
		b.Run(name, func(b *testing.B) {
			r := NewRewriter(io.Discard, testLookup, nil)
			b.ReportAllocs()
			b.SetBytes(int64(len(doc)))
			for b.Loop() {
				r.Reset(io.Discard, testLookup, nil)
				if follow && !r.Follow(ref) {
					b.Fatal("cannot follow")
				}
				for p := doc; len(p) > 0; {
					n := min(len(p), 16<<10)
					r.Write(p[:n])
					p = p[n:]
				}
				r.Close()
				if r.Filled() == 0 || r.Following() != follow {
					b.Fatalf("filled %d, following %v", r.Filled(), r.Following())
				}
			}
		})
	}
}

// TestFollowerHoldsAtIgnoredMarkers: a slot marker the Reference's Plan
// ignores may be filled in a page that departs from the Reference inside
// it (its misnested content mended): the follower writes nothing of it
// until the page is known to keep to the Reference up to where the
// scanner decided it. Each pair, cut into chunks many ways.
func TestFollowerHoldsAtIgnoredMarkers(t *testing.T) {
	for _, tc := range []struct{ ref, doc string }{
		{`<div data-edgeseg-slot><A></div>`, `<div data-edgeseg-slot><0A></div>`},
		{`<p>x</p><div data-edgeseg-slot="a"><b>open</div><p class="k">after</p>`, `<p>x</p><div data-edgeseg-slot="a"><b>open</b></div><p class="k">after</p>`},
		{`<section data-edgeseg-slot="s"><div data-edgeseg-slot="in"><i></div></section>`, `<section data-edgeseg-slot="s"><div data-edgeseg-slot="in"><i></i></div></section>`},
		{`<div data-edgeseg-slot="v" title="t"><span></div>`, `<div data-edgeseg-slot="v" title="longer title"><span></span></div>`},
		{`<img data-edgeseg-slot="i"><div data-edgeseg-slot="d">x</div>`, `<img data-edgeseg-slot="i"><div data-edgeseg-slot="d">y</div>`},
	} {
		ref := ScanReference([]byte(tc.ref))
		if len(ref.Plan().Ignored()) == 0 {
			t.Fatalf("%q: the Reference ignores no marker", tc.ref)
		}
		for _, lookup := range []Lookup{testLookup, someLookup} {
			for chunk := 1; chunk <= len(tc.doc); chunk++ {
				rng := rand.New(rand.NewPCG(uint64(chunk), 0))
				for _, opts := range followOptions {
					followOnce(t, ref, []byte(tc.doc), lookup, opts, rng)
				}
			}
		}
	}
}

// TestFollowerPlacesTheHeadSnippet: a following Rewriter with a head
// snippet places it where one reading the document does, at the first
// </head> outside a filled slot and a template, whether the document
// keeps to the Reference or departs from it before, inside or after the
// end tag. Each pair, cut into chunks every way.
func TestFollowerPlacesTheHeadSnippet(t *testing.T) {
	const slot = `<div data-edgeseg-slot="hero">x</div>`
	opts := followOptions[1]
	for _, tc := range []struct{ ref, doc string }{
		{`<html><head><title>a</title></head><body>` + slot + `</body>`, `<html><head><title>a</title></head><body>` + slot + `</body>`},
		{`<head><meta name="t" content="1"></head><body>` + slot, `<head><meta name="t" content="22"></head><body>` + slot},
		{`<head><meta name="t" content="1"></head><body>` + slot, `<head><meta name="t" content="1"></header><body>` + slot},
		{`<head><meta name="t" content="1"></head><body>` + slot, `<head><meta name="t" content="1"></heaD ><body>` + slot},
		{`<head><meta name="t" content="1"></head><body>` + slot, `<head><meta name="t" content="1"><b></head><body>` + slot},
		{`<head></head><body>` + slot, `<head></head><body><p>more</p>` + slot},
		{`<HEAD></HEAD>` + slot, `<HEAD></HEAD>` + slot},
		{`<head><template></head></template></head>` + slot, `<head><template></head></template></head>` + slot},
		{`<div data-edgeseg-slot="a"></head></div></head>` + slot, `<div data-edgeseg-slot="a"></head></div></head>` + slot},
		{`<head><!-- </head> --></head>` + slot, `<head><!-- </head> --></head>` + slot},
		{slot + `<p>no head at all</p>`, slot + `<p>no head at all</p>`},
		{`<head><script>"</head>"</script></head>` + slot, `<head><script>"</head>"</script></head>` + slot},
		{`<head><title>t</title></head></head>` + slot, `<head><title>t</title></head></head>` + slot},
	} {
		ref := ScanReference([]byte(tc.ref))
		if !ref.followable(&scanner{maxSlot: defaultMaxSlot, head: opts.HeadSnippet}) {
			t.Fatalf("%q: not followable with a head snippet", tc.ref)
		}
		followed := false
		for _, lookup := range []Lookup{testLookup, someLookup} {
			for chunk := 1; chunk <= len(tc.doc); chunk++ {
				rng := rand.New(rand.NewPCG(uint64(chunk), 1))
				followed = followOnce(t, ref, []byte(tc.doc), lookup, opts, rng) || followed
			}
		}
		if tc.ref == tc.doc && !followed {
			t.Errorf("%q: never followed to the end", tc.ref)
		}
	}
	// A </head> written otherwise: where it ends is not known.
	for _, page := range []string{`<head></head >` + slot, `<head></head x="1">` + slot} {
		if ScanReference([]byte(page)).followable(&scanner{maxSlot: defaultMaxSlot, head: opts.HeadSnippet}) {
			t.Errorf("%q: followable with a head snippet", page)
		}
		if !ScanReference([]byte(page)).followable(&scanner{maxSlot: defaultMaxSlot}) {
			t.Errorf("%q: not followable without one", page)
		}
	}
}

// BenchmarkRewriterLongSlot writes a page whose slot holds 256 KB of
// paragraphs in 4 KB chunks: a slot still waiting for its end tag is not
// read again from its start for chunks that cannot end it. divs: the slot
// is a <div> of <div>s (a product grid), every chunk of which may end it.
func BenchmarkRewriterLongSlot(b *testing.B) {
	b.Run("paragraphs", func(b *testing.B) {
		benchLongSlot(b, `<section data-edgeseg-slot="long">`+strings.Repeat(`<p class="x">some text</p>`, 256<<10/26)+`</section>`)
	})
	b.Run("divs", func(b *testing.B) {
		benchLongSlot(b, `<div data-edgeseg-slot="long">`+strings.Repeat(`<div class="card"><p>some text</p></div>`, 256<<10/40)+`</div>`)
	})
}

func benchLongSlot(b *testing.B, slot string) {
	page := []byte(`<!doctype html><body>` + slot + `</body>`)
	r := NewRewriter(io.Discard, testLookup, nil)
	b.ReportAllocs()
	b.SetBytes(int64(len(page)))
	for b.Loop() {
		r.Reset(io.Discard, testLookup, nil)
		for p := page; len(p) > 0; {
			n := min(len(p), 4<<10)
			r.Write(p[:n])
			p = p[n:]
		}
		r.Close()
		if r.Filled() != 1 {
			b.Fatal("not filled")
		}
	}
}

// TestLongSlotsAreReadAsTheyGrow: a <div> slot of <div>s written in 4 KB
// chunks is read again only as it grows by half, not for every chunk; its
// end, once come, is written by Settle (as when the document pauses) or by
// later writes, and the output is the same as the whole document's.
func TestLongSlotsAreReadAsTheyGrow(t *testing.T) {
	head := `<!doctype html><body><div data-edgeseg-slot="grid">`
	grid := strings.Repeat(`<div class="card"><p>a product</p></div>`, 2000)
	tail := `</div><p>after</p></body>`
	whole, _ := Slots(nil, []byte(head+grid+tail), testLookup, nil)

	var out bytes.Buffer
	r := NewRewriter(&out, testLookup, nil)
	reads := 0
	for p := []byte(head + grid); len(p) > 0; {
		n := min(len(p), 4<<10)
		before := r.readAt
		r.Write(p[:n])
		if r.readAt != before {
			reads++
		}
		p = p[n:]
	}
	chunks := (len(head+grid) + 4<<10 - 1) / (4 << 10)
	if reads == 0 || reads*2 > chunks { // as it grows by half: 7 times in 20 chunks
		t.Errorf("the slot was read %d times in %d chunks", reads, chunks)
	}
	r.Write([]byte(tail[:10])) // "</div><p>a": the slot's end
	if bytes.Contains(out.Bytes(), []byte("block:grid")) {
		t.Log("the end was read at once (the slot had grown by half)")
	}
	if err := r.Settle(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out.Bytes(), []byte(`<b>block:grid</b></div>`)) || r.Pending() > 10 {
		t.Fatalf("after Settle: %d bytes out, %d held back", out.Len(), r.Pending())
	}
	r.Write([]byte(tail[10:]))
	r.Close()
	if !bytes.Equal(out.Bytes(), whole) {
		t.Errorf("streamed output differs from the whole document's:\n%.300s\n%.300s", out.Bytes(), whole)
	}
}
