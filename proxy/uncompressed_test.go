package proxy

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/edgeseg/edgeseg/config"
)

// TestAskUncompressed: with rewrite.ask_uncompressed, a page to fill is
// asked of the origin uncompressed and compressed here in the coding the
// visitor prefers (gzip, else brotli), filled or not, buffered or
// streamed; a visitor with nothing to fill is asked for as before and
// gets the origin's bytes; what is not a page to fill goes out as sent.
func TestAskUncompressed(t *testing.T) {
	page := []byte("<!doctype html><html><head><title>t</title></head><body>" +
		`<section data-edgeseg-slot="hero"><h1>Welcome to our shop</h1></section>` +
		strings.Repeat("<p>catalog line</p>\n", 200) + "</body></html>")
	plain := []byte("<!doctype html><html><body>" + strings.Repeat("<p>no slot here</p>\n", 200) + "</body></html>")
	var mu sync.Mutex
	asked := map[string]string{} // path: the Accept-Encoding the origin got
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked[r.URL.Path] = r.Header.Get("Accept-Encoding")
		mu.Unlock()
		body, ctype := page, "text/html; charset=utf-8"
		switch r.URL.Path {
		case "/plain":
			body = plain
		case "/data":
			body, ctype = []byte(`{"items":[`+strings.Repeat(`"x",`, 300)+`"y"]}`), "application/json"
		}
		w.Header().Set("Content-Type", ctype)
		w.Header().Set("ETag", `"v1"`)
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			w.Header().Set("Content-Encoding", "gzip")
			w.Header().Set("Vary", "Accept-Encoding")
			body = gzipped(body)
		}
		if r.URL.Path == "/stream" {
			half := len(body) / 2
			w.Write(body[:half])
			w.(http.Flusher).Flush()
			time.Sleep(20 * time.Millisecond) // arrives in two parts: rewritten as it streams
			w.Write(body[half:])
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}))
	defer origin.Close()
	_, ln := personalizingServer(t, origin.URL, func(c *config.Config) { c.Rewrite.AskUncompressed = true })
	client := &fasthttp.HostClient{Addr: "edgeseg", Dial: func(string) (net.Conn, error) { return ln.Dial() }}

	for _, c := range []struct {
		name, path, ae string
		promo, post    bool
		origin         string // the Accept-Encoding the origin gets
		enc            string // the response's Content-Encoding
		filled         bool
	}{
		{"filled, gzip", "/", "gzip, deflate, br, zstd", true, false, "identity", "gzip", true},
		{"streamed", "/stream", "gzip, deflate, br, zstd", true, false, "identity", "gzip", true},
		{"nothing to fill", "/plain", "gzip, deflate, br, zstd", true, false, "identity", "gzip", false},
		{"brotli only", "/", "br", true, false, "identity", "br", true},
		{"gzip refused", "/", "gzip;q=0, br;q=0", true, false, "identity", "", true},
		{"no segment", "/", "gzip, deflate, br, zstd", false, false, "gzip, deflate, br", "gzip", false},
		{"not HTML", "/data", "gzip, br", true, false, "identity", "", false},
		{"a form posted", "/", "gzip, br", true, true, "gzip, br", "gzip", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			uri := c.path
			if c.promo {
				uri += "?utm_campaign=promo"
			}
			navRequest(req, uri, "")
			req.Header.Set("Accept-Encoding", c.ae)
			if c.post {
				req.Header.SetMethod(fasthttp.MethodPost)
				req.SetBodyString("a=1")
			}
			if err := client.Do(req, resp); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			got := asked[c.path]
			mu.Unlock()
			if got != c.origin {
				t.Errorf("the origin was asked with Accept-Encoding %q, want %q", got, c.origin)
			}
			if streamed := resp.Header.ContentLength() < 0; streamed != (c.path == "/stream") {
				t.Errorf("sent chunked %v, want %v", streamed, c.path == "/stream")
			}
			if enc := string(resp.Header.ContentEncoding()); enc != c.enc {
				t.Fatalf("Content-Encoding %q, want %q", enc, c.enc)
			}
			body, err := resp.BodyUncompressed()
			if err != nil {
				t.Fatal(err)
			}
			if filled := bytes.Contains(body, []byte("Deals picked for you")); filled != c.filled {
				t.Fatalf("filled %v, want %v", filled, c.filled)
			}
			if !c.filled && c.path == "/plain" && !bytes.Equal(body, plain) {
				t.Fatalf("the page without slots is not the origin's:\n%.200q", body)
			}
			vary := string(resp.Header.Peek("Vary"))
			if c.origin == "identity" && c.path != "/data" {
				if !strings.Contains(vary, "Accept-Encoding") {
					t.Errorf("Vary %q lacks Accept-Encoding", vary)
				}
				if et := string(resp.Header.Peek("ETag")); c.enc != "" && et != `W/"v1"` {
					t.Errorf("ETag %q of a page compressed here, want it weak", et)
				}
			}
		})
	}
}

func TestPreferredCoding(t *testing.T) {
	for _, c := range []struct {
		ae   string
		want coding
	}{
		{"gzip, deflate, br, zstd", codingGzip},
		{"br, gzip", codingGzip},
		{"br", codingBrotli},
		{"gzip;q=0, br", codingBrotli},
		{"gzip; q=0.000, br;q=0.5", codingBrotli},
		{"GZIP;Q=0.1", codingGzip},
		{"x-gzip", codingGzip},
		{"*", codingGzip},
		{"*;q=0", codingIdentity},
		{"gzip;q=0, *", codingBrotli},
		{"deflate", codingIdentity},
		{"identity", codingIdentity},
		{"", codingIdentity},
		{"gzip;q=0, gzip", codingGzip},
		{"br;q=", codingBrotli},
		{",,;;=,gzip ; q = 0 ", codingIdentity},
	} {
		if got := preferredCoding([]byte(c.ae)); got != c.want {
			t.Errorf("preferredCoding(%q) = %d, want %d", c.ae, got, c.want)
		}
	}
}

// FuzzPreferredCoding: any Accept-Encoding gives a coding edgeseg can
// write, one the header accepts.
func FuzzPreferredCoding(f *testing.F) {
	for _, s := range []string{"gzip, deflate, br, zstd", "gzip;q=0, br", "*;q=0", "x-gzip;q=0.5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ae string) {
		switch c := preferredCoding([]byte(ae)); c {
		case codingIdentity:
		case codingGzip, codingBrotli:
			if !accepts([]byte(ae), c.name()) {
				t.Fatalf("%q: chose %s, which it does not accept", ae, c.name())
			}
		default:
			t.Fatalf("%q: coding %d", ae, c)
		}
	})
}
