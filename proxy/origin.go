package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/edgeseg/edgeseg/config"
)

// Origin is the upstream site: a pooled fasthttp.HostClient with the timeouts
// from config, and a record of when it last answered, for health checks.
// It is safe for concurrent use.
type Origin struct {
	client   *fasthttp.HostClient
	scheme   string
	host     string // host[:port] of the origin URL, for host_header: origin
	lastSeen atomic.Int64
	// closings is until when (Unix ns) every reused connection is looked at
	// before a request goes out on it (originConn.SetWriteDeadline): set
	// when one turned out closed by the origin.
	closings atomic.Int64
	// addr, dial and dialTimeout: how a connection to the origin is made
	// (connect).
	addr        string
	dial        func(addr string) (net.Conn, error)
	dialTimeout time.Duration
	// askedForCert is set once the origin asked for a client certificate
	// edgeseg has none of (origin.client_cert_file).
	askedForCert atomic.Bool
	// strayHook, when set (OnStrayBytes), is called when a connection is
	// found holding bytes the origin sent past the end of an answer.
	strayHook atomic.Pointer[func()]
}

// OnStrayBytes has f called each time a connection turns out to hold bytes
// the origin sent past the end of an answer (errStrayBytes): an origin bug
// the request path otherwise hides, a GET going out again on another
// connection.
func (o *Origin) OnStrayBytes(f func()) { o.strayHook.Store(&f) }

// closingsLookout is how long every reused connection is looked at after
// one turned out closed by the origin.
const closingsLookout = time.Second

// maxIdempotentTries is how many times an idempotent request goes out on
// pooled connections the origin turns out to have closed.
const maxIdempotentTries = 4

// originReadBuffer is the size of the origin client's read buffer.
const originReadBuffer = 64 << 10

// NewOrigin builds the origin client from cfg. The client streams response
// bodies (fasthttp#1120): Do returns after the headers, and the caller reads
// and closes Response.BodyStream.
func NewOrigin(cfg config.Origin) (*Origin, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("origin: %w", err)
	}
	isTLS := u.Scheme == "https"
	addr := u.Host
	if u.Port() == "" {
		if isTLS {
			addr = net.JoinHostPort(u.Hostname(), "443")
		} else {
			addr = net.JoinHostPort(u.Hostname(), "80")
		}
	}
	dialTimeout := cfg.DialTimeout
	// Dual stack: an origin at an IPv6 address, or a name with only AAAA
	// records, is reached too.
	dial := func(addr string) (net.Conn, error) { return fasthttp.DialDualStackTimeout(addr, dialTimeout) }
	if socket, ok := config.UnixSocket(cfg.URL); ok {
		// An application server beside edgeseg, listening on a socket
		// file; spoken to in plain HTTP.
		addr = "unix:" + socket
		dial = func(string) (net.Conn, error) { return net.DialTimeout("unix", socket, dialTimeout) }
		// Asked for "localhost" when no other name is known (an HTTP/1.0
		// request without a Host, the health probe).
		u.Scheme, u.Host = "http", "localhost"
	}
	o := &Origin{scheme: u.Scheme, host: u.Host, addr: addr, dial: dial, dialTimeout: dialTimeout}
	o.client = &fasthttp.HostClient{
		Addr:  addr,
		IsTLS: isTLS,
		Dial: func(addr string) (net.Conn, error) {
			c, err := dial(addr)
			if err != nil {
				return nil, err
			}
			// fasthttp puts TLS over what this returns.
			oc := newOriginConn(c, cfg.ReadTimeout, !isTLS)
			oc.closings = &o.closings
			oc.stray = &o.strayHook
			return oc, nil
		},
		MaxConns:                  cfg.MaxConns,
		MaxIdemponentCallAttempts: maxIdempotentTries,
		MaxConnWaitTimeout:        cfg.MaxConnWait,
		MaxIdleConnDuration:       cfg.IdleConnTimeout,
		// No ReadTimeout: fasthttp's bounds a whole response and costs a
		// deadline update per request; the connections Dial returns bound
		// each read by cfg.ReadTimeout instead (originConn).
		WriteTimeout:                  cfg.WriteTimeout,
		StreamResponseBody:            true,
		DisablePathNormalizing:        true,
		NoDefaultUserAgentHeader:      true,
		DisableHeaderNamesNormalizing: false,
		ReadBufferSize:                originReadBuffer,
		WriteBufferSize:               16 << 10,
		SecureErrorLogMessage:         true,
		// Retry only requests that can be sent again: idempotent, with the
		// body still in memory, and only for a connection the origin closed
		// while it sat idle in the pool. Each try takes a dead connection out
		// of the pool (an origin that reloads closes every idle one at
		// once); a few, not more: an origin that drops the connection for
		// this very request must not get it again and again.
		RetryIfErr: func(req *fasthttp.Request, attempts int, err error) (bool, bool) {
			if !isStaleConn(err) {
				return false, false
			}
			o.sawClosed()
			return false, attempts < maxIdempotentTries && !req.IsBodyStream() && isIdempotent(req)
		},
	}
	if isTLS {
		roots, err := cfg.CertPool()
		if err != nil {
			return nil, fmt.Errorf("origin.ca_file: %w", err)
		}
		certs, err := cfg.ClientCertificates()
		if err != nil {
			return nil, fmt.Errorf("origin.client_cert_file: %w", err)
		}
		name := u.Hostname()
		if cfg.ServerName != "" {
			name = cfg.ServerName
		}
		var getCert func(*tls.CertificateRequestInfo) (*tls.Certificate, error)
		if len(certs) == 0 {
			getCert = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				// The origin will refuse the handshake, with an alert fasthttp
				// reports as a closed connection: tell the failure apart.
				o.askedForCert.Store(true)
				return &tls.Certificate{}, nil
			}
		}
		o.client.TLSConfig = &tls.Config{ServerName: name, RootCAs: roots, Certificates: certs, GetClientCertificate: getCert, InsecureSkipVerify: cfg.InsecureSkipVerify, MinVersion: tls.VersionTLS12} //nolint:gosec // opt-in, documented as testing only
	}
	return o, nil
}

// Do sends req to the origin and fills resp's header; resp's body is a stream
// the caller must close.
func (o *Origin) Do(req *fasthttp.Request, resp *fasthttp.Response) error {
	if o.client.IsTLS {
		// The visitor's request came to edgeseg over http (TLS ends in front
		// of it); the client refuses a request whose scheme is not its own.
		req.URI().SetScheme("https")
	}
	// A connection the origin closed while it was idle is found before
	// anything is sent (errClosedIdle), and dropped; the request goes out
	// on the next, with its body, unread (fasthttp lets go of a body stream
	// once it has tried to write it). Each try takes a dead connection out
	// of the pool, which holds at most MaxConns.
	body, size := req.BodyStream(), req.Header.ContentLength()
	err := o.client.Do(req, resp)
	for try := 0; errors.Is(err, errClosedIdle) && try < o.client.MaxConns; try++ {
		o.sawClosed() // others may be closed too
		if body != nil {
			req.SetBodyStream(body, size)
		}
		err = o.client.Do(req, resp)
	}
	if err == nil {
		o.lastSeen.Store(time.Now().UnixNano())
		if resp.StatusCode() == fasthttp.StatusSwitchingProtocols {
			// Upgrades go out on connections of their own (serveUpgrade):
			// this request did not ask to switch. fasthttp has pooled the
			// connection, now in another protocol: it is dropped when next
			// taken, the request then going out on another.
			if c := connOf(resp); c != nil {
				c.switched.Store(true)
			}
			return errUnaskedSwitch
		}
	} else if isStaleConn(err) {
		o.sawClosed()
	}
	return err
}

// errUnaskedSwitch is Do's answer for a 101 Switching Protocols to a
// request that asked for no upgrade: relayed, the visitor would wait on a
// protocol nobody speaks.
var errUnaskedSwitch = errors.New("the origin switched protocols on a request that asked for no upgrade")

// sawClosed notes a connection the origin had closed: for a while, every
// reused one is looked at before a request goes out on it.
func (o *Origin) sawClosed() {
	o.closings.Store(time.Now().Add(closingsLookout).UnixNano())
}

// LastSeen returns when the origin last answered a request, or the zero time.
func (o *Origin) LastSeen() time.Time {
	if n := o.lastSeen.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// Addr returns the origin's dial address.
func (o *Origin) Addr() string { return o.client.Addr }

func isIdempotent(req *fasthttp.Request) bool {
	return req.Header.IsGet() || req.Header.IsHead() || req.Header.IsOptions() || req.Header.IsPut() || req.Header.IsDelete()
}

// isStaleConn reports errors that happen when a pooled keep-alive connection
// was closed by the origin before edgeseg used it.
func isStaleConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, fasthttp.ErrConnectionClosed)
}

// originFailure classifies an origin error into the status a visitor gets
// and a short cause for the log.
func originFailure(err error) (status int, cause string) {
	var netErr net.Error
	switch {
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout),
		errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return fasthttp.StatusGatewayTimeout, "timeout"
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		return fasthttp.StatusServiceUnavailable, "no free origin connection"
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return fasthttp.StatusRequestEntityTooLarge, "request body too large"
	case errors.Is(err, syscall.ECONNREFUSED):
		return fasthttp.StatusBadGateway, "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, fasthttp.ErrConnectionClosed),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fasthttp.StatusBadGateway, "connection reset"
	case strings.Contains(err.Error(), "no such host"):
		return fasthttp.StatusBadGateway, "dns"
	case certificateForAnotherName(err):
		return fasthttp.StatusBadGateway, "tls certificate name"
	case untrustedCertificate(err):
		return fasthttp.StatusBadGateway, "tls certificate"
	case isTLSFailure(err):
		return fasthttp.StatusBadGateway, "tls"
	}
	return fasthttp.StatusBadGateway, "origin error"
}

// connect opens a connection to the origin as requests do, with the TLS
// handshake for an https one, and closes it.
func (o *Origin) connect() error {
	c, err := o.open()
	if err != nil {
		return err
	}
	_ = c.Close()
	if o.askedForCert.Load() {
		// The origin takes the handshake, and refuses the connection
		// once it has read edgeseg's empty certificate.
		return errAskedForCert
	}
	return nil
}

// open dials the origin outside the client's pool (an upgrade's relay,
// the check at start), with the TLS handshake done for an https one.
func (o *Origin) open() (net.Conn, error) {
	c, err := o.dial(o.addr) // a socket file's origin too
	if err != nil {
		return nil, err
	}
	if !o.client.IsTLS {
		return c, nil
	}
	tc := tls.Client(c, o.client.TLSConfig.Clone())
	_ = tc.SetDeadline(time.Now().Add(o.dialTimeout))
	if err := tc.Handshake(); err != nil {
		_ = c.Close()
		return nil, err
	}
	_ = tc.SetDeadline(time.Time{})
	return tc, nil
}

// errAskedForCert: the origin asked for a client certificate edgeseg has
// none of.
var errAskedForCert = errors.New("the origin asked for a client certificate")

// failure is originFailure, knowing what the origin's TLS asked for: a
// connection an origin that asked for a client certificate closed, with
// none to give it, is that.
func (o *Origin) failure(err error) (status int, cause string) {
	status, cause = originFailure(err)
	if cause == "connection reset" && o.askedForCert.Load() || errors.Is(err, errAskedForCert) {
		cause = "tls client certificate"
	}
	return status, cause
}

// untrustedCertificate reports whether err is an https origin's
// certificate failing its check: signed by a CA edgeseg does not trust,
// expired (one for another name is certificateForAnotherName's, asked
// first).
func untrustedCertificate(err error) bool {
	var verify *tls.CertificateVerificationError
	var authority x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	return errors.As(err, &verify) || errors.As(err, &authority) || errors.As(err, &invalid)
}

// certificateForAnotherName reports whether err is an https origin's
// certificate being for a name other than the one edgeseg asked for.
func certificateForAnotherName(err error) bool {
	var host x509.HostnameError
	return errors.As(err, &host)
}

// isTLSFailure reports whether err is a TLS handshake's other than a
// certificate's: an origin that does not speak TLS on its https port, or
// refuses edgeseg's handshake.
func isTLSFailure(err error) bool {
	var record tls.RecordHeaderError
	var alert tls.AlertError
	return errors.As(err, &record) || errors.As(err, &alert) || strings.Contains(err.Error(), "tls: ")
}

// originFailureFix says what to do about an origin failure of cause, when
// edgeseg's config can mend it.
func originFailureFix(cause string) string {
	switch cause {
	case "tls certificate":
		return "the origin's certificate is not trusted: set origin.ca_file to the CA certificate that signed it (origin.insecure_skip_verify: true skips the check, for testing only)"
	case "tls client certificate":
		return "the origin asks for a client certificate (mutual TLS): set origin.client_cert_file and origin.client_key_file"
	case "tls certificate name":
		return "the origin's certificate is for another name than origin.url's host: set origin.server_name to the name it is for (the site's own, say)"
	case "tls":
		return "the TLS handshake with the origin failed: check that origin.url's port speaks https, or use http://"
	}
	return ""
}
