package proxy

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/edgeseg/edgeseg/config"
)

func TestHeadEnd(t *testing.T) {
	for _, tc := range []struct {
		head       string
		done, bare bool
		notHTTP    bool
	}{
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", true, false, false},
		{"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", true, false, false}, // blank lines before the request line
		{"GET / HTTP/1.1\nHost: a\r\n\r\n", true, false, false},           // fasthttp reads it: the head ends in CRLF CRLF
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\n\n", true, false, false},
		{"GET / HTTP/1.1\nHost: a\n\n", true, true, false},
		{"GET / HTTP/1.1\r\nHost: a\n\n", true, true, false},
		{"GET / HTTP/1.1\r\nHost: a\n\r\n", true, true, false},
		{"GET / HTTP/1.1\r\nHost: a\r\n\n", true, true, false},
		{"GET / HTTP/1.0\n\n", true, true, false},
		{"\n\nGET / HTTP/1.0\n\n", true, true, false},
		{"GET / HTTP/1.1\r\nHost: a\r\n", false, false, false}, // more to come
		{"GET / HTTP/1.1\r\nHost: a\r\n\r", false, false, false},
		{"GET / HTTP/1.1\nHost: a\n", false, false, false},
		{"", false, false, false},
		{"G", false, false, false},
		{"get /a%20b HTTP/1.1\r\n", false, false, false}, // a method fasthttp judges
		{"M-SEARCH * HTTP/1.1\r\n", false, false, false},
		{"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", true, false, true}, // a TLS ClientHello
		{"\r\n\x16\x03\x01", true, false, true},
		{"GE\x00T / HTTP/1.1\r\n\r\n", true, false, true},
		{"GET\t/ HTTP/1.1\r\n\r\n", true, false, true},
		{"{\"jsonrpc\": \"2.0\"}\n", true, false, true},
		{"SSH-2.0-OpenSSH_9.6\r\n", true, false, true}, // a token, then its line ends
		{"GET\r\n\r\n", true, false, true},
	} {
		// Whole, and in pieces of every size: a head typed line by line
		// arrives in many reads.
		for size := 1; size <= len(tc.head)+1; size++ {
			var h headEnd
			var err error
			for i := 0; i < len(tc.head) && err == nil; i += size {
				err = h.read([]byte(tc.head[i:min(i+size, len(tc.head))]))
			}
			if h.done != tc.done || errors.Is(err, errBareLF) != tc.bare || errors.Is(err, errNotHTTP) != tc.notHTTP {
				t.Errorf("%q in pieces of %d: done %v, error %v; want done %v, bare LF %v, not HTTP %v", tc.head, size, h.done, err, tc.done, tc.bare, tc.notHTTP)
				break
			}
		}
	}
}

// FuzzHeadEnd: however a head arrives, it is judged alike; a head whose
// every line ends in CRLF is never taken for one in bare LFs; and one
// that begins with a method and a space is never taken for something
// other than HTTP.
func FuzzHeadEnd(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), uint8(3))
	f.Add([]byte("GET / HTTP/1.1\nHost: a\n\n"), uint8(1))
	f.Add([]byte("\r\n\nGET /\r\n\r\n"), uint8(2))
	f.Fuzz(func(t *testing.T, head []byte, size uint8) {
		var whole headEnd
		errWhole := whole.read(head)
		var split headEnd
		var err error
		step := int(size%32) + 1
		for i := 0; i < len(head) && err == nil && !split.done; i += step {
			err = split.read(head[i:min(i+step, len(head))])
		}
		if whole.done != split.done || (errWhole == nil) != (err == nil) {
			t.Fatalf("%q: whole (done %v, %v), in pieces of %d (done %v, %v)", head, whole.done, errWhole, step, split.done, err)
		}
		crlf := strings.ReplaceAll(strings.ReplaceAll(string(head), "\r", ""), "\n", "\r\n")
		var h headEnd
		if err := h.read([]byte(crlf)); errors.Is(err, errBareLF) {
			t.Fatalf("%q, a head in CRLF lines: %v", crlf, err)
		}
		var m headEnd
		if err := m.read(append([]byte("GET "), head...)); errors.Is(err, errNotHTTP) {
			t.Fatalf("%q after a method: %v", head, err)
		}
	})
}

// TestBareLFHeadsAnsweredAtOnce: a request typed by hand into nc or
// telnet, its lines ending in bare LF, gets a 400 that says why at once,
// not a wait for server.read_timeout (fasthttp reads heads that end in
// CRLF CRLF only).
func TestBareLFHeadsAnsweredAtOnce(t *testing.T) {
	p := startProxy(t, echoOrigin(), func(c *config.Config) { c.Server.ReadTimeout = time.Minute })
	for _, head := range []string{
		"GET / HTTP/1.1\nHost: shop.test\n\n",
		"GET / HTTP/1.1\r\nHost: shop.test\n\n",
		"GET / HTTP/1.0\n\n",
		"POST /x HTTP/1.1\nHost: shop.test\nContent-Length: 5\n\nhello",
	} {
		start := time.Now()
		status, rest := p.raw(head)
		if !strings.Contains(status, " 400 ") || !strings.Contains(rest, "must end in CRLF") || time.Since(start) > 3*time.Second {
			t.Errorf("%q: got %q after %v:\n%s", head, status, time.Since(start), rest)
		}
	}
	// Typed line by line, the lines arrive one by one.
	c := p.dial(t, 5*time.Second)
	for _, line := range []string{"GET / HTTP/1.1\n", "Host: shop.test\n", "\n"} {
		if _, err := io.WriteString(c, line); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	status, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.Contains(status, " 400 ") {
		t.Fatalf("typed line by line: %q, %v", status, err)
	}
	// Heads that end in CRLF CRLF are served, a bare LF inside them too.
	for _, head := range []string{
		"\r\nGET / HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n",
		"GET / HTTP/1.1\nHost: shop.test\r\nConnection: close\r\n\r\n",
	} {
		if status, rest := p.raw(head); !strings.Contains(status, " 200 ") {
			t.Errorf("%q: got %q:\n%s", head, status, rest)
		}
	}
	p.mustServe()
}

// TestTLSOnThePlainPortFailsAtOnce: a browser sent to https:// on
// edgeseg's plain HTTP port fails its handshake at once; other bytes that
// begin no request get a 400 that says why. Before, both waited for
// server.read_timeout for a head that never comes.
func TestTLSOnThePlainPortFailsAtOnce(t *testing.T) {
	p := startProxy(t, echoOrigin(), func(c *config.Config) { c.Server.ReadTimeout = time.Minute })
	start := time.Now()
	c := p.dial(t, 10*time.Second)
	tc := tls.Client(c, &tls.Config{ServerName: "shop.test", InsecureSkipVerify: true})
	err := tc.Handshake()
	if err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("TLS handshake: %v after %v; want a failure at once", err, time.Since(start))
	}
	for _, tc := range []struct{ head, says string }{
		{"\x16\x03\x01\x00\x05hello", "not HTTPS"},
		{"\x00\x00\x00\x00", "a method, a target and a version"},
		{"{\"id\":1}\n", "a method, a target and a version"},
	} {
		start := time.Now()
		status, rest := p.raw(tc.head)
		if !strings.Contains(status, " 400 ") || !strings.Contains(rest, tc.says) || time.Since(start) > 3*time.Second {
			t.Errorf("%q: got %q after %v:\n%s", tc.head, status, time.Since(start), rest)
		}
	}
	p.mustServe()
}
