// Package proxy is edgeseg's request path: a fasthttp reverse proxy that
// forwards every request to one origin and personalizes page navigations
// on the way.
//
// Handler.ServeHTTP (handler.go) reads top to bottom as the design's
// request path: reserved paths (/_edgeseg/health, /metrics, /explain), request
// checks (no open proxy, no request smuggling), admission (a concurrency
// limit that sheds with 503 and Retry-After), the Personalizer's steps before
// the origin (consent, profile, signals, behavior, segments), the origin
// (a pooled HostClient that streams bodies), then the response: streamed
// through untouched, or — for a 200 HTML navigation with something to fill —
// buffered within rewrite.max_body_bytes, decoded, personalized and
// re-encoded. Every step that personalizes degrades to the origin's page on
// failure; only the origin can make a 502 or 504.
//
// Header hygiene follows net/http/httputil.ReverseProxy: hop-by-hop headers
// and those named in Connection are stripped both ways before edgeseg adds
// X-Forwarded-* of its own. Upgrade requests are relayed over a hijacked
// connection. Nothing from a fasthttp.RequestCtx outlives its request.
//
// Below the request path sit the connections: visitors' (connlimit.go: the
// connection limit, per-write timeouts, the first request head's checks,
// a PROXY protocol header from a load balancer, TLS between the two when
// edgeseg answers HTTPS, its certificate reloaded as it is renewed in
// tls.go) and the origin's (originconn.go: closed idle connections found
// before a request goes out, stray bytes, heads with bare-LF line ends
// mended, bodies that arrived whole). Server serves visitors;
// NewAdminServer serves metrics, purge and health on an address of their
// own, and NewRedirectServer sends plain HTTP visitors to https://.
package proxy
