//go:build unix

package proxy

import (
	"net"
	"syscall"
)

// unreadInput reports whether bytes have arrived on c that nothing has
// read: a visitor still sending when edgeseg closes.
func unreadInput(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	// Control, not Read: it takes no read lock, which a goroutine still
	// waiting in Read would hold.
	var b [1]byte
	n := 0
	if raw.Control(func(fd uintptr) {
		n, _, _ = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	}) != nil {
		return false
	}
	return n > 0
}
