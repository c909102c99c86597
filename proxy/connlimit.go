package proxy

import (
	"bytes"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
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
}

// maxRefusing bounds the refusals answered at once; past it a connection
// is closed without an answer.
const maxRefusing = 1024

func newConnLimiter(ln net.Listener, max int, writeTimeout time.Duration, name string, m *proxyMetrics) *connLimiter {
	body := "edgeseg is serving too many connections; retry shortly\n"
	refusal := "HTTP/1.1 503 Service Unavailable\r\nServer: " + name +
		"\r\nRetry-After: 1\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body
	l := &connLimiter{Listener: ln, max: int64(max), writeTimeout: writeTimeout, refusal: []byte(refusal), metrics: m}
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
			return &limitedConn{Conn: c, l: l, writeTimeout: l.writeTimeout}, nil
		}
		l.open.Add(-1)
		if l.metrics != nil {
			l.metrics.connsRefused.Inc()
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
type limitedConn struct {
	net.Conn
	l            *connLimiter
	once         sync.Once
	writeTimeout time.Duration
	own          atomic.Bool // a caller sets its own write deadlines (a relayed upgrade)
}

// Write writes p, within the write timeout from now.
func (c *limitedConn) Write(p []byte) (int, error) {
	if c.writeTimeout > 0 && !c.own.Load() {
		if err := c.Conn.SetWriteDeadline(time.Now().Add(c.writeTimeout)); err != nil {
			return 0, err
		}
	}
	return c.Conn.Write(p)
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

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.open.Add(-1) })
	return err
}
