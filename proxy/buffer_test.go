package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/edgeseg/edgeseg/config"
)

// TestSlowVisitorFreesOrigin: a visitor who asks for a download and reads
// none of it holds no origin connection, and keeps no application
// server's worker writing, when the body's length is within
// origin.buffer_bytes and the budget has room: edgeseg read it whole
// first. Off, or past the room buffered bodies may take of
// rewrite.max_buffered_bytes (counted), the body is streamed and holds
// the origin's only connection: the next visitor waits and gets a 503.
// The body is larger than the kernel's socket buffers take on loopback,
// so streaming it to a visitor who does not read cannot finish.
func TestSlowVisitorFreesOrigin(t *testing.T) {
	const size = 24 << 20
	body := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	for _, tc := range []struct {
		name           string
		buffer, budget config.ByteSize
		freed          bool
		unbuffered     uint64
	}{
		{"buffered", 32 << 20, 256 << 20, true, 0},
		{"off", 0, 256 << 20, false, 0},
		{"no room", 32 << 20, 40 << 20, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sent := make(chan struct{}, 4) // the origin wrote a whole body
			p := startProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/zip")
				w.Header().Set("Content-Length", strconv.Itoa(len(body)))
				if _, err := w.Write(body); err == nil {
					sent <- struct{}{}
				}
			}), func(c *config.Config) {
				c.Origin.MaxConns = 1
				c.Origin.MaxConnWait = 300 * time.Millisecond
				c.Origin.BufferBytes = tc.buffer
				c.Rewrite.MaxBufferedBytes = tc.budget
			})

			// The slow visitor: asks, then reads nothing.
			slow, err := net.Dial("tcp", p.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer slow.Close()
			if _, err := io.WriteString(slow, "GET /big.zip HTTP/1.1\r\nHost: shop.example\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			select {
			case <-sent:
				if !tc.freed {
					t.Fatal("the origin finished a body edgeseg should have streamed to a visitor who reads nothing")
				}
			case <-time.After(3 * time.Second):
				if tc.freed {
					t.Fatal("the origin is still writing to a visitor who reads nothing")
				}
			}

			resp, err := p.client.Get(p.url + "/big.zip")
			if err != nil {
				t.Fatal(err)
			}
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			want := map[bool]int{true: http.StatusOK, false: http.StatusServiceUnavailable}[tc.freed]
			if resp.StatusCode != want {
				t.Fatalf("the next visitor got %d, want %d", resp.StatusCode, want)
			}
			if tc.freed && (err != nil || n != size) {
				t.Fatalf("the next visitor got %d bytes (%v), want %d", n, err, size)
			}
			if got := p.h.metrics.unbuffered.Get(); got != tc.unbuffered {
				t.Errorf("edgeseg_origin_unbuffered_total %d, want %d", got, tc.unbuffered)
			}

			// The slow visitor, reading at last, gets the whole body.
			slow.SetReadDeadline(time.Now().Add(10 * time.Second))
			sr, err := http.ReadResponse(bufio.NewReader(slow), nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(sr.Body)
			if sr.StatusCode != http.StatusOK || !bytes.Equal(got, body) {
				t.Fatalf("the slow visitor got %d and %d bytes (%v), not the body", sr.StatusCode, len(got), err)
			}
		})
	}
}
