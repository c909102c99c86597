package proxy

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync/atomic"

	"github.com/valyala/fasthttp"
)

// requestIDs names each request (server.request_id_header), so that its
// access line here and its log lines at the origin can be matched: the
// id a trusted proxy in front sent is kept, and any other request is
// given one, a random prefix made at start and a count, unique across
// replicas without a word between them.
type requestIDs struct {
	header string // the header's name; "" when off
	prefix []byte // hex, and a dash
	n      atomic.Uint64
}

func newRequestIDs(header string) *requestIDs {
	ids := &requestIDs{header: header}
	var b [8]byte
	_, _ = rand.Read(b[:])
	ids.prefix = append(hex.AppendEncode(nil, b[:]), '-')
	return ids
}

// maxRequestID bounds the length of an id kept from a trusted proxy.
const maxRequestID = 200

// id returns the request's id: the one a trusted proxy sent, when it is
// printable ASCII without spaces and within maxRequestID bytes, or a new
// one.
func (ids *requestIDs) id(h *fasthttp.RequestHeader, trusted bool) string {
	if trusted {
		if v := h.Peek(ids.header); len(v) > 0 && len(v) <= maxRequestID && printable(v) {
			return string(v)
		}
	}
	buf := make([]byte, 0, len(ids.prefix)+16)
	buf = append(buf, ids.prefix...)
	return string(strconv.AppendUint(buf, ids.n.Add(1), 16))
}

// printable reports whether v holds only visible ASCII (no spaces or
// controls).
func printable(v []byte) bool {
	for _, c := range v {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}
