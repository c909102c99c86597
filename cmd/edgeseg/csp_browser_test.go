package main

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestRealBrowserRunsTheDataLayer has Chromium, which enforces a page's
// Content-Security-Policy, load pages with the data layer on: where the
// policies (of the headers and of a <meta http-equiv> in the head) let it
// run, window.edgeseg is set; where they would not, it is left out; and
// no page records a violation. Each page's own inline script, allowed by
// its hash, listens for violations before the data layer comes.
func TestRealBrowserRunsTheDataLayer(t *testing.T) {
	exe := findChromium(t)
	const listen = `window.violations=[];document.addEventListener("securitypolicyviolation",e=>violations.push(e.violatedDirective))`
	sum := sha256.Sum256([]byte(listen))
	hash := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	pages := []struct {
		path, header, meta string
		runs               bool
	}{
		{"/header-nonce", "script-src " + hash + " 'nonce-aGVhZGVy'", "", true},
		{"/meta-nonce", "", "script-src " + hash + " 'nonce-bWV0YQ'", true},
		{"/both-nonce", "script-src " + hash + " 'nonce-Ym90aA'", "script-src " + hash + " 'nonce-Ym90aA'", true},
		{"/meta-unsafe-inline", "", "script-src 'unsafe-inline'", true},
		{"/meta-hashes", "", "script-src " + hash, false},
		{"/nonces-differ", "script-src " + hash + " 'nonce-aGVhZGVy'", "script-src " + hash + " 'nonce-bWV0YQ'", false},
		{"/meta-after-head", "", "", true}, // a <meta> in the body is no policy
	}
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, p := range pages {
			if r.URL.Path != p.path {
				continue
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			if p.header != "" {
				w.Header().Set("Content-Security-Policy", p.header)
			}
			head, body := "", ""
			if p.meta != "" {
				head = `<meta http-equiv="Content-Security-Policy" content="` + p.meta + `">`
			}
			if p.path == "/meta-after-head" {
				body = `<meta http-equiv="Content-Security-Policy" content="script-src 'none'">`
			}
			w.Write([]byte(`<!doctype html><html><head>` + head + `<script>` + listen + `</script><title>t</title></head><body>` +
				body + `<p id="done">page</p></body></html>`))
			return
		}
		http.NotFound(w, r)
	})
	s := startStack(t, origin, func(y string) string { return strings.Replace(y, "data_layer: false", "data_layer: true", 1) })
	ctx := newBrowser(t, exe)
	if err := chromedp.Do(ctx, chromedp.Emulate(desktop)); err != nil {
		t.Fatal(err)
	}
	type state struct {
		Layer      *struct{ Segments, Holdouts []string }
		Violations []string
	}
	for _, p := range pages {
		if err := chromedp.Do(ctx, chromedp.Navigate(s.url+p.path), chromedp.WaitVisible(`#done`)); err != nil {
			t.Fatalf("%s: %v", p.path, err)
		}
		got, err := chromedp.Run(ctx, chromedp.Evaluate[state](`({layer: window.edgeseg || null, violations: window.violations})`))
		if err != nil {
			t.Fatalf("%s: %v", p.path, err)
		}
		if got.Violations == nil {
			t.Fatalf("%s: the page's own script did not run: the test's hash is wrong", p.path)
		}
		if len(got.Violations) > 0 {
			t.Errorf("%s: the page broke its policy: %q", p.path, got.Violations)
		}
		if runs := got.Layer != nil; runs != p.runs {
			t.Errorf("%s: data layer ran: %v, want %v", p.path, runs, p.runs)
		}
		if got.Layer != nil && (got.Layer.Segments == nil || got.Layer.Holdouts == nil) {
			t.Errorf("%s: data layer %+v", p.path, *got.Layer)
		}
	}
}
