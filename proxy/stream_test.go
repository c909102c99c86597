package proxy

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

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

// TestChunkedPagesGoOutInFewChunks: a page without a length goes to the
// visitor in chunks as large as what each read from the origin gives, not
// in the 4 KB pieces fasthttp reads a body stream in, each flushed in a
// write of its own: fifteen writes for a 60 KB page made a chunked page
// cost three times the CPU of one with a length. Passed through and
// personalized as it streams.
func TestChunkedPagesGoOutInFewChunks(t *testing.T) {
	page, err := os.ReadFile("../bench/testdata/page-60k.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, personalize := range []bool{false, true} {
		s := newBenchStackFor(t, page, personalize, true, "", nil)
		defer s.close()
		c := sendNav(t, s.dial, "/?utm_campaign=promo", nil)
		raw, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		head, chunked, ok := bytes.Cut(raw, []byte("\r\n\r\n"))
		if !ok || !bytes.Contains(head, []byte("Transfer-Encoding: chunked")) {
			t.Fatalf("personalize %v: not chunked:\n%s", personalize, head)
		}
		body, chunks := dechunk(t, chunked)
		if got := bytes.Contains(body, []byte("Deals picked for you")); got != personalize || !personalize && !bytes.Equal(body, page) {
			t.Fatalf("personalize %v: wrong body (personalized %v, %d bytes)", personalize, got, len(body))
		}
		// Reads from the origin are of 16 KB when rewriting, of up to the
		// write buffer (64 KB) when passing through, after a first one of
		// what it has sent so far.
		max := len(page)/(16<<10) + 3
		if !personalize {
			max = 2
		}
		if chunks > max {
			t.Errorf("personalize %v: %d chunks for a %d-byte page, want at most %d", personalize, chunks, len(page), max)
		}
	}
}

func trunc(b []byte) []byte { return b[:min(len(b), 40)] }

// sendNav opens a connection with dial and sends on it a page navigation
// for uri (adjusted by set, if not nil) that asks for the connection to be
// closed after: the answer is read to the end from the connection returned,
// within 5 seconds.
func sendNav(t *testing.T, dial func() (net.Conn, error), uri string, set func(*fasthttp.Request)) net.Conn {
	t.Helper()
	c, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	navRequest(req, uri, "")
	if set != nil {
		set(req)
	}
	req.SetConnectionClose()
	bw := bufio.NewWriter(c)
	if err := req.Write(bw); err != nil || bw.Flush() != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	return c
}

// dechunk returns the body a chunked one frames, and in how many chunks.
func dechunk(t *testing.T, chunked []byte) (body []byte, chunks int) {
	t.Helper()
	body, sizes := dechunkSizes(t, chunked)
	return body, len(sizes)
}

// chunkedNav sends a page navigation for uri (sendNav) and returns the
// chunked body of the answer, decoded, and the size of each chunk.
func chunkedNav(t *testing.T, dial func() (net.Conn, error), uri string) (body []byte, sizes []int) {
	t.Helper()
	raw, err := io.ReadAll(sendNav(t, dial, uri, nil))
	if err != nil {
		t.Fatal(err)
	}
	_, chunked, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	return dechunkSizes(t, chunked)
}

// dechunkSizes is dechunk, with the size of each chunk.
func dechunkSizes(t *testing.T, chunked []byte) (body []byte, sizes []int) {
	t.Helper()
	for {
		line, rest, ok := bytes.Cut(chunked, []byte("\r\n"))
		n, err := strconv.ParseInt(string(line), 16, 32)
		if !ok || err != nil || int(n)+2 > len(rest) {
			t.Fatalf("bad chunk framing at %q", trunc(chunked))
		}
		if n == 0 {
			return body, sizes
		}
		sizes = append(sizes, int(n))
		body = append(body, rest[:n]...)
		chunked = rest[n+2:]
	}
}

// TestChunksFitTheWriteBuffer: a large page sent chunked leaves in chunks
// that each fit, framing included, in the write buffer, passed through and
// personalized as it streams: one as large as the buffer went out in two
// writes, the second of a few bytes and a packet of its own.
func TestChunksFitTheWriteBuffer(t *testing.T) {
	page, err := os.ReadFile("../bench/testdata/page-500k.html")
	if err != nil {
		t.Fatal(err)
	}
	// As nginx sends a page through SSI: 32 KB chunks, all at once but for
	// the end, which comes after a pause (a page that has arrived whole is
	// sent with a length).
	var chunked bytes.Buffer
	for rest := page; len(rest) > 0; {
		n := min(len(rest), 32<<10)
		fmt.Fprintf(&chunked, "%x\r\n%s\r\n", n, rest[:n])
		rest = rest[n:]
	}
	origin := rawServer(t, eachRequest(func(c net.Conn, req *http.Request) {
		ctype := "text/html; charset=utf-8"
		if req.URL.Path == "/file" {
			ctype = "application/octet-stream"
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n\r\n%s", ctype, chunked.Bytes())
		time.Sleep(50 * time.Millisecond)
		io.WriteString(c, "0\r\n\r\n")
	}))
	h, ln := personalizingServer(t, origin, nil)
	most := h.chunkData
	for _, path := range []string{"/file", "/page"} {
		body, sizes := chunkedNav(t, ln.Dial, path+"?utm_campaign=promo")
		if personalized := bytes.Contains(body, []byte("Deals picked for you")); personalized != (path == "/page") || path == "/file" && !bytes.Equal(body, page) {
			t.Fatalf("%s: wrong body (personalized %v, %d bytes)", path, personalized, len(body))
		}
		for i, n := range sizes {
			if n > most {
				t.Errorf("%s: chunk %d of %d carries %d bytes; %d fill a %d-byte write buffer", path, i+1, len(sizes), n, most, h.writeBuffer)
			}
		}
	}
}

// TestPassedThroughChunksGoOutAsTheyArrive: a chunked body passed through
// goes to the visitor a write (one chunk) for each time the origin pauses,
// not one per chunk the origin framed: whole, it leaves in one; what came
// before a pause leaves before it.
func TestPassedThroughChunksGoOutAsTheyArrive(t *testing.T) {
	head := "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
	origin := rawServer(t, func(c net.Conn) {
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		switch req.URL.Path {
		case "/whole":
			io.WriteString(c, head+"2\r\n[1\r\n2\r\n,2\r\n2\r\n,3\r\n1\r\n]\r\n0\r\n\r\n")
		case "/paused":
			io.WriteString(c, head+"2\r\n[1\r\n2\r\n,2\r\n")
			time.Sleep(100 * time.Millisecond)
			io.WriteString(c, "2\r\n,3\r\n1\r\n]\r\n0\r\n\r\n")
		}
	})
	p := startProxyURL(t, origin, nil, nil)
	for path, want := range map[string]int{"/whole": 1, "/paused": 2} {
		status, rest := p.raw("GET " + path + " HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		head, chunked, _ := strings.Cut(rest, "\r\n\r\n")
		if !strings.Contains(status, " 200 ") || !strings.Contains(head, "Transfer-Encoding: chunked") {
			t.Fatalf("%s: %s\n%s", path, status, head)
		}
		body, chunks := dechunk(t, []byte(chunked))
		if string(body) != "[1,2,3]" || chunks != want {
			t.Errorf("%s: %q in %d chunks, want %d", path, body, chunks, want)
		}
	}
}

// TestStreamsGoOnAsTheyArrive: what the origin has sent of a body without a
// length reaches the visitor before the origin sends the rest, passed
// through (a file, an event stream) and personalized as it streams. The
// origin sends its second part only once the visitor has the first.
func TestStreamsGoOnAsTheyArrive(t *testing.T) {
	// A script (or comment) that is still arriving after a slot goes on
	// as it comes, too, not held until its end tag.
	script := "<script>" + strings.Repeat("var x = a < b ? '</div>' : 1;\n", 4000)
	// A slot of <div>s, every part of which may end it, is read again as
	// it grows (not for every part): its end, come before a pause, goes out
	// before the pause too.
	grid := `<!doctype html><html><head><title>t</title></head><body><div id="hero" data-edgeseg-slot="hero">` +
		strings.Repeat(`<div class="card"><p>a product</p></div>`, 6000) + `</div><p>after the grid</p>`
	cases := map[string]struct{ ctype, first, second string }{
		"/grid":   {"text/html; charset=utf-8", grid, "</body></html>"},
		"/file":   {"application/octet-stream", "part-one\n", "part-two\n"},
		"/events": {"text/event-stream", "data: one\n\n", "data: two\n\n"},
		"/page": {"text/html; charset=utf-8", "<!doctype html><html><head><title>t</title></head><body><p>first</p>",
			`<section data-edgeseg-slot="hero"><p>default</p></section></body></html>`},
		"/script": {"text/html; charset=utf-8", `<!doctype html><html><head><title>t</title></head><body><section data-edgeseg-slot="hero"><p>default</p></section>` + script,
			"</script></body></html>"},
	}
	release := make(chan struct{})
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := cases[r.URL.Path]
		w.Header().Set("Content-Type", c.ctype)
		io.WriteString(w, c.first)
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
		io.WriteString(w, c.second)
	}))
	defer origin.Close()
	_, ln := personalizingServer(t, origin.URL, nil)
	for path, c := range cases {
		conn := sendNav(t, ln.Dial, path+"?utm_campaign=promo", nil)
		conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		resp := fasthttp.AcquireResponse()
		resp.StreamBody = true
		if err := resp.Read(bufio.NewReader(conn)); err != nil {
			t.Fatalf("%s: no answer while the origin waits, its first part held back (%v)", path, err)
		}
		body := resp.BodyStream()
		var got []byte
		buf := make([]byte, 1024)
		seen := c.first
		switch path {
		case "/script":
			seen = script[:len(script)*9/10] // the tail may wait for what follows
		case "/grid":
			seen = "</div><p>after the grid</p>"
		}
		for !bytes.Contains(got, []byte(seen)) {
			n, err := body.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				t.Fatalf("%s: the first part was held back until the rest came (%v); have %d bytes, ending %q", path, err, len(got), got[max(0, len(got)-80):])
			}
		}
		release <- struct{}{}
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		rest, err := io.ReadAll(body)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		got = append(got, rest...)
		if path == "/script" {
			if !bytes.Contains(got, []byte("Deals picked for you")) || !bytes.HasSuffix(got, []byte(script+c.second)) {
				t.Errorf("%s: not personalized as it streamed:\n%.300s", path, got)
			}
		} else if path == "/grid" {
			if !bytes.Contains(got, []byte("Deals picked for you")) || !bytes.HasSuffix(got, []byte("<p>after the grid</p></body></html>")) {
				t.Errorf("%s: %.300s", path, got[max(0, len(got)-300):])
			}
		} else if path == "/page" {
			if !bytes.Contains(got, []byte("Deals picked for you")) || !bytes.HasPrefix(got, []byte(c.first)) {
				t.Errorf("%s: not personalized as it streamed:\n%s", path, got)
			}
		} else if string(got) != c.first+c.second {
			t.Errorf("%s: body %q", path, got)
		}
		conn.Close()
	}
}

// TestChunkedPagesThatArrivedWholeAreRewrittenWhole: a chunked page the
// origin has sent whole by the time its head is read (as an application
// server that renders a page, then sends it, does) is personalized whole
// and answered with a Content-Length, like a page that came with one. A
// page the origin is still sending streams as before, also right after
// one that arrived whole on the same origin connection; a page with
// trailers streams; one whose first part only looks like the end is read
// to its real end. Bodies passed through, pages included, stream as they
// come, whole or not: sending them whole saves nothing.
func TestChunkedPagesThatArrivedWholeAreRewrittenWhole(t *testing.T) {
	top := "<!doctype html><html><head><title>t</title></head><body><p>first</p>"
	slot := `<section data-edgeseg-slot="hero"><p>default</p></section>`
	page := top + slot + strings.Repeat("<p>filler</p>\n", 2000) + "</body></html>"
	big := top + slot + strings.Repeat("<p>filler</p>\n", 7000) + "</body></html>" // ~100 KB
	chunks := func(parts ...string) string {
		var b strings.Builder
		for _, p := range parts {
			fmt.Fprintf(&b, "%x\r\n%s\r\n", len(p), p)
		}
		return b.String()
	}
	head := func(ctype string) string {
		return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: " + ctype + "\r\n\r\n"
	}
	const html = "text/html; charset=utf-8"
	release := make(chan struct{})
	var conns atomic.Int32
	origin := rawServer(t, func(c net.Conn) {
		conns.Add(1)
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			switch req.URL.Path {
			case "/data.json":
				io.WriteString(c, head("application/json")+chunks(`{"a":`, `1}`)+"0\r\n\r\n")
			case "/page":
				io.WriteString(c, head(html)+chunks(page[:3000], page[3000:])+"0\r\n\r\n")
			case "/big": // past the origin read buffer, all there
				io.WriteString(c, head(html)+chunks(big[:32<<10], big[32<<10:64<<10], big[64<<10:])+"0\r\n\r\n")
			case "/big-paused": // past it, the end still to come
				io.WriteString(c, head(html)+chunks(big[:32<<10], big[32<<10:64<<10], big[64<<10:]))
				time.Sleep(50 * time.Millisecond)
				io.WriteString(c, "0\r\n\r\n")
			case "/trailers":
				io.WriteString(c, strings.Replace(head(html), "\r\n\r\n", "\r\nTrailer: X-Sum\r\n\r\n", 1)+
					chunks(top, slot)+"0\r\nX-Sum: 1\r\n\r\n")
			case "/looks-ended":
				io.WriteString(c, head(html)+chunks(top+"\r\n0\r\n"))
				time.Sleep(50 * time.Millisecond)
				io.WriteString(c, chunks(slot)+"0\r\n\r\n")
			case "/slow":
				io.WriteString(c, head(html)+chunks(top))
				select {
				case <-release:
				case <-time.After(5 * time.Second):
				}
				io.WriteString(c, chunks(slot)+"0\r\n\r\n")
			}
		}
	})
	// One origin connection, so each response follows another on it.
	_, ln := personalizingServer(t, origin, func(cfg *config.Config) { cfg.Origin.MaxConns = 1 })
	for _, tc := range []struct {
		path  string
		whole bool
		query string // ?utm_campaign=promo: a deal seeker, whose pages are personalized
	}{
		{"/data.json", false, ""},
		{"/page", true, "?utm_campaign=promo"},
		{"/slow", false, "?utm_campaign=promo"},
		{"/page", true, "?utm_campaign=promo"},
		{"/big", true, "?utm_campaign=promo"},
		{"/big-paused", false, "?utm_campaign=promo"},
		{"/big", true, "?utm_campaign=promo"},
		{"/trailers", false, "?utm_campaign=promo"},
		// Taken for whole: read on to its real end, waiting for the origin.
		{"/looks-ended", true, "?utm_campaign=promo"},
		{"/page", false, ""}, // passed through
		{"/slow", false, ""},
	} {
		// Whether /big has all arrived when its head is read is up to the
		// host's scheduler (the origin's write of it may be cut in pieces
		// and resumed later): it is asked for again, a few times, until it
		// has.
		for try := 1; ; try++ {
			resp, got := fetchWhole(t, ln, tc.path+tc.query, tc.path == "/slow", release)
			chunked := len(resp.TransferEncoding) > 0
			if tc.path == "/big" && chunked && try < 5 {
				continue
			}
			checkWhole(t, tc.path, tc.query, tc.whole, resp, got, page, top, slot)
			break
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d origin connections; the responses were to follow each other on one", n)
	}
}

// fetchWhole asks ln for path as a page navigation and reads the answer;
// for slow, the first part (up to "first") is read before the origin is
// released: it must come while the origin holds the rest.
func fetchWhole(t *testing.T, ln *fasthttputil.InmemoryListener, path string, slow bool, release chan struct{}) (*http.Response, []byte) {
	t.Helper()
	conn := sendNav(t, ln.Dial, path, nil)
	defer conn.Close()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var got []byte
	if slow {
		// The first part comes while the origin holds the rest.
		buf := make([]byte, 64)
		for !bytes.Contains(got, []byte("first")) {
			n, err := resp.Body.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				t.Fatalf("%s: the first part was held back (%v)", path, err)
			}
		}
		release <- struct{}{}
	}
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return resp, append(got, rest...)
}

// checkWhole checks the answer to path (query: its query string): sent
// whole, with a Content-Length, or not, as whole says; personalized, or
// passed through as page, or top+slot, when query is "".
func checkWhole(t *testing.T, path, query string, whole bool, resp *http.Response, got []byte, page, top, slot string) {
	t.Helper()
	chunked := len(resp.TransferEncoding) > 0
	if chunked == whole || !chunked && resp.ContentLength != int64(len(got)) {
		t.Errorf("%s: chunked %v, Content-Length %d for %d bytes; want whole %v", path, chunked, resp.ContentLength, len(got), whole)
	}
	switch {
	case path == "/data.json":
		if string(got) != `{"a":1}` {
			t.Errorf("%s: body %q", path, got)
		}
	case query == "":
		if want := map[string]string{"/page": page, "/slow": top + slot}[path]; string(got) != want {
			t.Errorf("%s, passed through: %q", path, trunc(got))
		}
	case !bytes.Contains(got, []byte("Deals picked for you")) || !bytes.HasPrefix(got, []byte(top)) || !bytes.HasSuffix(got, []byte("</section>")) && !bytes.HasSuffix(got, []byte("</html>")):
		t.Errorf("%s: not personalized, or not all there: %q", path, trunc(got))
	}
}

// TestStreamedPagesGoOutAPartPerPause: a page the origin streams in two
// bursts of many small chunks, with a pause between, is personalized as it
// streams and reaches the visitor in two chunks, one per burst, plain and
// gzip: not a chunk (a write, a wakeup) per chunk the origin framed.
func TestStreamedPagesGoOutAPartPerPause(t *testing.T) {
	first := "<!doctype html><html><head><title>t</title></head><body>" + strings.Repeat("<p>first part</p>\n", 40)
	second := `<section data-edgeseg-slot="hero"><p>default</p></section>` + strings.Repeat("<p>second part</p>\n", 40) + "</body></html>"
	framed := func(b []byte) string { // in chunks of 64 bytes
		var s strings.Builder
		for len(b) > 0 {
			n := min(len(b), 64)
			fmt.Fprintf(&s, "%x\r\n%s\r\n", n, b[:n])
			b = b[n:]
		}
		return s.String()
	}
	origin := rawServer(t, func(c net.Conn) {
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		head := "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nTransfer-Encoding: chunked\r\n"
		parts := [2][]byte{[]byte(first), []byte(second)}
		if req.URL.Path == "/gzip" {
			head += "Content-Encoding: gzip\r\n"
			var z bytes.Buffer
			zw := gzip.NewWriter(&z)
			zw.Write(parts[0])
			zw.Flush()
			parts[0] = bytes.Clone(z.Bytes())
			z.Reset()
			zw.Write(parts[1])
			zw.Close()
			parts[1] = z.Bytes()
		}
		io.WriteString(c, head+"\r\n"+framed(parts[0]))
		time.Sleep(300 * time.Millisecond) // a pause even a machine this busy sees
		io.WriteString(c, framed(parts[1])+"0\r\n\r\n")
	})
	_, ln := personalizingServer(t, origin, nil)
	for _, path := range []string{"/plain", "/gzip"} {
		conn := sendNav(t, ln.Dial, path+"?utm_campaign=promo", func(req *fasthttp.Request) { req.Header.Set("Accept-Encoding", "gzip") })
		raw, err := io.ReadAll(conn)
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		head, chunked, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
		if !bytes.Contains(head, []byte("Transfer-Encoding: chunked")) {
			t.Fatalf("%s: not streamed:\n%s", path, head)
		}
		body, chunks := dechunk(t, chunked)
		if path == "/gzip" {
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			if body, err = io.ReadAll(zr); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.HasPrefix(body, []byte(first)) || !bytes.Contains(body, []byte("Deals picked for you")) || !bytes.HasSuffix(body, []byte("</html>")) {
			t.Errorf("%s: not the page personalized: %q", path, trunc(body))
		}
		if chunks != 2 {
			t.Errorf("%s: %d chunks, want 2 (one per burst)", path, chunks)
		}
	}
}

// TestTLSOrigin: an https origin's pages, sent with a length, chunked all
// at once and streamed in parts, reach the visitor whole and personalized,
// and the streamed one part by part. (Under TLS the bytes edgeseg reads
// are records: it cannot tell from them that a page has arrived whole.)
func TestTLSOrigin(t *testing.T) {
	top := "<!doctype html><html><head><title>t</title></head><body><p>first</p>"
	rest := `<section data-edgeseg-slot="hero"><p>default</p></section></body></html>`
	release := make(chan struct{})
	origin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		switch r.URL.Path {
		case "/length":
			w.Header().Set("Content-Length", strconv.Itoa(len(top+rest)))
			io.WriteString(w, top+rest)
		case "/chunked":
			io.WriteString(w, top)
			w.(http.Flusher).Flush()
			io.WriteString(w, rest)
		case "/streamed":
			io.WriteString(w, top)
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-time.After(5 * time.Second):
			}
			io.WriteString(w, rest)
		}
	}))
	defer origin.Close()
	_, ln := personalizingServer(t, origin.URL, func(cfg *config.Config) { cfg.Origin.InsecureSkipVerify = true })
	for _, path := range []string{"/length", "/chunked", "/streamed"} {
		_, got := fetchWhole(t, ln, path+"?utm_campaign=promo", path == "/streamed", release)
		if !bytes.HasPrefix(got, []byte(top)) || !bytes.Contains(got, []byte("Deals picked for you")) || !bytes.HasSuffix(got, []byte("</html>")) {
			t.Errorf("%s: %q", path, got)
		}
	}
}

// TestLongResponsesOutliveTheWriteTimeout: server.write_timeout bounds how
// long a visitor may take to accept each write, as nginx's send_timeout
// does, not how long a whole response may last: a download the origin
// sends slowly, or an event stream that stays open, is not cut off after
// it; a visitor that stops reading is.
func TestLongResponsesOutliveTheWriteTimeout(t *testing.T) {
	const parts = 8
	bigDone := make(chan struct{})
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/events":
			w.Header().Set("Content-Type", "text/event-stream")
		case "/big":
			defer close(bigDone)
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(bytes.Repeat([]byte("x"), 64<<20))
			return
		default:
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", strconv.Itoa(parts*1000))
		}
		for range parts {
			w.Write(bytes.Repeat([]byte("x"), 1000))
			w.(http.Flusher).Flush()
			time.Sleep(100 * time.Millisecond)
		}
	}))
	defer origin.Close()
	p := startProxyURL(t, origin.URL, func(c *config.Config) {
		c.Server.WriteTimeout = 300 * time.Millisecond
		c.Origin.ReadTimeout = 10 * time.Second // an origin slowed by a busy host is not the point
	}, origin)
	for _, path := range []string{"/events", "/download"} {
		start := time.Now()
		resp, body := p.get(path)
		if resp.StatusCode != 200 || len(body) != parts*1000 {
			t.Errorf("%s: %d, %d bytes of %d after %v", path, resp.StatusCode, len(body), parts*1000, time.Since(start).Round(time.Millisecond))
		}
	}

	// A visitor that stops reading is let go: what the socket buffers held
	// (a few MB), then the end of the connection. The origin's write ends
	// when edgeseg gives up on the visitor and drops the origin's stream;
	// were the visitor waited for, it would not end before it reads.
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET /big HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	select {
	case <-bigDone:
	case <-time.After(10 * time.Second):
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := io.Copy(io.Discard, c)
	if err != nil || n >= 64<<20 {
		t.Errorf("a visitor that stopped reading, with write_timeout 300ms: %d bytes of %d, then %v; want the connection closed", n, 64<<20, err)
	}
}

// TestChunkedBodiesEndInTheirLastWrite: the last chunk of a chunked body
// and the empty chunk that ends it, which fasthttp writes and flushes
// apart, leave in one write, so the visitor is woken once for the end of
// the body, not twice: a body sent in two parts leaves in two writes
// (three before), passed through and personalized as it streams.
func TestChunkedBodiesEndInTheirLastWrite(t *testing.T) {
	head := "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n\r\n"
	first := `<!doctype html><html><head><title>t</title></head><body><p>first</p>`
	second := `<section data-edgeseg-slot="hero"><p>default</p></section></body></html>`
	origin := rawServer(t, func(c net.Conn) {
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		ctype := "text/html; charset=utf-8"
		if req.URL.Path == "/file" {
			ctype = "application/octet-stream"
		}
		fmt.Fprintf(c, head+"%x\r\n%s\r\n", ctype, len(first), first)
		time.Sleep(100 * time.Millisecond)
		fmt.Fprintf(c, "%x\r\n%s\r\n0\r\n\r\n", len(second), second)
	})
	inner := fasthttputil.NewInmemoryListener()
	ln := &countingListener{Listener: inner}
	personalizingServerOn(t, ln, origin, nil)
	for _, path := range []string{"/file", "/page"} {
		before := ln.writes.Load()
		body, _ := chunkedNav(t, inner.Dial, path+"?utm_campaign=promo")
		if path == "/page" && !bytes.Contains(body, []byte("Deals picked for you")) || path == "/file" && string(body) != first+second {
			t.Fatalf("%s: wrong body\n%s", path, body)
		}
		if n := ln.writes.Load() - before; n != 2 {
			t.Errorf("%s: %d writes, want 2", path, n)
		}
	}
}

// TestPipelinedChunkedResponses: requests pipelined on one connection get
// their chunked answers whole and in order, though each body's last chunk
// is held back for the next write (TestChunkedBodiesEndInTheirLastWrite)
// and fasthttp leaves a body's end in its buffer while another request is
// waiting.
func TestPipelinedChunkedResponses(t *testing.T) {
	origin := rawServer(t, eachRequest(func(c net.Conn, req *http.Request) {
		body := "body of " + req.URL.Path
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n", len(body), body)
		time.Sleep(20 * time.Millisecond)
		io.WriteString(c, "3\r\n!!!\r\n0\r\n\r\n")
	}))
	p := startProxyURL(t, origin, nil, nil)
	c := p.dial(t, 5*time.Second)
	fmt.Fprint(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	br := bufio.NewReader(c)
	for _, path := range []string{"/a", "/b", "/c"} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 || string(b) != "body of "+path+"!!!" {
			t.Fatalf("%s: %d %q %v", path, resp.StatusCode, b, err)
		}
	}
	if rest, _ := io.ReadAll(br); len(rest) > 0 {
		t.Errorf("bytes after the last answer: %q", rest)
	}
}

// TestStreamedPagesFollowTheirPathsLastPage: once a path's page is kept
// as a Reference, a streamed page there that differs from it only in an
// attribute value (a CSRF token) is filled by the Reference's Plan as it
// arrives, gzipped or not, and counted as a plan reused; one that
// differs otherwise, even after a slot was filled, is read from where the
// Plan left off. Either reads as the same bytes rewritten whole do, and
// the memory the page was kept in is given back. With templates.data_layer
// on too, whose script the Reference's Plan places before </head>.
func TestStreamedPagesFollowTheirPathsLastPage(t *testing.T) {
	for _, dataLayer := range []bool{false, true} {
		t.Run(fmt.Sprintf("data_layer=%v", dataLayer), func(t *testing.T) { followLastPage(t, dataLayer) })
	}
}

func followLastPage(t *testing.T, dataLayer bool) {
	page := func(token, text string) []string {
		return []string{
			`<!doctype html><html><head><meta name="csrf-token" content="` + token + `"><title>t</title></head><body>`,
			`<section data-edgeseg-slot="hero"><p>default</p></section>`,
			`<p class="x">` + text + `</p>` + strings.Repeat(`<p class="a-b">filler</p>`, 20),
			strings.Repeat(`<p class="a-b">filler</p>`, 20) + `<p class="sp`,
			// A tag split between parts, then a slot: a page that departed
			// is watched for markers again, and caught up on at this one.
			`lit">x</p><section data-edgeseg-slot="hero"><p>default</p></section>`,
			`<form><input type="hidden" name="csrf" value="` + token + `"></form></body></html>`,
		}
	}
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		q := r.URL.Query()
		chunks := page(q.Get("t"), q.Get("text"))
		if q.Get("mode") == "whole" {
			w.Header().Set("Content-Length", strconv.Itoa(len(strings.Join(chunks, ""))))
		}
		var out io.Writer = w
		if q.Get("mode") == "gzip" { // streamed, compressed
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			defer zw.Close()
			out = zw
		}
		for _, c := range chunks {
			io.WriteString(out, c)
			if q.Get("mode") != "whole" {
				if zw, ok := out.(*gzip.Writer); ok {
					zw.Flush()
				}
				w.(http.Flusher).Flush()
				time.Sleep(5 * time.Millisecond)
			}
		}
	}))
	defer origin.Close()
	h, get := personalizingStack(t, origin.URL, func(c *config.Config) { c.Templates.DataLayer = dataLayer })
	// Two pages at the path, the second kept as its Reference.
	for _, token := range []string{"tok-1", "tok-22"} {
		if ok, _ := get("/p?mode=whole&text=hello&t=" + token); !ok {
			t.Fatalf("whole page %s not personalized", token)
		}
	}
	h.p.refs.Wait()
	if h.p.reference(h.p.pageKey(reqFor("/p"))) == nil {
		t.Fatal("no Reference kept for /p")
	}
	reused := h.p.m.plansReused.Get()
	for _, tc := range []struct {
		query  string
		follow bool
	}{
		{"t=tok-333&text=hello", true},
		{"t=t&text=hello", true},
		{"t=tok-4444&text=hello%20there", false}, // departs after the first slot
		{"t=tok-55555&text=hello", true},
		{"t=tok-6&text=hello&gz=1", true},
		{"t=tok-77777777&text=hello%20again&gz=1", false},
	} {
		mode := "stream"
		if strings.HasSuffix(tc.query, "gz=1") {
			mode = "gzip"
		}
		ok, streamed := get("/p?mode=" + mode + "&" + tc.query)
		_, whole := get("/p?mode=whole&" + tc.query)
		if !ok || !bytes.Equal(streamed, whole) {
			t.Fatalf("%s: streamed (personalized %v) reads otherwise than whole:\n%s\n%s", tc.query, ok, streamed, whole)
		}
		if bytes.Contains(streamed, []byte("<p>default</p>")) {
			t.Fatalf("%s: a slot left unfilled:\n%s", tc.query, streamed)
		}
		if dataLayer && !bytes.Contains(streamed, []byte(";</script></head>")) {
			t.Fatalf("%s: no data layer before </head>:\n%s", tc.query, streamed)
		}
		n := h.p.m.plansReused.Get()
		// The whole page reuses the plan too, when it keeps to the Reference.
		want := reused
		if tc.follow {
			want += 2
		}
		if n != want {
			t.Fatalf("%s: %d plans reused, want %d", tc.query, n-reused, want-reused)
		}
		reused = n
		if !tc.follow {
			// The page that departed is the path's Reference now; the
			// next pages keep to the first one again.
			h.p.refs.Wait()
			get("/p?mode=whole&text=hello&t=tok-9")
			h.p.refs.Wait()
			reused = h.p.m.plansReused.Get()
		}
	}

	// At a path whose pages always stream, the second is kept as the
	// Reference, and the third follows it.
	for i, token := range []string{"s-1", "s-22", "s-333"} {
		reused := h.p.m.plansReused.Get()
		ok, streamed := get("/s?mode=stream&text=hi&t=" + token)
		if !ok || bytes.Contains(streamed, []byte("<p>default</p>")) {
			t.Fatalf("%s: not personalized:\n%s", token, streamed)
		}
		if n := bytes.Count(streamed, []byte("window.edgeseg=")); dataLayer && n != 1 {
			t.Fatalf("%s: the data layer is there %d times:\n%s", token, n, streamed)
		}
		if n := h.p.m.plansReused.Get() - reused; n != uint64(i/2) {
			t.Fatalf("stream %d: %d plans reused", i+1, n)
		}
		// The same page sent whole at the other path: read, caught up on
		// at the split tag, or followed, it reads the same.
		if _, whole := get("/p?mode=whole&text=hi&t=" + token); !bytes.Equal(streamed, whole) {
			t.Fatalf("%s: streamed reads otherwise than whole:\n%s\n%s", token, streamed, whole)
		}
		h.p.refs.Wait()
	}
	deadline := time.Now().Add(2 * time.Second)
	for h.buffered.used.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := h.buffered.used.Load(); n != 0 {
		t.Fatalf("streams still hold %d bytes", n)
	}
}

// reqFor is a request context for path, for the keys a Personalizer
// derives from one.
func reqFor(path string) *fasthttp.RequestCtx {
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI(path)
	ctx.Request.Header.SetHost("shop.test")
	return &ctx
}

// TestStreamedPagesReadAsWholeOnes: the 60 KB bench page with a token that
// changes, and now and then with a text inserted anywhere, streamed in
// parts cut at random (inside tags too), reads as the same bytes sent
// whole do: whether it keeps to its path's kept page to the end, departs
// from it, is watched for markers again and caught up on, or has no kept
// page yet. With templates.data_layer on too: its script before </head>,
// placed by the tokenizer, or by following.
func TestStreamedPagesReadAsWholeOnes(t *testing.T) {
	for _, dataLayer := range []bool{false, true} {
		t.Run(fmt.Sprintf("data_layer=%v", dataLayer), func(t *testing.T) { streamedAsWhole(t, dataLayer) })
	}
}

func streamedAsWhole(t *testing.T, dataLayer bool) {
	base, err := os.ReadFile("../bench/testdata/page-60k.html")
	if err != nil {
		t.Fatal(err)
	}
	base = bytes.Replace(base, []byte("<head>"), []byte(`<head><meta name="csrf-token" content="TOKEN">`), 1)
	var mu sync.Mutex
	pages, cuts := map[string][]byte{}, map[string][]int{}
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("id")
		mu.Lock()
		page, cut := pages[id], cuts[id]
		mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if r.URL.Query().Get("whole") != "" {
			w.Header().Set("Content-Length", strconv.Itoa(len(page)))
			w.Write(page)
			return
		}
		pause := time.Duration(r.URL.Query().Get("try")[0]-'0') * 2 * time.Millisecond
		prev := 0
		for _, k := range append(cut, len(page)) {
			w.Write(page[prev:k])
			w.(http.Flusher).Flush()
			time.Sleep(pause)
			prev = k
		}
	}))
	defer origin.Close()
	h, ln := personalizingServer(t, origin.URL, func(c *config.Config) { c.Templates.DataLayer = dataLayer })
	promo := promoGetter(t, ln)
	// get returns the page at path, and whether it was sent chunked: as
	// it streamed.
	get := func(path string) ([]byte, bool) {
		t.Helper()
		b, chunked := promo(path)
		if !bytes.Contains(b, []byte("Deals picked for you")) {
			t.Fatalf("%s: not personalized", path)
		}
		if n := bytes.Count(b, []byte("window.edgeseg=")); n != map[bool]int{false: 0, true: 1}[dataLayer] {
			t.Fatalf("%s: the data layer is there %d times", path, n)
		}
		return b, chunked
	}
	rng := rand.New(rand.NewPCG(5, 6))
	const n = 40
	for i := range n {
		token := strings.Repeat("t", 1+rng.IntN(40))
		page := bytes.Replace(base, []byte("TOKEN"), []byte(token), 1)
		if rng.IntN(3) == 0 {
			at := rng.IntN(len(page))
			page = append(page[:at:at], append([]byte("Z"), page[at:]...)...)
		}
		var cut []int
		for range 1 + rng.IntN(5) {
			cut = append(cut, 1+rng.IntN(len(page)-1))
		}
		slices.Sort(cut)
		cut = slices.Compact(cut)
		id := strconv.Itoa(i)
		mu.Lock()
		pages[id], cuts[id] = page, cut
		mu.Unlock()
		// A page whose parts all arrive before the proxy reads its head
		// is read whole, as it should be; on a busy machine that can
		// happen, and the page is asked for again with longer pauses.
		var streamed []byte
		for try := 1; ; try++ {
			var chunked bool
			streamed, chunked = get("/r?id=" + id + "&try=" + strconv.Itoa(try))
			if chunked {
				break
			}
			if try == 9 {
				t.Fatalf("page %d was never streamed", i)
			}
		}
		whole, chunked := get("/r?id=" + id + "&whole=1")
		if chunked {
			t.Fatalf("page %d was streamed when sent whole", i)
		}
		if !bytes.Equal(streamed, whole) {
			k := 0
			for k < min(len(streamed), len(whole)) && streamed[k] == whole[k] {
				k++
			}
			t.Fatalf("page %d (cut at %v): streamed reads otherwise than whole at %d:\n%q\n%q", i, cut, k,
				streamed[max(0, k-60):min(len(streamed), k+60)], whole[max(0, k-60):min(len(whole), k+60)])
		}
		h.p.refs.Wait()
	}
	if h.p.m.plansReused.Get() == 0 {
		t.Error("no page was followed")
	}
}
