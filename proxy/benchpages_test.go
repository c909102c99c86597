package proxy

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// subFilterPairs reads the replacements the benches configure nginx's
// sub_filter with (sub_filter_once: the first of each) from
// bench/nginx-subfilter.conf, as nginx reads them.
func subFilterPairs(t *testing.T) [][2]string {
	t.Helper()
	conf, err := os.ReadFile("../bench/nginx-subfilter.conf")
	if err != nil {
		t.Fatal(err)
	}
	var pairs [][2]string
	for _, m := range regexp.MustCompile(`(?m)^sub_filter '([^']*)' '([^']*)';$`).FindAllSubmatch(conf, -1) {
		pairs = append(pairs, [2]string{
			strings.ReplaceAll(string(m[1]), "${dollar}", "$"),
			strings.ReplaceAll(string(m[2]), "${dollar}", "$"),
		})
	}
	if len(pairs) != 3 || !strings.Contains(string(conf), "\nsub_filter_once on;\n") {
		t.Fatalf("bench/nginx-subfilter.conf: %d replacements, want 3, made once", len(pairs))
	}
	return pairs
}

// TestBenchPagesMatchSubFilter: the benches compare edgeseg with nginx's
// sub_filter doing the same work. For every bench page, sent with a length
// and chunked, edgeseg personalizing with the bench config answers a
// deal seeker with exactly the bytes sub_filter makes of it, but for the
// segment each filled slot names (data-edgeseg-segment).
func TestBenchPagesMatchSubFilter(t *testing.T) {
	pairs := subFilterPairs(t)
	slotOpen := regexp.MustCompile(`data-edgeseg-slot="[^"]+">$`)
	pages, err := filepath.Glob("../bench/testdata/page-*.html")
	if err != nil || len(pages) < 4 {
		t.Fatalf("bench pages: %v %v", pages, err)
	}
	for _, path := range pages {
		page, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		// What sub_filter makes of the page, and the segment edgeseg
		// names in each slot it fills: the text replaced is the whole
		// content of a slot.
		want := string(page)
		for _, p := range pairs {
			from, to := p[0], p[1]
			i := strings.Index(want, from)
			if i < 0 || !slotOpen.MatchString(want[:max(i, 0)]) || !strings.HasPrefix(want[i+len(from):], "</") {
				t.Fatalf("%s: %q is not the whole content of a slot", path, from)
			}
			want = want[:i-1] + ` data-edgeseg-segment="deal-seekers">` + to + want[i+len(from):]
		}
		for _, chunked := range []bool{false, true} {
			t.Run(filepath.Base(path)+map[bool]string{false: "/length", true: "/chunked"}[chunked], func(t *testing.T) {
				s := newBenchStackFor(t, page, true, chunked, "", nil)
				defer s.close()
				req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
				defer fasthttp.ReleaseRequest(req)
				defer fasthttp.ReleaseResponse(resp)
				req.SetRequestURI("http://shop.example/?utm_campaign=promo")
				req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36")
				req.Header.Set("Accept", "text/html")
				if err := s.client.Do(req, resp); err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode() != 200 || len(resp.Header.PeekCookie("edgeseg")) == 0 {
					t.Fatalf("status %d, cookie %q", resp.StatusCode(), resp.Header.PeekCookie("edgeseg"))
				}
				if got := resp.Body(); !bytes.Equal(got, []byte(want)) {
					i := 0
					for i < len(got) && i < len(want) && got[i] == want[i] {
						i++
					}
					t.Fatalf("differs from sub_filter's at byte %d of %d: got %q, want %q", i, len(want),
						got[i:min(len(got), i+80)], want[i:min(len(want), i+80)])
				}
			})
		}
	}
}
