package main

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/chromedp/chromedp"
)

// streamingOrigin sends a page in two parts, the hero slot split between
// them, and the second only once release is closed: as a server that
// flushes its head before it has rendered the rest.
func streamingOrigin(release <-chan struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		filler := strings.Repeat("<p>filler</p>", 100)
		if r.URL.Path == "/small" {
			filler = "" // a first part shorter than a charset sniff
		}
		first := `<!doctype html><html><head><title>Streamed</title></head><body>` + filler +
			`<section id="hero" data-edgeseg-slot="hero"><h1>Welcome`
		second := `</h1><p>default</p></section><p id="own">the rest of the page</p></body></html>`
		if r.URL.Path == "/early" {
			// The slot is whole in the first part.
			first += `</h1><p>default</p></section>`
			second = `<p id="own">the rest of the page</p></body></html>`
		}
		var out io.Writer = w
		flush := func() { w.(http.Flusher).Flush() }
		switch enc := r.URL.Query().Get("enc"); enc {
		case "gzip":
			zw := gzip.NewWriter(w)
			defer zw.Close()
			out, flush = zw, func() { zw.Flush(); w.(http.Flusher).Flush() }
		case "br":
			bw := brotli.NewWriter(w)
			defer bw.Close()
			out, flush = bw, func() { bw.Flush(); w.(http.Flusher).Flush() }
		}
		if enc := r.URL.Query().Get("enc"); enc != "" {
			w.Header().Set("Content-Encoding", enc)
		}
		io.WriteString(out, first)
		flush()
		if r.URL.Path == "/broken" {
			// The origin dies mid-page.
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
			return
		}
		<-release
		io.WriteString(out, second)
	})
}

// TestStreamedPagesArePersonalizedAsTheyArrive: a page the origin streams
// reaches the visitor part by part, not after the origin has finished,
// and is personalized all the same, the slot split across the parts
// included; its exposures are recorded once, when it is complete, and it
// counts as personalized.
func TestStreamedPagesArePersonalizedAsTheyArrive(t *testing.T) {
	for _, c := range []struct{ path, enc string }{{"/", ""}, {"/small", ""}, {"/early", ""}, {"/", "gzip"}, {"/small", "br"}} {
		t.Run(c.path+" "+c.enc, func(t *testing.T) { testStreamedPage(t, c.path, c.enc) })
	}
}

func testStreamedPage(t *testing.T, path, enc string) {
	release := make(chan struct{})
	sink, edit := withSink(t, noHoldouts)
	s := startStack(t, streamingOrigin(release), edit)
	// Released at the latest when the test ends, so a failing test does not
	// leave the origin's handler waiting and the server unable to close.
	releaseOnce := sync.OnceFunc(func() { close(release) })
	t.Cleanup(releaseOnce)
	c, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET %s?utm_campaign=promo&enc=%s HTTP/1.1\r\nHost: shop\r\nAccept: text/html\r\nAccept-Encoding: gzip, br\r\nUser-Agent: %s\r\n\r\n", path, enc, uaDesktop)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Header.Get("Content-Encoding"); got != enc {
		t.Fatalf("Content-Encoding %q, want %q", got, enc)
	}
	body := resp.Body
	switch enc {
	case "gzip":
		if body, err = gzip.NewReader(resp.Body); err != nil {
			t.Fatal(err)
		}
	case "br":
		body = io.NopCloser(brotli.NewReader(resp.Body))
	}
	// The first part arrives while the origin is still holding the rest.
	got := make([]byte, 0, 4096)
	buf := make([]byte, 4096)
	for !strings.Contains(string(got), "<title>Streamed</title>") {
		n, err := body.Read(buf)
		if err != nil {
			t.Fatalf("reading the first part: %v (got %q)", err, got)
		}
		got = append(got, buf[:n]...)
	}
	releaseOnce()
	rest, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	page := string(got) + string(rest)
	for _, want := range []string{`data-edgeseg-segment="deal-seekers"`, "Deals picked for you", `<p id="own">the rest of the page</p>`} {
		if !strings.Contains(page, want) {
			t.Fatalf("streamed page lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, "<p>default</p>") || resp.Header.Get("Cache-Control") != "private, no-cache" || resp.Header.Get("Set-Cookie") == "" {
		t.Fatalf("slot default kept or headers wrong: %v\n%s", resp.Header, page)
	}
	metrics := s.get("/_edgeseg/metrics")
	if !strings.Contains(metrics, `edgeseg_rewrite_streamed_total{filled="true"} 1`) {
		t.Error("streamed rewrite not counted")
	}
	if !strings.Contains(metrics, `edgeseg_requests_total{status="200",personalized="true"} 1`) {
		t.Errorf("the streamed page not counted as personalized:\n%s", grepLines(metrics, "edgeseg_requests_total"))
	}
	s.m.Close() // drains the event queue
	raw, _ := os.ReadFile(sink)
	if n := strings.Count(string(raw), `"type":"exposure"`); n != 1 || !strings.Contains(string(raw), `"slot":"hero"`) {
		t.Fatalf("%d exposures recorded for the streamed page, want 1:\n%s", n, raw)
	}
}

// TestStreamedPageOriginFailure: an origin that dies mid-page leaves the
// visitor a page cut short (the response is not completed), and edgeseg
// serving on.
func TestStreamedPageOriginFailure(t *testing.T) {
	s := startStack(t, streamingOrigin(nil), nil)
	b := s.browser(uaDesktop)
	req, _ := http.NewRequest(http.MethodGet, s.url+"/broken?utm_campaign=promo", nil)
	req.Header.Set("Accept", "text/html")
	resp, err := b.c.Do(req)
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Fatal("a page the origin cut short reached the visitor as complete")
	}
	if r, err := http.Get(s.url + "/_edgeseg/health"); err != nil {
		t.Fatalf("edgeseg stopped serving: %v", err)
	} else {
		r.Body.Close()
	}
}

// TestStreamedPageOriginFailsBeforeItsBody: a page the origin announces
// (chunked, to be personalized as it streams) and then breaks before its
// first byte, by closing or by framing that does not parse, gets the
// visitor a clean 502 rather than a connection closed with no answer; the
// visit it held is released, and edgeseg serves on.
func TestStreamedPageOriginFailsBeforeItsBody(t *testing.T) {
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n")
		if r.URL.Path == "/garbled" {
			buf.WriteString("zz\r\n<html>\r\n")
		}
		buf.Flush()
	})
	s := startStack(t, origin, noHoldouts)
	for _, path := range []string{"/closed", "/garbled"} {
		t.Run(path, func(t *testing.T) {
			b := s.browser(uaDesktop)
			req, _ := http.NewRequest(http.MethodGet, s.url+path+"?utm_campaign=promo", nil)
			req.Header.Set("Accept", "text/html")
			req.Header.Set("User-Agent", uaDesktop)
			resp, err := b.c.Do(req)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadGateway || err != nil || !strings.HasPrefix(string(body), "502 Bad Gateway") {
				t.Fatalf("%d %q (%v), want a clean 502", resp.StatusCode, body, err)
			}
		})
	}
	m := s.get("/_edgeseg/metrics")
	if !strings.Contains(m, `edgeseg_origin_errors_total{cause="connection reset"} 1`) || !strings.Contains(m, `edgeseg_origin_errors_total{cause="origin error"} 1`) {
		t.Errorf("origin errors not counted:\n%s", m)
	}
	if r, err := http.Get(s.url + "/_edgeseg/health"); err != nil {
		t.Fatalf("edgeseg stopped serving: %v", err)
	} else {
		r.Body.Close()
	}
}

// TestStreamedPageThatDoesNotDecode: a streamed page labelled gzip or br
// whose bytes are not (a misconfigured origin) reaches the visitor as the
// origin sent it, whole, in several chunks, as the same page with a
// length would; before, the visitor got no answer at all.
func TestStreamedPageThatDoesNotDecode(t *testing.T) {
	page := `<!doctype html><html><head><title>Mislabelled</title></head><body>` + strings.Repeat("<p>filler</p>", 5000) +
		`<section id="hero" data-edgeseg-slot="hero"><h1>Welcome</h1></section></body></html>`
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Encoding", r.URL.Query().Get("enc"))
		for i := 0; i < len(page); i += 8 << 10 {
			io.WriteString(w, page[i:min(i+8<<10, len(page))])
			w.(http.Flusher).Flush()
		}
	})
	s := startStack(t, origin, noHoldouts)
	for _, enc := range []string{"gzip", "br"} {
		t.Run(enc, func(t *testing.T) {
			b := s.browser(uaDesktop)
			req, _ := http.NewRequest(http.MethodGet, s.url+"/?utm_campaign=promo&enc="+enc, nil)
			req.Header.Set("Accept", "text/html")
			req.Header.Set("Accept-Encoding", "gzip, br")
			req.Header.Set("User-Agent", uaDesktop)
			resp, err := b.c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("reading the page: %v", err)
			}
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Encoding") != enc || string(got) != page {
				t.Fatalf("%d, Content-Encoding %q, %d bytes of %d, same: %v", resp.StatusCode, resp.Header.Get("Content-Encoding"), len(got), len(page), string(got) == page)
			}
		})
	}
	// Both went the streamed way, and were counted as not rewritable.
	if m := s.get("/_edgeseg/metrics"); !strings.Contains(m, "edgeseg_rewrite_errors_total 2") {
		t.Errorf("rewrite errors not counted:\n%s", m)
	}
}

// TestRealBrowserStreamedPage: Chromium renders a page the origin streams
// gzip-compressed in two parts, the hero slot split between them, with the
// deal seeker's block in it: tokenized the first times, then filled by the
// plan of the page kept for the path. With templates.data_layer on too:
// the page's scripts then see the segments in window.edgeseg.
func TestRealBrowserStreamedPage(t *testing.T) {
	for _, dataLayer := range []bool{false, true} {
		t.Run(fmt.Sprintf("data_layer=%v", dataLayer), func(t *testing.T) { browseStreamedPage(t, dataLayer) })
	}
}

func browseStreamedPage(t *testing.T, dataLayer bool) {
	exe := findChromium(t)
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		time.Sleep(50 * time.Millisecond)
		// The second part follows the first shortly: not at once, or the
		// page would have arrived whole, and be rewritten whole. (100 ms
		// was once too short for a CI host running the race detector on
		// two cores: a page had arrived whole by the time its head was
		// read.)
		release := make(chan struct{})
		time.AfterFunc(300*time.Millisecond, func() { close(release) })
		streamingOrigin(release).ServeHTTP(w, r)
	})
	s := startStack(t, origin, func(y string) string {
		return strings.Replace(noHoldouts(y), "data_layer: false", fmt.Sprintf("data_layer: %v", dataLayer), 1)
	})
	ctx := newBrowser(t, exe)
	// The second visit's page is kept for the path; the later ones are
	// filled by its plan as they arrive instead of being tokenized.
	const visits = 4
	for range visits {
		if err := chromedp.Do(ctx, chromedp.Emulate(desktop), chromedp.Navigate(s.url+"/?utm_campaign=promo&enc=gzip"), chromedp.WaitVisible(`#own`)); err != nil {
			t.Fatal(err)
		}
		hero, err := chromedp.Run(ctx, chromedp.Text(`#hero h1`))
		if err != nil {
			t.Fatal(err)
		}
		own, err := chromedp.Run(ctx, chromedp.Text(`#own`))
		if err != nil {
			t.Fatal(err)
		}
		if hero != "Deals picked for you" || own != "the rest of the page" {
			t.Fatalf("hero %q, own %q\n%s", hero, own, s.stderr.String())
		}
		layer, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.edgeseg ? window.edgeseg.segments.join(",") + "|" + window.edgeseg.holdouts.length : "none"`))
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]string{false: "none", true: "deal-seekers|0"}[dataLayer]; layer != want {
			t.Fatalf("window.edgeseg: %q, want %q", layer, want)
		}
	}
	m := s.get("/_edgeseg/metrics")
	if !strings.Contains(m, fmt.Sprintf(`edgeseg_rewrite_streamed_total{filled="true"} %d`, visits)) {
		t.Error("the pages were not rewritten as streams")
	}
	if strings.Contains(m, "edgeseg_plans_reused_total 0") || !strings.Contains(m, "edgeseg_plans_reused_total") {
		t.Error("no streamed page was filled by the kept page's plan")
	}
}

// TestStreamedPageForHTTP10: an HTTP/1.0 client, which cannot read chunked
// framing, gets a page the origin streams buffered and personalized, with
// its length.
func TestStreamedPageForHTTP10(t *testing.T) {
	release := make(chan struct{})
	close(release)
	s := startStack(t, streamingOrigin(release), noHoldouts)
	head, body := s.http10Navigation(t, "/?utm_campaign=promo")
	if strings.Contains(strings.ToLower(head), "transfer-encoding") || !strings.Contains(head, fmt.Sprintf("Content-Length: %d", len(body))) {
		t.Fatalf("framing for HTTP/1.0:\n%s", head)
	}
	if !strings.Contains(body, "Deals picked for you") || !strings.Contains(body, `<p id="own">the rest of the page</p>`) {
		t.Fatalf("page:\n%s", body)
	}
}

// TestLargePageForHTTP10: a page the origin streams that is too large to
// hold (past rewrite.max_body_bytes) reaches an HTTP/1.0 client whole and
// unfilled, without a length and ended by closing, as HTTP/1.0 frames it;
// the visit still counts, its profile cookie in the head.
func TestLargePageForHTTP10(t *testing.T) {
	page := `<!doctype html><html><head><title>Large</title></head><body><section data-edgeseg-slot="hero"><h1>Welcome</h1></section>` +
		strings.Repeat("<p>filler</p>\n", 100_000) + `</body></html>`
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		for i := 0; i < len(page); i += 64 << 10 {
			io.WriteString(w, page[i:min(i+64<<10, len(page))])
			w.(http.Flusher).Flush()
		}
	})
	s := startStack(t, origin, noHoldouts, "EDGESEG_REWRITE_MAX_BODY_BYTES=256KiB")
	head, body := s.http10Navigation(t, "/large?utm_campaign=promo")
	lower := strings.ToLower(head)
	if strings.Contains(lower, "transfer-encoding") || strings.Contains(lower, "content-length") || !strings.Contains(lower, "connection: close") {
		t.Fatalf("framing for HTTP/1.0:\n%s", head)
	}
	if body != page {
		t.Fatalf("page: %d bytes, want the origin's %d", len(body), len(page))
	}
	if !strings.Contains(head, "Set-Cookie: edgeseg=") {
		t.Errorf("no profile cookie:\n%s", head)
	}
}

// http10Navigation navigates to target as an HTTP/1.0 browser would, and
// returns the answer's head and body, read until the connection closes.
func (s *stack) http10Navigation(t *testing.T, target string) (head, body string) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.0\r\nHost: shop\r\nAccept: text/html\r\nUser-Agent: %s\r\n\r\n", target, uaDesktop)
	raw, _ := io.ReadAll(c)
	head, body, _ = strings.Cut(string(raw), "\r\n\r\n")
	return head, body
}

// grepLines returns the lines of text that contain substr.
func grepLines(text, substr string) string {
	var b strings.Builder
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}
