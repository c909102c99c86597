package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/edgeseg/edgeseg/config"
)

// writeServerCert writes a self-signed server certificate for name into
// dir (cert.pem, key.pem) and returns it.
func writeServerCert(t *testing.T, dir, name string, serial int64) *x509.Certificate {
	t.Helper()
	return writeCert(t, &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: name},
		DNSNames:              []string{name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(90 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}, filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
}

// TestTLSListener: with server.tls_cert_file, edgeseg answers HTTPS in
// HTTP/1.1 (a client offering h2 is answered in HTTP/1.1), tells the
// origin the request came over https, answers plain HTTP sent to it with
// a 400 that says why, takes a PROXY header before the handshake, and
// serves a renewed certificate once its files change, keeping the one
// before while the new pair does not load.
func TestTLSListener(t *testing.T) {
	dir := t.TempDir()
	first := writeServerCert(t, dir, "shop.test", 1)
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("X-Forwarded-Proto")+" for "+r.Header.Get("X-Forwarded-For"))
	})
	p := startProxy(t, origin, func(c *config.Config) {
		c.Server.TLSCertFile = filepath.Join(dir, "cert.pem")
		c.Server.TLSKeyFile = filepath.Join(dir, "key.pem")
	})
	if err := p.srv.Err(); err != nil {
		t.Fatal(err)
	}
	// handshake connects over TLS, trusting roots, and returns the
	// certificate edgeseg answered with and the protocol agreed.
	handshake := func(c net.Conn, roots *x509.CertPool) (*tls.Conn, *x509.Certificate, error) {
		tc := tls.Client(c, &tls.Config{RootCAs: roots, ServerName: "shop.test", NextProtos: []string{"h2", "http/1.1"}})
		if err := tc.Handshake(); err != nil {
			return nil, nil, err
		}
		return tc, tc.ConnectionState().PeerCertificates[0], nil
	}
	get := func(tc *tls.Conn, path string) string {
		t.Helper()
		io.WriteString(tc, "GET "+path+" HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.Proto + " " + string(b)
	}
	pool := x509.NewCertPool()
	pool.AddCert(first)
	tc, cert, err := handshake(p.dial(t, 5*time.Second), pool)
	if err != nil {
		t.Fatal(err)
	}
	if proto := tc.ConnectionState().NegotiatedProtocol; proto != "http/1.1" {
		t.Errorf("ALPN agreed %q, want http/1.1", proto)
	}
	if got := get(tc, "/"); got != "HTTP/1.1 https for 127.0.0.1" || cert.SerialNumber.Int64() != 1 {
		t.Errorf("got %q from certificate %v", got, cert.SerialNumber)
	}

	// Browsers' way: keep-alive connections, several at once, h2 offered.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "shop.test"}, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 4}}
	defer client.CloseIdleConnections()
	var wg sync.WaitGroup
	errs := make(chan string, 80)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				resp, err := client.Get("https://" + p.addr + "/")
				if err != nil {
					errs <- err.Error()
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if got := resp.Proto + " " + string(b); got != "HTTP/1.1 https for 127.0.0.1" {
					errs <- got
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}

	// Plain HTTP on the HTTPS port: told, not closed on.
	c := p.dial(t, 5*time.Second)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: shop.test\r\n\r\n")
	if b, _ := io.ReadAll(c); !strings.HasPrefix(string(b), "HTTP/1.1 400 ") || !strings.Contains(string(b), "use an https:// URL") {
		t.Errorf("plain HTTP to the HTTPS port: %q", b)
	}

	// A client that does not trust the certificate ends the handshake.
	if _, _, err := handshake(p.dial(t, 5*time.Second), x509.NewCertPool()); err == nil {
		t.Fatal("a client trusting nothing finished the handshake")
	}

	// A renewal: a new pair, served from the next look at the files.
	writeServerCert(t, dir, "shop.test", 2)
	renewed := writeServerCert(t, dir, "shop.test", 3) // written twice: a new size or time, whatever the clock's grain
	pool.AddCert(renewed)
	p.srv.certs.checked.Store(0) // time to look again
	if _, cert, err = handshake(p.dial(t, 5*time.Second), pool); err != nil || cert.SerialNumber.Int64() != 3 {
		t.Fatalf("after a renewal: certificate %v (%v), want serial 3", cert.SerialNumber, err)
	}
	if !strings.Contains(p.logs.String(), "TLS certificate reloaded") {
		t.Errorf("the reload is not logged:\n%s", p.logs.String())
	}
	// Its end, for an alert before it comes.
	tc, _, _ = handshake(p.dial(t, 5*time.Second), pool)
	m := get(tc, "/_edgeseg/metrics")
	for _, want := range []string{
		fmt.Sprintf("\nedgeseg_tls_certificate_expiry_timestamp_seconds %d\n", renewed.NotAfter.Unix()),
		"\nedgeseg_tls_handshake_errors_total{reason=\"plain http\"} 1\n",
		"\nedgeseg_tls_handshake_errors_total{reason=\"tls\"} 1\n",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q:\n%.3000s", want, m)
		}
	}
	// A key not yet written beside its certificate: the one before goes on.
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), []byte("half written"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.srv.certs.checked.Store(0)
	if _, cert, err = handshake(p.dial(t, 5*time.Second), pool); err != nil || cert.SerialNumber.Int64() != 3 {
		t.Fatalf("with a broken pair: certificate %v (%v), want serial 3 kept", cert.SerialNumber, err)
	}
	if !strings.Contains(p.logs.String(), "TLS certificate changed but does not load") {
		t.Errorf("the broken pair is not logged:\n%s", p.logs.String())
	}
	// Mended, and a SIGHUP (a deploy hook): served at once, without
	// waiting for the next look at the files.
	pool.AddCert(writeServerCert(t, dir, "shop.test", 5))
	p.srv.ReloadCertificate()
	if _, cert, err = handshake(p.dial(t, 5*time.Second), pool); err != nil || cert.SerialNumber.Int64() != 5 {
		t.Fatalf("after ReloadCertificate: certificate %v (%v), want serial 5", cert.SerialNumber, err)
	}

	// Behind a TCP load balancer: the PROXY header, then TLS.
	dir2 := t.TempDir()
	pool2 := x509.NewCertPool()
	pool2.AddCert(writeServerCert(t, dir2, "shop.test", 4))
	q := startProxy(t, origin, func(c *config.Config) {
		c.Server.TLSCertFile = filepath.Join(dir2, "cert.pem")
		c.Server.TLSKeyFile = filepath.Join(dir2, "key.pem")
		c.Server.ProxyProtocol = true
	})
	c = q.dial(t, 5*time.Second)
	io.WriteString(c, "PROXY TCP4 203.0.113.9 10.0.0.1 56324 443\r\n")
	if tc, _, err = handshake(c, pool2); err != nil {
		t.Fatal(err)
	}
	if got := get(tc, "/"); got != "HTTP/1.1 https for 203.0.113.9" {
		t.Errorf("through a PROXY header: %q", got)
	}

	// A connection that never begins its handshake: let go after
	// server.read_timeout, and counted.
	slow := startProxy(t, origin, func(c *config.Config) {
		c.Server.TLSCertFile = filepath.Join(dir2, "cert.pem")
		c.Server.TLSKeyFile = filepath.Join(dir2, "key.pem")
		c.Server.ReadTimeout = 200 * time.Millisecond
	})
	idle := slow.dial(t, 5*time.Second)
	if _, err := idle.Read(make([]byte, 1)); err == nil {
		t.Fatal("a connection without a handshake got bytes")
	}
	if n := slow.h.metrics.set.GetOrCreateCounter(`edgeseg_tls_handshake_errors_total{reason="timeout"}`).Get(); n != 1 {
		t.Errorf("handshake timeouts counted %d, want 1", n)
	}

	// Past server.max_connections: closed before the handshake.
	r := startProxy(t, origin, func(c *config.Config) {
		c.Server.TLSCertFile = filepath.Join(dir2, "cert.pem")
		c.Server.TLSKeyFile = filepath.Join(dir2, "key.pem")
		c.Server.MaxConnections = 1
	})
	held, _, err := handshake(r.dial(t, 5*time.Second), pool2)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if _, _, err := handshake(r.dial(t, 5*time.Second), pool2); err == nil {
		t.Fatal("a connection past max_connections was served")
	}
	if n := r.h.metrics.connsRefused.Get(); n != 1 {
		t.Errorf("edgeseg_connections_refused_total %d, want 1", n)
	}
}

// TestTLSCertificateProblems: a pair that does not load is a config
// error naming the key; one gone by the time edgeseg starts stops it
// with the same.
func TestTLSCertificateProblems(t *testing.T) {
	dir := t.TempDir()
	writeServerCert(t, dir, "shop.test", 1)
	other := t.TempDir()
	writeServerCert(t, other, "shop.test", 2)
	for _, tc := range []struct {
		name, cert, key, want string
	}{
		{"key alone", "", filepath.Join(dir, "key.pem"), "server.tls_cert_file: and server.tls_key_file go together"},
		{"missing", filepath.Join(dir, "nope.pem"), filepath.Join(dir, "key.pem"), "server.tls_cert_file: " + filepath.Join(dir, "nope.pem")},
		{"another's key", filepath.Join(dir, "cert.pem"), filepath.Join(other, "key.pem"), "private key does not match public key"},
		{"key for cert", filepath.Join(dir, "key.pem"), filepath.Join(dir, "key.pem"), "server.tls_cert_file:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig("http://127.0.0.1:1")
			cfg.Server.TLSCertFile, cfg.Server.TLSKeyFile = tc.cert, tc.key
			if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	cfg := testConfig("http://127.0.0.1:1")
	cfg.Server.TLSCertFile, cfg.Server.TLSKeyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	os.Remove(cfg.Server.TLSKeyFile)
	org, err := NewOrigin(cfg.Origin)
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Options{Config: cfg, Origin: org})
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(cfg, h, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(ln); err == nil || err != srv.Err() || !strings.Contains(err.Error(), "server.tls_cert_file: ") {
		t.Fatalf("Serve with its key gone: %v", err)
	}
}

// TestRedirectServer: server.redirect_listen sends a plain HTTP visitor
// to the same URL in https on listen's port (none for 443), whatever port
// and form the request named it in, keeps ACME's challenges going to the
// origin, and refuses a request naming no usable host.
func TestRedirectServer(t *testing.T) {
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "token for "+r.URL.Path) })
	p := startProxy(t, origin, nil)
	for _, tc := range []struct {
		listen, request, status, location, body string
	}{
		{":8443", "GET /a/b?c=d HTTP/1.1\r\nHost: shop.test\r\n", "308", "https://shop.test:8443/a/b?c=d", ""},
		{":443", "GET /a/b?c=d HTTP/1.1\r\nHost: shop.test:80\r\n", "308", "https://shop.test/a/b?c=d", ""},
		{"0.0.0.0:443", "POST /cart HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 3\r\n\r\na=1", "308", "https://shop.test/cart", ""},
		{":443", "GET http://shop.test/x?y HTTP/1.1\r\nHost: shop.test\r\n", "308", "https://shop.test/x?y", ""},
		{":443", "GET / HTTP/1.1\r\nHost: [::1]:80\r\n", "308", "https://[::1]/", ""},
		{":443", "GET /.well-known/acme-challenge/abc HTTP/1.1\r\nHost: shop.test\r\n", "200", "", "token for /.well-known/acme-challenge/abc"},
		{":443", "GET / HTTP/1.0\r\n", "400", "", "names no host"},
		{":443", "GET / HTTP/1.1\r\nHost: shop.test\"><x\r\n", "400", "", ""},
	} {
		srv := NewRedirectServer(p.cfg, tc.listen, p.h, nil)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(ln)
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		req := tc.request
		if !strings.Contains(req, "\r\n\r\n") {
			req += "Connection: close\r\n\r\n"
		}
		io.WriteString(c, req)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%q: %v", tc.request, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		c.Close()
		srv.Shutdown()
		if got := strings.Fields(resp.Status)[0]; got != tc.status || resp.Header.Get("Location") != tc.location || !strings.Contains(string(b), tc.body) {
			t.Errorf("%q on %s: %s, Location %q, %q", tc.request, tc.listen, resp.Status, resp.Header.Get("Location"), b)
		}
	}
}

// FuzzRedirect: whatever Host and target a request names, the redirect
// is a 308 to https:// with a Location of printable bytes without
// spaces that keeps the host the request names, or a 400.
func FuzzRedirect(f *testing.F) {
	for _, s := range [][2]string{{"shop.test", "/a?b"}, {"shop.test:80", "/"}, {"[::1]:80", "/x"}, {"", "/"}, {"a b", "/"}, {"shop.test", "http://other/x"}, {"x", "/\x7f"}} {
		f.Add(s[0], s[1])
	}
	h := &Handler{}
	f.Fuzz(func(t *testing.T, host, target string) {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetHost(host)
		ctx.Request.Header.SetRequestURI(target)
		if bytes.HasPrefix(ctx.Path(), []byte(acmeChallenges)) {
			return // to the origin
		}
		named := string(hostOnly(ctx.Host())) // the target's own, in absolute-form (RFC 9112 3.2.2)
		h.serveRedirect(&ctx, ":8443")
		loc := string(ctx.Response.Header.Peek("Location"))
		switch ctx.Response.StatusCode() {
		case fasthttp.StatusPermanentRedirect:
			want := "https://" + named + ":8443/"
			if !strings.HasPrefix(loc, want) || strings.ContainsFunc(loc, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
				t.Fatalf("Host %q, target %q: Location %q", host, target, loc)
			}
		case fasthttp.StatusBadRequest:
			if loc != "" {
				t.Fatalf("a 400 with Location %q", loc)
			}
		default:
			t.Fatalf("status %d", ctx.Response.StatusCode())
		}
	})
}

// TestTLSRefusedUploadGetsItsAnswer: over TLS as in plain HTTP, an upload
// refused while the visitor is still sending it (413 for a Content-Length
// past server.max_body_bytes) gets its answer and the end of the
// connection, not a reset: edgeseg ends its side of the TLS stream and
// drains what the visitor goes on sending before it closes.
func TestTLSRefusedUploadGetsItsAnswer(t *testing.T) {
	dir := t.TempDir()
	pool := x509.NewCertPool()
	pool.AddCert(writeServerCert(t, dir, "shop.test", 1))
	p := startProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }), func(c *config.Config) {
		c.Server.TLSCertFile = filepath.Join(dir, "cert.pem")
		c.Server.TLSKeyFile = filepath.Join(dir, "key.pem")
		c.Server.MaxBodyBytes = 1 << 20
	})
	for round := range 3 {
		c := tls.Client(p.dial(t, 10*time.Second), &tls.Config{RootCAs: pool, ServerName: "shop.test"})
		if err := c.Handshake(); err != nil {
			t.Fatal(err)
		}
		sent := make(chan error, 1)
		go func() {
			_, err := io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 8388608\r\n\r\n")
			for left := 8 << 20; err == nil && left > 0; left -= 64 << 10 {
				_, err = c.Write(make([]byte, 64<<10))
			}
			sent <- err
		}()
		got, err := io.ReadAll(c)
		if err != nil || !bytes.HasPrefix(got, []byte("HTTP/1.1 413 ")) {
			t.Errorf("round %d: answer %.60q (%v), want a 413 and a clean end", round, got, err)
		}
		if err := <-sent; err != nil {
			t.Errorf("round %d: sending the upload: %v", round, err)
		}
		c.Close()
	}
}
