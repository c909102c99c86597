package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/edgeseg/edgeseg/cache"
	"github.com/edgeseg/edgeseg/config"
	"github.com/edgeseg/edgeseg/proxy"
	"github.com/edgeseg/edgeseg/segments"
)

// errHelp is returned after printing usage on request: by the top level,
// and by a command's flag set for -h (the flag package's own error, so
// that "edgeseg serve -h" exits 0 as "edgeseg help" does).
var errHelp = flag.ErrHelp

// Main is one invocation of edgeseg: ParseFlags reads the command line, Run
// does the work, Close releases what Run opened. Tests build a Main, point
// Stdout/Stderr at buffers, and read Addr once Ready is closed.
type Main struct {
	Stdin  io.Reader // read by report --events -
	Stdout io.Writer
	Stderr io.Writer
	// Environ is the process environment (for EDGESEG_* overrides and
	// secret_env keys).
	Environ []string
	// Now is the clock; tests may replace it.
	Now func() time.Time

	cmd  string
	args []string

	// Ready is closed once serve or demo listens; Addr is then set,
	// AdminAddr with server.admin_listen and RedirectAddr with
	// server.redirect_listen.
	Ready        chan struct{}
	Addr         string
	AdminAddr    string
	RedirectAddr string

	// demo is set by the demo command: a local run, where warnings about
	// production settings (placeholder secrets, file limits) are noise.
	demo bool

	mu      sync.Mutex
	closers []func() error
}

// NewMain returns a Main wired to the process's stdio and environment.
func NewMain() *Main {
	return &Main{
		Stdin:   os.Stdin,
		Stdout:  os.Stdout,
		Stderr:  os.Stderr,
		Environ: os.Environ(),
		Now:     time.Now,
		Ready:   make(chan struct{}),
	}
}

const usage = `edgeseg — edge personalization proxy

Usage:
  edgeseg serve         --config FILE                 run the proxy
  edgeseg demo          [--config FILE] [--listen A]  run the proxy on the bundled demo shop
  edgeseg validate      --config FILE                 check config, rules and templates
  edgeseg explain       --config FILE --url URL [--header K:V]... [--cookie N=V]...
  edgeseg preview-token --config FILE --segment S [--ttl 1h] [--url PAGE]
  edgeseg report        --events FILE... [--since T] [--until T] [--format text|json|csv]
  edgeseg version                                     print the build

Run "edgeseg COMMAND -h" for a command's flags.
`

// ParseFlags takes the command name; each command parses its own flags.
func (m *Main) ParseFlags(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(m.Stderr, usage)
		return errors.New("no command given")
	}
	m.cmd, m.args = args[0], args[1:]
	switch m.cmd {
	case "help", "-h", "--help":
		fmt.Fprint(m.Stdout, usage)
		return errHelp
	case "serve", "demo", "validate", "explain", "preview-token", "report", "version", "--version":
		return nil
	}
	fmt.Fprint(m.Stderr, usage)
	return fmt.Errorf("unknown command %q", m.cmd)
}

// Run runs the command until it is done or ctx is cancelled.
func (m *Main) Run(ctx context.Context) error {
	switch m.cmd {
	case "serve":
		return m.runServe(ctx, m.args)
	case "demo":
		return m.runDemo(ctx, m.args)
	case "validate":
		return m.runValidate(ctx, m.args)
	case "explain":
		return m.runExplain(ctx, m.args)
	case "preview-token":
		return m.runPreviewToken(ctx, m.args)
	case "report":
		return m.runReport(ctx, m.args)
	case "version", "--version":
		fmt.Fprintln(m.Stdout, readBuild())
		return nil
	}
	return fmt.Errorf("unknown command %q", m.cmd)
}

// Close releases everything Run opened, last opened first.
func (m *Main) Close() error {
	m.mu.Lock()
	cs := m.closers
	m.closers = nil
	m.mu.Unlock()
	var errs []error
	for i := len(cs) - 1; i >= 0; i-- {
		if err := cs[i](); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (m *Main) onClose(f func() error) {
	m.mu.Lock()
	m.closers = append(m.closers, f)
	m.mu.Unlock()
}

func (m *Main) getenv(name string) string {
	for _, kv := range m.Environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}

func (m *Main) flagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("edgeseg "+name, flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	return fs
}

// loadConfig loads path, with EDGESEG_CONFIG as the default path. A
// config with problems has its segment rules compiled too, so that the
// error lists theirs with the rest.
func (m *Main) loadConfig(path string) (*config.Config, error) {
	c, err := m.checkConfig(path)
	var ps config.Problems
	if err == nil || c == nil || !errors.As(err, &ps) {
		return c, err
	}
	var rps config.Problems
	if _, rerr := segments.New(c); errors.As(rerr, &rps) {
		ps = ps.Merge(rps)
		ps.Sort()
	}
	return nil, ps
}

// checkConfig is loadConfig returning, with the config's problems, the
// config as read (config.Check).
func (m *Main) checkConfig(path string) (*config.Config, error) {
	if path == "" {
		path = m.getenv("EDGESEG_CONFIG")
	}
	if path == "" {
		return nil, errors.New("--config FILE is required (or set EDGESEG_CONFIG)")
	}
	return config.Check(path, m.Environ)
}

// newLogger builds a zerolog logger from cfg writing to w (m.Stderr, or a
// lineWriter in front of it): JSON, or console when stderr is a TTY.
func (m *Main) newLogger(cfg config.Log, w io.Writer) zerolog.Logger {
	console := cfg.Format == "console"
	if cfg.Format == "auto" {
		if f, ok := m.Stderr.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			console = true
		}
	}
	if console {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	lvl, err := zerolog.ParseLevel(cfg.Level)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger()
}

// runServe runs the proxy with the config named by --config.
func (m *Main) runServe(ctx context.Context, args []string) error {
	fs := m.flagSet("serve")
	cfgPath := fs.String("config", "", "config file (YAML)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := m.loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	return m.serve(ctx, cfg)
}

// serve wires the packages from cfg and serves until ctx is done.
func (m *Main) serve(ctx context.Context, cfg *config.Config) error {
	log := m.newLogger(cfg.Log, m.Stderr)
	setMemoryLimit(&log)
	set := metrics.NewSet()
	bi := readBuild()
	bi.register(set)
	var access *zerolog.Logger
	if cfg.Log.Access {
		lw := newLineWriter(m.Stderr, set.GetOrCreateCounter("edgeseg_log_lines_dropped_total"))
		defer lw.Close()
		a := m.newLogger(cfg.Log, lw)
		access = &a
	}
	origin, err := proxy.NewOrigin(cfg.Origin)
	if err != nil {
		return err
	}
	var p *proxy.Personalizer
	if cfg.Personalize {
		if p, err = m.newPersonalizer(ctx, cfg, &log, set); err != nil {
			return err
		}
	} else {
		log.Warn().Msg("personalize: false: edgeseg runs as a plain reverse proxy; config changes apply after a restart")
	}
	oc, err := cache.NewOrigin(cfg.Cache.Origin, set)
	if err != nil {
		return err
	}
	h, err := proxy.New(proxy.Options{Config: cfg, Origin: origin, Log: &log, AccessLog: access, Metrics: set, Personalizer: p, OriginCache: oc})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if errors.Is(err, syscall.EADDRINUSE) {
		how := "set listen in the config, or EDGESEG_LISTEN"
		if m.demo {
			how = "choose another with --listen, such as --listen 127.0.0.1:8081"
		}
		return fmt.Errorf("listen: %s is taken by another program: %s (%w)", cfg.Listen, how, err)
	}
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := proxy.NewServer(cfg, h, &log)
	if err := srv.Err(); err != nil {
		ln.Close()
		return err
	}
	if cfg.Server.TLSCertFile != "" {
		m.reloadCertificateOnHUP(srv)
	}
	// Past the open file limit, accepting fails and visitors wait, where
	// past max_connections they would get a 503 at once.
	need := uint64(cfg.Server.MaxConnections + cfg.Origin.MaxConns + 64)
	if limit := openFileLimit(); !m.demo && limit > 0 && limit < need {
		log.Warn().Uint64("open_file_limit", limit).Int("max_connections", cfg.Server.MaxConnections).Int("origin_max_conns", cfg.Origin.MaxConns).
			Msg("the open file limit is below server.max_connections + origin.max_conns: raise it (ulimit -n, --ulimit nofile=) or lower server.max_connections")
	}
	if cfg.Server.PprofListen != "" {
		if err := m.servePprof(cfg.Server.PprofListen, &log); err != nil {
			return err
		}
	}
	if cfg.Server.AdminListen != "" {
		if err := m.serveAdmin(cfg, h, &log); err != nil {
			return err
		}
	}
	if cfg.Server.RedirectListen != "" {
		if err := m.serveRedirect(cfg, ln.Addr().String(), h, &log); err != nil {
			return err
		}
	}
	m.Addr = ln.Addr().String()
	scheme := "http"
	if cfg.Server.TLSCertFile != "" {
		scheme = "https"
	}
	log.Info().Str("listen", m.Addr).Str("scheme", scheme).Str("origin", cfg.Origin.URL).Str("version", bi.version).Str("revision", bi.revision).Msg("edgeseg serving")
	close(m.Ready)
	go func() {
		// A wrong origin.url, or an origin not up yet, is told at once
		// rather than by the first visitor's error page.
		if err := h.CheckOrigin(); err != nil {
			log.Warn().Err(err).Str("origin", cfg.Origin.URL).Msg("the origin does not answer: visitors get an error page until it does")
		}
	}()

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info().Msg("shutting down: draining in-flight requests")
	if err := srv.Shutdown(); err != nil {
		log.Warn().Err(err).Msg("shutdown did not finish cleanly")
	}
	<-errc
	log.Info().Msg("stopped")
	return nil
}

// reloadCertificateOnHUP has srv read its TLS certificate again on each
// SIGHUP (certbot's --deploy-hook "pkill -HUP edgeseg"), besides its own
// look at the files once a minute.
func (m *Main) reloadCertificateOnHUP(srv *proxy.Server) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-hup:
				srv.ReloadCertificate()
			case <-done:
				return
			}
		}
	}()
	m.onClose(func() error {
		signal.Stop(hup)
		close(done)
		return nil
	})
}

// serveAdmin serves metrics, purge and health on server.admin_listen.
func (m *Main) serveAdmin(cfg *config.Config, h *proxy.Handler, log *zerolog.Logger) error {
	addr, err := m.serveBeside("server.admin_listen", cfg.Server.AdminListen, proxy.NewAdminServer(cfg, h, log))
	if err != nil {
		return err
	}
	m.AdminAddr = addr
	log.Info().Str("listen", addr).Msg("serving /_edgeseg/metrics, /_edgeseg/purge and /_edgeseg/health on the admin address only")
	return nil
}

// serveRedirect sends plain HTTP visitors to https:// (server.redirect_listen)
// on listening, the address the proxy listens on (its port: listen's, or
// the one chosen for :0).
func (m *Main) serveRedirect(cfg *config.Config, listening string, h *proxy.Handler, log *zerolog.Logger) error {
	addr, err := m.serveBeside("server.redirect_listen", cfg.Server.RedirectListen, proxy.NewRedirectServer(cfg, listening, h, log))
	if err != nil {
		return err
	}
	m.RedirectAddr = addr
	log.Info().Str("listen", addr).Msg("redirecting plain HTTP to https://")
	return nil
}

// serveBeside serves srv on addr (the config's key) beside the proxy,
// until m closes, and returns the address it listens on.
func (m *Main) serveBeside(key, addr string, srv *fasthttp.Server) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	go func() { _ = srv.Serve(ln) }()
	m.onClose(srv.Shutdown)
	return ln.Addr().String(), nil
}

// servePprof serves Go's profiles on addr, for diagnosing a live process.
func (m *Main) servePprof(addr string, log *zerolog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("server.pprof_listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	m.onClose(srv.Close)
	log.Warn().Str("listen", ln.Addr().String()).Msg("serving /debug/pprof")
	return nil
}
