package proxy

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// subFilterPairs are the three replacements bench/run.sh and bench/anchor.sh
// configure nginx's sub_filter with (sub_filter_once: the first of each),
// and the slot each is the default content of.
var subFilterPairs = [][3]string{
	{"hero", "<h1>Welcome to our shop</h1><p>Great prices every day.</p>", "<h1>Deals picked for you</h1><p>Extra 20% off sale items today.</p>"},
	{"sidebar", "<p>Sign up for our newsletter</p>", "<p>Your sale alerts are on</p>"},
	{"footer-offer", "<p>Free shipping over $50</p>", "<p>Free shipping on all sale orders</p>"},
}

// TestBenchPagesMatchSubFilter: the benches compare edgeseg with nginx's
// sub_filter doing the same work. For every bench page, sent with a length
// and chunked, edgeseg personalizing with the bench config answers a
// deal seeker with exactly the bytes sub_filter makes of it, but for the
// segment each filled slot names (data-edgeseg-segment).
func TestBenchPagesMatchSubFilter(t *testing.T) {
	pages, err := filepath.Glob("../bench/testdata/page-*.html")
	if err != nil || len(pages) < 4 {
		t.Fatalf("bench pages: %v %v", pages, err)
	}
	for _, path := range pages {
		page, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		want := string(page)
		for _, p := range subFilterPairs {
			slot, from, to := p[0], p[1], p[2]
			old := `data-edgeseg-slot="` + slot + `">` + from
			if strings.Index(want, from) != strings.Index(want, old)+len(old)-len(from) {
				t.Fatalf("%s: the first %q is not slot %s's content", path, from, slot)
			}
			want = strings.Replace(want, old, `data-edgeseg-slot="`+slot+`" data-edgeseg-segment="deal-seekers">`+to, 1)
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
