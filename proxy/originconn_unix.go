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
	var errno error
	if rerr := c.raw.Read(func(fd uintptr) bool {
		n, errno = syscall.Read(int(fd), p)
		return true // one try, never a wait
	}); rerr != nil {
		return 0, true, rerr // closed, or past its deadline
	}
	switch {
	case errors.Is(errno, syscall.EAGAIN), errors.Is(errno, syscall.EINTR):
		return 0, false, nil
	case errno != nil:
		return 0, true, &net.OpError{Op: "read", Net: "tcp", Source: c.Conn.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("read", errno)}
	case n == 0:
		return 0, true, io.EOF
	}
	return n, true, nil
}
