//go:build !unix

package proxy

// readNow cannot tell here what has arrived: every read may wait.
func (c *originConn) readNow([]byte) (int, bool, error) { return 0, false, nil }

// closedByPeer cannot tell here: a request on a connection the origin
// closed fails, and only an idempotent one is sent again.
func (c *originConn) closedByPeer() bool { return false }

// peekAvailable cannot tell here what has arrived.
func (c *originConn) peekAvailable([]byte) int { return 0 }
