package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// segmentNameRE is what a segment name must look like: it names files.
var segmentNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// cookieNameRE is an RFC 6265 token.
var cookieNameRE = regexp.MustCompile("^[!#$%&'*+\\-.^_`|~0-9A-Za-z]+$")

// Validate checks c and returns every problem at once as Problems, or nil.
// It reads nothing but c and changes nothing. Rules, path patterns and
// templates are compiled (and their errors reported) by the packages that
// own them, through Problemf.
func (c *Config) Validate() error {
	var ps Problems
	bad := func(key, format string, args ...any) {
		ps = append(ps, c.Problemf(key, format, args...))
	}
	positive := func(key string, d time.Duration) {
		if d <= 0 {
			bad(key, "must be a positive duration such as 30s, got %v", d)
		}
	}

	if err := checkListen(c.Listen); err != nil {
		bad("listen", "must be host:port or :port%s, got %q", err, c.Listen)
	}

	// server
	s := c.Server
	positive("server.read_timeout", s.ReadTimeout)
	positive("server.write_timeout", s.WriteTimeout)
	positive("server.idle_timeout", s.IdleTimeout)
	positive("server.queue_timeout", s.QueueTimeout)
	positive("server.shutdown_timeout", s.ShutdownTimeout)
	positive("server.upgrade_idle_timeout", s.UpgradeIdleTimeout)
	if s.WriteBufferBytes < 4<<10 || s.WriteBufferBytes > 1<<20 {
		bad("server.write_buffer_bytes", "must be between 4KiB and 1MiB, got %v", s.WriteBufferBytes)
	}
	if s.MaxHeaderBytes < 16<<10 || s.MaxHeaderBytes > 1<<20 {
		bad("server.max_header_bytes", "must be between 16KiB and 1MiB (real sites' cookies need 16KiB), got %v", s.MaxHeaderBytes)
	}
	if s.MaxBodyBytes <= 0 {
		bad("server.max_body_bytes", "must be positive, got %v", s.MaxBodyBytes)
	}
	if s.MaxConcurrency <= 0 {
		bad("server.max_concurrency", "must be positive, got %d", s.MaxConcurrency)
	}
	if s.MaxConnections <= 0 {
		bad("server.max_connections", "must be positive, got %d", s.MaxConnections)
	}
	if s.PprofListen != "" {
		if err := checkListen(s.PprofListen); err != nil {
			bad("server.pprof_listen", "must be host:port%s, got %q", err, s.PprofListen)
		}
	}
	if h := s.RequestIDHeader; h != "" && (!cookieNameRE.MatchString(h) || isHopHeader(h)) {
		bad("server.request_id_header", "must be a header name other than a connection's own, such as X-Request-ID, got %q", h)
	}
	if s.AdminListen != "" {
		if err := checkListen(s.AdminListen); err != nil {
			bad("server.admin_listen", "must be host:port%s, got %q", err, s.AdminListen)
		} else if s.AdminListen == c.Listen && !strings.HasSuffix(c.Listen, ":0") {
			bad("server.admin_listen", "is listen's address (%s): the admin endpoints need one of their own", c.Listen)
		}
	}
	if s.RedirectListen != "" {
		if err := checkListen(s.RedirectListen); err != nil {
			bad("server.redirect_listen", "must be host:port%s, got %q", err, s.RedirectListen)
		} else if s.TLSCertFile == "" {
			bad("server.redirect_listen", "sends visitors to https://, which listen answers only with server.tls_cert_file and tls_key_file set")
		} else if (s.RedirectListen == c.Listen || s.RedirectListen == s.AdminListen) && !strings.HasSuffix(s.RedirectListen, ":0") {
			bad("server.redirect_listen", "is another listener's address (%s): it needs one of its own", s.RedirectListen)
		}
	}
	if (s.TLSCertFile == "") != (s.TLSKeyFile == "") {
		bad("server.tls_cert_file", "and server.tls_key_file go together: set both")
	} else if s.TLSCertFile != "" {
		if _, err := s.Certificate(); err != nil {
			bad("server.tls_cert_file", "%v", err)
		}
	}
	for i, p := range s.TrustedProxies {
		if _, err := ParseCIDR(p); err != nil {
			bad(fmt.Sprintf("server.trusted_proxies[%d]", i), "%v", err)
		}
	}
	for i, p := range s.MetricsAllow {
		if _, err := ParseCIDR(p); err != nil {
			bad(fmt.Sprintf("server.metrics_allow[%d]", i), "%v", err)
		}
	}

	// origin
	o := c.Origin
	if o.URL == "" {
		bad("origin.url", "is required: the site to proxy, e.g. http://127.0.0.1:9000")
	} else if socket, ok := UnixSocket(o.URL); ok {
		switch {
		case socket == "":
			bad("origin.url", "must name a socket file, such as unix:/run/app.sock, got %q", o.URL)
		case o.HostHeader == "origin":
			bad("origin.host_header", "\"origin\" sends origin.url's host, which a unix socket has none of: name the host to send, or leave it empty for the visitor's")
		}
	} else if u, err := url.Parse(o.URL); err != nil {
		bad("origin.url", "is not a URL: %v", err)
	} else {
		switch {
		case u.Scheme != "http" && u.Scheme != "https":
			bad("origin.url", "scheme must be http or https (or unix: for a socket file), got %q", u.Scheme)
		case u.Host == "" || u.Hostname() == "":
			bad("origin.url", "must name a host, got %q", o.URL)
		case u.User != nil:
			bad("origin.url", "must not carry user info")
		case u.Port() != "" && !validPort(u.Port()):
			bad("origin.url", "port must be a number from 1 to 65535, got %q", u.Port())
		case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "":
			bad("origin.url", "must be scheme://host[:port] only (no path, query or fragment), got %q", o.URL)
		case isOwnAddress(u, c.Listen):
			bad("origin.url", "%q is edgeseg's own listen address (%s): every request would come back to it; name the site's server", o.URL, c.Listen)
		}
	}
	// The TLS settings, each only for an https origin.
	https := strings.HasPrefix(o.URL, "https://")
	for _, k := range []struct {
		key string
		set bool
	}{{"origin.ca_file", o.CAFile != ""}, {"origin.client_cert_file", o.ClientCertFile != "" || o.ClientKeyFile != ""}, {"origin.server_name", o.ServerName != ""}} {
		if k.set && !https {
			bad(k.key, "is for an https origin; origin.url is %q", o.URL)
		}
	}
	if https {
		if o.CAFile != "" {
			if _, err := o.CertPool(); err != nil {
				bad("origin.ca_file", "%v", err)
			}
		}
		if (o.ClientCertFile == "") != (o.ClientKeyFile == "") {
			bad("origin.client_cert_file", "and origin.client_key_file go together: set both")
		} else if _, err := o.ClientCertificates(); err != nil {
			bad("origin.client_cert_file", "%v", err)
		}
		if strings.ContainsAny(o.ServerName, " /:@[]") {
			bad("origin.server_name", "must be a host name, got %q", o.ServerName)
		}
	}
	if o.MaxConns <= 0 {
		bad("origin.max_conns", "must be positive, got %d", o.MaxConns)
	}
	if o.BufferBytes < 0 {
		bad("origin.buffer_bytes", "must be 0 (off) or more, got %v", o.BufferBytes)
	}
	positive("origin.max_conn_wait", o.MaxConnWait)
	positive("origin.idle_conn_timeout", o.IdleConnTimeout)
	positive("origin.dial_timeout", o.DialTimeout)
	positive("origin.read_timeout", o.ReadTimeout)
	positive("origin.write_timeout", o.WriteTimeout)
	positive("origin.health_window", o.HealthWindow)

	// rewrite
	if c.Rewrite.MaxBodyBytes <= 0 || c.Rewrite.MaxBodyBytes > 256<<20 {
		bad("rewrite.max_body_bytes", "must be between 1 byte and 256MiB, got %v", c.Rewrite.MaxBodyBytes)
	}
	if c.Rewrite.MaxBufferedBytes < 64<<10 {
		bad("rewrite.max_buffered_bytes", "must be at least 64KiB, got %v", c.Rewrite.MaxBufferedBytes)
	}
	if c.Rewrite.GzipLevel < 1 || c.Rewrite.GzipLevel > 9 {
		bad("rewrite.gzip_level", "must be 1 to 9, got %d", c.Rewrite.GzipLevel)
	}
	if c.Rewrite.BrotliLevel < 0 || c.Rewrite.BrotliLevel > 11 {
		bad("rewrite.brotli_level", "must be 0 to 11, got %d", c.Rewrite.BrotliLevel)
	}
	if c.Rewrite.QuickLevel < 1 || c.Rewrite.QuickLevel > 9 {
		bad("rewrite.quick_level", "must be 1 to 9, got %d", c.Rewrite.QuickLevel)
	}

	// log
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "auto", "json", "console":
	default:
		bad("log.format", "must be auto, json or console, got %q", c.Log.Format)
	}
	if c.Log.AccessSample < 1 {
		bad("log.access_sample", "must be 1 or more (1 logs every request), got %d", c.Log.AccessSample)
	}

	// signals
	if _, err := time.LoadLocation(c.Signals.TimeZone); err != nil || c.Signals.TimeZone == "" {
		bad("signals.time_zone", "unknown time zone %q: want an IANA name such as Europe/Berlin", c.Signals.TimeZone)
	}

	// consent
	switch c.Consent.Default {
	case "", "granted", "denied":
	default:
		bad("consent.default", "must be granted or denied, got %q", c.Consent.Default)
	}
	if c.Consent.Cookie != "" && !cookieNameRE.MatchString(c.Consent.Cookie) {
		bad("consent.cookie", "is not a valid cookie name: %q", c.Consent.Cookie)
	}

	// profile
	p := c.Profile
	if !cookieNameRE.MatchString(p.Cookie) {
		bad("profile.cookie", "is not a valid cookie name: %q", p.Cookie)
	}
	if !strings.HasPrefix(p.Path, "/") {
		bad("profile.path", "must start with /, got %q", p.Path)
	}
	positive("profile.max_age", p.MaxAge)
	positive("profile.visit_gap", p.VisitGap)
	if p.MaxCategories < 1 || p.MaxCategories > 50 {
		bad("profile.max_categories", "must be 1 to 50, got %d", p.MaxCategories)
	}
	if p.MaxProducts < 0 || p.MaxProducts > 50 {
		bad("profile.max_products", "must be 0 to 50, got %d", p.MaxProducts)
	}
	if p.MaxBytes < 400 || p.MaxBytes > 4000 {
		bad("profile.max_bytes", "must be 400 to 4000 (browsers drop cookies past 4096 bytes), got %d", p.MaxBytes)
	}
	if p.ConsiderationScore < 1 || p.DecisionScore <= p.ConsiderationScore {
		bad("profile.decision_score", "must be above profile.consideration_score, and both positive (got %d and %d)", p.DecisionScore, p.ConsiderationScore)
	}
	ids := map[string]bool{}
	for i, k := range p.Keys {
		key := fmt.Sprintf("profile.keys[%d]", i)
		if k.ID == "" {
			bad(key+".id", "is required")
		} else if ids[k.ID] {
			bad(key+".id", "duplicate key id %q", k.ID)
		}
		ids[k.ID] = true
		if k.Secret == "" && k.SecretEnv == "" {
			bad(key+".secret", "one of secret or secret_env is required")
		} else if k.Secret != "" && k.SecretEnv != "" {
			bad(key+".secret", "set secret or secret_env, not both")
		} else if k.Secret != "" && len(k.Secret) < 32 {
			bad(key+".secret", "must be at least 32 bytes, got %d", len(k.Secret))
		}
	}
	if p.SigningKey != "" && !ids[p.SigningKey] {
		bad("profile.signing_key", "names no key in profile.keys: %q", p.SigningKey)
	}

	// identity
	if c.Identity.Cookie != "" || c.Identity.Header != "" {
		if len(c.Identity.Algorithms) == 0 {
			bad("identity.algorithms", "is required when identity.cookie or identity.header is set (e.g. [RS256])")
		}
		for i, a := range c.Identity.Algorithms {
			if !knownAlg(a) {
				bad(fmt.Sprintf("identity.algorithms[%d]", i), "unknown algorithm %q: want HS256/384/512, RS256/384/512, PS256/384/512 or ES256/384/512", a)
			}
		}
		if len(c.Identity.Keys) == 0 {
			bad("identity.keys", "at least one key is required to verify the site's token")
		}
		for i, k := range c.Identity.Keys {
			n := 0
			for _, s := range []string{k.Secret, k.SecretEnv, k.PublicKeyFile} {
				if s != "" {
					n++
				}
			}
			if n != 1 {
				bad(fmt.Sprintf("identity.keys[%d]", i), "set exactly one of secret, secret_env or public_key_file")
			}
		}
	}

	// behavior
	for i, e := range c.Behavior.Events {
		key := fmt.Sprintf("behavior.events[%d]", i)
		if e.Match == "" {
			bad(key+".match", "is required, e.g. 'GET /product/{category}/{id}'")
		}
		if e.Event == "" {
			bad(key+".event", "is required, e.g. product_view")
		} else if !eventNameRE.MatchString(e.Event) {
			bad(key+".event", "must be lower case letters, digits and underscores, got %q", e.Event)
		}
	}

	// segments
	names := map[string]int{}
	for i, sg := range c.Segments {
		key := fmt.Sprintf("segments[%d]", i)
		if !segmentNameRE.MatchString(sg.Name) {
			bad(key+".name", "must be lower case letters, digits and dashes (it names template files), got %q", sg.Name)
		} else if j, dup := names[sg.Name]; dup {
			bad(key+".name", "duplicate segment %q (also segments[%d])", sg.Name, j)
		}
		names[sg.Name] = i
		if strings.TrimSpace(sg.Rule) == "" {
			bad(key+".rule", "is required")
		}
		if sg.Holdout < 0 || sg.Holdout > 0.9 {
			bad(key+".holdout", "must be between 0 and 0.9, got %v", sg.Holdout)
		}
	}

	// templates
	if c.Templates.Dir == "" {
		bad("templates.dir", "is required")
	}

	// caches
	for _, cs := range []struct {
		key string
		s   CacheSize
	}{{"cache.assignment", c.Cache.Assignment}, {"cache.blocks", c.Cache.Blocks}, {"cache.plans", c.Cache.Plans}, {"cache.codings", c.Cache.Codings}, {"cache.origin", c.Cache.Origin.CacheSize}} {
		if cs.s.MaxItems < 1 {
			bad(cs.key+".max_items", "must be positive, got %d", cs.s.MaxItems)
		}
		if cs.s.MaxBytes < 1<<10 {
			bad(cs.key+".max_bytes", "must be at least 1KiB, got %v", cs.s.MaxBytes)
		}
		if cs.s.TTL < 0 {
			bad(cs.key+".ttl", "must not be negative")
		}
	}
	for i, pth := range c.Cache.Origin.Paths {
		if !strings.HasPrefix(pth, "/") {
			bad(fmt.Sprintf("cache.origin.paths[%d]", i), "must start with /, got %q", pth)
		}
	}
	for _, names := range []struct {
		key, what string
		list      []string
	}{{"cache.origin.ignore_query", "a query parameter name", c.Cache.Origin.IgnoreQuery}, {"cache.origin.bypass_cookies", "a cookie name", c.Cache.Origin.BypassCookies}} {
		for i, q := range names.list {
			if name := strings.TrimSuffix(q, "*"); name == "" || strings.ContainsAny(name, "*&=?#;, ") {
				bad(fmt.Sprintf("%s[%d]", names.key, i), "must be %s, with at most a trailing *, got %q", names.what, q)
			}
		}
	}
	if c.Cache.Origin.StaleIfError < 0 {
		bad("cache.origin.stale_if_error", "must not be negative")
	}
	if c.Cache.Origin.StaleWhileRevalidate < 0 {
		bad("cache.origin.stale_while_revalidate", "must not be negative")
	}
	if c.Cache.Origin.MaxObjectBytes <= 0 {
		bad("cache.origin.max_object_bytes", "must be positive")
	}

	// preview
	if c.Preview.Secret != "" && len(c.Preview.Secret) < 32 {
		bad("preview.secret", "must be at least 32 bytes, got %d", len(c.Preview.Secret))
	}

	// events
	if c.Events.Sink == "" {
		bad("events.sink", "must be stdout, stderr, off or a file path")
	}
	if c.Events.QueueSize < 1 {
		bad("events.queue_size", "must be positive, got %d", c.Events.QueueSize)
	}
	if c.Events.MaxFileBytes < 1<<10 {
		bad("events.max_file_bytes", "must be at least 1KiB, got %v", c.Events.MaxFileBytes)
	}
	if c.Events.MaxBackups < 0 {
		bad("events.max_backups", "must not be negative")
	}
	for i, ce := range c.Events.ClientMap {
		key := fmt.Sprintf("events.client_map[%d]", i)
		if !eventNameRE.MatchString(ce.Name) {
			bad(key+".name", "must be lower case letters, digits and underscores, got %q", ce.Name)
		}
		if !eventNameRE.MatchString(ce.Event) {
			bad(key+".event", "must be lower case letters, digits and underscores, got %q", ce.Event)
		}
	}
	if c.Events.ClientEvents && len(c.Events.ClientMap) == 0 {
		bad("events.client_map", "is required when events.client_events is on: list the events pages may send")
	}
	if c.Events.ClientEventsPerMinute < 1 {
		bad("events.client_events_per_minute", "must be positive")
	}

	if len(ps) > 0 {
		return ps
	}
	return nil
}

var eventNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,40}$`)

func knownAlg(a string) bool {
	switch a {
	case "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512":
		return true
	}
	return false
}

// ParseCIDR reads a CIDR or a bare IP (taken as a /32 or /128).
func ParseCIDR(s string) (*net.IPNet, error) {
	if strings.Contains(s, "/") {
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			return nil, fmt.Errorf("invalid CIDR %q", s)
		}
		return n, nil
	}
	ip := net.ParseIP(s)
	if ip == nil {
		return nil, fmt.Errorf("invalid IP or CIDR %q", s)
	}
	bits := 128
	if ip4 := ip.To4(); ip4 != nil {
		ip, bits = ip4, 32
	}
	return &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)}, nil
}

// Value returns the key material of k, reading SecretEnv through getenv.
func (k Key) Value(getenv func(string) string) string {
	if k.SecretEnv != "" {
		return getenv(k.SecretEnv)
	}
	return k.Secret
}

// isOwnAddress reports whether origin names the address edgeseg listens on:
// the same port, on the listen host, or on a loopback address when edgeseg
// listens on every interface, or localhost when on the usual loopback one.
func isOwnAddress(origin *url.URL, listen string) bool {
	lhost, lport, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	port := origin.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[origin.Scheme]
	}
	if port != lport {
		return false
	}
	host := origin.Hostname()
	if strings.EqualFold(host, lhost) {
		return true
	}
	ip, lip := net.ParseIP(host), net.ParseIP(lhost)
	isLocalhost := func(h string, ip net.IP) bool {
		return strings.EqualFold(h, "localhost") || ip.Equal(net.IPv4(127, 0, 0, 1)) || ip.Equal(net.IPv6loopback)
	}
	switch {
	case lhost == "" || lip != nil && lip.IsUnspecified():
		return isLocalhost(host, ip) || ip != nil && (ip.IsLoopback() || ip.IsUnspecified())
	case isLocalhost(lhost, lip):
		return isLocalhost(host, ip)
	}
	return false
}

// checkListen reports what is wrong with a listen address: "" when it is
// not host:port at all, the port's fault when that is out of range (a
// typo such as :80800 would otherwise pass here and fail only at start).
func checkListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	switch {
	case err != nil:
		return errors.New("")
	case port != "0" && !validPort(port):
		return errors.New(" (a port from 1 to 65535, or 0 for any)")
	}
	return nil
}

// validPort reports whether port is a decimal number from 1 to 65535.
func validPort(port string) bool {
	n, err := strconv.ParseUint(port, 10, 16)
	return err == nil && n > 0
}

// CertPool returns the certificates an https origin's may be signed by:
// the system's and, with CAFile, those it holds.
func (o Origin) CertPool() (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if o.CAFile == "" {
		return pool, nil
	}
	pem, err := os.ReadFile(o.CAFile)
	if err != nil {
		return nil, err
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", o.CAFile)
	}
	return pool, nil
}

// UnixSocket returns the socket file an origin.url of the form
// unix:/run/app.sock (or unix:///run/app.sock) names, and whether it has
// that form; the path is empty when it names none.
func UnixSocket(originURL string) (path string, ok bool) {
	rest, ok := strings.CutPrefix(originURL, "unix:")
	if !ok {
		return "", false
	}
	if p, found := strings.CutPrefix(rest, "//"); found {
		rest = p
	}
	return rest, true
}

// isHopHeader reports whether name is a header a proxy does not forward,
// or one that frames or routes the request.
func isHopHeader(name string) bool {
	switch strings.ToLower(name) {
	case "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
		"host", "content-length", "cookie":
		return true
	}
	return false
}

// Certificate loads the certificate and key edgeseg answers HTTPS with.
func (s Server) Certificate() (*tls.Certificate, error) {
	return loadPair(s.TLSCertFile, s.TLSKeyFile)
}

// loadPair loads a PEM certificate and its key, an error naming both
// files.
func loadPair(certFile, keyFile string) (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("%s, %s: %w", certFile, keyFile, err)
	}
	return &cert, nil
}

// ClientCertificates returns the certificate edgeseg presents to an https
// origin, none without ClientCertFile.
func (o Origin) ClientCertificates() ([]tls.Certificate, error) {
	if o.ClientCertFile == "" {
		return nil, nil
	}
	cert, err := loadPair(o.ClientCertFile, o.ClientKeyFile)
	if err != nil {
		return nil, err
	}
	return []tls.Certificate{*cert}, nil
}
