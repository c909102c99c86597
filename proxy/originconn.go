package proxy

import (
	"bytes"
	"errors"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// originConn is a connection to the origin. It bounds each read by
// origin.read_timeout (fasthttp's ReadTimeout bounds a whole response,
// however long its body keeps coming), and does two things for bodies sent
// chunked, as application servers send most pages:
//
//   - On a plain connection it keeps the last bytes read. With them the
//     handler can tell, without reading, that a chunked response has
//     arrived whole (arrivedWhole): its last chunk is in the client's read
//     buffer, and reading the body to its end will not wait on the network.
//     Such a page is rewritten whole, as a page with a Content-Length is
//     (its slot plan reused, sent in one write), instead of as it streams
//     (tokenized on every request, sent a chunk at a time).
//   - While a waiter is set, a read first takes what has arrived without
//     waiting, and tells the waiter before it waits for more: a body goes
//     to the visitor in as few writes as its arrival allows, each made
//     before edgeseg waits for the origin, never after.
//
// And before a request goes out on a connection that has served one before,
// it looks whether the origin closed it while it sat idle in the pool (see
// SetWriteDeadline).
type originConn struct {
	net.Conn
	raw         syscall.RawConn // nil when the connection has none: every read may wait
	readTimeout time.Duration   // what each read may wait; 0: no bound
	plain       bool            // not TLS: the bytes read are the responses
	addr        originAddr
	tail        [len(lastChunk)]byte // the last bytes read, oldest first
	waiter      waiter
	// waiterErr is what the waiter failed with (a write to a visitor
	// who has gone), failing the read though the origin did not fail.
	waiterErr error
	closings  *atomic.Int64           // until when (Unix ns) to look at every reused connection; may be nil
	stray     *atomic.Pointer[func()] // Origin.OnStrayBytes's function; may be nil
	answered  bool                    // read from since the last request: the next one reuses it
	lastRead  time.Time               // when it was last read from
	lastFull  bool                    // the last read filled the buffer it was given: more may be waiting
	// unlooked: the request going out reuses the connection, which
	// SetWriteDeadline did not look at (idle only briefly): a request
	// body looks before its first read (lookBeforeBody).
	unlooked bool
	// sent counts the bytes of the request going out that reached the
	// connection; refused is set once the origin stopped taking the
	// rest of a request it had begun to receive (Write).
	sent    int
	refused bool
	// switched is set when the origin answered a request on it with an
	// unasked 101 (Origin.Do): what it sends next is in another protocol.
	switched atomic.Bool
	// awaiting: a request is going out and nothing of its answer has been
	// read yet (Read checks that the answer begins as one).
	awaiting bool
	// lines follows the answer's head, giving bare LFs their CR.
	lines headLines
	// One non-blocking receive on the descriptor at a time (rawOnce,
	// originconn_unix.go), by a function made once per connection.
	rawRecv  func(fd uintptr) bool
	rawBuf   []byte // what it receives into, for the call
	rawFlags int    // 0, or MSG_PEEK
	rawN     int    // what it received: 0 at the end of the stream
	rawErr   error  // and why it failed
	peekBuf  [1]byte
}

// errClosedIdle is SetWriteDeadline's (or lookBeforeBody's) answer for a
// pooled connection the origin closed while it was idle. Nothing of the
// request has been sent, or read from its body, so it can go out again on
// another connection, whatever its method (Origin.Do).
var errClosedIdle = errors.New("the origin closed the idle connection")

// errStrayBytes is Read's answer when a connection held bytes from before
// the request going out on it: the origin sent more than its last answer's
// framing said. Nothing of this request's answer has been read; fasthttp
// takes a failed first read for a closed connection, so an idempotent
// request goes out again on another (Origin's RetryIfErr).
var errStrayBytes = errors.New("the origin sent bytes past the end of its previous answer on this connection (a wrong Content-Length?)")

// A waiter is told before a read from the origin waits for the network.
// An error ends the read with it.
type waiter interface{ beforeWait() error }

// lastChunk ends a chunked body without trailers: the CRLF after the last
// data chunk (or the head's blank line), the zero-size chunk and the empty
// trailer section.
const lastChunk = "\r\n0\r\n\r\n"

func newOriginConn(c net.Conn, readTimeout time.Duration, plain bool) *originConn {
	oc := &originConn{Conn: c, readTimeout: readTimeout, plain: plain}
	if sc, ok := c.(syscall.Conn); ok {
		oc.raw, _ = sc.SyscallConn()
	}
	oc.addr = originAddr{Addr: c.LocalAddr(), conn: oc}
	return oc
}

// idleCheck is how long a pooled connection must have been idle for
// SetWriteDeadline to look whether the origin closed it. The look is a
// system call (3–5 µs on a busy virtual machine, 5% of the CPU a small
// page costs); under load connections come back within milliseconds, and
// origins close idle connections after seconds (Node 5 s, Apache 5 s,
// nginx 75 s). A connection closed sooner, when the origin reloads, fails
// the request written to it (an idempotent one is sent again), and then
// every connection is looked at for a while (Origin.closings).
const idleCheck = 100 * time.Millisecond

// SetWriteDeadline sets the deadline for sending a request; fasthttp sets
// one before each request (origin.write_timeout is never 0), before it
// writes anything. On a connection that has answered a request before and
// sat idle since for idleCheck or more, it first looks, without waiting,
// whether the origin has closed it: origins close idle keep-alive
// connections when their own keep-alive timeout is shorter than edgeseg's,
// or when they reload, and a request written to such a connection fails
// (and, but for idempotent ones, cannot be sent again: the origin may have
// seen it).
//
// Once a request has failed on a connection the origin closed, every
// connection is looked at for a while (closings), however briefly idle: an
// origin that reloads closes them all at once.
func (c *originConn) SetWriteDeadline(t time.Time) error {
	c.unlooked, c.sent, c.awaiting = false, 0, true
	if len(c.lines.pending) > 0 {
		// Mended head bytes past the last answer's end, which came with
		// it: sent past its framing, they would be read as the next
		// answer's head.
		c.lines.pending = c.lines.pending[:0]
		c.refused = true
		c.strayFound()
	}
	if c.refused || c.switched.Load() {
		return errClosedIdle // the origin has closed it (Write), or left HTTP
	}
	if c.answered {
		c.answered = false
		now := time.Now()
		if now.Sub(c.lastRead) >= idleCheck || c.closings != nil && now.UnixNano() < c.closings.Load() {
			if c.closedByPeer() {
				return errClosedIdle
			}
		} else {
			c.unlooked = true
		}
	}
	return c.Conn.SetWriteDeadline(t)
}

// lookBeforeBody is called before the first read of a request body that
// goes out on the connection: a request with a body cannot be sent again
// once it has been read, so one reusing a connection SetWriteDeadline did
// not look at (idle only briefly, when the origin may still have closed
// it, as one that reloads does) is looked at now, a system call for each
// such request. Only the head has been written, to a buffer not yet sent.
func (c *originConn) lookBeforeBody() error {
	if c.unlooked {
		c.unlooked = false
		if c.closedByPeer() {
			return errClosedIdle
		}
	}
	return nil
}

// Read reads from the connection, keeping the last bytes read.
func (c *originConn) Read(p []byte) (n int, err error) {
	c.answered = true
	c.lastRead = time.Now()
	if len(c.lines.pending) > 0 {
		// Mended head bytes, and what came with them, not read yet.
		n = copy(p, c.lines.pending)
		c.lines.pending = c.lines.pending[:copy(c.lines.pending, c.lines.pending[n:])]
		c.lastFull = true
		return n, nil
	}
	if c.readTimeout > 0 {
		// Set before every read, the one that does not wait too: the visitor
		// may have taken longer than this to accept what was read before.
		if err := c.Conn.SetReadDeadline(c.lastRead.Add(c.readTimeout)); err != nil {
			return 0, err
		}
	}
	if c.waiter == nil {
		n, err = c.Conn.Read(p)
	} else {
		var now bool
		c.waiterErr = nil
		if n, now, err = c.readNow(p); !now {
			if err = c.waiter.beforeWait(); err == nil {
				n, err = c.Conn.Read(p)
			} else {
				c.waiterErr = err
			}
		}
	}
	c.lastFull = n == len(p)
	if !c.plain {
		return n, err
	}
	if c.awaiting && n > 0 {
		c.awaiting = false
		// An answer begins "HTTP/" (fasthttp lets CRLFs before it pass).
		// Anything else was there before the request: what the origin sent
		// past the end of its last answer on this connection (a
		// Content-Length counted in characters, not bytes), to be read as
		// this answer's head.
		if b := p[0]; b != 'H' && b != '\r' && b != '\n' {
			c.strayFound()
			return 0, errStrayBytes
		}
		c.lines.start()
	}
	if c.lines.on && n > 0 {
		if n = c.lines.read(p, n); len(c.lines.pending) > 0 {
			c.lastFull = true
			c.tail = [len(c.tail)]byte{} // not the last bytes read
			// An error comes again at the next read from the connection,
			// once what is pending has been read.
			return n, nil
		}
	}
	if n >= len(c.tail) {
		copy(c.tail[:], p[n-len(c.tail):n])
	} else if n > 0 {
		copy(c.tail[:], c.tail[n:])
		copy(c.tail[len(c.tail)-n:], p[:n])
	}
	return n, err
}

// strayFound tells Origin.OnStrayBytes's function, if any, that the
// connection held bytes the origin sent past the end of an answer.
func (c *originConn) strayFound() {
	if c.stray != nil {
		if f := c.stray.Load(); f != nil {
			(*f)()
		}
	}
}

// Write sends p. An origin may answer a request before it has read the
// whole body, and close the connection: a 413 for an upload it will not
// take, a redirect that ignores the form. Its answer is then waiting to be
// read while the rest of the body fails to send (EPIPE or ECONNRESET).
// Once some of the request has gone out, that failure is kept from
// fasthttp, which would give up on the request: the rest of the body is
// dropped, the answer read and relayed, and the connection not used again
// (SetWriteDeadline). An origin that closed without answering fails the
// read instead, as it failed the write before. Only a plain connection:
// TLS records cannot be dropped unseen.
func (c *originConn) Write(p []byte) (int, error) {
	if c.refused {
		return len(p), nil
	}
	if c.unlooked && c.sent == 0 && !bytes.HasPrefix(p, []byte("GET ")) && !bytes.HasPrefix(p, []byte("HEAD ")) {
		// A request without a body to look before (lookBeforeBody), a POST
		// from curl -X POST, is looked at before its head goes out unless
		// it may be sent again: a GET or HEAD that fails on a closed
		// connection is (Origin's RetryIfErr). Over TLS the method cannot
		// be read here, and every such request is looked at.
		c.unlooked = false
		if c.closedByPeer() {
			return 0, errClosedIdle
		}
	}
	n, err := c.Conn.Write(p)
	if err != nil && c.plain && c.sent > 0 && (errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)) {
		c.refused = true
		return len(p), nil
	}
	c.sent += n
	return n, err
}

// LocalAddr returns the connection's local address, which also leads back
// to c: fasthttp gives it to each response read from the connection
// (Response.LocalAddr), the one way from a response to its connection.
func (c *originConn) LocalAddr() net.Addr { return &c.addr }

// originAddr is the local address of an originConn.
type originAddr struct {
	net.Addr
	conn *originConn
}

// connOf returns the connection resp is being read from, if it is an
// originConn.
func connOf(resp *fasthttp.Response) *originConn {
	if resp == nil {
		return nil
	}
	if a, ok := resp.LocalAddr().(*originAddr); ok {
		return a.conn
	}
	return nil
}

// arrivedWhole reports whether resp, a chunked response from the origin
// whose body has not been read yet, is already in memory to its end: the
// last bytes read from its connection end a chunked body. An origin sends
// nothing on a connection after a response until it is asked again, so
// those bytes are this response's. They can also end a chunk's data by
// chance (a line "0" at the end of a chunk, with CRLF line ends), with
// the rest of the body still to come: reading it whole then waits for the
// origin. That is only done for pages to personalize, where it is as
// unlikely as harmless, never for the streams that pass through. A body
// with trailers is not recognised, and is streamed.
func arrivedWhole(resp *fasthttp.Response) bool {
	c := connOf(resp)
	return c != nil && c.plain && resp.Header.ContentLength() == -1 && string(c.tail[:]) == lastChunk
}

// restArrived reports whether the rest of resp, a chunked response from the
// origin whose body has not been read yet and did not arrive whole within
// the client's read buffer (arrivedWhole), is waiting in the connection's
// socket to its end: a look without reading (a peek into buf, at most
// len(buf) bytes) at what has arrived. A page larger than the read buffer
// that the origin rendered before sending it is then read whole without
// waiting, as a page with a length is. The same chance look-alike as
// arrivedWhole's applies.
func restArrived(resp *fasthttp.Response, buf []byte) bool {
	c := connOf(resp)
	if c == nil || !c.plain || resp.Header.ContentLength() != -1 {
		return false
	}
	n := c.peekAvailable(buf)
	return n < len(buf) && n >= len(lastChunk) && string(buf[n-len(lastChunk):n]) == lastChunk
}
