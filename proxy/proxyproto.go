package proxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
)

// The PROXY protocol (HAProxy's, versions 1 and 2) is how a load balancer
// that passes TCP through (HAProxy in TCP mode, an AWS NLB, a cloud TCP
// proxy) tells the server behind it whom a connection is from: a header
// before the connection's first byte of HTTP. With server.proxy_protocol,
// edgeseg reads it on every connection from a trusted proxy (any peer when
// server.trusted_proxies is empty) and takes the visitor's address from it.

// errProxyHeader is the read error of a connection whose PROXY protocol
// header is missing or malformed: it is closed without an answer.
var errProxyHeader = errors.New("proxy protocol: no valid PROXY header before the request")

// proxyV2Signature begins a version 2 header.
var proxyV2Signature = []byte("\r\n\r\n\x00\r\nQUIT\n")

// maxProxyHeader bounds a header: 107 bytes for version 1, and for version
// 2 its 16 bytes, the addresses and whatever extensions (TLVs) the load
// balancer adds.
const maxProxyHeader = 4096

// readProxyHeader reads a PROXY protocol header from r and returns the
// source address it gives (nil for a LOCAL or UNKNOWN one: the
// connection's own peer stands), and the bytes read past it.
func readProxyHeader(r io.Reader) (src net.Addr, rest []byte, err error) {
	buf := make([]byte, 0, 512)
	for {
		k, rerr := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		src, n, err := parseProxyHeader(buf)
		switch {
		case err == nil:
			return src, buf[n:], nil // a read error comes again at the next read
		case !errors.Is(err, errNeedMore):
			return nil, nil, err
		case rerr != nil && errors.Is(rerr, io.EOF) && len(buf) == 0:
			return nil, nil, io.EOF // connected and gone: a TCP health check
		case rerr != nil && errors.Is(rerr, io.EOF):
			return nil, nil, errProxyHeader
		case rerr != nil:
			return nil, nil, rerr
		case len(buf) == cap(buf):
			if cap(buf) >= maxProxyHeader {
				return nil, nil, errProxyHeader
			}
			buf = append(make([]byte, 0, maxProxyHeader), buf...)
		}
	}
}

// errNeedMore: the header has not arrived whole yet.
var errNeedMore = errors.New("need more")

// parseProxyHeader parses the header at the start of b: the source address
// and the header's length, errNeedMore while b may still become one, or
// errProxyHeader.
func parseProxyHeader(b []byte) (net.Addr, int, error) {
	switch {
	case len(b) < len(proxyV2Signature):
		if !bytes.HasPrefix(proxyV2Signature, b) && !bytes.HasPrefix([]byte("PROXY "), b[:min(len(b), 6)]) {
			return nil, 0, errProxyHeader
		}
		return nil, 0, errNeedMore
	case bytes.HasPrefix(b, proxyV2Signature):
		return parseProxyV2(b)
	case bytes.HasPrefix(b, []byte("PROXY ")):
		return parseProxyV1(b)
	}
	return nil, 0, errProxyHeader
}

// parseProxyV1 parses "PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n".
func parseProxyV1(b []byte) (net.Addr, int, error) {
	end := bytes.Index(b, []byte("\r\n"))
	if end < 0 {
		if len(b) >= 107 {
			return nil, 0, errProxyHeader
		}
		return nil, 0, errNeedMore
	}
	if end > 105 {
		return nil, 0, errProxyHeader
	}
	f := bytes.Split(b[len("PROXY "):end], []byte(" "))
	if len(f) >= 1 && string(f[0]) == "UNKNOWN" {
		return nil, end + 2, nil
	}
	if len(f) != 5 || (string(f[0]) != "TCP4" && string(f[0]) != "TCP6") {
		return nil, 0, errProxyHeader
	}
	ip := net.ParseIP(string(f[1]))
	port, err := strconv.ParseUint(string(f[3]), 10, 16)
	if ip == nil || net.ParseIP(string(f[2])) == nil || err != nil || (ip.To4() != nil) != (string(f[0]) == "TCP4") {
		return nil, 0, errProxyHeader
	}
	if _, err := strconv.ParseUint(string(f[4]), 10, 16); err != nil {
		return nil, 0, errProxyHeader
	}
	return &net.TCPAddr{IP: ip, Port: int(port)}, end + 2, nil
}

// parseProxyV2 parses the binary header: the signature, version and
// command, family, length, addresses and extensions.
func parseProxyV2(b []byte) (net.Addr, int, error) {
	const fixed = 16
	if len(b) < fixed {
		return nil, 0, errNeedMore
	}
	verCmd, fam := b[12], b[13]
	size := fixed + int(binary.BigEndian.Uint16(b[14:16]))
	if verCmd>>4 != 2 || size > maxProxyHeader {
		return nil, 0, errProxyHeader
	}
	if len(b) < size {
		return nil, 0, errNeedMore
	}
	switch verCmd & 0xf {
	case 0: // LOCAL: the balancer's own connection (a health check)
		return nil, size, nil
	case 1: // PROXY
	default:
		return nil, 0, errProxyHeader
	}
	addrs := b[fixed:size]
	switch fam >> 4 {
	case 1: // IPv4
		if len(addrs) < 12 {
			return nil, 0, errProxyHeader
		}
		return &net.TCPAddr{IP: net.IP(bytes.Clone(addrs[0:4])), Port: int(binary.BigEndian.Uint16(addrs[8:10]))}, size, nil
	case 2: // IPv6
		if len(addrs) < 36 {
			return nil, 0, errProxyHeader
		}
		return &net.TCPAddr{IP: net.IP(bytes.Clone(addrs[0:16])), Port: int(binary.BigEndian.Uint16(addrs[32:34]))}, size, nil
	}
	return nil, size, nil // unspecified or a unix socket: the peer stands
}
