package proxy

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/edgeseg/edgeseg/config"
)

// TestStreamedPagesWatchForMarkers: a streamed page passes through
// untokenized until a slot marker shows up; then the tokenizer catches up
// on what was sent, so a marker inside a script that began in an earlier
// chunk is not taken for a slot, a marker split between chunks is found,
// and the page reads as if it had been rewritten whole. Chunks are sent
// with pauses so that edgeseg reads them apart; the result must not
// depend on how they arrive.
func TestStreamedPagesWatchForMarkers(t *testing.T) {
	pages := map[string][]string{
		"/none": {`<!doctype html><html><head><title>t</title></head><body>`, strings.Repeat(`<p class="a-b">no slots</p>`, 50), `</body></html>`},
		"/script": {`<html><body><script>var s = '`, `<div data-edgeseg-slot="hero">fake</div>';</script>`,
			`<section data-edgeseg-slot="hero"><p>default</p></section></body></html>`},
		"/split":   {`<html><body>` + strings.Repeat(`<p>x-y</p>`, 20) + `<section data-edge`, `seg-slot="hero"><p>default</p></section></body></html>`},
		"/comment": {`<html><body><!-- `, `<section data-edgeseg-slot="hero">c</section> -->`, `<section data-edgeseg-slot="hero"><p>default</p></section></body></html>`},
	}
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		for _, c := range pages[r.URL.Path] {
			io.WriteString(w, c)
			w.(http.Flusher).Flush()
			time.Sleep(10 * time.Millisecond)
		}
	}))
	defer origin.Close()
	h, get := personalizingStack(t, origin.URL, nil)

	ok, body := get("/none")
	if ok || string(body) != strings.Join(pages["/none"], "") {
		t.Fatalf("/none changed:\n%s", body)
	}
	for _, path := range []string{"/script", "/split", "/comment"} {
		ok, body := get(path)
		page := strings.Join(pages[path], "")
		if !ok || bytes.Contains(body, []byte("<p>default</p>")) {
			t.Fatalf("%s: the real slot not filled:\n%s", path, body)
		}
		// Everything before the real slot is as the origin sent it.
		before := page[:strings.LastIndex(page, "<section")]
		if !bytes.HasPrefix(body, []byte(before)) {
			t.Fatalf("%s: the page before the slot changed:\n%s", path, body)
		}
	}
	// A stream is closed once its page is written, just after the client
	// has it all.
	deadline := time.Now().Add(2 * time.Second)
	for h.buffered.used.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	var m strings.Builder
	h.metrics.set.WritePrometheus(&m)
	for _, want := range []string{`edgeseg_rewrite_streamed_total{filled="false"} 1`, `edgeseg_rewrite_streamed_total{filled="true"} 3`, `edgeseg_rewrite_buffered_bytes 0`} {
		if !strings.Contains(m.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// Past the rewrite limit while watching, the page passes through.
	_, get2 := personalizingStack(t, origin.URL, func(c *config.Config) { c.Rewrite.MaxBodyBytes = 256 })
	if ok, body := get2("/split"); ok || string(body) != strings.Join(pages["/split"], "") {
		t.Fatalf("/split past the limit: personalized %v\n%s", ok, body)
	}
}
