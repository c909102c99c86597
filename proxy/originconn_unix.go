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
	if c.rawRead == nil {
		c.rawRead = func(fd uintptr) bool {
			c.rawN, c.rawErr = syscall.Read(int(fd), c.rawBuf)
			return true // one try, never a wait
		}
	}
	c.rawBuf = p
	rerr := c.raw.Read(c.rawRead)
	c.rawBuf = nil
	if rerr != nil {
		return 0, true, rerr // closed, or past its deadline
	}
	switch n, errno := c.rawN, c.rawErr; {
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

// closedByPeer reports whether the origin has closed the connection, which
// has no request on it: the end of the stream or a reset is waiting to be
// read. On a plain connection bytes are too, as the origin has nothing to
// answer (a 408 some servers send before they close); over TLS they may be
// a session ticket, and the connection is fine.
func (c *originConn) closedByPeer() bool {
	if c.raw == nil {
		return false
	}
	if c.rawPeek == nil {
		c.rawPeek = func(fd uintptr) bool {
			c.rawN, _, c.rawErr = syscall.Recvfrom(int(fd), c.peekBuf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			return true // one try, never a wait
		}
	}
	if err := c.raw.Read(c.rawPeek); err != nil {
		return true
	}
	switch {
	case errors.Is(c.rawErr, syscall.EAGAIN), errors.Is(c.rawErr, syscall.EINTR):
		return false
	case c.rawErr != nil, c.rawN == 0:
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
	var n int
	var errno error
	if err := c.raw.Read(func(fd uintptr) bool {
		n, _, errno = syscall.Recvfrom(int(fd), buf, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true // one try, never a wait
	}); err != nil || errno != nil || n < 0 {
		return 0
	}
	return n
}
