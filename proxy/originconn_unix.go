//go:build unix

package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// readNow reads what has arrived, without waiting; now is false when
// nothing has (or the platform cannot tell), and the read must wait.
func (c *originConn) readNow(p []byte) (n int, now bool, err error) {
	if c.raw == nil || len(p) == 0 {
		return 0, false, nil
	}
	n, errno, rerr := c.rawOnce(p, 0)
	if rerr != nil {
		return 0, true, rerr // closed, or past its deadline
	}
	switch {
	case errors.Is(errno, syscall.EAGAIN), errors.Is(errno, syscall.EINTR):
		return 0, false, nil
	case errno != nil:
		return 0, true, &net.OpError{Op: "read", Net: "tcp", Source: c.Conn.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("read", errno)}
	case n == 0:
		return 0, true, io.EOF
	default:
		return n, true, nil
	}
}

// rawOnce makes one non-blocking receive into p, never a wait: flags 0
// reads, syscall.MSG_PEEK looks without reading. errno is the call's, rerr
// the connection's (closed, or past its deadline). The function handed to
// raw.Read is made once per connection: one made per call escapes.
func (c *originConn) rawOnce(p []byte, flags int) (n int, errno, rerr error) {
	if c.rawRecv == nil {
		c.rawRecv = func(fd uintptr) bool {
			c.rawN, _, c.rawErr = syscall.Recvfrom(int(fd), c.rawBuf, c.rawFlags|syscall.MSG_DONTWAIT)
			return true
		}
	}
	c.rawBuf, c.rawFlags = p, flags
	rerr = c.raw.Read(c.rawRecv)
	c.rawBuf = nil
	return c.rawN, c.rawErr, rerr
}

// closedByPeer reports whether the origin has closed the connection, which
// has no request on it: the end of the stream or a reset is waiting to be
// read. On a plain connection bytes are too, as the origin has nothing to
// answer (a 408 some servers send before they close); over TLS they may be
// a session ticket, and the connection is fine.
func (c *originConn) closedByPeer() bool {
	if c.raw == nil {
		return false
	}
	n, errno, rerr := c.rawOnce(c.peekBuf[:], syscall.MSG_PEEK) // a local array would escape
	switch {
	case rerr != nil:
		return true
	case errors.Is(errno, syscall.EAGAIN), errors.Is(errno, syscall.EINTR):
		return false
	case errno != nil, n == 0:
		return true
	}
	return c.plain
}

// peekAvailable copies into buf, without reading them, the bytes that have
// arrived on the connection and not been read, at most len(buf), and
// returns how many; 0 when none, or when it cannot tell.
func (c *originConn) peekAvailable(buf []byte) int {
	if c.raw == nil || len(buf) == 0 {
		return 0
	}
	n, errno, rerr := c.rawOnce(buf, syscall.MSG_PEEK)
	if rerr != nil || errno != nil || n < 0 {
		return 0
	}
	return n
}
