package proxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgeseg/edgeseg/config"
)

// proxyV2 builds a version 2 header: command, family byte, addresses.
func proxyV2(cmd, fam byte, addrs []byte) []byte {
	b := append(bytes.Clone(proxyV2Signature), 0x20|cmd, fam, 0, 0)
	binary.BigEndian.PutUint16(b[14:16], uint16(len(addrs)))
	return append(b, addrs...)
}

func v4addrs(src, dst string, sport, dport uint16) []byte {
	b := append(net.ParseIP(src).To4(), net.ParseIP(dst).To4()...)
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(b, sport), dport)
}

func TestParseProxyHeader(t *testing.T) {
	v6 := append(append(net.ParseIP("2001:db8::1").To16(), net.ParseIP("2001:db8::2").To16()...), 0xdc, 0x04, 0x01, 0xbb)
	tlv := append(v4addrs("198.51.100.7", "10.0.0.1", 1000, 80), 0x04, 0x00, 0x03, 'a', 'b', 'c') // an extension after the addresses
	for _, tc := range []struct {
		name string
		in   []byte
		src  string // "" for none (the peer stands)
		n    int    // the header's length; -1 needs more, -2 refused
	}{
		{"v1 TCP4", []byte("PROXY TCP4 203.0.113.9 10.0.0.1 56324 443\r\nGET /"), "203.0.113.9:56324", 43},
		{"v1 TCP6", []byte("PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n"), "[2001:db8::1]:56324", 46},
		{"v1 UNKNOWN", []byte("PROXY UNKNOWN\r\n"), "", 15},
		{"v1 UNKNOWN with addresses", []byte("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"), "", 35},
		{"v1 cut short", []byte("PROXY TCP4 203.0.113.9 10.0"), "", -1},
		{"v1 a word", []byte("PRO"), "", -1},
		{"v1 bad address", []byte("PROXY TCP4 203.0.113.999 10.0.0.1 1 2\r\n"), "", -2},
		{"v1 v6 address as TCP4", []byte("PROXY TCP4 2001:db8::1 10.0.0.1 1 2\r\n"), "", -2},
		{"v1 bad port", []byte("PROXY TCP4 203.0.113.9 10.0.0.1 70000 2\r\n"), "", -2},
		{"v1 too few fields", []byte("PROXY TCP4 203.0.113.9 10.0.0.1 1\r\n"), "", -2},
		{"v1 too long", []byte("PROXY TCP4 " + strings.Repeat("1", 120)), "", -2},
		{"v1 bare LF", []byte("PROXY TCP4 203.0.113.9 10.0.0.1 1 2\nGET / HTTP/1.1\r\n"), "", -2},
		{"v2 IPv4", proxyV2(1, 0x11, v4addrs("198.51.100.7", "10.0.0.1", 1000, 80)), "198.51.100.7:1000", 28},
		{"v2 IPv6", proxyV2(1, 0x21, v6), "[2001:db8::1]:56324", 52},
		{"v2 extensions", proxyV2(1, 0x11, tlv), "198.51.100.7:1000", 34},
		{"v2 LOCAL", proxyV2(0, 0x00, nil), "", 16},
		{"v2 unix", proxyV2(1, 0x31, make([]byte, 216)), "", 232},
		{"v2 cut short", proxyV2(1, 0x11, v4addrs("198.51.100.7", "10.0.0.1", 1000, 80))[:20], "", -1},
		{"v2 short addresses", proxyV2(1, 0x11, []byte{1, 2, 3}), "", -2},
		{"v2 version 1", append(bytes.Clone(proxyV2Signature), 0x11, 0x11, 0, 0), "", -2},
		{"v2 command 2", proxyV2(2, 0x11, v4addrs("198.51.100.7", "10.0.0.1", 1, 2)), "", -2},
		{"HTTP", []byte("GET / HTTP/1.1\r\n"), "", -2},
		{"TLS", []byte("\x16\x03\x01\x02\x00"), "", -2},
		{"nothing yet", nil, "", -1},
	} {
		src, n, err := parseProxyHeader(tc.in)
		switch {
		case tc.n == -1 && !errors.Is(err, errNeedMore), tc.n == -2 && !errors.Is(err, errProxyHeader):
			t.Errorf("%s: %v, %d, %v", tc.name, src, n, err)
		case tc.n >= 0 && (err != nil || n != tc.n || (src == nil) != (tc.src == "") || src != nil && src.String() != tc.src):
			t.Errorf("%s: %v, %d, %v; want %s, %d", tc.name, src, n, err, tc.src, tc.n)
		}
	}
}

// FuzzProxyHeader: whatever a connection begins with, however it arrives,
// reading a header never panics, and gives what parsing it whole gives,
// with the bytes read past it kept.
func FuzzProxyHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 203.0.113.9 10.0.0.1 56324 443\r\nGET / HTTP/1.1\r\n\r\n"), uint8(3))
	f.Add(proxyV2(1, 0x11, v4addrs("198.51.100.7", "10.0.0.1", 1000, 80)), uint8(1))
	f.Add(proxyV2(1, 0x21, make([]byte, 36)), uint8(7))
	f.Add([]byte("GET / HTTP/1.1\r\n"), uint8(2))
	f.Fuzz(func(t *testing.T, in []byte, piece uint8) {
		src, rest, err := readProxyHeader(&piecesConn{in: bytes.Clone(in), piece: int(piece%32) + 1})
		wsrc, n, werr := parseProxyHeader(in)
		if err != nil {
			if werr == nil {
				t.Fatalf("read in pieces: %v; whole: %v, %d", err, wsrc, n)
			}
			return
		}
		if werr != nil || n > len(in) || !bytes.HasPrefix(in[n:], rest) || (src == nil) != (wsrc == nil) || src != nil && src.String() != wsrc.String() {
			t.Fatalf("read in pieces: %v %q; whole: %v, %d, %v", src, rest, wsrc, n, werr)
		}
	})
}

// TestProxyProtocol: with server.proxy_protocol, a connection's PROXY
// header names the visitor (in the access log, and to the origin in
// X-Forwarded-For); a connection without one is closed unanswered and
// counted (one that closes before a byte, a TCP check, is not); a peer
// outside trusted_proxies is not expected to send one.
func TestProxyProtocol(t *testing.T) {
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "for "+r.Header.Get("X-Forwarded-For"))
	})
	p := startProxy(t, origin, func(c *config.Config) { c.Server.ProxyProtocol = true })
	send := func(p *testProxy, head []byte, request string) string {
		c := p.dial(t, 5*time.Second)
		c.Write(append(bytes.Clone(head), request...))
		b, _ := io.ReadAll(c)
		return string(b)
	}
	request := "GET / HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n"
	if got := send(p, []byte("PROXY TCP4 203.0.113.9 10.0.0.1 56324 443\r\n"), request); !strings.HasSuffix(got, "for 203.0.113.9") {
		t.Errorf("v1: %q", got)
	}
	if got := send(p, proxyV2(1, 0x11, v4addrs("198.51.100.7", "10.0.0.1", 1000, 80)), request); !strings.HasSuffix(got, "for 198.51.100.7") {
		t.Errorf("v2: %q", got)
	}
	if !strings.Contains(p.logs.String(), `"remote":"203.0.113.9"`) {
		t.Errorf("the access log does not name the visitor:\n%s", p.logs.String())
	}
	if got := send(p, nil, request); got != "" {
		t.Errorf("no header: answered %q", got)
	}
	// A load balancer's TCP check, connecting and closing, is no error.
	check := p.dial(t, time.Second)
	check.Close()
	time.Sleep(50 * time.Millisecond)
	metrics := send(p, []byte("PROXY TCP4 127.0.0.1 127.0.0.1 1000 80\r\n"), "GET /_edgeseg/metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	if !strings.Contains(metrics, "\nedgeseg_proxy_protocol_errors_total 1\n") {
		t.Errorf("the connection without a header is not counted:\n%.2000s", metrics)
	}
	q := startProxy(t, origin, func(c *config.Config) {
		c.Server.ProxyProtocol = true
		c.Server.TrustedProxies = []string{"10.0.0.0/8"}
	})
	if got := send(q, nil, request); !strings.HasSuffix(got, "for 127.0.0.1") {
		t.Errorf("a peer outside trusted_proxies, without a header: %q", got)
	}
}
