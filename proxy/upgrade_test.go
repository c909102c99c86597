package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgeseg/edgeseg/config"
)

// scriptedOrigin answers each connection's first request head with the
// answer its path names (/ws/NAME), then echoes what the visitor sends;
// "silent" answers nothing, "close" closes the connection.
func scriptedOrigin(t *testing.T, answers map[string]string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go serveConns(ln, func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		line, _ := br.ReadString('\n')
		for {
			l, err := br.ReadString('\n')
			if err != nil || l == "\r\n" {
				break
			}
		}
		name := strings.TrimPrefix(strings.Fields(line + " x x")[1], "/ws/")
		answer, ok := answers[name]
		if !ok || answer == "silent" {
			_, _ = io.Copy(io.Discard, br)
			return
		}
		if answer == "close" {
			return
		}
		if name == "needs-body" { // answers once it has the request's body
			if _, err := io.ReadFull(br, make([]byte, 5)); err != nil {
				return
			}
		}
		if _, err := io.WriteString(c, answer); err != nil {
			return
		}
		_, _ = io.Copy(c, br) // echo
	})
	return ln.Addr().String()
}

// TestUpgradeAnswer: the origin's answer to an upgrade is read before the
// relay begins. Its head reaches the visitor as it came, with the request
// id in it, and whatever came after it (a first message) too; its status
// is the one in the access line. An answer that is not HTTP, too large, or
// missing is a 502 or 504 with its cause, not bytes relayed as if it were.
func TestUpgradeAnswer(t *testing.T) {
	const upgraded = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
	answers := map[string]string{
		"switch":      upgraded + "first",
		"echoes-id":   "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nx-request-id: from-origin\r\n\r\n",
		"bare-lf":     "HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\nConnection: Upgrade\n\n",
		"interim":     "HTTP/1.1 100 Continue\r\n\r\n" + upgraded,
		"blank-first": "\r\n" + upgraded,
		"refused":     "HTTP/1.1 403 Forbidden\r\nContent-Length: 6\r\nConnection: close\r\n\r\nno way",
		"not-http":    "SSH-2.0-OpenSSH_9.6\r\n\r\n",
		"long-line":   "HTTP/1.1 101 Switching Protocols\r\nX-Long: " + strings.Repeat("a", 9000) + "\r\n\r\n",
		"too-large":   "HTTP/1.1 101 Switching Protocols\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("b", 1000)+"\r\n", 70) + "\r\n",
		"closes":      "close",
		"silent":      "silent",
		"needs-body":  upgraded,
	}
	p := startProxyURL(t, "http://"+scriptedOrigin(t, answers), func(c *config.Config) {
		c.Server.RequestIDHeader = "X-Request-ID"
		c.Origin.ReadTimeout = 300 * time.Millisecond
	}, nil)
	for _, tc := range []struct {
		name   string
		body   string // sent with the request, with its Content-Length
		status string // the visitor's status line's code, and the access line's
		head   string // in the visitor's answer's head, in that order
		after  string // what comes after the head
		cause  string
		ownID  bool // the visitor's answer carries edgeseg's id
	}{
		{name: "switch", status: "101", head: "HTTP/1.1 101 Switching Protocols\r\nX-Request-ID: ", after: "first", cause: "upgrade", ownID: true},
		{name: "echoes-id", status: "101", head: "x-request-id: from-origin\r\n", cause: "upgrade"},
		{name: "bare-lf", status: "101", head: "HTTP/1.1 101 Switching Protocols\nX-Request-ID: ", cause: "upgrade", ownID: true},
		{name: "interim", status: "101", head: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching Protocols\r\nX-Request-ID: ", cause: "upgrade", ownID: true},
		{name: "blank-first", status: "101", head: "HTTP/1.1 101 Switching Protocols\r\nX-Request-ID: ", cause: "upgrade", ownID: true},
		{name: "refused", status: "403", head: "HTTP/1.1 403 Forbidden\r\nX-Request-ID: ", after: "no way", cause: "upgrade", ownID: true},
		{name: "long-line", status: "101", head: "X-Long: aaaa", cause: "upgrade", ownID: true},
		{name: "not-http", status: "502", cause: "bad upgrade answer", ownID: true},
		{name: "too-large", status: "502", cause: "bad upgrade answer", ownID: true},
		{name: "closes", status: "502", cause: "connection reset", ownID: true},
		{name: "silent", status: "504", cause: "timeout", ownID: true},
		// A body is part of the request, sent before the answer is waited
		// for (an origin may want it first).
		{name: "needs-body", body: "hello", status: "101", head: "HTTP/1.1 101 Switching Protocols\r\nX-Request-ID: ", cause: "upgrade", ownID: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := p.dial(t, 5*time.Second)
			length := ""
			if tc.body != "" {
				length = "Content-Length: " + strconv.Itoa(len(tc.body)) + "\r\n"
			}
			if _, err := io.WriteString(c, "GET /ws/"+tc.name+" HTTP/1.1\r\nHost: shop.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
				"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"+length+"\r\n"+tc.body); err != nil {
				t.Fatal(err)
			}
			var got []byte
			short := func() []byte { return got[:min(len(got), 300)] } // for messages
			buf := make([]byte, 32<<10)
			for !bytes.Contains(got, []byte("\n\r\n")) && !bytes.Contains(got, []byte("\n\n")) || tc.after != "" && !bytes.HasSuffix(got, []byte(tc.after)) {
				n, err := c.Read(buf)
				got = append(got, buf[:n]...)
				if err != nil {
					break
				}
			}
			if tc.name == "interim" { // the interim head is passed on: the final one is after it
				if !bytes.Contains(got, []byte(tc.head)) {
					t.Fatalf("answer %q, want %q in it", short(), tc.head)
				}
			} else if !bytes.HasPrefix(got, []byte("HTTP/1.1 "+tc.status+" ")) || !bytes.Contains(got, []byte(tc.head)) {
				t.Fatalf("answer %q, want status %s and %q", short(), tc.status, tc.head)
			}
			if tc.after != "" && !bytes.HasSuffix(got, []byte(tc.after)) {
				t.Errorf("answer %q, want %q after the head", short(), tc.after)
			}
			ids := regexp.MustCompile(`(?i)\nX-Request-ID: ([^\r\n]+)`).FindAllSubmatch(got, -1)
			switch {
			case tc.ownID && (len(ids) != 1 || string(ids[0][1]) == "from-origin"),
				tc.name == "echoes-id" && len(ids) != 1:
				t.Fatalf("request ids in %q: %q", short(), ids)
			}
			if tc.status == "101" { // the relay runs: an echo comes back
				if _, err := io.WriteString(c, "ping"); err != nil {
					t.Fatal(err)
				}
				n, err := io.ReadAtLeast(c, buf, 4)
				if err != nil || string(buf[:n]) != "ping" {
					t.Fatalf("echo: %q, %v", buf[:n], err)
				}
			}
			c.Close()
			var line string
			for deadline := time.Now().Add(2 * time.Second); line == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				line = regexp.MustCompile(`\{[^\n]*"path":"/ws/` + tc.name + `"[^\n]*"message":"request"\}`).FindString(p.logs.String())
			}
			if !strings.Contains(line, `"status":`+tc.status+`,`) || !strings.Contains(line, `"cause":"`+tc.cause+`"`) {
				t.Errorf("access line %q, want status %s and cause %q", line, tc.status, tc.cause)
			}
			if tc.ownID && !strings.Contains(line, `"request_id":"`+string(ids[0][1])+`"`) {
				t.Errorf("access line %q, want the visitor's id %s", line, ids[0][1])
			}
		})
	}
}

// FuzzUpgradeAnswer: readAnswerHead never panics and, reading a head, never
// reads past its end; withHeader puts one line in its last head and
// changes nothing else.
func FuzzUpgradeAnswer(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\nframe",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 OK\nA: b\n\n",
		"\r\n\nHTTP/1.0 403\r\n\r\n",
		"HTTP/1.1 99 x\r\n\r\n", "HTTP/2 101\r\n\r\n", "HTTP/1.x 101\r\n\r\n", "HTTP/1.1 1010\r\n\r\n", "\r\n\r\n\r\n",
		"HTTP/1.1 101\r\nX-Request-ID: a\r\n\r\n", "HTTP/1.1 101\r\nX: " + strings.Repeat("y", 5000) + "\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		head, last, status, err := readAnswerHead(bufio.NewReaderSize(bytes.NewReader(in), 16), 4096)
		if err != nil {
			return
		}
		if status < 100 || status > 999 || len(head) > 4096 || last > len(head) {
			t.Fatalf("status %d, head of %d bytes, last at %d", status, len(head), last)
		}
		if !bytes.HasPrefix(head[last:], []byte("HTTP/1.")) || !bytes.HasSuffix(head, []byte("\n")) {
			t.Fatalf("head %q (last at %d)", head, last)
		}
		if trimmed := bytes.TrimLeft(in, "\r\n"); !bytes.Contains(trimmed, head[last:]) {
			t.Fatalf("head %q not read from %q", head[last:], in)
		}
		out := withHeader(head, last, "X-Request-ID", "id-1")
		if bytes.Equal(out, head) {
			return // it had one
		}
		if !bytes.HasPrefix(out, head[:last]) || len(out) != len(head)+len("X-Request-ID: id-1\r\n") ||
			!bytes.Contains(out[last:], []byte("\nX-Request-ID: id-1\r\n")) {
			t.Fatalf("withHeader(%q) = %q", head, out)
		}
	})
}

// TestUpgradeOverTLS: on the HTTPS listener too, the answer's head comes
// with the request id and the relay runs over the visitor's TLS connection.
func TestUpgradeOverTLS(t *testing.T) {
	dir := t.TempDir()
	pool := x509.NewCertPool()
	pool.AddCert(writeServerCert(t, dir, "shop.test", 1))
	origin := scriptedOrigin(t, map[string]string{"switch": "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"})
	p := startProxyURL(t, "http://"+origin, func(c *config.Config) {
		c.Server.TLSCertFile = filepath.Join(dir, "cert.pem")
		c.Server.TLSKeyFile = filepath.Join(dir, "key.pem")
		c.Server.RequestIDHeader = "X-Request-ID"
	}, nil)
	c := tls.Client(p.dial(t, 5*time.Second), &tls.Config{RootCAs: pool, ServerName: "shop.test"})
	if _, err := io.WriteString(c, "GET /ws/switch HTTP/1.1\r\nHost: shop.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var head string
	for !strings.HasSuffix(head, "\r\n\r\n") {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("head %q: %v", head, err)
		}
		head += line
	}
	if !strings.HasPrefix(head, "HTTP/1.1 101 Switching Protocols\r\nX-Request-ID: ") {
		t.Fatalf("head %q", head)
	}
	if _, err := io.WriteString(c, "over tls"); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len("over tls"))
	if _, err := io.ReadFull(br, got); err != nil || string(got) != "over tls" {
		t.Fatalf("echo %q, %v", got, err)
	}
}
