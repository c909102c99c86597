package inject

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const referencePage = `<!doctype html><html><head><meta charset="utf-8">` +
	`<meta name="csrf-token" content="0123456789abcdef0123456789abcdef"></head><body>` +
	`<form><input type="hidden" name="authenticity_token" value='tok-AAAA'><input value=plain></form>` +
	`<p class="lead">Hello</p><div data-edgeseg-slot="hero" data-edgeseg-segment="x">default</div>` +
	`<script nonce="n0nce">var s = "<div data-edgeseg-slot=fake>";</script>` +
	`<div data-edgeseg-slot='side' class="s">side</div></body></html>`

// TestReferencePlanFor: a page that differs from the reference only inside
// quoted attribute values, or inside a script's text, gets its plan; any
// other difference, or one that could change how the page is read, gets
// none.
func TestReferencePlanFor(t *testing.T) {
	ref := ScanReference([]byte(referencePage))
	if ref.Plan().Slots() != 2 {
		t.Fatalf("reference has %d slots", ref.Plan().Slots())
	}
	for _, tc := range []struct {
		name, from, to string
		reused         bool
	}{
		{"the same page", "", "", true},
		{"another token", "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210", true},
		{"another single-quoted token", "tok-AAAA", "tok-BBBB", true},
		{"the other quote in a value", "tok-AAAA", `tok-"B"B`, true},
		{"another nonce and class", `nonce="n0nce"`, `nonce="n1nce"`, true},
		{"a value's own quote ending it early", "tok-AAAA", "tok'BBBB", false},
		{"a longer token", "tok-AAAA", "tok-AAAAA", true},
		{"a shorter token", "0123456789abcdef0123456789abcdef", "0123", true},
		{"an empty token", "tok-AAAA", "", true},
		{"a longer class before the slots", `class="lead"`, `class="leading-paragraph"`, true},
		{"a longer value in a slot's start tag", `class="s"`, `class="side-slot"`, true},
		{"a value grown past its quote", `value='tok-AAAA'>`, `value='tok-AAAA>'`, false},
		{"another text", "Hello", "Hellp", false},
		{"another tag name", `<p class`, `<b class`, false},
		{"another slot name", `slot="hero"`, `slot="hera"`, false},
		{"another segment attribute value", `segment="x"`, `segment="y"`, false},
		{"another unquoted value", "value=plain", "value=plaim", false},
		{"another script text", "var s", "var t", true},
		{"a longer script text", `var s = "`, `var state = {"cart": 3}; var s = "`, true},
		{"markup in a script text", "var s", `var x = "<p></scrip </scripts> -->"; var s`, true},
		{"a comment opener in a script text", "var s", `var x = "<!--"; var s`, false},
		{"a script text ended early", "var s", `</script><p>x</p><script>var s`, false},
		{"a script text ended early in capitals", "var s", `</SCRIPT>var s`, false},
		{"a script text with the text after it", `";</script>`, `";</script><p>`, false},
		{"another declared encoding", `charset="utf-8"`, `charset="koi8r"`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			page := strings.Replace(referencePage, tc.from, tc.to, 1)
			if tc.from != "" && page == referencePage {
				t.Fatalf("%q is not in the page", tc.from)
			}
			plan := ref.PlanFor([]byte(page))
			if (plan != nil) != tc.reused {
				t.Fatalf("reused: %v, want %v", plan != nil, tc.reused)
			}
			if plan != nil {
				checkSamePlan(t, plan, []byte(page))
			}
		})
	}
}

// TestReferenceKeepsTheDeclaredEncoding: the values of a <meta> that
// declares the encoding are not free to change, those of other <meta>s are.
func TestReferenceKeepsTheDeclaredEncoding(t *testing.T) {
	page := `<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8">` +
		`<meta name="csrf-token" content="aaaa"></head><body><div data-edgeseg-slot="a">x</div></body></html>`
	ref := ScanReference([]byte(page))
	if ref.PlanFor([]byte(strings.Replace(page, "charset=utf-8", "charset=ascii", 1))) != nil {
		t.Error("a page declaring another encoding got the reference's plan")
	}
	if ref.PlanFor([]byte(strings.Replace(page, "aaaa", "bbbb", 1))) == nil {
		t.Error("a page with another token did not")
	}
}

// checkSamePlan fails t unless plan fills page exactly as a plan made by
// scanning page does.
func checkSamePlan(t *testing.T, plan *Plan, page []byte) {
	t.Helper()
	opts := &Options{HeadSnippet: []byte("<x>")}
	fresh := Scan(page)
	got, n := plan.Apply(nil, page, testLookup, opts)
	want, m := fresh.Apply(nil, page, testLookup, opts)
	if !bytes.Equal(got, want) || n != m {
		t.Fatalf("the reused plan fills the page otherwise than its own:\n%s\n%s", got, want)
	}
	if !reflect.DeepEqual(plan.PlacedSlots(), fresh.PlacedSlots()) || !reflect.DeepEqual(plan.Ignored(), fresh.Ignored()) ||
		plan.HeadsKnown() != fresh.HeadsKnown() || !reflect.DeepEqual(plan.heads, fresh.heads) {
		t.Fatalf("the reused plan is not the page's own")
	}
	if PageCharset(nil, plan) != PageCharset(nil, fresh) {
		t.Fatalf("the reused plan reads another encoding")
	}
}

// TestReferenceAgreesWithScan rewrites every quoted attribute value of the
// golden pages with bytes that include quotes, '<', '>' and '&', and
// checks that whenever the reference gives its plan, the plan is the
// rewritten page's own.
func TestReferenceAgreesWithScan(t *testing.T) {
	files, _ := filepath.Glob("testdata/cases/*.html")
	real, _ := filepath.Glob("testdata/corpus/real-pages/*.html")
	files = append(files, real...)
	pages := [][]byte{[]byte(referencePage)}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, b)
	}
	const alphabet = `aZ09-_ "'<>&=/!?` + "\t\n\x00"
	rng := rand.New(rand.NewPCG(1, 2))
	reused, refused := 0, 0
	for _, page := range pages {
		ref := ScanReference(page)
		if ref.PlanFor(page) != ref.Plan() {
			t.Fatalf("a page does not reuse its own reference:\n%s", page)
		}
		v := ref.values
		step := max(2, len(v)/2/30*2) // some 30 values of each page
		for k := rng.IntN(step/2) * 2; k+1 < len(v); k += step {
			for try := 0; try < 8; try++ {
				b := bytes.Clone(page)
				for i := int(v[k]); i < int(v[k+1]); i++ {
					if rng.IntN(3) == 0 {
						b[i] = alphabet[rng.IntN(len(alphabet))]
					}
				}
				if try == 7 && v[k] > 0 { // the quote before it too
					b[v[k]-1] = alphabet[rng.IntN(len(alphabet))]
				}
				if try >= 4 { // another length: the tags after it move
					val := make([]byte, rng.IntN(2*int(v[k+1]-v[k])+4))
					for i := range val {
						val[i] = alphabet[rng.IntN(len(alphabet))]
					}
					b = append(append(append([]byte(nil), b[:v[k]]...), val...), b[v[k+1]:]...)
				}
				plan := ref.PlanFor(b)
				if plan == nil {
					refused++
					continue
				}
				reused++
				checkSamePlan(t, plan, b)
			}
		}
	}
	t.Logf("reused %d, refused %d", reused, refused)
	if reused == 0 || refused == 0 {
		t.Fatalf("reused %d, refused %d: the test does not exercise both", reused, refused)
	}
}

// FuzzReference: a page overwritten anywhere, with anything, is either
// refused the reference's plan or filled by it exactly as by its own.
func FuzzReference(f *testing.F) {
	f.Add([]byte(referencePage), uint16(80), []byte("fedcba"))
	f.Add([]byte(referencePage), uint16(230), []byte("BBBB"))
	f.Add([]byte(referencePage), uint16(228), []byte("'"))
	files, _ := filepath.Glob("testdata/cases/*.html")
	for _, file := range files {
		b, _ := os.ReadFile(file)
		f.Add(b, uint16(len(b)/2), []byte(`x"`))
	}
	f.Fuzz(func(t *testing.T, page []byte, at uint16, repl []byte) {
		if len(page) == 0 {
			return
		}
		ref := ScanReference(page)
		if ref.PlanFor(page) != ref.Plan() {
			t.Fatalf("a page does not reuse its own reference")
		}
		b := bytes.Clone(page)
		copy(b[int(at)%len(b):], repl)
		if plan := ref.PlanFor(b); plan != nil {
			checkSamePlan(t, plan, b)
		}
		// inserted rather than written over
		i := int(at) % len(page)
		b = append(append(append([]byte(nil), page[:i]...), repl...), page[i:]...)
		if plan := ref.PlanFor(b); plan != nil {
			checkSamePlan(t, plan, b)
		}
	})
}

func BenchmarkReferencePlanFor60k(b *testing.B) {
	page, err := os.ReadFile("../../bench/testdata/page-60k.html")
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct{ name, head, other string }{
		{"attribute", `<meta name="csrf-token" content="0123456789abcdef0123456789abcdef">`, "fedcba9876543210fedcba9876543210"},
		{"script", `<script>window.__STATE__={"csrf":"0123456789abcdef0123456789abcdef","cart":[]}</script>`, `fedcba98","cart":[{"id":"p1"}`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			page := bytes.Replace(page, []byte("<head>"), []byte("<head>"+tc.head), 1)
			ref := ScanReference(page)
			other := bytes.Replace(page, []byte("0123456789abcdef0123456789abcdef"), []byte(tc.other), 1)
			b.SetBytes(int64(len(page)))
			b.ReportAllocs()
			for b.Loop() {
				if ref.PlanFor(other) == nil {
					b.Fatal("not reused")
				}
			}
		})
	}
}

// TestScriptTextsMayDiffer rewrites the text of the scripts and styles of
// the golden and real pages with what is hardest to tell from their end:
// end tags of every case and near miss, comments, other raw text's end
// tags. Whenever the Reference gives its plan, or a Rewriter follows it
// to the end, the page is filled as when read afresh; and a page whose
// texts changed only within what keeps them texts is given the plan.
func TestScriptTextsMayDiffer(t *testing.T) {
	pieces := []string{"</script>", "</SCRIPT >", "</scripts>", "</scrip", "</style>", "</Style/", "<!--", "-->",
		"<script>", "</", "<", `"`, "'", "{\"cart\":3}", "x", "\n", "</script\x00", "</script\t"}
	rng := rand.New(rand.NewPCG(5, 6))
	given, refused := 0, 0
	for _, page := range followPages(t) {
		ref := ScanReference(page)
		v := ref.values
		var texts []int
		for k := 0; k+1 < len(v); k += 2 {
			if v[k] > 0 && page[v[k]-1] == '>' { // not a quoted attribute value
				texts = append(texts, k)
			}
		}
		rng.Shuffle(len(texts), func(i, j int) { texts[i], texts[j] = texts[j], texts[i] })
		for _, k := range texts[:min(len(texts), 8)] {
			name := rawTextName(page, int(v[k+1]))
			for try := 0; try < 4; try++ {
				var text []byte
				for n := rng.IntN(6); n > 0; n-- {
					text = append(text, pieces[rng.IntN(len(pieces))]...)
				}
				b := append(append(append([]byte(nil), page[:v[k]]...), text...), page[v[k+1]:]...)
				plan := ref.PlanFor(b)
				// A script's "<!--" may move its end (scriptEndAt): refused.
				escapes := string(name) == "script" && bytes.Contains(text, []byte("<!--"))
				if at, _ := endTagAt(text, 0, name); at < 0 && !escapes && plan == nil {
					t.Fatalf("a page whose <%s> text at %d (was %q) is %q is refused the plan", name, v[k], clip(page[v[k]:v[k+1]], 0), text)
				}
				if plan == nil {
					refused++
					continue
				}
				given++
				checkSamePlan(t, plan, b)
				if try == 0 { // as it streams too: the costly part, once a text
					followOnce(t, ref, b, testLookup, nil, rng)
				}
			}
		}
	}
	t.Logf("given %d, refused %d", given, refused)
	if given < 50 || refused < 50 {
		t.Fatalf("given %d, refused %d: the test does not exercise both", given, refused)
	}
}
