package proxy

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgeseg/edgeseg/config"
)

// TestOriginCertificates: an https origin whose certificate a CA edgeseg
// does not trust signed (a private CA's, a self-signed one) is a 502 whose
// log line says what to set, and a metric that tells it from other
// failures; with that CA in origin.ca_file it is served. One whose
// certificate is for another name than origin.url's host is told so, and
// served with origin.server_name; one that does not speak TLS on its https
// port is told apart too.
func TestOriginCertificates(t *testing.T) {
	origin := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("over tls"))
	}))
	origin.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshakes refused on purpose
	origin.StartTLS()
	defer origin.Close()
	caFile := filepath.Join(t.TempDir(), "origin-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: origin.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}

	untrusted := startProxyURL(t, origin.URL, nil, nil)
	if err := untrusted.h.CheckOrigin(); err == nil || !strings.Contains(err.Error(), "set origin.ca_file") {
		t.Errorf("checked at start: %v", err)
	}
	if resp, _ := untrusted.get("/"); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("untrusted certificate: %d", resp.StatusCode)
	}
	if logs := untrusted.logs.String(); !strings.Contains(logs, `"cause":"tls certificate"`) || !strings.Contains(logs, "set origin.ca_file to the CA certificate that signed it") {
		t.Errorf("log does not say what to do:\n%s", logs)
	}
	if _, m := untrusted.get("/_edgeseg/metrics"); !strings.Contains(m, `edgeseg_origin_errors_total{cause="tls certificate"} 1`) {
		t.Errorf("not counted as a certificate failure:\n%s", m)
	}

	trusted := startProxyURL(t, origin.URL, func(c *config.Config) { c.Origin.CAFile = caFile }, nil)
	if err := trusted.h.CheckOrigin(); err != nil {
		t.Errorf("checked at start: %v", err)
	}
	if resp, body := trusted.get("/"); resp.StatusCode != http.StatusOK || body != "over tls" {
		t.Fatalf("with origin.ca_file: %d %q", resp.StatusCode, body)
	}

	// The origin named by another name than its certificate's (an address,
	// here localhost, where the certificate is for example.com and
	// 127.0.0.1): said so, and mended with origin.server_name.
	byOtherName := strings.Replace(origin.URL, "127.0.0.1", "localhost", 1)
	otherName := startProxyURL(t, byOtherName, func(c *config.Config) { c.Origin.CAFile = caFile }, nil)
	if resp, _ := otherName.get("/"); resp.StatusCode != http.StatusBadGateway || !strings.Contains(otherName.logs.String(), "set origin.server_name to the name it is for") {
		t.Errorf("certificate for another name: %d\n%s", resp.StatusCode, otherName.logs.String())
	}
	named := startProxyURL(t, byOtherName, func(c *config.Config) { c.Origin.CAFile, c.Origin.ServerName = caFile, "example.com" }, nil)
	if resp, body := named.get("/"); resp.StatusCode != http.StatusOK || body != "over tls" {
		t.Fatalf("with origin.server_name: %d %q", resp.StatusCode, body)
	}

	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer plain.Close()
	notTLS := startProxyURL(t, strings.Replace(plain.URL, "http://", "https://", 1), nil, nil)
	if resp, _ := notTLS.get("/"); resp.StatusCode != http.StatusBadGateway || !strings.Contains(notTLS.logs.String(), `"cause":"tls"`) {
		t.Errorf("plain http on an https URL: %d\n%s", resp.StatusCode, notTLS.logs.String())
	}
}

// TestUnixSocketOrigin: an application server listening on a socket file
// beside edgeseg (origin.url: unix:/path) is served and personalized as one
// on TCP, with the visitor's Host, its connections reused.
func TestUnixSocketOrigin(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "app.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Skipf("no unix sockets here: %v", err)
	}
	var conns atomic.Int32
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintf(w, `<!doctype html><html><body><p>host %s</p><div data-edgeseg-slot="hero">default</div></body></html>`, r.Host)
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		},
	}
	go srv.Serve(ln)
	defer srv.Close()
	h, edge := personalizingServer(t, "unix:"+socket, nil)
	get := func(path string) (bool, []byte) {
		b, _ := promoGetter(t, edge)(path)
		return bytes.Contains(b, []byte("Deals picked for you")), b
	}
	for i := range 5 {
		filled, page := get("/")
		if !filled || !strings.Contains(string(page), "<p>host shop.test</p>") {
			t.Fatalf("request %d: filled %v, page %s", i, filled, page)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 5 requests in turn", n)
	}
	// Health probes it when no visitor has lately.
	h.origin.lastSeen.Store(0)
	if _, body := get("/_edgeseg/health"); string(body) != "ok\n" {
		t.Errorf("health: %q", body)
	}
	// An HTTP/1.0 request without a Host (a load balancer's check) asks
	// for localhost, the socket's origin having no name of its own.
	c, err := edge.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.0\r\n\r\n")
	b, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(b), "HTTP/1.1 200 ") || !strings.Contains(string(b), "<p>host localhost</p>") {
		t.Errorf("HTTP/1.0 without a Host: %q", b)
	}
}

// TestOriginClientCertificate: an https origin that asks for a client
// certificate (mutual TLS) gets the one in origin.client_cert_file; without
// it, the 502 says what to set.
func TestOriginClientCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	clientCert := writeSelfSigned(t, "edgeseg-client", certFile, keyFile)
	clients := x509.NewCertPool()
	clients.AddCert(clientCert)

	origin := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	origin.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clients}
	origin.Config.ErrorLog = log.New(io.Discard, "", 0)
	origin.StartTLS()
	defer origin.Close()
	caFile := filepath.Join(dir, "origin-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: origin.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}

	without := startProxyURL(t, origin.URL, func(c *config.Config) { c.Origin.CAFile = caFile }, nil)
	if err := without.h.CheckOrigin(); err == nil || !strings.Contains(err.Error(), "set origin.client_cert_file") {
		t.Errorf("checked at start: %v", err)
	}
	if resp, _ := without.get("/"); resp.StatusCode != http.StatusBadGateway || !strings.Contains(without.logs.String(), "set origin.client_cert_file") {
		t.Errorf("no client certificate: %d\n%s", resp.StatusCode, without.logs.String())
	}
	with := startProxyURL(t, origin.URL, func(c *config.Config) {
		c.Origin.CAFile, c.Origin.ClientCertFile, c.Origin.ClientKeyFile = caFile, certFile, keyFile
	}, nil)
	if err := with.h.CheckOrigin(); err != nil {
		t.Errorf("checked at start: %v", err)
	}
	if resp, body := with.get("/"); resp.StatusCode != http.StatusOK || body != "hello edgeseg-client" {
		t.Fatalf("with a client certificate: %d %q", resp.StatusCode, body)
	}
}

// writeSelfSigned writes a self-signed certificate for name and its key,
// in PEM, and returns the certificate.
func writeSelfSigned(t *testing.T, name, certFile, keyFile string) *x509.Certificate {
	t.Helper()
	return writeCert(t, &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}, certFile, keyFile)
}

// writeCert writes a certificate made from tmpl, signed by its own new
// key, and that key, in PEM, and returns the certificate.
func writeCert(t *testing.T, tmpl *x509.Certificate, certFile, keyFile string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestUnixSocketOriginUpgrade: a WebSocket to a socket file's origin is
// relayed as one to a TCP origin is.
func TestUnixSocketOriginUpgrade(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "app.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Skipf("no unix sockets here: %v", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, brw, ok := switchProtocols(w)
		if !ok {
			return
		}
		defer c.Close()
		line, _ := brw.ReadString('\n')
		brw.WriteString(strings.ToUpper(line))
		brw.Flush()
	})}
	go srv.Serve(ln)
	defer srv.Close()
	p := startProxyURL(t, "unix:"+socket, nil, nil)
	c := p.dial(t, 5*time.Second)
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: shop.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	br := bufio.NewReader(c)
	if status, _ := br.ReadString('\n'); !strings.HasPrefix(status, "HTTP/1.1 101 ") {
		t.Fatalf("status %q", status)
	}
	for line, _ := br.ReadString('\n'); line != "\r\n"; line, _ = br.ReadString('\n') {
		if line == "" {
			t.Fatal("the head did not end")
		}
	}
	io.WriteString(c, "hello\n")
	if got, _ := br.ReadString('\n'); got != "HELLO\n" {
		t.Errorf("echo %q", got)
	}
}
