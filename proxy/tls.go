package proxy

import (
	"crypto/tls"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/edgeseg/edgeseg/config"
)

// certificates is the certificate edgeseg answers HTTPS with
// (server.tls_cert_file and tls_key_file), read again when its files
// change: a renewal (certbot replacing its links, cert-manager a Secret)
// is served within a minute, without a restart. A pair that does not load
// (a key not yet written beside its new certificate) is logged, and the
// certificate before it kept.
type certificates struct {
	files   config.Server // its TLSCertFile and TLSKeyFile
	log     *zerolog.Logger
	cur     atomic.Pointer[tls.Certificate]
	checked atomic.Int64 // when the files were last looked at, Unix ns
	mu      sync.Mutex   // one look at a time; guards stamp
	stamp   [2]fileStamp // of the files last loaded, or last tried
}

// fileStamp tells a file's versions apart.
type fileStamp struct {
	mod  time.Time
	size int64
}

// certCheckEvery is how often the certificate's files are looked at, at
// most.
const certCheckEvery = time.Minute

// CertificateWarning is how long before its end a certificate is warned
// of (when it loads, and by validate).
const CertificateWarning = 14 * 24 * time.Hour

// newCertificates loads the pair s names.
func newCertificates(s config.Server, log *zerolog.Logger, set *metrics.Set) (*certificates, error) {
	c := &certificates{files: config.Server{TLSCertFile: s.TLSCertFile, TLSKeyFile: s.TLSKeyFile}, log: log}
	c.stamp = c.stamps()
	cert, err := s.Certificate()
	if err != nil {
		return nil, fmt.Errorf("server.tls_cert_file: %w", err)
	}
	c.cur.Store(cert)
	c.checked.Store(time.Now().UnixNano())
	c.tellExpiry(cert, "loaded")
	if set != nil {
		set.GetOrCreateGauge("edgeseg_tls_certificate_expiry_timestamp_seconds", func() float64 {
			if leaf := c.cur.Load().Leaf; leaf != nil {
				return float64(leaf.NotAfter.Unix())
			}
			return 0
		})
	}
	return c, nil
}

// tlsConfig is what visitors' connections are answered in: HTTP/1.1 only
// (fasthttp speaks no HTTP/2), TLS 1.2 and up.
func (c *certificates) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"http/1.1"},
		GetCertificate: c.get,
	}
}

// get returns the certificate to answer with, having looked at its files
// if it is time to.
func (c *certificates) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	now := time.Now().UnixNano()
	if last := c.checked.Load(); now-last >= int64(certCheckEvery) && c.checked.CompareAndSwap(last, now) {
		c.refresh()
	}
	return c.cur.Load(), nil
}

// refresh loads the pair again if either file changed since it was last
// loaded or tried.
func (c *certificates) refresh() {
	if !c.mu.TryLock() {
		return // another handshake is at it
	}
	defer c.mu.Unlock()
	c.load(false)
}

// reload loads the pair again now, changed or not (SIGHUP: a deploy hook
// that has just written it).
func (c *certificates) reload() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.load(true)
}

// load loads the pair, when it changed or always; c.mu is held.
func (c *certificates) load(always bool) {
	st := c.stamps()
	if st == c.stamp && !always {
		return
	}
	c.stamp = st
	cert, err := c.files.Certificate()
	if err != nil {
		c.log.Error().Err(err).Msg("TLS certificate changed but does not load; the one before keeps serving")
		return
	}
	c.cur.Store(cert)
	c.tellExpiry(cert, "reloaded")
}

// stamps returns the stamps of the two files; a file that cannot be
// looked at has a zero one.
func (c *certificates) stamps() [2]fileStamp {
	var st [2]fileStamp
	for i, name := range []string{c.files.TLSCertFile, c.files.TLSKeyFile} {
		if fi, err := os.Stat(name); err == nil { // through links, as certbot's are
			st[i] = fileStamp{mod: fi.ModTime(), size: fi.Size()}
		}
	}
	return st
}

// tellExpiry logs the certificate's names and end, with what happened
// (loaded, reloaded): at info, as a warning within two weeks of its end,
// an error past it.
func (c *certificates) tellExpiry(cert *tls.Certificate, what string) {
	leaf := cert.Leaf
	if leaf == nil {
		return
	}
	names := leaf.DNSNames
	if len(names) == 0 && leaf.Subject.CommonName != "" {
		names = []string{leaf.Subject.CommonName}
	}
	left := time.Until(leaf.NotAfter)
	e, msg := c.log.Info(), "TLS certificate "+what
	switch {
	case left <= 0:
		e, msg = c.log.Error(), msg+": it has expired, and browsers refuse it"
	case left < CertificateWarning:
		e, msg = c.log.Warn(), msg+": it expires within two weeks"
	}
	e.Str("names", strings.Join(names, ",")).Time("not_after", leaf.NotAfter).Str("file", c.files.TLSCertFile).Msg(msg)
}
