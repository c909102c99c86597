package main

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// TestRealBrowserGetsPagesCompressedHere: with rewrite.ask_uncompressed,
// Chromium's page navigation reaches the demo shop asking for no
// compression, and Chromium gets the page filled and compressed by
// edgeseg in a coding it asked for, and shows it; its stylesheet, not a
// page to fill, is asked for as Chromium asked. What comes back unfilled
// is compressed here too and shown whole: a 404 page, and a JSON document
// the origin sends in two parts.
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
		switch r.URL.Path {
		case "/gone":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte("<!doctype html><title>Not found</title><h1>This page is gone</h1>" + strings.Repeat("<p>Try the catalog instead.</p>", 20)))
			return
		case "/feed.json":
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"first":[` + strings.Repeat(`"item",`, 100) + `"end"],`))
			w.(http.Flusher).Flush()
			time.Sleep(300 * time.Millisecond)
			w.Write([]byte(`"second":[` + strings.Repeat(`"item",`, 100) + `"end"]}`))
			return
		}
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

	for _, c := range []struct{ path, text string }{
		{"/gone?utm_campaign=promo", "This page is gone"},
		{"/feed.json?utm_campaign=promo", `"second"`},
	} {
		if err := chromedp.Do(ctx, chromedp.Navigate(s.url+c.path)); err != nil {
			t.Fatal(err)
		}
		text, err := chromedp.Run(ctx, chromedp.Text(`body`))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(text, c.text) {
			t.Errorf("%s: Chromium shows %.200q, want %q in it", c.path, text, c.text)
		}
		path, _, _ := strings.Cut(c.path, "?")
		mu.Lock()
		a := asked[path]
		mu.Unlock()
		if enc, _ := got.Load(s.url + c.path); enc != "gzip" || a != "identity" {
			t.Errorf("%s: asked of the origin with %q, sent to Chromium with Content-Encoding %v; want identity and gzip", c.path, a, enc)
		}
	}
}
