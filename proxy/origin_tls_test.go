package proxy

import (
	"bytes"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

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
