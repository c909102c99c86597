package proxy

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// connLimiter is a listener that keeps at most max connections open. A
// connection past the limit is answered 503 with Retry-After and closed
// at once, so a flood of connections (or of idle keep-alive ones) costs
// a bounded amount of memory instead of a goroutine and buffers each.
type connLimiter struct {
	net.Listener
	open     atomic.Int64
	max      int64
	refusing atomic.Int64 // refusals in progress
	refusal  []byte
	metrics  *proxyMetrics

	writeTimeout time.Duration // for each write to a visitor (limitedConn)
	held         sync.Pool     // *[]byte: writes held back (limitedConn.holdNextWrite)

	// proxyProtocol: connections from proxyFrom (any peer when empty)
	// begin with a PROXY protocol header (server.proxy_protocol).
	proxyProtocol bool
	proxyFrom     netSet
	// tls, when set, is what connections are answered in
	// (server.tls_cert_file).
	tls *tls.Config
}

// countHandshakeError counts a TLS connection that failed before its
// handshake was done, by why: "plain http" sent to the HTTPS port,
// "timeout" (no handshake within server.read_timeout), or "tls" (a client
// that refuses the certificate, offers nothing in common, or sends
// garbage).
func (l *connLimiter) countHandshakeError(why string) {
	if l.metrics != nil {
		l.metrics.set.GetOrCreateCounter(`edgeseg_tls_handshake_errors_total{reason="` + why + `"}`).Inc()
	}
}

// maxRefusing bounds the refusals answered at once; past it a connection
// is closed without an answer.
const maxRefusing = 1024

func newConnLimiter(ln net.Listener, s *Server) *connLimiter {
	refusal := rawAnswer("503 Service Unavailable", "Server: "+s.name+"\r\nRetry-After: 1\r\n",
		"edgeseg is serving too many connections; retry shortly\n")
	m := s.metrics
	l := &connLimiter{Listener: ln, max: int64(s.maxConns), writeTimeout: s.writeTimeout, refusal: []byte(refusal), metrics: m,
		proxyProtocol: s.proxyProtocol, proxyFrom: s.proxyFrom}
	if s.certs != nil {
		l.tls = s.certs.tlsConfig()
	}
	if m != nil {
		m.set.GetOrCreateGauge("edgeseg_connections_open", func() float64 { return float64(l.open.Load()) })
	}
	return l
}

// Accept returns the next connection within the limit, refusing the ones
// past it.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) <= l.max {
			// The PROXY header comes first, then TLS, then HTTP, which
			// limitedConn follows.
			inner := c
			if l.proxyProtocol {
				if a, ok := c.RemoteAddr().(*net.TCPAddr); !ok || len(l.proxyFrom) == 0 || l.proxyFrom.contains(a.IP) {
					inner = &proxiedConn{Conn: c, metrics: l.metrics}
				}
			}
			if l.tls != nil {
				tc := tls.Server(inner, l.tls)
				return &tlsLimitedConn{limitedConn: &limitedConn{Conn: tc, l: l}, tc: tc}, nil
			}
			return &limitedConn{Conn: inner, l: l}, nil
		}
		l.open.Add(-1)
		if l.metrics != nil {
			l.metrics.connsRefused.Inc()
		}
		if l.tls != nil {
			_ = c.Close() // a 503 would take a handshake first
			continue
		}
		if l.refusing.Add(1) > maxRefusing {
			l.refusing.Add(-1)
			_ = c.Close()
			continue
		}
		go l.refuse(c)
	}
}

// refuse answers a connection past the limit with 503 once its request
// head has arrived (within a second): a client that is still sending takes
// an answer that comes first for a broken connection, not a 503.
func (l *connLimiter) refuse(c net.Conn) {
	defer l.refusing.Add(-1)
	_ = c.SetDeadline(time.Now().Add(time.Second))
	var buf [4096]byte
	for n := 0; n < len(buf); {
		k, err := c.Read(buf[n:])
		n += k
		if err != nil || bytes.Contains(buf[:n], []byte("\r\n\r\n")) {
			break
		}
	}
	_, _ = c.Write(l.refusal)
	_ = c.Close()
}

// limitedConn gives its place back once closed, however often Close is
// called. It also bounds each write to the visitor by server.write_timeout,
// as nginx's send_timeout does: a visitor that stops reading is let go, but
// a response may last longer than that in all (a large download on a slow
// link, an event stream), which fasthttp's WriteTimeout, a deadline for a
// whole response, would cut off.
//
// And it can hold a write back until the next (holdNextWrite), so that the
// last chunk of a chunked body and the empty chunk that ends it, which
// fasthttp writes and flushes apart, leave in one system call and one
// packet: the visitor is woken once, with the whole body.
type limitedConn struct {
	net.Conn
	l        *connLimiter
	once     sync.Once
	own      atomic.Bool // a caller sets its own write deadlines (a relayed upgrade)
	holdNext bool        // the next Write is held back; only the serving goroutine
	// held is a held write, sent before anything else; atomic, as Close
	// may come from another goroutine.
	held atomic.Pointer[[]byte]
	// lingers: the request was refused while the visitor may still be
	// sending it; Close drains the connection first (lingerOnClose).
	lingers atomic.Bool
	// head follows the first request's head as it is read, for how it
	// ends; only the serving goroutine reads.
	head headEnd
	bad  error // what head found wrong, for the next read
}

// tlsLimitedConn is a limitedConn over TLS. fasthttp tells a TLS
// connection by these two methods (RequestCtx.IsTLS), which a plain
// limitedConn must not have.
type tlsLimitedConn struct {
	*limitedConn
	tc *tls.Conn
	// shook: the handshake's outcome is known (and a failure counted);
	// only the serving goroutine reads.
	shook bool
}

// Handshake runs the TLS handshake, if it has not run.
func (c *tlsLimitedConn) Handshake() error { return c.tc.Handshake() }

// ConnectionState describes the TLS connection.
func (c *tlsLimitedConn) ConnectionState() tls.ConnectionState { return c.tc.ConnectionState() }

// Read reads from the TLS connection. A visitor that speaks plain HTTP
// to it (http:// to an HTTPS port) is told so, as it would be told of
// HTTPS on a plain port, rather than closed on without a word.
func (c *tlsLimitedConn) Read(p []byte) (int, error) {
	n, err := c.limitedConn.Read(p)
	if err == nil || c.shook {
		return n, err
	}
	if c.shook = c.tc.ConnectionState().HandshakeComplete; c.shook {
		return n, err // the handshake went well; this is the stream's end
	}
	c.shook = true // counted once
	var rh tls.RecordHeaderError
	switch {
	case errors.As(err, &rh) && rh.Conn != nil && beginsRequest(rh.RecordHeader[:]):
		_ = rh.Conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = io.WriteString(rh.Conn, rawAnswer("400 Bad Request", "", "400 Bad Request: this port speaks HTTPS: use an https:// URL\n"))
		c.l.countHandshakeError("plain http")
	case errors.Is(err, io.EOF):
		// Closed before a handshake: a load balancer's TCP check.
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.l.countHandshakeError("timeout")
	default:
		c.l.countHandshakeError("tls")
	}
	return n, err
}

// beginsRequest reports bytes that may begin an HTTP/1 request, as the
// first request head's check reads them (headEnd): a method's token.
func beginsRequest(b []byte) bool {
	var h headEnd
	return h.read(b) == nil
}

// rawAnswer is a whole answer written straight to a connection, outside
// fasthttp: status ("503 Service Unavailable"), header lines each ending
// in CRLF, and a text body; the connection closes after it.
func rawAnswer(status, headers, body string) string {
	return "HTTP/1.1 " + status + "\r\n" + headers + "Connection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

// limitedOf returns the limitedConn c is, over TLS or not.
func limitedOf(c net.Conn) (*limitedConn, bool) {
	switch c := c.(type) {
	case *limitedConn:
		return c, true
	case *tlsLimitedConn:
		return c.limitedConn, true
	}
	return nil, false
}

// proxiedConn is a connection that begins with a PROXY protocol header,
// read at the first Read: src is the visitor's address it gave, early
// what was read past it. A connection without a valid header fails its
// first Read, and is closed unanswered.
type proxiedConn struct {
	net.Conn
	metrics *proxyMetrics
	read    bool
	err     error
	src     net.Addr
	early   []byte
}

// RemoteAddr is the visitor's address: the one the PROXY header gave,
// else (not read yet) the peer's.
func (c *proxiedConn) RemoteAddr() net.Addr {
	if c.src != nil {
		return c.src
	}
	return c.Conn.RemoteAddr()
}

func (c *proxiedConn) Read(p []byte) (int, error) {
	if !c.read {
		c.read = true
		var src net.Addr
		src, c.early, c.err = readProxyHeader(c.Conn)
		if c.err != nil {
			// Counted when something else came; a connection closed or
			// timed out before a byte (a load balancer's TCP check) is not.
			if errors.Is(c.err, errProxyHeader) && c.metrics != nil {
				c.metrics.proxyHeaderErrors.Inc()
			}
		} else {
			c.src = src
		}
	}
	if c.err != nil {
		return 0, c.err
	}
	if len(c.early) > 0 {
		n := copy(p, c.early)
		c.early = c.early[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// tcpOf returns the TCP connection under c, if it is one, through a
// PROXY header (not through TLS).
func tcpOf(c net.Conn) (*net.TCPConn, bool) {
	if pc, ok := c.(*proxiedConn); ok {
		c = pc.Conn
	}
	tc, ok := c.(*net.TCPConn)
	return tc, ok
}

// Read reads from the connection. The first request's head must begin
// with a method and end in CRLF CRLF: after one that ends in bare LFs the
// next read fails with errBareLF, and after bytes that begin no request (a
// TLS handshake) with errNotHTTP, which the server answers 400
// (Handler.serveParseError) at once instead of waiting for a head that
// has been sent whole, or never will be. The read that finds it succeeds:
// fasthttp reads a connection's first byte alone, and takes any error
// there for the visitor's hanging up, closing without an answer.
func (c *limitedConn) Read(p []byte) (int, error) {
	if c.bad != nil {
		return 0, c.bad
	}
	n, err := c.Conn.Read(p)
	if !c.head.done && n > 0 {
		c.bad = c.head.read(p[:n])
	}
	return n, err
}

// lingerOnClose marks ctx's connection, whose request is refused before it
// was all read, to be drained before it is closed (limitedConn.Close).
func lingerOnClose(ctx *fasthttp.RequestCtx) {
	if c, ok := limitedOf(ctx.Conn()); ok {
		c.lingers.Store(true)
	}
}

// holdNextWrite holds the next Write back (copied) until the one after it,
// or Close, sends both at once.
func (c *limitedConn) holdNextWrite() { c.holdNext = true }

// Write writes p, after a held write if there is one, within the write
// timeout from now.
func (c *limitedConn) Write(p []byte) (int, error) {
	if c.holdNext {
		c.holdNext = false
		b, _ := c.l.held.Get().(*[]byte)
		if b == nil {
			b = new([]byte)
		}
		*b = append((*b)[:0], p...)
		c.held.Store(b)
		return len(p), nil
	}
	if t := c.l.writeTimeout; t > 0 && !c.own.Load() {
		if err := c.Conn.SetWriteDeadline(time.Now().Add(t)); err != nil {
			return 0, err
		}
	}
	held := c.held.Swap(nil)
	if held == nil {
		return c.Conn.Write(p)
	}
	defer c.l.held.Put(held)
	h := len(*held)
	if len(p) <= 4<<10 { // the end of the body, most often: one write
		*held = append(*held, p...)
		n, err := c.Conn.Write(*held)
		return max(n-h, 0), err
	}
	bufs := net.Buffers{*held, p}
	n, err := bufs.WriteTo(c.Conn)
	return int(max(n-int64(h), 0)), err
}

// sendHeld sends a held write, if any.
func (c *limitedConn) sendHeld() {
	if held := c.held.Swap(nil); held != nil {
		_, _ = c.Conn.Write(*held)
		c.l.held.Put(held)
	}
}

// SetWriteDeadline sets the write deadline, which from then on is the
// caller's to keep: Write no longer sets one.
func (c *limitedConn) SetWriteDeadline(t time.Time) error {
	c.own.Store(true)
	return c.Conn.SetWriteDeadline(t)
}

// SetDeadline sets both deadlines; the write one is the caller's from then
// on.
func (c *limitedConn) SetDeadline(t time.Time) error {
	c.own.Store(true)
	return c.Conn.SetDeadline(t)
}

// Close sends a held write, then closes the connection. A visitor may
// still be sending when edgeseg closes (a body or head too large, answered
// 413 or 431 before it was all read), and closing a socket with input
// unread resets the connection: the visitor's upload fails with the reset,
// and the answer may be lost before it is read. Such a connection, marked
// by lingerOnClose, is closed for writing and drained for a while first
// (nginx's lingering close), in the background; it counts against
// server.max_connections until then.
func (c *limitedConn) Close() error {
	c.sendHeld()
	if c.lingers.CompareAndSwap(true, false) { // once: Close may come twice
		if tc, ok := tcpOf(c.Conn); ok && unreadInput(tc) && tc.CloseWrite() == nil {
			go c.linger(tc)
			return nil
		}
		// Over TLS: its stream is ended (close_notify) and drained through
		// it, the records decrypted and dropped. Whether the visitor is
		// still sending cannot be told from the socket (TLS reads ahead of
		// what it hands on), so it lingers whenever the request was
		// refused unread: until the visitor closes, or pauses a second.
		if sc, ok := c.Conn.(*tls.Conn); ok && sc.CloseWrite() == nil {
			go c.linger(sc)
			return nil
		}
	}
	return c.closeNow()
}

func (c *limitedConn) closeNow() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.open.Add(-1) })
	return err
}

// Lingering bounds: how long a closing connection is drained, how long a
// read of it may wait, and how much is read from it.
const (
	lingerTime    = 5 * time.Second
	lingerTimeout = time.Second
	lingerBytes   = 64 << 20
)

// linger reads and drops what the visitor goes on sending, until it
// closes its side, pauses for lingerTimeout, or lingerTime or lingerBytes
// run out; then it closes the connection.
func (c *limitedConn) linger(tc net.Conn) {
	defer c.closeNow()
	buf := make([]byte, 16<<10) // rare: not worth a pool
	end := time.Now().Add(lingerTime)
	for n := 0; n < lingerBytes; {
		d := time.Now().Add(lingerTimeout)
		if d.After(end) {
			d = end
		}
		_ = tc.SetReadDeadline(d)
		m, err := tc.Read(buf)
		n += m
		if err != nil {
			return
		}
	}
}
