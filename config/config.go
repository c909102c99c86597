package config

import (
	"time"
)

// Config is the whole of edgeseg's configuration. The zero value is not useful:
// start from Default() (Load does) so every key has its documented default.
type Config struct {
	// Listen is the address the proxy serves on. Default ":8080".
	Listen string `yaml:"listen"`
	// Personalize turns every personalization step on or off. Off, edgeseg
	// is a plain reverse proxy: no cookie, no signals, no slots (a switch
	// for incidents, applied on reload, and the baseline of the
	// benchmarks). Default true.
	Personalize bool `yaml:"personalize"`

	Server    Server    `yaml:"server"`
	Origin    Origin    `yaml:"origin"`
	Rewrite   Rewrite   `yaml:"rewrite"`
	Log       Log       `yaml:"log"`
	Signals   Signals   `yaml:"signals"`
	Consent   Consent   `yaml:"consent"`
	Profile   Profile   `yaml:"profile"`
	Identity  Identity  `yaml:"identity"`
	Behavior  Behavior  `yaml:"behavior"`
	Segments  []Segment `yaml:"segments"`
	Templates Templates `yaml:"templates"`
	Cache     Cache     `yaml:"cache"`
	Preview   Preview   `yaml:"preview"`
	Events    Events    `yaml:"events"`

	// file is the path Load read, for messages; empty for a Config built in code.
	file string
	// lines maps a key path ("origin.url", "segments[2].rule") to its line.
	lines map[string]int
	// env maps a key path set by ApplyEnv to the variable that set it.
	env map[string]string
}

// Server configures the listening side: what edgeseg accepts from clients.
type Server struct {
	// ReadTimeout bounds reading a request's head (and the first 8 KiB of
	// its body), then each read of the rest of its body, as nginx's
	// client_body_timeout does: an upload may last longer in all. Past it:
	// 408. Default 30s.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WriteTimeout bounds each write to the visitor, as nginx's
	// send_timeout does: a visitor that stops reading is let go, while a
	// response may last longer in all (a download, an event stream).
	// Default 60s.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// IdleTimeout closes keep-alive connections idle this long. Default 120s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxHeaderBytes is the largest request head (request line, headers and
	// cookies) accepted; larger requests get 431. Default 32KiB; at least 16KiB.
	MaxHeaderBytes ByteSize `yaml:"max_header_bytes"`
	// MaxBodyBytes is the largest request body accepted; larger get 413.
	// Bodies are streamed to the origin, never held whole. Default 64MiB.
	MaxBodyBytes ByteSize `yaml:"max_body_bytes"`
	// WriteBufferBytes is the buffer each response is written through: a
	// response up to this size (head and body) leaves in one write. It is
	// held only while a response is being written, so at most
	// MaxConcurrency of them. Default 64KiB; 4KiB to 1MiB.
	WriteBufferBytes ByteSize `yaml:"write_buffer_bytes"`
	// MaxConcurrency is how many requests are served at once; past it new
	// requests wait up to QueueTimeout and then get 503 with Retry-After.
	// Default 4096.
	MaxConcurrency int `yaml:"max_concurrency"`
	// MaxConnections bounds the client connections open at once, idle
	// keep-alive ones included (each costs ~20KiB while idle); past it a
	// new connection gets 503 with Retry-After and is closed. Default 20000.
	MaxConnections int `yaml:"max_connections"`
	// QueueTimeout is how long a request waits for a free slot. Default 1s.
	QueueTimeout time.Duration `yaml:"queue_timeout"`
	// ShutdownTimeout bounds the graceful drain on SIGTERM/SIGINT. Default 30s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// TrustedProxies lists the CIDRs (or bare IPs) of load balancers in front of
	// edgeseg. Only from those is an incoming X-Forwarded-For / -Proto kept and
	// appended to; from anyone else it is replaced. Default none.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// MetricsAllow lists the CIDRs (or bare IPs) that may read
	// /_edgeseg/metrics; to anyone else, and to any request relayed by a
	// proxy (one with X-Forwarded-For or Forwarded), it is a 404: metrics
	// name the segments and their sizes. Default loopback and the private
	// ranges (10/8, 172.16/12, 192.168/16, fc00::/7), where scrapers run.
	MetricsAllow []string `yaml:"metrics_allow"`
	// Via adds "Via: 1.1 edgeseg" both ways. Default false: nginx, by
	// default (gzip_proxied off), does not compress its answers to requests
	// that carry Via.
	Via bool `yaml:"via"`
	// ProxyProtocol: connections from the load balancers in
	// TrustedProxies (from any peer when it is empty) begin with a PROXY
	// protocol header, version 1 or 2, as HAProxy in TCP mode, an AWS NLB
	// or a cloud TCP proxy sends it; the visitor's address is taken from
	// it. A connection without a valid one is closed. Default false.
	ProxyProtocol bool `yaml:"proxy_protocol"`
	// RequestIDHeader, when set (X-Request-ID, say), names each request
	// in this header to the origin and in the answer to the visitor, and
	// in the access line (request_id), so they can be matched: the id a
	// proxy in trusted_proxies sent is kept, any other request is given
	// one. Default "" (off: requests go to the origin without one).
	RequestIDHeader string `yaml:"request_id_header"`
	// UpgradeIdleTimeout closes a relayed WebSocket/Upgrade connection after
	// this long without traffic either way. Default 5m.
	UpgradeIdleTimeout time.Duration `yaml:"upgrade_idle_timeout"`
	// Name is sent as the Server header of edgeseg's own responses; the
	// origin's Server header is passed through. Default "edgeseg".
	Name string `yaml:"name"`
	// PprofListen, when set, serves Go's /debug/pprof profiles on this
	// address (keep it on loopback). Default "" (off).
	PprofListen string `yaml:"pprof_listen"`
	// AdminListen, when set, serves /_edgeseg/metrics and
	// /_edgeseg/purge on this address only, to whoever reaches it (keep
	// it off the load balancer), and /_edgeseg/health too; on the main
	// address they are then a 404 to everyone. For a load balancer that
	// passes TCP through from a private address (a Kubernetes Service with
	// externalTrafficPolicy: Cluster), where every visitor would be in
	// metrics_allow. Default "" (served on the main address to
	// metrics_allow).
	AdminListen string `yaml:"admin_listen"`
	// TLSCertFile and TLSKeyFile, PEM files (the certificate chain, leaf
	// first, and its key), make edgeseg answer HTTPS on listen instead of
	// HTTP: for a CDN that reaches its origin over HTTPS, or a server with
	// nothing in front. HTTP/1.1 only (ALPN offers no h2), TLS 1.2 and
	// up. The files are read again within a minute of changing (a
	// renewal by certbot or cert-manager); a pair that does not load is
	// logged and the one before it kept. Relative to the config file.
	// Default "" (plain HTTP).
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// RedirectListen, with TLSCertFile, answers plain HTTP on this address
	// (":80") with a 308 to the same URL in https on listen's port, but
	// for ACME's HTTP-01 challenges (/.well-known/acme-challenge/), which
	// go to the origin. Default "" (off).
	RedirectListen string `yaml:"redirect_listen"`
}

// Origin configures the upstream site edgeseg sits in front of.
type Origin struct {
	// URL of the origin: scheme, host and optional port ("http://127.0.0.1:9000"),
	// or "unix:" and the path of a socket file an application server beside
	// edgeseg listens on, spoken to in plain HTTP ("unix:/run/app.sock";
	// relative to the config file). A path, query or user info is an error.
	// Required.
	URL string `yaml:"url"`
	// HostHeader is the Host sent to the origin. Empty keeps the client's Host
	// (what a site behind a load balancer usually expects); "origin" sends the
	// origin URL's host; anything else is sent as is. When set, Location and
	// Content-Location values pointing at that host or the URL's are made
	// relative, so the origin's redirects keep the visitor on edgeseg (not
	// when the visitor asked for that very host), and a Set-Cookie whose
	// Domain the visitor's host is not within loses the Domain (a browser
	// would refuse it). Default "".
	HostHeader string `yaml:"host_header"`
	// MaxConns caps open connections to the origin. Default 512.
	MaxConns int `yaml:"max_conns"`
	// BufferBytes: a response whose Content-Length is at most this is read
	// from the origin whole before it is sent on, so its connection (and,
	// behind it, an application server's worker) is free again at once,
	// however slowly the visitor reads, as nginx's proxy_buffering does in
	// memory. Larger bodies, and bodies of unknown length (a chunked
	// stream, an event stream), are streamed as they come and hold their
	// connection until read. Buffered bodies share rewrite.max_buffered_bytes,
	// at most half of it; past that they are streamed. 0 streams every body.
	// Default 1MiB.
	BufferBytes ByteSize `yaml:"buffer_bytes"`
	// MaxConnWait is how long a request waits for a free origin connection
	// when MaxConns are busy, before a 503. Default 2s.
	MaxConnWait time.Duration `yaml:"max_conn_wait"`
	// IdleConnTimeout closes idle pooled origin connections. Default 60s.
	IdleConnTimeout time.Duration `yaml:"idle_conn_timeout"`
	// DialTimeout bounds connecting to the origin. Default 5s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// ReadTimeout bounds waiting for each read from the origin (headers and
	// each body read), not the whole response: a body may keep coming for
	// longer. Past it the visitor gets 504, or a body cut short once it has
	// begun. Default 30s.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WriteTimeout bounds sending the request to the origin. Default 30s.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// CAFile is a PEM file of certificates to trust for an https origin,
	// besides the system's: the CA of an origin whose certificate a private
	// CA signed (an internal service), or that certificate itself. Relative
	// to the config file. Default "" (the system's only).
	CAFile string `yaml:"ca_file"`
	// ClientCertFile and ClientKeyFile, PEM files, are the certificate and
	// key edgeseg presents to an https origin that asks for one (mutual
	// TLS, as internal services behind a service mesh or a zero-trust
	// gateway require). Relative to the config file. Default "" (none).
	ClientCertFile string `yaml:"client_cert_file"`
	ClientKeyFile  string `yaml:"client_key_file"`
	// ServerName is the name an https origin is asked for in the TLS
	// handshake (SNI), and its certificate checked against. Default "":
	// origin.url's host. Set it when origin.url names the origin by an
	// address its certificate is not for (https://10.0.0.5 serving
	// shop.example's certificate).
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify disables TLS certificate checks for an https origin.
	// Only for testing. Default false.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
	// HealthWindow: /_edgeseg/health answers 200 while the origin answered
	// (any status) within this window, or a probe now succeeds. Default 30s.
	HealthWindow time.Duration `yaml:"health_window"`
}

// Rewrite configures which responses edgeseg may change.
type Rewrite struct {
	// MaxBodyBytes is the largest HTML body (after decompression) that is
	// personalized. Larger bodies are streamed through untouched. Default 4MiB.
	MaxBodyBytes ByteSize `yaml:"max_body_bytes"`
	// Stream rewrites a page that the origin streams (no Content-Length) as
	// it arrives, gzip and brotli decoded and re-encoded on the way, so the
	// visitor gets its head as early as without edgeseg; false buffers it
	// whole like any other. A page that has arrived whole when its head is
	// read is rewritten whole either way. Default true.
	Stream bool `yaml:"stream"`
	// MaxBufferedBytes bounds the memory all rewrites in flight hold at once
	// (the page as read, decoded, rewritten and re-encoded, until it is
	// written to a visitor who may read slowly; 1MiB for each gzip or
	// brotli coder a streamed body keeps), and pages being read into the
	// origin cache. A page arriving past it is streamed through
	// unpersonalized, and not kept. Default 256MiB; at least 64KiB.
	MaxBufferedBytes ByteSize `yaml:"max_buffered_bytes"`
	// GzipLevel is the level used to re-compress a rewritten page that
	// cache.codings keeps, compressed once for all the visitors it goes to
	// (1-9). Default 5.
	GzipLevel int `yaml:"gzip_level"`
	// BrotliLevel is the quality used to re-compress a rewritten page that
	// cache.codings keeps (0-11). Default 4.
	BrotliLevel int `yaml:"brotli_level"`
	// QuickLevel is the gzip level and brotli quality used to re-compress
	// a rewritten page compressed anew on every request: one that streams,
	// one that differs per request or per visitor, and any page the first
	// time it is made (1-9). Default 1: on real pages, brotli 4 took three
	// times the CPU of gzip 5 and gzip 5 twice that of gzip 1, each for
	// some 12-15% fewer bytes.
	QuickLevel int `yaml:"quick_level"`
	// AskUncompressed asks the origin for the pages edgeseg is to fill
	// uncompressed (Accept-Encoding: identity), as nginx's sub_filter
	// does, and compresses them itself for visitors that accept gzip
	// (else brotli): no page is decompressed, and the origin compresses
	// none of them, for the bandwidth between the origin and edgeseg. For
	// an origin on the same host or network. Whatever then comes back
	// unfilled is compressed by edgeseg too when it is text (HTML, CSS,
	// JSON, JavaScript, XML, SVG) of 256 bytes or more: a page with
	// nothing to fill, an error page, a page past max_body_bytes, a
	// navigation to JSON or a feed (one that streams, as it arrives). A
	// response marked no-transform, a range, an image or anything the
	// origin compressed anyway goes out as the origin sent it.
	// Default false: ask as the visitor asks.
	AskUncompressed bool `yaml:"ask_uncompressed"`
}

// Log configures the structured log.
type Log struct {
	// Level: debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// Format: json, console or auto (console on a terminal, JSON otherwise).
	// Default auto.
	Format string `yaml:"format"`
	// Access writes one line per request. Default true.
	Access bool `yaml:"access"`
	// AccessSample keeps one in N access lines of 2xx/3xx responses; 4xx/5xx
	// are always logged. Default 1 (all).
	AccessSample int `yaml:"access_sample"`
}

// Signals configures how context signals are derived from a request.
type Signals struct {
	// TimeZone is the IANA zone for hour, weekday and daypart. Default "UTC".
	TimeZone string `yaml:"time_zone"`
	// GeoCountryHeader names the header holding the visitor's ISO country
	// code, set by the CDN (CF-IPCountry, CloudFront-Viewer-Country). Empty
	// disables geo. It is read only from trusted proxies when any are
	// configured. Default "".
	GeoCountryHeader string `yaml:"geo_country_header"`
	// GeoRegionHeader names the header holding the region. Default "".
	GeoRegionHeader string `yaml:"geo_region_header"`
	// SearchHosts, SocialHosts and EmailHosts classify the Referer host
	// (a suffix match on whole labels). Defaults cover the large engines and networks.
	SearchHosts []string `yaml:"search_hosts"`
	SocialHosts []string `yaml:"social_hosts"`
	EmailHosts  []string `yaml:"email_hosts"`
	// PaidMediums are utm_medium values that make the referrer class "paid".
	// Default cpc, ppc, paid, paidsearch, display, cpm.
	PaidMediums []string `yaml:"paid_mediums"`
	// Cookies and Headers list the request cookies and headers rules may read
	// with cookie("name") and header("name"). Others read as "". Default none.
	Cookies []string `yaml:"cookies"`
	Headers []string `yaml:"headers"`
	// Query lists query parameters rules may read with query("name");
	// utm_* are always available. Default none.
	Query []string `yaml:"query"`
}

// Consent configures what edgeseg may store about a visitor.
type Consent struct {
	// RespectGPC treats Sec-GPC: 1 as no consent. Default true.
	RespectGPC bool `yaml:"respect_gpc"`
	// RespectDNT treats DNT: 1 as no consent. Default false.
	RespectDNT bool `yaml:"respect_dnt"`
	// Cookie is the site's consent cookie. Empty: no consent cookie is read.
	// Default "".
	Cookie string `yaml:"cookie"`
	// Granted lists values of Cookie that grant consent (exact match, or a
	// substring when the value contains it, e.g. "personalization:1"). Default ["1","true","yes","granted","all"].
	Granted []string `yaml:"granted"`
	// Default is whether consent is assumed when no signal says otherwise
	// (no Cookie set, no GPC): "granted" or "denied". Default "granted"
	// when Cookie is empty, "denied" otherwise.
	Default string `yaml:"default"`
	// ContextWithoutConsent keeps context signals (device, time, referrer,
	// geo) for visitors without consent, so they can still get context
	// segments. Default true.
	ContextWithoutConsent bool `yaml:"context_without_consent"`
}

// Profile configures the visitor profile and its cookie.
type Profile struct {
	// Cookie is the profile cookie's name. Default "edgeseg".
	Cookie string `yaml:"cookie"`
	// Domain of the cookie, for sharing across subdomains. Default "" (host only).
	Domain string `yaml:"domain"`
	// Path of the cookie. Default "/".
	Path string `yaml:"path"`
	// MaxAge of the cookie and of the token inside. Default 8760h (365 days).
	MaxAge time.Duration `yaml:"max_age"`
	// Secure marks the cookie Secure on every response. Off, it is still
	// Secure on a request that reached the site over HTTPS (TLS, or the
	// proxy in front saying so with X-Forwarded-Proto or Forwarded), so
	// only plain-http visits (a local demo) get it without. Default true.
	Secure bool `yaml:"secure"`
	// Keys are the HMAC keys that verify profiles, by key id. At least one
	// with 32+ bytes; empty runs with a random key per process (profiles then
	// do not survive a restart or cross replicas, and a warning says so).
	Keys []Key `yaml:"keys"`
	// SigningKey is the id of the key that signs new profiles. Default: the
	// first key.
	SigningKey string `yaml:"signing_key"`
	// VisitGap starts a new visit after this long without a request. Default 30m.
	VisitGap time.Duration `yaml:"visit_gap"`
	// MaxCategories bounds the per-category counters kept. Default 12.
	MaxCategories int `yaml:"max_categories"`
	// MaxProducts bounds the recently viewed products kept. Default 6.
	MaxProducts int `yaml:"max_products"`
	// MaxBytes is the encoded cookie's size bound; data is pruned to fit.
	// Default 1200; at most 4000.
	MaxBytes int `yaml:"max_bytes"`
	// ConsiderationScore and DecisionScore are the engagement scores at which
	// the journey stage moves from awareness to consideration and to decision.
	// A cart add or checkout start also moves to decision. Defaults 5 and 15.
	ConsiderationScore int `yaml:"consideration_score"`
	DecisionScore      int `yaml:"decision_score"`
	// ToOrigin sends the profile and preview cookies on to the origin, for
	// a site that reads the profile itself. Off, they are taken out of the
	// requests the origin gets (the site's own cookies pass as sent): the
	// origin never set them, and an origin cache that skips requests
	// carrying cookies would otherwise stop caching for every visitor
	// edgeseg gave one. Default false.
	ToOrigin bool `yaml:"to_origin"`
}

// Key is one named secret.
type Key struct {
	// ID names the key (the JWT "kid").
	ID string `yaml:"id"`
	// Secret is the key material. Prefer SecretEnv in production.
	Secret string `yaml:"secret"`
	// SecretEnv names an environment variable holding the key material.
	SecretEnv string `yaml:"secret_env"`
}

// Identity configures reading the site's own login token.
type Identity struct {
	// Cookie holding the site's login JWT. Default "" (off).
	Cookie string `yaml:"cookie"`
	// Header reads the token from this header instead ("Authorization" takes
	// a Bearer token). Default "".
	Header string `yaml:"header"`
	// Algorithms the token may be signed with (HS256, RS256, ES256, ...). The
	// token's alg must be one of these and match its key's type.
	Algorithms []string `yaml:"algorithms"`
	// Keys verify the token: HMAC secrets (Secret/SecretEnv) or PEM public
	// keys (PublicKeyFile), by kid.
	Keys []IdentityKey `yaml:"keys"`
	// Claims lists the claims exposed to rules as claim("name"). Others are
	// never read. Default none.
	Claims []string `yaml:"claims"`
	// Issuer and Audience, when set, must match the token.
	Issuer   string `yaml:"issuer"`
	Audience string `yaml:"audience"`
}

// IdentityKey is a key that verifies the site's login token.
type IdentityKey struct {
	ID            string `yaml:"id"`
	Secret        string `yaml:"secret"`
	SecretEnv     string `yaml:"secret_env"`
	PublicKeyFile string `yaml:"public_key_file"`
}

// Behavior maps requests to behavior events.
type Behavior struct {
	// Events are tried in order; the first match wins. A page navigation that
	// matches none counts as a page_view.
	Events []EventMapping `yaml:"events"`
	// CountPrefetched counts a page fetched ahead of a navigation
	// (speculation rules, <link rel=prefetch>, Turbo's prefetch on hover)
	// once the visitor is shown it: the navigation then makes no request
	// of its own, so such a page carries a small script that tells
	// edgeseg when it is shown (POST /_edgeseg/seen), where the page's
	// CSP lets it run. Default true.
	CountPrefetched bool `yaml:"count_prefetched"`
}

// EventMapping maps a request to an event.
type EventMapping struct {
	// Match is "METHOD /path/{capture}/..." ; METHOD may be "*". A capture
	// named category or id fills the event's category or product. A trailing
	// "/*" matches any rest of the path. Captures named value become the event's value.
	Match string `yaml:"match"`
	// Event is the event name: page_view, category_view, product_view,
	// cart_add, checkout_start, purchase, search, or a custom name.
	Event string `yaml:"event"`
	// Conversion logs the event as a conversion for uplift reports.
	Conversion bool `yaml:"conversion"`
	// Category sets a fixed category when the pattern captures none.
	Category string `yaml:"category"`
}

// Segment is one audience rule.
type Segment struct {
	// Name is the segment's id: lower case letters, digits and dashes. It names
	// the template file for each slot (templates/SLOT/NAME.hbs).
	Name string `yaml:"name"`
	// Priority orders segments: higher wins a slot. Ties keep file order.
	Priority int `yaml:"priority"`
	// Rule is an expression over the signals that decides membership.
	Rule string `yaml:"rule"`
	// Holdout is the fraction (0 to 0.9) of members shown the default content,
	// for measuring uplift. Default 0.
	Holdout float64 `yaml:"holdout"`
	// Enabled turns the segment off without deleting it. Default true.
	Enabled *bool `yaml:"enabled"`
	// Data is handed to this segment's templates as segment.data.
	Data map[string]any `yaml:"data"`
	// Description is free text for the people who read and edit the config;
	// edgeseg does not use it.
	Description string `yaml:"description"`
}

// IsEnabled reports whether the segment is on (Enabled unset means on).
func (s Segment) IsEnabled() bool { return s.Enabled == nil || *s.Enabled }

// Templates configures the editors' template directory.
type Templates struct {
	// Dir holds one folder per slot with one NAME.hbs per segment. Default
	// "templates" next to the config file.
	Dir string `yaml:"dir"`
	// Watch reloads templates when files change. Default true.
	Watch bool `yaml:"watch"`
	// DataLayer injects <script>window.edgeseg={...}</script> before </head>
	// for the site's analytics tag, with the page's CSP nonce (of its
	// headers or its <meta http-equiv>), and not where the page's CSP would
	// block it. Default false.
	DataLayer bool `yaml:"data_layer"`
	// DebugHeader adds X-Edgeseg-Segments to responses, and
	// X-Edgeseg-Slot-Problems to pages whose slots kept their default though
	// a segment had a block for them (previews always get the latter).
	// Default false.
	DebugHeader bool `yaml:"debug_header"`
}

// Cache configures edgeseg's in-memory caches.
type Cache struct {
	Assignment CacheSize `yaml:"assignment"`
	Blocks     CacheSize `yaml:"blocks"`
	// Plans caches where the slots are in each distinct origin page (by a
	// hash of its bytes), so the same page is not tokenized again. The same
	// bounds apply, apart, to the pages kept per host and path whose plan
	// the pages that differ from them only in attribute values reuse.
	Plans CacheSize `yaml:"plans"`
	// Codings keeps compressed pages decoded and personalized pages
	// re-encoded (gzip, br, deflate), by a hash of the bytes they were made
	// from: the same origin page, and the same personalized page for a whole
	// segment, are decompressed and compressed once rather than on every
	// request.
	Codings CacheSize   `yaml:"codings"`
	Origin  OriginCache `yaml:"origin"`
}

// CacheSize sizes one ristretto cache.
type CacheSize struct {
	// MaxItems is the expected number of entries (counters are 10x this).
	MaxItems int `yaml:"max_items"`
	// MaxBytes bounds the entries' total cost in bytes.
	MaxBytes ByteSize `yaml:"max_bytes"`
	// TTL of an entry; 0 keeps entries until evicted. For cache.origin, the
	// longest freshness a page is given, whatever its origin allows.
	TTL time.Duration `yaml:"ttl"`
}

// OriginCache configures the opt-in cache of unpersonalized origin responses.
type OriginCache struct {
	CacheSize `yaml:",inline"`
	// Paths lists path patterns whose GET responses may be cached
	// ("/", "/category/*"). Empty disables the cache. Default none.
	Paths []string `yaml:"paths"`
	// MaxObjectBytes is the largest response body cached. Default 1MiB.
	MaxObjectBytes ByteSize `yaml:"max_object_bytes"`
	// DefaultTTL applies when the origin sends no freshness; 0 caches only
	// responses that say how long they are fresh. Default 0.
	DefaultTTL time.Duration `yaml:"default_ttl"`
	// StaleIfError is how long past its freshness a kept page may still
	// answer when the origin fails (refused, reset, timed out, or answered
	// 500, 502, 503 or 504), instead of the error; never for a page sent
	// with must-revalidate, proxy-revalidate or s-maxage, which forbid it
	// (RFC 9111 §5.2.2). An origin's stale-if-error directive (RFC 5861)
	// is honoured too, the longer window winning. Default 0.
	StaleIfError time.Duration `yaml:"stale_if_error"`
	// StaleWhileRevalidate is how long past its freshness a kept page is
	// still served at once while it is fetched anew in the background
	// (RFC 5861), so visitors do not wait for the origin each time a hot
	// page expires. An origin's own stale-while-revalidate and
	// stale-if-error directives are honoured too, the longer window
	// winning; the same directives forbid both. Default 0.
	StaleWhileRevalidate time.Duration `yaml:"stale_while_revalidate"`
	// IgnoreQuery names query parameters left out of the cache key, so a
	// page reached with tracking parameters ("utm_*", "gclid", "fbclid":
	// a new value on every ad click) is one entry, not one per click. A
	// trailing * matches a prefix. Only for parameters the origin's page
	// does not depend on. Default none.
	IgnoreQuery []string `yaml:"ignore_query"`
	// BypassCookies names cookies (a trailing * for a prefix) whose
	// presence keeps a request away from the cache, neither answered from
	// it nor filling it: sessions of signed-in users ("sessionid",
	// "wordpress_logged_in_*"), whose pages an origin may mark cacheable
	// by mistake. Default none.
	BypassCookies []string `yaml:"bypass_cookies"`
}

// Preview configures editors' preview tokens and /_edgeseg/explain.
type Preview struct {
	// Secret signs preview tokens. Empty disables previews. Use SecretEnv in
	// production.
	Secret    string `yaml:"secret"`
	SecretEnv string `yaml:"secret_env"`
	// Param is the query parameter carrying a token. Default "edgeseg_preview".
	Param string `yaml:"param"`
	// Cookie carrying a token. Default "edgeseg_preview".
	Cookie string `yaml:"cookie"`
}

// Events configures exposure, conversion and visit events.
type Events struct {
	// Sink is "stdout", "stderr", "off", or a file path. Default "off".
	Sink string `yaml:"sink"`
	// MaxFileBytes rotates the sink file past this size. Default 100MiB.
	MaxFileBytes ByteSize `yaml:"max_file_bytes"`
	// MaxBackups keeps this many rotated files. Default 5.
	MaxBackups int `yaml:"max_backups"`
	// QueueSize bounds events waiting to be written; when full, events are
	// dropped and counted, never the response. Default 8192.
	QueueSize int `yaml:"queue_size"`
	// ClientEvents enables POST /_edgeseg/event, for engagement the proxy
	// cannot see (scroll depth, video completion, clicks on a block).
	// Default false.
	ClientEvents bool `yaml:"client_events"`
	// ClientMap lists the client events accepted and the behavior event
	// each becomes. Others are refused.
	ClientMap []ClientEvent `yaml:"client_map"`
	// ClientEventsPerMinute rate-limits client events per visitor. Default 60.
	ClientEventsPerMinute int `yaml:"client_events_per_minute"`
}

// ClientEvent maps an event a page sends to a behavior event.
type ClientEvent struct {
	// Name is what the page sends: {"event": "scroll_75"}.
	Name string `yaml:"name"`
	// Event is the behavior event it counts as (windows, rules, stage).
	Event string `yaml:"event"`
	// Conversion logs it as a conversion for uplift reports.
	Conversion bool `yaml:"conversion"`
}

// Default returns a Config with every documented default and no origin.
func Default() *Config {
	return &Config{
		Listen:      ":8080",
		Personalize: true,
		Server: Server{
			ReadTimeout:        30 * time.Second,
			WriteTimeout:       60 * time.Second,
			IdleTimeout:        120 * time.Second,
			MaxHeaderBytes:     32 << 10,
			WriteBufferBytes:   64 << 10,
			MaxBodyBytes:       64 << 20,
			MaxConcurrency:     4096,
			MaxConnections:     20000,
			MetricsAllow:       []string{"127.0.0.0/8", "::1", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"},
			QueueTimeout:       time.Second,
			ShutdownTimeout:    30 * time.Second,
			UpgradeIdleTimeout: 5 * time.Minute,
			Name:               "edgeseg",
		},
		Origin: Origin{
			MaxConns:        512,
			BufferBytes:     1 << 20,
			MaxConnWait:     2 * time.Second,
			IdleConnTimeout: 60 * time.Second,
			DialTimeout:     5 * time.Second,
			ReadTimeout:     30 * time.Second,
			WriteTimeout:    30 * time.Second,
			HealthWindow:    30 * time.Second,
		},
		Rewrite: Rewrite{MaxBodyBytes: 4 << 20, Stream: true, MaxBufferedBytes: 256 << 20, GzipLevel: 5, BrotliLevel: 4, QuickLevel: 1},
		Log:     Log{Level: "info", Format: "auto", Access: true, AccessSample: 1},
		Signals: Signals{
			TimeZone: "UTC",
			SearchHosts: []string{"google.com", "bing.com", "duckduckgo.com", "yahoo.com",
				"baidu.com", "yandex.ru", "yandex.com", "ecosia.org", "search.brave.com", "startpage.com"},
			SocialHosts: []string{"facebook.com", "instagram.com", "t.co", "twitter.com", "x.com",
				"linkedin.com", "lnkd.in", "pinterest.com", "reddit.com", "tiktok.com", "youtube.com",
				"threads.net", "bsky.app"},
			EmailHosts:  []string{"mail.google.com", "outlook.live.com", "mail.yahoo.com", "mail.proton.me"},
			PaidMediums: []string{"cpc", "ppc", "paid", "paidsearch", "paid_search", "display", "cpm"},
		},
		Consent: Consent{
			RespectGPC:            true,
			Granted:               []string{"1", "true", "yes", "granted", "all"},
			ContextWithoutConsent: true,
		},
		Profile: Profile{
			Cookie:             "edgeseg",
			Path:               "/",
			MaxAge:             365 * 24 * time.Hour,
			Secure:             true,
			VisitGap:           30 * time.Minute,
			MaxCategories:      12,
			MaxProducts:        6,
			MaxBytes:           1200,
			ConsiderationScore: 5,
			DecisionScore:      15,
		},
		Templates: Templates{Dir: "templates", Watch: true},
		Behavior:  Behavior{CountPrefetched: true},
		Cache: Cache{
			Assignment: CacheSize{MaxItems: 100_000, MaxBytes: 32 << 20, TTL: 10 * time.Minute},
			Blocks:     CacheSize{MaxItems: 50_000, MaxBytes: 64 << 20, TTL: 10 * time.Minute},
			Plans:      CacheSize{MaxItems: 10_000, MaxBytes: 16 << 20}, // no TTL: a plan is valid as long as its bytes
			Codings:    CacheSize{MaxItems: 10_000, MaxBytes: 64 << 20}, // no TTL: as for plans
			Origin: OriginCache{
				CacheSize:      CacheSize{MaxItems: 10_000, MaxBytes: 256 << 20},
				MaxObjectBytes: 1 << 20,
			},
		},
		Preview: Preview{Param: "edgeseg_preview", Cookie: "edgeseg_preview"},
		Events: Events{
			Sink:                  "off",
			MaxFileBytes:          100 << 20,
			MaxBackups:            5,
			QueueSize:             8192,
			ClientEventsPerMinute: 60,
		},
	}
}

// File returns the path the Config was loaded from, or "".
func (c *Config) File() string { return c.file }

// Line returns the line in the file where key was written, or 0.
func (c *Config) Line(key string) int { return c.lines[key] }
