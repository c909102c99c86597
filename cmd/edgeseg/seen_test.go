package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/edgeseg/edgeseg/segments/profile"
)

// seenNote finds the note in a prefetched page's beacon.
var seenNote = regexp.MustCompile(`\(function\(\)\{var n="([A-Za-z0-9_.-]+)",d=window.__edgesegSeen=window.__edgesegSeen\|\|\{\},s=function\(\)\{if\(!d\[n\]\)\{d\[n\]=1;navigator\.sendBeacon\("/_edgeseg/seen",n\)\}\}`)

// TestPrefetchedPagesCountOnceShown: a prefetched page carries a beacon
// with a signed note of itself, and counts nothing until the note comes
// back; then it counts as the navigation to it would have: a page view
// of its category for a returning visitor, a visit and a cookie for a new
// one, a conversion for a purchase. A note altered, sent cross-site or
// otherwise than by POST is refused; with behavior.count_prefetched off,
// pages carry no beacon and the endpoint is not there.
func TestPrefetchedPagesCountOnceShown(t *testing.T) {
	sink, edit := withSink(t, noHoldouts)
	s := startStack(t, nil, edit)
	codec := exampleCodec(t)
	prefetch := func(b *browser, path string) string {
		t.Helper()
		b.header = http.Header{"Sec-Purpose": {"prefetch"}}
		defer func() { b.header = http.Header{} }()
		resp, body := b.page(path)
		if profileCookie(resp) != nil {
			t.Fatalf("%s: the prefetch set the cookie", path)
		}
		m := seenNote.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("%s: no beacon in the prefetched page:\n%s", path, body)
		}
		return m[1]
	}
	send := func(b *browser, note, method, site string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, s.url+"/_edgeseg/seen", strings.NewReader(note))
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
		req.Header.Set("User-Agent", b.ua)
		req.Header.Set("Sec-Fetch-Site", site)
		resp, _ := b.do(req)
		return resp
	}
	decode := func(resp *http.Response) *profile.Profile {
		t.Helper()
		ck := profileCookie(resp)
		if ck == nil {
			t.Fatalf("no profile cookie (%s)", resp.Status)
		}
		p, st, _ := codec.Decode([]byte(ck.Value), time.Now())
		if st != profile.OK {
			t.Fatalf("profile cookie: %v", st)
		}
		return p
	}

	// A returning visitor: the prefetch counts once its note comes back.
	b := s.browser(uaDesktop)
	before := decode(func() *http.Response { r, _ := b.page("/"); return r }())
	note := prefetch(b, "/category/sale")
	if resp := send(b, note, "POST", "same-origin"); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("beacon: %s", resp.Status)
	} else if after := decode(resp); after.PageViews != before.PageViews+1 || len(after.Cats) != 1 || after.Cats[0].Name != "sale" {
		t.Errorf("after the beacon: %d page views (before %d), categories %+v", after.PageViews, before.PageViews, after.Cats)
	}

	// A page with a block: its exposures are recorded once it is shown,
	// for the visitor shown it.
	exposed := prefetch(b, "/?utm_campaign=promo")
	if resp := send(b, exposed, "POST", "same-origin"); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("beacon of a page with blocks: %s", resp.Status)
	}
	visitor := before.ID

	// Refused: altered, cross-site, not a POST, not a note.
	altered := []byte(note)
	altered[len(altered)-60] ^= 1
	for _, c := range []struct {
		note, method, site string
		status             int
	}{
		{string(altered), "POST", "same-origin", http.StatusBadRequest},
		{"", "POST", "same-origin", http.StatusBadRequest},
		{strings.Repeat("x", 20000), "POST", "same-origin", http.StatusRequestEntityTooLarge},
		{note, "POST", "cross-site", http.StatusForbidden},
		{note, "GET", "same-origin", http.StatusMethodNotAllowed},
	} {
		if resp := send(b, c.note, c.method, c.site); resp.StatusCode != c.status || profileCookie(resp) != nil {
			t.Errorf("%s %.20q from %s: %s, cookie %v; want %d and none", c.method, c.note, c.site, resp.Status, profileCookie(resp), c.status)
		}
	}

	// A new visitor whose first page shown was prefetched: a visitor, with
	// a cookie, from the beacon.
	nb := s.browser(uaDesktop)
	if resp := send(nb, prefetch(nb, "/"), "POST", "same-origin"); resp.StatusCode != http.StatusNoContent || decode(resp).PageViews != 1 {
		t.Errorf("a new visitor's beacon: %s", resp.Status)
	}
	// A purchase prefetched and shown is a conversion.
	if resp := send(b, prefetch(b, "/checkout/complete"), "POST", "same-origin"); resp.StatusCode != http.StatusNoContent {
		t.Errorf("purchase beacon: %s", resp.Status)
	}
	// The visitor opted out since (GPC): nothing counts, and the cookie
	// goes, as on any page.
	b.header = http.Header{}
	note = prefetch(b, "/category/sale")
	req, _ := http.NewRequest("POST", s.url+"/_edgeseg/seen", strings.NewReader(note))
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Sec-GPC", "1")
	if resp, _ := b.do(req); resp.StatusCode != http.StatusNoContent || profileCookie(resp) == nil || profileCookie(resp).Value != "" {
		t.Errorf("beacon without consent: %s, cookie %v", resp.Status, profileCookie(resp))
	}

	// A note sent again counts nothing more.
	if resp := send(b, note, "POST", "same-origin"); resp.StatusCode != http.StatusNoContent || profileCookie(resp) != nil {
		t.Errorf("a note sent again: %s, cookie %v", resp.Status, profileCookie(resp))
	}
	// One visitor's pages count at most 60 a minute.
	rb := s.browser(uaDesktop)
	rb.page("/")
	sent, counted := 0, 0
	for ; sent < 130; sent++ {
		resp := send(rb, prefetch(rb, "/"), "POST", "same-origin")
		if resp.StatusCode == http.StatusTooManyRequests {
			break
		}
		counted++
	}
	// 60, or up to twice that should the minute turn meanwhile.
	if counted < 60 || sent == 130 {
		t.Errorf("%d beacons counted before a 429 (sent %d), want 60", counted, sent)
	}

	_, metrics := s.browser(uaDesktop).page("/_edgeseg/metrics")
	for _, want := range []string{"edgeseg_prefetches_shown_total " + strconv.Itoa(4+counted), "edgeseg_prefetch_beacons_refused_total 6"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	s.m.Close() // drains the event queue
	raw, _ := os.ReadFile(sink)
	if n := strings.Count(string(raw), `"type":"visit"`); n != 3 {
		t.Errorf("%d visits, want 3 (two returning visitors' first pages, the new visitor's beacon):\n%s", n, raw)
	}
	if !strings.Contains(string(raw), `"type":"conversion"`) {
		t.Errorf("no conversion from the purchase shown:\n%s", raw)
	}
	// The exposures: the home page's, shown once, made by its slots as
	// they were filled for the deal seeker it was served to.
	var exposures []string
	for l := range strings.Lines(string(raw)) {
		var e struct{ Type, Path, Visitor, Slot, Segment, Variant, Version string }
		if json.Unmarshal([]byte(l), &e) == nil && e.Type == "exposure" && e.Path == "/" && e.Visitor == visitor {
			if e.Version == "" {
				t.Errorf("exposure without its block's version: %s", l)
			}
			exposures = append(exposures, e.Slot+":"+e.Segment+":"+e.Variant)
		}
	}
	if !slices.Contains(exposures, "hero:deal-seekers:block") {
		t.Errorf("exposures %q, want the hero's deal-seekers block among them:\n%s", exposures, raw)
	}

	// Off: no beacon, no endpoint.
	off := startStack(t, nil, func(y string) string {
		return strings.Replace(y, "count_prefetched: true", "count_prefetched: false", 1)
	})
	ob := off.browser(uaDesktop)
	ob.header = http.Header{"Sec-Purpose": {"prefetch"}}
	if _, body := ob.page("/"); strings.Contains(body, "sendBeacon") {
		t.Error("a beacon with count_prefetched off")
	}
	req, _ = http.NewRequest("POST", off.url+"/_edgeseg/seen", strings.NewReader(note))
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if resp, _ := ob.do(req); resp.StatusCode != http.StatusNotFound {
		t.Errorf("the endpoint with count_prefetched off: %s", resp.Status)
	}
}

// TestPrefetchedPagesKeepTheirSignals: a prefetched page, once shown, is
// counted with the signals of its own request, not of its beacon's (a
// POST to /_edgeseg/seen from the page itself): its utm_* query and the
// Referer it was reached from decide segments as the navigation's would
// have. A note made before notes carried the Referer uses the beacon's.
func TestPrefetchedPagesKeepTheirSignals(t *testing.T) {
	sink, edit := withSink(t, noHoldouts)
	s := startStack(t, nil, edit)
	codec := exampleCodec(t)
	prefetch := func(b *browser, path, referer string) string {
		t.Helper()
		b.header = http.Header{"Sec-Purpose": {"prefetch"}}
		if referer != "" {
			b.header.Set("Referer", referer)
		}
		defer func() { b.header = http.Header{} }()
		_, body := b.page(path)
		m := seenNote.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("%s: no beacon in the prefetched page", path)
		}
		return m[1]
	}
	// beacon sends a note as the page shown would, and returns the visitor.
	beacon := func(b *browser, note, referer string) string {
		t.Helper()
		req, _ := http.NewRequest("POST", s.url+"/_edgeseg/seen", strings.NewReader(note))
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
		req.Header.Set("User-Agent", b.ua)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		req.Header.Set("Referer", referer)
		resp, _ := b.do(req)
		ck := profileCookie(resp)
		if resp.StatusCode != http.StatusNoContent || ck == nil {
			t.Fatalf("beacon: %s, cookie %v", resp.Status, ck)
		}
		p, st, _ := codec.Decode([]byte(ck.Value), time.Now())
		if st != profile.OK {
			t.Fatalf("beacon's cookie: %v", st)
		}
		return p.ID
	}

	// A new visitor from a search ad whose landing page a search results
	// page had the browser prefetch.
	ad := s.browser(uaDesktop)
	fromAd := beacon(ad, prefetch(ad, "/?utm_campaign=promo", "https://www.google.com/"), s.url+"/?utm_campaign=promo")
	// A new visitor who typed the address: the beacon's Referer (the page
	// itself, here made a search engine's) is not the page's.
	direct := s.browser(uaDesktop)
	typed := beacon(direct, prefetch(direct, "/", ""), "https://www.google.com/")
	// A note from before notes carried the Referer.
	old := codec.AppendNote(nil, "seen", []byte(`{"u":"/?utm_campaign=promo","o":7}`), time.Now())
	ob := s.browser(uaDesktop)
	fromOld := beacon(ob, string(old), "https://www.bing.com/")

	s.m.Close() // drains the event queue
	raw, _ := os.ReadFile(sink)
	visits := map[string][]string{}
	for l := range strings.Lines(string(raw)) {
		var e struct {
			Type, Visitor string
			Segments      []string
		}
		if json.Unmarshal([]byte(l), &e) == nil && e.Type == "visit" {
			visits[e.Visitor] = e.Segments
		}
	}
	for _, c := range []struct {
		name, visitor string
		want          []string
	}{
		{"from a search ad", fromAd, []string{"deal-seekers", "first-time-search"}},
		{"typed", typed, nil},
		{"an older note", fromOld, []string{"deal-seekers", "first-time-search"}},
	} {
		got, ok := visits[c.visitor]
		if !ok {
			t.Errorf("%s: no visit event for %s:\n%s", c.name, c.visitor, raw)
			continue
		}
		slices.Sort(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: the visit's segments %q, want %q", c.name, got, c.want)
		}
	}
}

// TestRealBrowserCountsPrefetchedPages has Chromium follow speculation
// rules, as WordPress sends them: the sale page is prefetched (or
// prerendered), and the click on its link shows it without a request of
// its own. The beacon it carries counts it, a prerendered page's only
// once it is shown: the home page then shown makes a deal seeker of three
// sale pages, as it would had each been a navigation.
func TestRealBrowserCountsPrefetchedPages(t *testing.T) {
	exe := findChromium(t)
	demo, err := NewDemoOrigin("../../examples/site")
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"prefetch", "prerender"} {
		t.Run(kind, func(t *testing.T) {
			var mu sync.Mutex
			var shown, fetched int // requests for /category/sale
			origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/category/sale" {
					mu.Lock()
					if strings.Contains(r.Header.Get("Sec-Purpose"), "prefetch") {
						fetched++
					} else {
						shown++
					}
					mu.Unlock()
				}
				if r.URL.Path != "/" {
					demo.ServeHTTP(w, r)
					return
				}
				rec := httptest.NewRecorder()
				r.Header.Del("Accept-Encoding") // the page is edited here
				demo.ServeHTTP(rec, r)
				page := strings.Replace(rec.Body.String(), "</head>",
					`<script type="speculationrules">{"`+kind+`":[{"source":"list","urls":["/category/sale"]}]}</script></head>`, 1)
				w.Header().Set("Content-Type", rec.Header().Get("Content-Type"))
				w.Write([]byte(page))
			})
			s := startStack(t, origin, noHoldouts)
			counted := func() string {
				_, metrics := s.browser(uaDesktop).page("/_edgeseg/metrics")
				for l := range strings.Lines(metrics) {
					if strings.HasPrefix(l, "edgeseg_prefetches_shown_total ") {
						return strings.TrimSpace(strings.TrimPrefix(l, "edgeseg_prefetches_shown_total "))
					}
				}
				return "?"
			}
			ctx := newBrowser(t, exe)
			if err := chromedp.Do(ctx, chromedp.Emulate(desktop)); err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				// A new page each time, with its own speculation rules.
				if err := chromedp.Do(ctx, chromedp.Navigate(s.url+"/?from="+strconv.Itoa(i)), chromedp.WaitVisible(`#hero`)); err != nil {
					t.Fatal(err)
				}
				// Wait for the prefetch before the click, as a visitor's pause does.
				for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
					mu.Lock()
					n := fetched
					mu.Unlock()
					if n > i {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("Chromium did not %s the sale page (%d requests)", kind, n)
					}
				}
				// A page prerendered runs its scripts before it is shown:
				// its beacon waits for the page to be activated (as this
				// Chromium also holds the page's requests until then, this
				// checks the outcome, not which of the two held it).
				time.Sleep(300 * time.Millisecond)
				if n := counted(); n != strconv.Itoa(i) {
					t.Fatalf("before the click: %s pages counted as shown, want %d", n, i)
				}
				if err := chromedp.Do(ctx, chromedp.Click(`a[href="/category/sale"]`), chromedp.WaitVisible(`#hero`)); err != nil {
					t.Fatal(err)
				}
				// The beacon goes as the page is shown: wait for it to be
				// counted, and its cookie taken, before the next page.
				for deadline := time.Now().Add(10 * time.Second); counted() != strconv.Itoa(i+1); time.Sleep(20 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatalf("the sale page shown %d times, its beacon not counted", i+1)
					}
				}
				time.Sleep(100 * time.Millisecond)
			}
			mu.Lock()
			if shown != 0 {
				t.Fatalf("Chromium requested the sale page %d times besides its %ses: it did not show them", shown, kind)
			}
			mu.Unlock()
			if err := chromedp.Do(ctx, chromedp.Navigate(s.url+"/"), chromedp.WaitVisible(`#hero`)); err != nil {
				t.Fatal(err)
			}
			if seg, _ := heroSegment(t, ctx); seg != "deal-seekers" {
				t.Fatalf("after three sale pages shown from %ses: hero segment %q\n%s", kind, seg, s.stderr.String())
			}
		})
	}
}
