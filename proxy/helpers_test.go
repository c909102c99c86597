package proxy

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/rs/zerolog"

	"github.com/edgeseg/edgeseg/cache"
	"github.com/edgeseg/edgeseg/config"
)

// testProxy is edgeseg in front of a real loopback origin.
type testProxy struct {
	t       *testing.T
	h       *Handler
	srv     *Server
	addr    string
	url     string
	logs    *syncBuffer
	client  *http.Client
	origin  *httptest.Server
	cfg     *config.Config
	serving chan error
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	ch chan string
	sb strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.ch <- string(p)
	return len(p), nil
}

// String returns everything logged so far.
func (b *syncBuffer) String() string {
	for {
		select {
		case s := <-b.ch:
			b.sb.WriteString(s)
		default:
			return b.sb.String()
		}
	}
}

func testConfig(originURL string) *config.Config {
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.Origin.URL = originURL
	cfg.Origin.ReadTimeout = 2 * time.Second
	cfg.Origin.DialTimeout = time.Second
	cfg.Server.ShutdownTimeout = 5 * time.Second
	cfg.Log.Level = "debug"
	return cfg
}

// startProxy starts edgeseg for origin, after mutate adjusts the config.
func startProxy(t *testing.T, origin http.Handler, mutate func(*config.Config)) *testProxy {
	t.Helper()
	o := httptest.NewServer(origin)
	t.Cleanup(o.Close)
	return startProxyURL(t, o.URL, mutate, o)
}

func startProxyURL(t *testing.T, originURL string, mutate func(*config.Config), o *httptest.Server) *testProxy {
	t.Helper()
	cfg := testConfig(originURL)
	if mutate != nil {
		mutate(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := &syncBuffer{ch: make(chan string, 10000)}
	log := zerolog.New(logs).Level(zerolog.DebugLevel)
	org, err := NewOrigin(cfg.Origin)
	if err != nil {
		t.Fatal(err)
	}
	oc, err := cache.NewOrigin(cfg.Cache.Origin, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Options{Config: cfg, Origin: org, Log: &log, OriginCache: oc})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		t.Fatal(err)
	}
	p := &testProxy{t: t, h: h, srv: NewServer(cfg, h, &log), addr: ln.Addr().String(), logs: logs, origin: o, cfg: cfg, serving: make(chan error, 1)}
	p.url = "http://" + p.addr
	p.client = &http.Client{
		Transport:     &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 16},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
	go func() { p.serving <- p.srv.Serve(ln) }()
	t.Cleanup(func() {
		p.client.CloseIdleConnections()
		_ = p.srv.Shutdown()
	})
	return p
}

func (p *testProxy) do(req *http.Request) (*http.Response, string) {
	p.t.Helper()
	resp, err := p.client.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatalf("%s %s: reading body: %v", req.Method, req.URL, err)
	}
	return resp, string(b)
}

func (p *testProxy) get(path string) (*http.Response, string) {
	p.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, p.url+path, nil)
	return p.do(req)
}

// raw sends a raw HTTP/1.1 request over a new connection and returns the
// status line and the rest of what the proxy answered.
func (p *testProxy) raw(request string) (status string, rest string) {
	p.t.Helper()
	c, err := net.DialTimeout("tcp", p.addr, time.Second)
	if err != nil {
		p.t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		p.t.Fatal(err)
	}
	br := bufio.NewReader(c)
	status, _ = br.ReadString('\n')
	b, _ := io.ReadAll(br)
	return strings.TrimSpace(status), string(b)
}

// dial opens a connection to the proxy that fails any read or write
// after timeout; it is closed when t ends.
func (p *testProxy) dial(t testing.TB, timeout time.Duration) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(timeout))
	return c
}

// mustServe checks the proxy still answers an ordinary request.
func (p *testProxy) mustServe() {
	p.t.Helper()
	resp, _ := p.get("/_edgeseg/health")
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusServiceUnavailable {
		p.t.Fatalf("proxy stopped serving: %d", resp.StatusCode)
	}
}

// gzipped is b compressed with gzip.
func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, _ = w.Write(b)
	_ = w.Close()
	return buf.Bytes()
}

// brotlied is b compressed with brotli.
func brotlied(b []byte) []byte {
	var buf bytes.Buffer
	w := brotli.NewWriter(&buf)
	_, _ = w.Write(b)
	_ = w.Close()
	return buf.Bytes()
}
