package proxy

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/edgeseg/edgeseg/config"
)

// Server is the fasthttp server around a Handler, configured from
// config.Server.
type Server struct {
	srv          *fasthttp.Server
	shutdown     time.Duration
	maxConns     int
	writeTimeout time.Duration
	name         string
	metrics      *proxyMetrics
	log          *zerolog.Logger
	// proxyProtocol, proxyFrom: server.proxy_protocol, from
	// server.trusted_proxies (any peer when empty).
	proxyProtocol bool
	proxyFrom     netSet
	// certs answer visitors in HTTPS (server.tls_cert_file); tlsErr is
	// why they did not load, for Serve to return.
	certs  *certificates
	tlsErr error

	mu     sync.Mutex
	ln     net.Listener // what Serve serves, closed by Shutdown
	closed bool         // Shutdown has been called
}

// NewServer builds the listening server for h.
func NewServer(cfg *config.Config, h *Handler, log *zerolog.Logger) *Server {
	s := &fasthttp.Server{
		Handler:      h.ServeHTTP,
		ErrorHandler: h.serveParseError,
		Name:         cfg.Server.Name,
		// The request head must fit the read buffer: this is the header limit.
		ReadBufferSize:  int(cfg.Server.MaxHeaderBytes),
		WriteBufferSize: int(cfg.Server.WriteBufferBytes),
		ReadTimeout:     cfg.Server.ReadTimeout,
		// No WriteTimeout: it bounds a whole response. The connections
		// the limiter hands out bound each write instead (limitedConn).
		IdleTimeout:                  cfg.Server.IdleTimeout,
		MaxRequestBodySize:           int(cfg.Server.MaxBodyBytes),
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		NoDefaultContentType:         true,
		NoDefaultDate:                false,
		CloseOnShutdown:              true,
		ReduceMemoryUsage:            true,
		Logger:                       fasthttpLogger{log},
		SecureErrorLogMessage:        true,
	}
	srv := &Server{srv: s, shutdown: cfg.Server.ShutdownTimeout, maxConns: cfg.Server.MaxConnections, writeTimeout: cfg.Server.WriteTimeout,
		name: cfg.Server.Name, metrics: h.metrics, log: log, proxyProtocol: cfg.Server.ProxyProtocol, proxyFrom: h.trusted}
	if cfg.Server.TLSCertFile != "" {
		if log == nil {
			nop := zerolog.Nop()
			log = &nop
		}
		certs, err := newCertificates(cfg.Server, log, h.metrics.set)
		if err != nil {
			srv.tlsErr = err
		} else {
			srv.certs = certs
		}
	}
	return srv
}

// NewAdminServer builds the server for server.admin_listen, answered by
// h.ServeAdmin: a few scrapers and operators, not visitors.
func NewAdminServer(cfg *config.Config, h *Handler, log *zerolog.Logger) *fasthttp.Server {
	return &fasthttp.Server{
		Handler:      h.ServeAdmin,
		Name:         cfg.Server.Name,
		ReadTimeout:  cfg.Server.ReadTimeout,
		WriteTimeout: cfg.Server.WriteTimeout,
		IdleTimeout:  cfg.Server.IdleTimeout,
		Concurrency:  adminConcurrency,
		Logger:       fasthttpLogger{log},
	}
}

// adminConcurrency bounds the admin server's connections.
const adminConcurrency = 64

// ReloadCertificate reads server.tls_cert_file and tls_key_file again
// now, as a deploy hook's SIGHUP after a renewal asks; a pair that does
// not load is logged and the one before kept. Without TLS it does nothing.
func (s *Server) ReloadCertificate() {
	if s.certs != nil {
		s.certs.reload()
	}
}

// Err is what keeps the server from serving, which Serve would return: its
// TLS certificate did not load.
func (s *Server) Err() error { return s.tlsErr }

// Serve accepts connections on ln until Shutdown, at most
// server.max_connections open at once.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed || s.tlsErr != nil {
		s.mu.Unlock()
		_ = ln.Close()
		return s.tlsErr
	}
	s.ln = ln
	s.mu.Unlock()
	err := s.srv.Serve(newConnLimiter(ln, s))
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections and waits for in-flight requests to
// finish, up to server.shutdown_timeout.
//
// Shutdown called before Serve has started (a SIGTERM right after start)
// makes Serve return at once: fasthttp alone would not know the listener
// yet, and Serve would then serve on.
func (s *Server) Shutdown() error {
	s.mu.Lock()
	s.closed = true
	ln := s.ln
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), s.shutdown)
	defer cancel()
	err := s.srv.ShutdownWithContext(ctx)
	if ln != nil {
		_ = ln.Close() // already closed when fasthttp had it
	}
	return err
}

// serveParseError answers requests fasthttp could not read, with an
// access line (and a request id) as every other answer has.
func (h *Handler) serveParseError(ctx *fasthttp.RequestCtx, err error) {
	x := exchange{start: time.Now(), cause: "unreadable request"}
	if h.requestIDs != nil {
		x.requestID = h.requestIDs.id(&ctx.Request.Header, false) // a head that did not parse vouches for nothing
	}
	defer h.finish(ctx, &x)
	h.metrics.badRequests.Inc()
	lingerOnClose(ctx)
	var small *fasthttp.ErrSmallBuffer
	var netErr net.Error
	switch {
	case errors.As(err, &small):
		h.plainError(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge, "431 Request Header Fields Too Large")
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		h.plainError(ctx, fasthttp.StatusRequestEntityTooLarge, "413 Request Entity Too Large")
	case errors.Is(err, errBareLF):
		h.plainError(ctx, fasthttp.StatusBadRequest, "400 Bad Request: the request's lines must end in CRLF (\\r\\n), and its head in an empty line")
	case errors.Is(err, errTLSHandshake):
		h.plainError(ctx, fasthttp.StatusBadRequest, "400 Bad Request: this port speaks plain HTTP, not HTTPS")
	case errors.Is(err, errNotHTTP):
		h.plainError(ctx, fasthttp.StatusBadRequest, "400 Bad Request: a request line is a method, a target and a version, separated by spaces")
	case errors.As(err, &netErr) && netErr.Timeout():
		h.plainError(ctx, fasthttp.StatusRequestTimeout, "408 Request Timeout")
	default:
		h.plainError(ctx, fasthttp.StatusBadRequest, "400 Bad Request")
	}
	h.log.Debug().Err(err).Str("remote", ctx.RemoteIP().String()).Int("status", ctx.Response.StatusCode()).Msg("unreadable request")
}

// fasthttpLogger sends fasthttp's own messages to zerolog at debug level:
// they are about single broken connections, not the service.
type fasthttpLogger struct{ log *zerolog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	if l.log != nil {
		l.log.Debug().Msgf(format, args...)
	}
}
