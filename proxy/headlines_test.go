package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// piecesConn is a connection whose reads return at most piece bytes of
// what is written into it by the test (the origin's side).
type piecesConn struct {
	net.Conn
	in    []byte
	piece int
}

func (c *piecesConn) Read(p []byte) (int, error) {
	if len(c.in) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.piece)], c.in)
	c.in = c.in[n:]
	if len(c.in) == 0 {
		return n, io.EOF // with the last bytes, as a reader may
	}
	return n, nil
}

func (c *piecesConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *piecesConn) SetReadDeadline(time.Time) error  { return nil }
func (c *piecesConn) SetWriteDeadline(time.Time) error { return nil }
func (c *piecesConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *piecesConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *piecesConn) Close() error                     { return nil }
func (c *piecesConn) SetDeadline(t time.Time) error    { return nil }

// readAnswers reads what an origin sent on one connection as answers to
// requests, through an originConn: each answer is read, as fasthttp reads
// it, with buffers of size bytes, the origin's bytes arriving piece at a
// time. It returns what was read.
func readAnswers(t testing.TB, answers []string, piece, size int) string {
	t.Helper()
	pc := &piecesConn{piece: piece}
	c := newOriginConn(pc, time.Second, true)
	var out []byte
	buf := make([]byte, size)
	for _, a := range answers {
		pc.in = []byte(a)
		_ = c.SetWriteDeadline(time.Now()) // a request goes out
		for {
			n, err := c.Read(buf)
			out = append(out, buf[:n]...)
			if errors.Is(err, io.EOF) {
				break // the end of the answer, to fasthttp
			}
			if err != nil && !errors.Is(err, io.EOF) {
				t.Fatalf("read: %v", err)
			}
		}
	}
	return string(out)
}

// TestHeadLines: the lines of an origin's answer head that end with a bare
// LF get their CR, wherever the reads split them; the rest of the answer
// (its body, whatever follows a 101) is passed as it came, and so is a
// head whose lines all end with CRLF.
func TestHeadLines(t *testing.T) {
	for _, tc := range []struct {
		name    string
		answers []string
		want    string // "" when the same as sent
	}{
		{
			name:    "CRLF head, LFs in the body",
			answers: []string{"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\na\nb\n\nc"},
		},
		{
			name:    "bare LF head",
			answers: []string{"HTTP/1.1 200 OK\nContent-Type: text/html\nContent-Length: 6\n\na\n\nb\n"},
			want:    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 6\r\n\r\na\n\nb\n",
		},
		{
			name:    "one line of the head",
			answers: []string{"HTTP/1.1 200 OK\r\nA: 1\nB: 2\r\n\r\nx\n"},
			want:    "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\nx\n",
		},
		{
			name:    "the blank line only",
			answers: []string{"HTTP/1.1 200 OK\r\nA: 1\r\n\nx\n"},
			want:    "HTTP/1.1 200 OK\r\nA: 1\r\n\r\nx\n",
		},
		{
			name:    "CRLFs before the status line",
			answers: []string{"\r\n\nHTTP/1.1 200 OK\nA: 1\n\n\n"},
			want:    "\r\n\r\nHTTP/1.1 200 OK\r\nA: 1\r\n\r\n\n",
		},
		{
			name:    "interim answers",
			answers: []string{"HTTP/1.1 100 Continue\n\nHTTP/1.1 103 Early Hints\nLink: </a.css>\n\nHTTP/1.1 200 OK\nContent-Length: 2\n\n\n\n"},
			want:    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n\n\n",
		},
		{
			name:    "a switch of protocols",
			answers: []string{"HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\n\n\x81\x02\n\nHTTP/1.1 200 OK\n\n"},
			want:    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x02\n\nHTTP/1.1 200 OK\n\n",
		},
		{
			name:    "answers on a reused connection",
			answers: []string{"HTTP/1.1 200 OK\nContent-Length: 1\n\n\n", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n\n", "HTTP/1.1 204 No Content\n\n"},
			want:    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n\nHTTP/1.1 204 No Content\r\n\r\n",
		},
	} {
		want := tc.want
		if want == "" {
			want = strings.Join(tc.answers, "")
		}
		for _, piece := range []int{1, 2, 3, 7, 4096} {
			for _, size := range []int{1, 2, 5, 4096} {
				if got := readAnswers(t, tc.answers, piece, size); got != want {
					t.Errorf("%s, pieces of %d, buffer of %d:\n got %q\nwant %q", tc.name, piece, size, got, want)
				}
			}
		}
	}
}

// FuzzHeadLines: however an answer arrives and is read, mending its head
// only adds CRs before LFs, the same ones, and leaves a head whose lines
// end with CRLF as it is.
func FuzzHeadLines(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\nContent-Length: 2\n\nok"), uint8(3), uint8(5))
	f.Add([]byte("HTTP/1.1 100 Continue\r\n\nHTTP/1.1 200 OK\r\n\n\n"), uint8(1), uint8(1))
	f.Add([]byte("\n\r\nHTTP/1.1 101 x\n\n\n"), uint8(2), uint8(9))
	f.Fuzz(func(t *testing.T, answer []byte, piece, size uint8) {
		if len(answer) > 0 && !bytes.ContainsAny(answer[:1], "H\r\n") {
			return // not an answer's beginning: a stray byte (TestStrayBytesAfterAnAnswer)
		}
		whole := readAnswers(t, []string{string(answer)}, len(answer)+1, len(answer)+1)
		got := readAnswers(t, []string{string(answer)}, int(piece)%16+1, int(size)%16+1)
		if got != whole {
			t.Fatalf("read in pieces: %q, whole: %q", got, whole)
		}
		if strings.ReplaceAll(got, "\r\n", "\n") != strings.ReplaceAll(string(answer), "\r\n", "\n") {
			t.Fatalf("%q became %q", answer, got)
		}
		if !bytes.Contains(bytes.ReplaceAll(answer, []byte("\r\n"), nil), []byte("\n")) && got != string(answer) {
			t.Fatalf("a head of CRLF lines %q became %q", answer, got)
		}
	})
}

// TestBareLFOriginHeads: an origin whose answer heads end their lines with
// a bare LF is served, and its pages personalized, as one that ends them
// with CRLF: with a Content-Length, ended by closing the connection, after
// an interim answer; its connection reused.
func TestBareLFOriginHeads(t *testing.T) {
	page := `<!doctype html><html><head><title>t</title></head><body><div data-edgeseg-slot="hero">default</div>` + "\n<p>line\nends</p>\n</body></html>"
	answers := map[string]string{
		"/length":   "HTTP/1.1 200 OK\nContent-Type: text/html\nContent-Length: " + strconv.Itoa(len(page)) + "\n\n" + page,
		"/continue": "HTTP/1.1 100 Continue\n\nHTTP/1.1 200 OK\nContent-Type: text/html\nContent-Length: " + strconv.Itoa(len(page)) + "\n\n" + page,
		"/crlf":     "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: " + strconv.Itoa(len(page)) + "\r\n\r\n" + page,
	}
	origin := rawServer(t, eachRequest(func(c net.Conn, req *http.Request) {
		if req.URL.Path == "/close" {
			io.WriteString(c, "HTTP/1.0 200 OK\nContent-Type: text/html\n\n"+page)
			c.Close()
			return
		}
		io.WriteString(c, answers[req.URL.Path])
	}))
	_, get := personalizingStack(t, origin, nil)
	for round := range 2 {
		for _, path := range []string{"/length", "/crlf", "/continue", "/close"} {
			filled, b := get(path)
			if !filled || !strings.HasSuffix(string(b), "\n<p>line\nends</p>\n</body></html>") {
				t.Errorf("round %d, %s: filled %v, page %q", round, path, filled, b)
			}
		}
	}
}

// BenchmarkHeadLines: what following an ordinary head (nginx's, CRLF
// lines, with the page's first bytes after it) costs each answer.
func BenchmarkHeadLines(b *testing.B) {
	answer := []byte("HTTP/1.1 200 OK\r\nServer: nginx/1.26.3\r\nDate: Mon, 07 Dec 2026 22:00:00 GMT\r\nContent-Type: text/html\r\nContent-Length: 61440\r\nLast-Modified: Mon, 07 Dec 2026 20:00:00 GMT\r\nConnection: keep-alive\r\nETag: \"6754a1b0-f000\"\r\nAccept-Ranges: bytes\r\n\r\n" + strings.Repeat("<p>page</p>\n", 300))
	var h headLines
	b.ReportAllocs()
	for b.Loop() {
		h.start()
		if n := h.read(answer, len(answer)); n != len(answer) {
			b.Fatal(n)
		}
	}
}

// TestMendedBytesPastAnAnswer: mended bytes still waiting when the next
// request goes out came past the last answer's end (here, an answer read to
// its Content-Length while the origin sent more in the same read): they
// are stray bytes, and the connection is not used for the request.
func TestMendedBytesPastAnAnswer(t *testing.T) {
	pc := &piecesConn{piece: 4096}
	c := newOriginConn(pc, time.Second, true)
	var strays int
	f := func() { strays++ }
	var hook atomic.Pointer[func()]
	hook.Store(&f)
	c.stray = &hook
	answer := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	pc.in = []byte(strings.ReplaceAll(answer, "\r\n", "\n") + "more")
	if err := c.SetWriteDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(answer)) // all a reader takes for the answer
	if n, err := c.Read(buf); string(buf[:n]) != answer || err != nil {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	if err := c.SetWriteDeadline(time.Now()); !errors.Is(err, errClosedIdle) || strays != 1 {
		t.Fatalf("the next request: %v, %d stray bytes found", err, strays)
	}
}
