package main

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// TestRealBrowserGetsPagesCompressedHere: with rewrite.ask_uncompressed,
// Chromium's page navigation reaches the demo shop asking for no
// compression, and Chromium gets the page filled and compressed by
// edgeseg in a coding it asked for, and shows it; its stylesheet, not a
// page to fill, is asked for as Chromium asked.
func TestRealBrowserGetsPagesCompressedHere(t *testing.T) {
	exe := findChromium(t)
	demo, err := NewDemoOrigin("../../examples/site")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	asked := map[string]string{} // path: the Accept-Encoding the origin got
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked[r.URL.Path] = r.Header.Get("Accept-Encoding")
		mu.Unlock()
		demo.ServeHTTP(w, r)
	})
	s := startStack(t, origin, func(y string) string {
		return noHoldouts(strings.Replace(y, "ask_uncompressed: false", "ask_uncompressed: true", 1))
	})
	ctx := newBrowser(t, exe)
	var got sync.Map // URL: the Content-Encoding Chromium was sent
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventResponseReceived); ok {
			for k, v := range e.Response.Headers {
				if strings.EqualFold(k, "Content-Encoding") {
					got.Store(e.Response.URL, v)
				}
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Emulate(desktop), chromedp.Navigate(s.url+"/?utm_campaign=promo"), chromedp.WaitVisible(`#hero`)); err != nil {
		t.Fatal(err)
	}
	heading, err := chromedp.Run(ctx, chromedp.Text(`#hero h1`))
	if err != nil {
		t.Fatal(err)
	}
	if seg, _ := heroSegment(t, ctx); seg != "deal-seekers" || heading != "Deals picked for you" {
		t.Fatalf("hero: segment %q heading %q\n%s", seg, heading, s.stderr.String())
	}
	mu.Lock()
	page, style := asked["/"], asked["/static/style.css"]
	mu.Unlock()
	if page != "identity" {
		t.Errorf("the page was asked of the origin with Accept-Encoding %q, want identity", page)
	}
	if !strings.Contains(style, "gzip") {
		t.Errorf("the stylesheet was asked of the origin with Accept-Encoding %q, want Chromium's codings", style)
	}
	enc, _ := got.Load(s.url + "/?utm_campaign=promo")
	if enc != "gzip" {
		t.Errorf("Chromium was sent the page with Content-Encoding %v, want gzip", enc)
	}
}
