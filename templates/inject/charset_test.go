package inject

import (
	"bytes"
	"html"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/net/html/charset"
)

func TestPageCharset(t *testing.T) {
	pad := strings.Repeat(" ", prescanLimit)
	cases := []struct {
		name, contentType, page string
		want                    string // Name(); "" undeclared
		supported               bool
	}{
		{"header utf-8", "text/html; charset=UTF-8", `<meta charset="shift_jis">`, "utf-8", true},
		{"header quoted", `text/html;charset="Shift_JIS"`, "", "shift_jis", true},
		{"header later param", "text/html; q=1; Charset = euc-kr ", "", "euc-kr", true},
		{"header alias", "text/html; charset=latin1", "", "windows-1252", true},
		{"meta charset", "text/html", `<html><head><meta charset="windows-1252">`, "windows-1252", true},
		{"meta unquoted upper", "text/html", `<HEAD><META CHARSET=GBK>`, "gbk", true},
		{"meta pragma", "text/html", `<meta http-equiv="Content-Type" content="text/html; charset=EUC-JP">`, "euc-jp", true},
		{"meta pragma quoted", "text/html", `<meta content='text/html;charset="koi8-r"' http-equiv=content-type>`, "koi8-r", true},
		{"content without pragma", "text/html", `<meta content="text/html; charset=koi8-r">`, "", true},
		{"pragma without charset", "text/html", `<meta http-equiv="content-type" content="text/html">`, "", true},
		{"unknown label then known", "text/html", `<meta charset="bogus"><meta charset="iso-8859-2">`, "iso-8859-2", true},
		{"meta in comment", "text/html", `<!-- <meta charset="shift_jis"> -->`, "", true},
		{"meta in script", "text/html", `<script>"<meta charset=shift_jis>"</script>`, "", true},
		{"meta past 1024 bytes", "text/html", pad + `<meta charset="shift_jis">`, "", true},
		{"meta utf-16 means utf-8", "text/html", `<meta charset="utf-16le">`, "utf-8", true},
		{"undeclared", "text/html", `<p>plain</p>`, "", true},
		{"no content type", "", `<meta charset=windows-1251>`, "windows-1251", true},
		{"unknown header label falls to meta", "text/html; charset=nonsense", `<meta charset=big5>`, "big5", true},
		{"empty header label", "text/html; charset=", `<meta charset=big5>`, "big5", true},
		{"header utf-16", "text/html; charset=UTF-16LE", "", "utf-16le", false},
		{"replacement encoding", "text/html; charset=iso-2022-kr", "", "replacement", false},
		{"utf-8 BOM beats header", "text/html; charset=windows-1252", "\xEF\xBB\xBF<p>x</p>", "utf-8", true},
		{"utf-16 BOM", "text/html", "\xFF\xFE<\x00p\x00>\x00", "utf-16le", false},
		{"utf-16be BOM", "text/html; charset=utf-8", "\xFE\xFF\x00<\x00p\x00>", "utf-16be", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cs := PageCharset([]byte(c.contentType), Scan([]byte(c.page)))
			if cs.Name() != c.want || cs.Supported() != c.supported {
				t.Fatalf("got %q supported=%v, want %q supported=%v", cs.Name(), cs.Supported(), c.want, c.supported)
			}
		})
	}
	if cs := PageCharset([]byte("text/html; charset=shift_jis"), nil); cs.Name() != "shift_jis" {
		t.Fatalf("without a plan: %q", cs.Name())
	}
}

// TestReferenceSniffCharset: a streamed page whose first 1024 bytes are
// its path's Reference's gets the encoding found in them when the
// Reference was scanned, without reading them again; any other page is
// read as SniffCharset reads it.
func TestReferenceSniffCharset(t *testing.T) {
	pad := strings.Repeat("<p>filler</p>", 100)
	ref := ScanReference([]byte(`<html><head><meta charset="windows-1252"><title>x</title></head><body>` + pad))
	short := ScanReference([]byte(`<meta charset="windows-1252"><p>short</p>`))
	same := []byte(`<html><head><meta charset="windows-1252"><title>x</title></head><body>` + pad + "<p>more</p>")
	for _, c := range []struct {
		name        string
		ref         *Reference
		contentType string
		head        []byte
		want        string
		read        bool // the head is read: no shortcut
	}{
		{"same head", ref, "text/html", same, "windows-1252", false},
		{"same head, header charset", ref, "text/html; charset=koi8-r", same, "koi8-r", false},
		{"another meta", ref, "text/html", []byte(`<html><head><meta charset="shift_jis"><title>x</title></head><body>` + pad), "shift_jis", true},
		{"same start, shorter than 1024", ref, "text/html", same[:500], "windows-1252", true},
		{"a Reference shorter than 1024", short, "text/html", []byte(`<meta charset="windows-1252"><p>short</p>`), "windows-1252", true},
		{"no Reference", nil, "text/html", same, "windows-1252", true},
		{"a BOM", ref, "text/html", append([]byte("\xEF\xBB\xBF"), same...), "utf-8", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := c.ref.SniffCharset([]byte(c.contentType), c.head)
			if got.Name() != c.want {
				t.Fatalf("got %q, want %q", got.Name(), c.want)
			}
			if want := SniffCharset([]byte(c.contentType), c.head); got.Name() != want.Name() || got.kind != want.kind {
				t.Fatalf("got %q (%d), SniffCharset %q (%d)", got.Name(), got.kind, want.Name(), want.kind)
			}
			allocs := testing.AllocsPerRun(10, func() { c.ref.SniffCharset([]byte(c.contentType), c.head) })
			if read := allocs > 0; read != c.read && c.contentType == "text/html" {
				t.Fatalf("%.0f allocations: read=%v, want %v", allocs, read, c.read)
			}
		})
	}
}

func TestAppendHTML(t *testing.T) {
	page := func(label string) Charset { return PageCharset([]byte("text/html; charset="+label), nil) }
	cases := []struct {
		name  string
		cs    Charset
		block string
		want  string
	}{
		{"utf-8 as is", UTF8, "Café — ✓", "Café — ✓"},
		{"ascii as is", page("shift_jis"), `<a href="/x?a=1&amp;b">go</a>`, `<a href="/x?a=1&amp;b">go</a>`},
		{"windows-1252", page("windows-1252"), "Café — 20% off ✓", "Caf\xe9 \x97 20% off &#10003;"},
		{"iso-8859-1 is windows-1252", page("iso-8859-1"), "“quoted”", "\x93quoted\x94"},
		{"shift_jis", page("shift_jis"), "こんにちは", "\x82\xb1\x82\xf1\x82\xc9\x82\xbf\x82\xcd"},
		{"shift_jis lacks the em dash", page("shift_jis"), "a—b", "a&#8212;b"},
		{"euc-kr", page("euc-kr"), "한", "\xc7\xd1"},
		{"undeclared", Charset{}, "Café ✓ 😀", "Caf&#233; &#10003; &#128512;"},
		{"invalid utf-8, legacy", page("windows-1252"), "a\xffé", "a&#65533;\xe9"},
		{"invalid utf-8, undeclared", Charset{}, "a\xff", "a&#65533;"},
		{"attribute values too", page("windows-1252"), `<img alt="Café">`, "<img alt=\"Caf\xe9\">"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := c.cs.AppendHTML([]byte("<<"), []byte(c.block))
			if string(got) != "<<"+c.want {
				t.Fatalf("got %q, want %q", got, "<<"+c.want)
			}
		})
	}
}

// TestApplyWritesThePageEncoding fills a windows-1252 page through a Plan:
// the block arrives in the page's encoding, the page's own bytes are kept.
func TestApplyWritesThePageEncoding(t *testing.T) {
	page := []byte("<html><head><meta charset=\"windows-1252\"><title>Caf\xe9</title></head><body><div data-edgeseg-slot=\"hero\">d\xe9faut</div></body></html>")
	plan := Scan(page)
	opts := &Options{Charset: PageCharset([]byte("text/html"), plan)}
	lookup := func(_ []byte, _ Place) (Block, bool) { return Block{HTML: []byte("Déjà vu ✓")}, true }
	got, n := plan.Apply(nil, page, lookup, opts)
	want := "<html><head><meta charset=\"windows-1252\"><title>Caf\xe9</title></head><body><div data-edgeseg-slot=\"hero\">D\xe9j\xe0 vu &#10003;</div></body></html>"
	if n != 1 || string(got) != want {
		t.Fatalf("filled %d:\n got %q\nwant %q", n, got, want)
	}
	streamed, _ := Slots(nil, page, lookup, opts)
	if !bytes.Equal(streamed, got) {
		t.Fatalf("Slots and Apply differ:\n%q\n%q", streamed, got)
	}
}

// FuzzCharset checks that no page or Content-Type makes the charset
// decision fail, and that a block written for a page reads back, in the
// page's encoding, as the same text.
func FuzzCharset(f *testing.F) {
	f.Add([]byte(`<meta charset="windows-1252">`), "text/html", "Café — ✓")
	f.Add([]byte(`<meta http-equiv=content-type content="text/html; charset=iso-8859-2">`), "", "Žluťoučký kůň")
	f.Add([]byte("\xEF\xBB\xBF<p>"), "text/html; charset=koi8-r", "Привет")
	f.Add([]byte(`<p>`), "text/html; charset=\"windows-1251\"", "Привет &amp; a\xff")
	f.Add([]byte(`<p>`), "text/html", "😀 &#12")
	f.Fuzz(func(t *testing.T, page []byte, contentType, block string) {
		cs := PageCharset([]byte(contentType), Scan(page))
		// The next page at a path, as a page streams: decided by its
		// head as a whole page is by its plan, its Reference's or not.
		sniffed := SniffCharset([]byte(contentType), page)
		if sniffed.kind != cs.kind || sniffed.name != cs.name {
			t.Fatalf("sniffed %q (%d), planned %q (%d)", sniffed.name, sniffed.kind, cs.name, cs.kind)
		}
		if ref := ScanReference(page).SniffCharset([]byte(contentType), page); ref.kind != cs.kind || ref.name != cs.name {
			t.Fatalf("by the Reference %q (%d), planned %q (%d)", ref.name, ref.kind, cs.name, cs.kind)
		}
		if !cs.Supported() || !utf8.ValidString(block) {
			return
		}
		// C1 controls have no character reference: HTML reads &#128;
		// to &#159; as windows-1252's characters. Templates have no use
		// for them.
		c1 := strings.ContainsFunc(block, func(r rune) bool { return r >= 0x80 && r <= 0x9f })
		out := cs.AppendHTML(nil, []byte(block))
		if cs.kind == undeclared {
			if !isASCII(out) {
				t.Fatalf("undeclared page got non-ASCII %q", out)
			}
		}
		// Only single-byte encodings are bijective on what they can
		// encode (Shift_JIS writes ¥ as 0x5C, read back as '\').
		if c1 {
			return
		}
		switch cs.Name() {
		case "utf-8", "", "windows-1252", "windows-1251", "iso-8859-2", "koi8-r":
		default:
			return
		}
		dec := string(out)
		if cs.enc != nil {
			e, _ := charset.Lookup(cs.Name())
			d, err := e.NewDecoder().Bytes(out)
			if err != nil {
				t.Fatal(err)
			}
			dec = string(d)
		}
		if html.UnescapeString(dec) != html.UnescapeString(block) {
			t.Fatalf("%s: %q written as %q reads back as %q", cs.Name(), block, out, dec)
		}
	})
}

func TestSniffBytes(t *testing.T) {
	for ct, want := range map[string]int{
		"text/html; charset=utf-8":     3,
		"text/html; charset=Shift_JIS": 3,
		"text/html":                    1024,
		"text/html; charset=bogus":     1024,
	} {
		if got := SniffBytes([]byte(ct)); got != want {
			t.Errorf("SniffBytes(%q) = %d, want %d", ct, got, want)
		}
	}
	// A streamed page's head decides as the whole page would.
	page := []byte(`<meta charset="windows-1252"><p>` + strings.Repeat("x", 2000))
	if got := SniffCharset([]byte("text/html"), page[:SniffBytes([]byte("text/html"))]); got.Name() != "windows-1252" {
		t.Errorf("sniffed %q", got.Name())
	}
}
