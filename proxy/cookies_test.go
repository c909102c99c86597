package proxy

import (
	"bufio"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// readHeader parses a raw request head as fasthttp's server would.
func readHeader(tb testing.TB, lines ...string) *fasthttp.RequestHeader {
	tb.Helper()
	var h fasthttp.RequestHeader
	raw := "GET / HTTP/1.1\r\nHost: shop.test\r\n" + strings.Join(lines, "\r\n") + "\r\n\r\n"
	if len(lines) == 0 {
		raw = "GET / HTTP/1.1\r\nHost: shop.test\r\n\r\n"
	}
	if err := h.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		tb.Skipf("not a request fasthttp reads: %v", err)
	}
	return &h
}

// cookieLines is what the origin gets: the Cookie lines of h as written.
func cookieLines(h *fasthttp.RequestHeader) []string {
	var out []string
	for _, l := range strings.Split(string(h.Header()), "\r\n") {
		if v, ok := strings.CutPrefix(l, "Cookie: "); ok {
			out = append(out, v)
		}
	}
	return out
}

var own = []string{"edgeseg", "edgeseg_preview"}

func TestDropCookies(t *testing.T) {
	for _, tc := range []struct {
		in, want []string
	}{
		{nil, nil},
		{[]string{"Cookie: edgeseg=x"}, nil},
		{[]string{"Cookie: a=1; edgeseg=x; b=2"}, []string{"a=1; b=2"}},
		{[]string{"Cookie: a=1;edgeseg=x;b=\"q r\""}, []string{`a=1; b="q r"`}},
		{[]string{"Cookie: a=1", "Cookie: edgeseg=x", "Cookie: b=2; edgeseg_preview=y"}, []string{"a=1", "b=2"}},
		{[]string{"Cookie: edgeseg =x; edgeseg; Edgeseg=1; xedgeseg=2"}, []string{"edgeseg; Edgeseg=1; xedgeseg=2"}},
		{[]string{"Cookie: a=\\\"; ;; edgeseg=x ; b"}, []string{`a=\"; b`}},
		{[]string{"Cookie:    a=1;   b=2  "}, []string{"a=1;   b=2"}}, // untouched (fasthttp trims the line)
		{[]string{"X-Other: edgeseg=x", "Cookie: a=1"}, []string{"a=1"}},
	} {
		h := readHeader(t, tc.in...)
		scratch := dropCookies(h, own, nil)
		if got := cookieLines(h); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%q: origin gets %q, want %q", tc.in, got, tc.want)
		}
		if len(scratch) != 0 {
			t.Errorf("%q: scratch returned with %d bytes in it", tc.in, len(scratch))
		}
	}
}

// FuzzDropCookies: whatever Cookie lines a visitor sends, the origin gets
// none of edgeseg's cookies and every other pair, in order, as sent.
func FuzzDropCookies(f *testing.F) {
	f.Add("a=1; edgeseg=x; b=2", "edgeseg_preview=1;c")
	f.Add(`q="a b"; j={"k":"v\"w"}; flag; x=1,2`, "")
	f.Add(";;edgeseg=;=edgeseg; edgeseg", " edgeseg\t=1")
	f.Fuzz(func(t *testing.T, l1, l2 string) {
		var lines []string
		for _, l := range []string{l1, l2} {
			if strings.ContainsAny(l, "\r\n\x00") {
				return
			}
			lines = append(lines, "Cookie: "+l)
		}
		h := readHeader(t, lines...)
		before := cookieLines(h)
		dropCookies(h, own, nil)
		after := cookieLines(h)
		var want []string
		hadOwn := false
		for _, l := range before {
			for _, pair := range strings.Split(l, ";") {
				pair = strings.Trim(pair, " \t")
				name, _, ok := strings.Cut(pair, "=")
				name = strings.TrimRight(name, " \t")
				switch {
				case ok && (name == own[0] || name == own[1]):
					hadOwn = true
				case pair != "":
					want = append(want, pair)
				}
			}
		}
		var got []string
		for _, l := range after {
			for _, pair := range strings.Split(l, ";") {
				if pair = strings.Trim(pair, " \t"); pair != "" {
					got = append(got, pair)
				}
			}
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("Cookie %q: origin gets %q, want pairs %q", before, after, want)
		}
		if !hadOwn && strings.Join(before, "\n") != strings.Join(after, "\n") {
			t.Fatalf("Cookie %q without edgeseg's was changed to %q", before, after)
		}
	})
}

// BenchmarkDropCookies is what each request to the origin pays: a visitor
// with edgeseg's cookie among the site's, and one without it.
func BenchmarkDropCookies(b *testing.B) {
	for _, bc := range []struct{ name, cookie string }{
		{"with", "Cookie: _ga=GA1.2.3.4; sid=abcdef0123456789; edgeseg=" + strings.Repeat("x", 600) + "; theme=dark"},
		{"without", "Cookie: _ga=GA1.2.3.4; sid=abcdef0123456789; theme=dark"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			src := readHeader(b, bc.cookie)
			var h fasthttp.RequestHeader
			var scratch []byte
			b.ReportAllocs()
			for b.Loop() {
				src.CopyTo(&h)
				scratch = dropCookies(&h, own, scratch)
			}
		})
	}
}
