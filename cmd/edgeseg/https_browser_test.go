package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"
)

// writeLoopbackCert writes a self-signed certificate for 127.0.0.1 that
// ends at end, and its key, into dir, and returns their paths.
func writeLoopbackCert(t *testing.T, dir string, end time.Time) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     end,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	return certFile, keyFile
}

// TestEditorPreviewOverHTTPS: Chromium reaches edgeseg answering HTTPS
// itself (HTTP/1.1 agreed though the browser offers h2; the profile
// cookie kept as Secure), and an editor who opens a preview link goes on
// seeing the segment's blocks on the pages clicked to after it, until
// ?edgeseg_preview=off.
func TestEditorPreviewOverHTTPS(t *testing.T) {
	exe := findChromium(t)
	certFile, keyFile := writeLoopbackCert(t, t.TempDir(), time.Now().Add(30*24*time.Hour))
	s := startStack(t, nil, noHoldouts, "EDGESEG_SERVER_TLS_CERT_FILE="+certFile, "EDGESEG_SERVER_TLS_KEY_FILE="+keyFile)
	base := strings.Replace(s.url, "http://", "https://", 1)

	tok := s.previewToken("luxury-returning", "10m")

	ctx := newBrowser(t, exe, chromedp.Flag("ignore-certificate-errors", true))
	if err := chromedp.Do(ctx, chromedp.Emulate(desktop), chromedp.Navigate(base+"/?edgeseg_preview="+tok), chromedp.WaitVisible(`#hero`)); err != nil {
		t.Fatal(err)
	}
	if seg, _ := heroSegment(t, ctx); seg != "luxury-returning" {
		t.Fatalf("the preview link shows hero segment %q\n%s", seg, s.stderr.String())
	}
	proto, err := chromedp.Run(ctx, chromedp.Evaluate[string](`performance.getEntriesByType("navigation")[0].nextHopProtocol`))
	if err != nil || proto != "http/1.1" {
		t.Errorf("the page came over %q (%v), want http/1.1", proto, err)
	}
	// A click to the sale, then home: still previewed.
	err = chromedp.Do(ctx,
		chromedp.Click(`nav a[href="/category/sale"]`, chromedp.NodeVisible),
		chromedp.WaitVisible(`.grid`),
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(`#hero`),
	)
	if err != nil {
		t.Fatal(err)
	}
	screenshot(t, ctx, artifactDir(t), "browser-preview-https.png")
	if seg, _ := heroSegment(t, ctx); seg != "luxury-returning" {
		t.Fatalf("a page clicked to after the preview link shows hero segment %q", seg)
	}
	res, err := chromedp.Call(ctx, storage.GetCookies, storage.GetCookiesParams{})
	if err != nil {
		t.Fatal(err)
	}
	secure := map[string]bool{}
	for _, c := range res.Cookies {
		secure[c.Name] = c.Secure
	}
	if !secure["edgeseg"] || !secure["edgeseg_preview"] {
		t.Errorf("cookies over HTTPS, Secure: %v (want the profile's and the preview's)", secure)
	}
	// Ended: the site as the visitor's own segments show it.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/?edgeseg_preview=off"), chromedp.Navigate(base+"/"), chromedp.WaitVisible(`#hero`)); err != nil {
		t.Fatal(err)
	}
	if seg, _ := heroSegment(t, ctx); seg == "luxury-returning" {
		t.Fatal("still previewed after ?edgeseg_preview=off")
	}
}

// TestHTTPSWithRedirect: serve with a certificate answers HTTPS, and
// server.redirect_listen (here on a port of its own choosing) sends a
// plain HTTP visitor there, to the port the proxy really listens on.
func TestHTTPSWithRedirect(t *testing.T) {
	certFile, keyFile := writeLoopbackCert(t, t.TempDir(), time.Now().Add(30*24*time.Hour))
	s := startStack(t, nil, nil, "EDGESEG_SERVER_TLS_CERT_FILE="+certFile, "EDGESEG_SERVER_TLS_KEY_FILE="+keyFile,
		"EDGESEG_SERVER_REDIRECT_LISTEN=127.0.0.1:0")
	pem, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://" + s.m.RedirectAddr + "/category/sale?sort=price")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := "https://" + s.m.Addr + "/category/sale?sort=price"
	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != want || !strings.Contains(string(body), "Demo Shop") {
		t.Fatalf("followed to %s: %d %.200q, want %s", resp.Request.URL, resp.StatusCode, body, want)
	}
	if resp.TLS == nil || resp.Proto != "HTTP/1.1" {
		t.Errorf("answered over %s, TLS %v", resp.Proto, resp.TLS != nil)
	}
}
