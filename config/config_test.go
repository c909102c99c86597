package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestExampleConfigLoads(t *testing.T) {
	c, err := Load("../examples/edgeseg.yaml", nil)
	if err != nil {
		t.Fatalf("example config: %v", err)
	}
	if c.Origin.URL == "" || len(c.Segments) == 0 || len(c.Behavior.Events) == 0 {
		t.Fatalf("example config lost sections: %+v", c)
	}
	if !strings.HasSuffix(c.Templates.Dir, "examples/templates") {
		t.Errorf("templates.dir not resolved against the file: %q", c.Templates.Dir)
	}
	// So is a socket file's, given by the environment too.
	c, err = Load("../examples/edgeseg.yaml", []string{"EDGESEG_ORIGIN_URL=unix:run/app.sock"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "unix:" + filepath.Join("..", "examples", "run", "app.sock"); c.Origin.URL != want {
		t.Errorf("origin.url: %q, want %q", c.Origin.URL, want)
	}
}

// TestExampleDocumentsEveryKey checks that examples/edgeseg.yaml writes out
// every leaf key of Config, so ops have one place that documents them all.
func TestExampleDocumentsEveryKey(t *testing.T) {
	c, err := Parse("example", mustRead(t, "../examples/edgeseg.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	walkLeaves(reflectValue(Default()), "", func(key string, _ reflectVal) {
		if c.Line(key) == 0 {
			missing = append(missing, key)
		}
	})
	for _, k := range []string{"segments", "profile.keys", "identity.keys", "behavior.events"} {
		if c.Line(k) == 0 {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("examples/edgeseg.yaml does not document: %v", missing)
	}
}

func TestLoadErrorsNameFileLineAndKey(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []string
	}{
		{"testdata/bad-keys.yaml", []string{"testdata/bad-keys.yaml:4: origin.ulr: unknown key"}},
		{"testdata/bad-type.yaml", []string{"testdata/bad-type.yaml:3: origin.max_conns:", "lots"}},
		{"testdata/bad-values.yaml", []string{
			"testdata/bad-values.yaml:3: origin.url: scheme must be http or https",
			"testdata/bad-values.yaml:5: server.max_header_bytes: must be between 16KiB and 1MiB",
			"testdata/bad-values.yaml:7: segments[0].name: must be lower case",
			"testdata/bad-values.yaml:8: segments[0].rule: is required",
			"testdata/bad-values.yaml:9: segments[0].holdout: must be between 0 and 0.9",
		}},
		{"testdata/missing.yaml", []string{"no such file"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			_, err := Load(tc.file, nil)
			if err == nil {
				t.Fatal("loaded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestCheckFindsEveryProblemAtOnce: unknown keys, values of the wrong
// type and values Validate refuses come in one list, by line, with the
// config as read; a value refused for its type is not refused again as
// the default left in its place.
func TestCheckFindsEveryProblemAtOnce(t *testing.T) {
	const f = "testdata/bad-mixed.yaml"
	want := []string{
		f + ":3: origin.url: scheme must be http or https",
		f + `:4: origin.ulr: unknown key: did you mean "url"?`,
		f + `:5: origin.max_conns: "lots" is not a whole number`,
		f + ":7: server.max_header_bytes: must be between 16KiB and 1MiB",
		f + ":10: segments[0].rule: a list is not a string",
		f + ":11: segments[1].name: must be lower case",
	}
	for _, load := range []struct {
		name string
		fn   func(string, []string) (*Config, error)
	}{{"Check", Check}, {"Load", Load}} {
		c, err := load.fn(f, nil)
		var ps Problems
		if !errors.As(err, &ps) {
			t.Fatalf("%s: %v, want Problems", load.name, err)
		}
		if len(ps) != len(want) {
			t.Errorf("%s: %d problems, want %d:\n%v", load.name, len(ps), len(want), err)
		}
		for i, w := range want {
			if i < len(ps) && !strings.HasPrefix(ps[i].Error(), w) {
				t.Errorf("%s: problem %d is %q, want %q", load.name, i, ps[i].Error(), w)
			}
		}
		switch {
		case load.name == "Load" && c != nil:
			t.Error("Load returned a config with its problems")
		case load.name == "Check" && (c == nil || len(c.Segments) != 2 || c.Segments[1].Rule != `device == "mobile"`):
			t.Errorf("Check did not return the config as read: %+v", c)
		}
	}
	if c, err := Check("testdata/missing.yaml", nil); c != nil || err == nil {
		t.Errorf("missing file: %v, %v", c, err)
	}
	if c, err := Check("testdata/../../README.md", nil); c != nil || err == nil {
		t.Errorf("not YAML: %v, %v", c, err)
	}
}

// TestProblemsMerge: problems of a later check are added but for those
// an earlier one explains: the same problem, or one about a key refused
// already or a key inside it (not inside a whole top-level section).
func TestProblemsMerge(t *testing.T) {
	p := func(key, msg string) Problem { return Problem{File: "c.yaml", Line: 1, Key: key, Msg: msg} }
	known := Problems{p("segments[0].rule", "a list is not a string"), p("origin", "5 is not a mapping"), p("server.tls", "not a mapping")}
	got := known.Merge(Problems{
		p("segments[0].rule", "unexpected token EOF"), // the same key
		p("segments[0].rule", "a list is not a string"),
		p("segments[1].rule", "unknown name devise"),
		p("origin.url", "is required"),      // inside a top-level section: kept
		p("server.tls.cert", "is required"), // inside a refused key
		p("server.tlsx", "is not a key"),    // only sharing a prefix
		p("", "a problem of the whole file"),
	})
	var keys []string
	for _, q := range got[len(known):] {
		keys = append(keys, q.Key+": "+q.Msg)
	}
	want := []string{"segments[1].rule: unknown name devise", "origin.url: is required", "server.tlsx: is not a key", ": a problem of the whole file"}
	if !slices.Equal(keys, want) {
		t.Errorf("merged %q, want %q", keys, want)
	}
	if len(known) != 3 {
		t.Errorf("Merge changed its receiver: %v", known)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"syntax", "origin:\n  url: [unclosed\n", "x.yaml:"},
		{"tabs", "origin:\n\turl: x\n", "x.yaml:2: found character that cannot start any token: this line is indented with a tab; YAML indents with spaces"},
		{"tab after spaces", "origin:\n  url: x\n  \tdial_timeout: 1s\n", "x.yaml:3: found a tab character that violates indentation"},
		{"bad duration", "server:\n  read_timeout: soon\n", "x.yaml:2: server.read_timeout"},
		{"duration without unit", "server:\n  read_timeout: 30\n", `x.yaml:2: server.read_timeout: "30" is not a duration: give it a unit, such as 500ms, 30s, 5m or 1h`},
		{"not a number", "origin:\n  max_conns: many\n", `x.yaml:2: origin.max_conns: "many" is not a whole number`},
		{"not a fraction", "segments:\n  - name: a\n    rule: 'true'\n    holdout: tenth\n", `x.yaml:4: segments[0].holdout: "tenth" is not a number`},
		{"not a bool", "profile:\n  secure: maybe\n", `x.yaml:2: profile.secure: "maybe" is not true or false`},
		{"not a list", "signals:\n  search_hosts: google.com\n", `x.yaml:2: signals.search_hosts: "google.com" is not a list`},
		{"not a mapping", "server: 5\n", `x.yaml:1: server: "5" is not a mapping of keys to values`},
		{"not a string", "profile:\n  cookie:\n    - a\n", `x.yaml:2: profile.cookie: a list is not a string`},
		{"bad size", "server:\n  max_header_bytes: 12 parsecs\n", "x.yaml:2: server.max_header_bytes: invalid size"},
		{"negative size", "rewrite:\n  max_body_bytes: -5\n", "invalid size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	c, err := Parse("empty.yaml", nil)
	if err != nil || c.Listen != ":8080" {
		t.Fatalf("empty file: %v", err)
	}
}

// TestUnknownKeysSuggest: a misspelt key is told the key it is nearest
// to, wherever it sits; one near none is told every key its place takes.
func TestUnknownKeysSuggest(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"top level", "segmnts: []\n", `x.yaml:1: segmnts: unknown key: did you mean "segments"?`},
		{"capitalised", "Origin:\n  url: http://a\n", `x.yaml:1: Origin: unknown key: did you mean "origin"?`},
		{"nested", "origin:\n  ulr: http://a\n", `x.yaml:2: origin.ulr: unknown key: did you mean "url"?`},
		{"in a list item", "segments:\n  - name: a\n    rul: 'true'\n", `x.yaml:3: segments[0].rul: unknown key: did you mean "rule"?`},
		{"beside a known key on its line", "behavior:\n  events:\n    - {match: 'GET /x', evnt: y}\n", `x.yaml:3: behavior.events[0].evnt: unknown key: did you mean "event"?`},
		{"of an inlined struct", "cache:\n  blocks:\n    max_item: 5\n", `x.yaml:3: cache.blocks.max_item: unknown key: did you mean "max_items"?`},
		{"near none", "origin:\n  timeout: 5s\n", `x.yaml:2: origin.timeout: unknown key; origin takes: url, host_header, max_conns,`},
		{"near none at the top", "frobnicate: 1\n", `x.yaml:1: frobnicate: unknown key; the top level takes: listen, personalize, server,`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// TestValidate covers every validation rule with the message it gives.
func TestValidate(t *testing.T) {
	ok := func(c *Config) { c.Origin.URL = "http://127.0.0.1:9000" }
	f := false
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"listen", func(c *Config) { c.Listen = "8080" }, "listen: must be host:port"},
		{"listen port", func(c *Config) { c.Listen = ":80800" }, `listen: must be host:port or :port (a port from 1 to 65535, or 0 for any), got ":80800"`},
		{"listen port name", func(c *Config) { c.Listen = "127.0.0.1:http" }, "listen: must be host:port or :port (a port"},
		{"request id header", func(c *Config) { c.Server.RequestIDHeader = "X Request" }, `server.request_id_header: must be a header name other than a connection's own, such as X-Request-ID, got "X Request"`},
		{"request id in a hop header", func(c *Config) { c.Server.RequestIDHeader = "Connection" }, "server.request_id_header: must be a header name"},
		{"admin address", func(c *Config) { c.Server.AdminListen = "9090" }, "server.admin_listen: must be host:port"},
		{"admin address taken", func(c *Config) { c.Server.AdminListen = c.Listen }, `server.admin_listen: is listen's address (:8080)`},
		{"pprof port", func(c *Config) { c.Server.PprofListen = "127.0.0.1:-1" }, "server.pprof_listen: must be host:port (a port"},
		{"origin port", func(c *Config) { c.Origin.URL = "http://x:99999" }, `origin.url: port must be a number from 1 to 65535, got "99999"`},
		{"origin port zero", func(c *Config) { c.Origin.URL = "http://x:0" }, "origin.url: port must be"},
		{"unix socket without a path", func(c *Config) { c.Origin.URL = "unix:" }, `origin.url: must name a socket file, such as unix:/run/app.sock, got "unix:"`},
		{"unix socket and the origin's host", func(c *Config) { c.Origin.URL, c.Origin.HostHeader = "unix:/run/app.sock", "origin" }, "origin.host_header: \"origin\" sends origin.url's host, which a unix socket has none of"},
		{"ca file for http", func(c *Config) { c.Origin.CAFile = "testdata/ca.pem" }, `origin.ca_file: is for an https origin; origin.url is "http://127.0.0.1:9000"`},
		{"ca file missing", func(c *Config) { c.Origin.URL, c.Origin.CAFile = "https://x", "testdata/none.pem" }, "origin.ca_file: open testdata/none.pem: no such file or directory"},
		{"client certificate for http", func(c *Config) { c.Origin.ClientCertFile, c.Origin.ClientKeyFile = "a.pem", "b.pem" }, "origin.client_cert_file: is for an https origin"},
		{"client certificate without its key", func(c *Config) { c.Origin.URL, c.Origin.ClientCertFile = "https://x", "a.pem" }, "origin.client_cert_file: and origin.client_key_file go together: set both"},
		{"client certificate missing", func(c *Config) {
			c.Origin.URL, c.Origin.ClientCertFile, c.Origin.ClientKeyFile = "https://x", "testdata/none.pem", "testdata/none-key.pem"
		}, "origin.client_cert_file: testdata/none.pem, testdata/none-key.pem: open testdata/none.pem: no such file or directory"},
		{"server name for http", func(c *Config) { c.Origin.ServerName = "shop.example" }, "origin.server_name: is for an https origin"},
		{"server name not a name", func(c *Config) { c.Origin.URL, c.Origin.ServerName = "https://x", "shop.example:443" }, `origin.server_name: must be a host name, got "shop.example:443"`},
		{"ca file not PEM", func(c *Config) { c.Origin.URL, c.Origin.CAFile = "https://x", "testdata/bad-keys.yaml" }, "origin.ca_file: testdata/bad-keys.yaml: no PEM certificate in it"},
		{"server timeout", func(c *Config) { c.Server.ReadTimeout = 0 }, "server.read_timeout: must be a positive duration"},
		{"write timeout", func(c *Config) { c.Server.WriteTimeout = -1 }, "server.write_timeout"},
		{"idle timeout", func(c *Config) { c.Server.IdleTimeout = 0 }, "server.idle_timeout"},
		{"queue timeout", func(c *Config) { c.Server.QueueTimeout = 0 }, "server.queue_timeout"},
		{"shutdown timeout", func(c *Config) { c.Server.ShutdownTimeout = 0 }, "server.shutdown_timeout"},
		{"upgrade timeout", func(c *Config) { c.Server.UpgradeIdleTimeout = 0 }, "server.upgrade_idle_timeout"},
		{"header too small", func(c *Config) { c.Server.MaxHeaderBytes = 8 << 10 }, "server.max_header_bytes: must be between 16KiB and 1MiB"},
		{"header too big", func(c *Config) { c.Server.MaxHeaderBytes = 2 << 20 }, "server.max_header_bytes"},
		{"write buffer too small", func(c *Config) { c.Server.WriteBufferBytes = 1 << 10 }, "server.write_buffer_bytes: must be between 4KiB and 1MiB"},
		{"write buffer too big", func(c *Config) { c.Server.WriteBufferBytes = 2 << 20 }, "server.write_buffer_bytes"},
		{"body", func(c *Config) { c.Server.MaxBodyBytes = 0 }, "server.max_body_bytes: must be positive"},
		{"concurrency", func(c *Config) { c.Server.MaxConcurrency = 0 }, "server.max_concurrency: must be positive"},
		{"trusted proxy", func(c *Config) { c.Server.TrustedProxies = []string{"10.0.0.0/33"} }, `server.trusted_proxies[0]: invalid CIDR "10.0.0.0/33"`},
		{"trusted ip", func(c *Config) { c.Server.TrustedProxies = []string{"nope"} }, `invalid IP or CIDR "nope"`},
		{"metrics allow", func(c *Config) { c.Server.MetricsAllow = []string{"127.0.0.1", "10.0.0.0/99"} }, `server.metrics_allow[1]: invalid CIDR "10.0.0.0/99"`},
		{"max connections", func(c *Config) { c.Server.MaxConnections = 0 }, "server.max_connections: must be positive"},
		{"origin missing", func(c *Config) { c.Origin.URL = "" }, "origin.url: is required"},
		{"origin scheme", func(c *Config) { c.Origin.URL = "ftp://x" }, `origin.url: scheme must be http or https (or unix: for a socket file), got "ftp"`},
		{"origin no host", func(c *Config) { c.Origin.URL = "http://" }, "origin.url: must name a host"},
		{"origin path", func(c *Config) { c.Origin.URL = "http://x/app" }, "origin.url: must be scheme://host[:port] only"},
		{"origin user", func(c *Config) { c.Origin.URL = "http://u:p@x" }, "origin.url: must not carry user info"},
		{"origin unparsable", func(c *Config) { c.Origin.URL = "http://[::1" }, "origin.url: is not a URL"},
		{"origin is edgeseg", func(c *Config) { c.Listen, c.Origin.URL = ":8080", "http://localhost:8080" }, "is edgeseg's own listen address"},
		{"origin is edgeseg on loopback", func(c *Config) { c.Listen, c.Origin.URL = "[::]:9000", "http://127.0.0.1:9000/" }, "is edgeseg's own listen address"},
		{"origin is edgeseg by address", func(c *Config) { c.Listen, c.Origin.URL = "10.0.0.5:80", "http://10.0.0.5" }, "is edgeseg's own listen address"},
		{"origin is edgeseg by name", func(c *Config) { c.Listen, c.Origin.URL = "127.0.0.1:8443", "https://LOCALHOST:8443" }, "is edgeseg's own listen address"},
		{"max conns", func(c *Config) { c.Origin.MaxConns = 0 }, "origin.max_conns: must be positive"},
		{"buffer", func(c *Config) { c.Origin.BufferBytes = -1 }, "origin.buffer_bytes: must be 0 (off) or more"},
		{"redirect without tls", func(c *Config) { c.Server.RedirectListen = ":80" }, "server.redirect_listen: sends visitors to https://, which listen answers only with server.tls_cert_file"},
		{"redirect address", func(c *Config) { c.Server.RedirectListen = "80" }, "server.redirect_listen: must be host:port"},
		{"tls cert alone", func(c *Config) { c.Server.TLSCertFile = "cert.pem" }, "server.tls_cert_file: and server.tls_key_file go together"},
		{"tls files missing", func(c *Config) {
			c.Server.TLSCertFile, c.Server.TLSKeyFile = "/nonexistent/c.pem", "/nonexistent/k.pem"
		}, "server.tls_cert_file: /nonexistent/c.pem, /nonexistent/k.pem: open /nonexistent/c.pem: no such file"},
		{"conn wait", func(c *Config) { c.Origin.MaxConnWait = 0 }, "origin.max_conn_wait"},
		{"idle conn", func(c *Config) { c.Origin.IdleConnTimeout = 0 }, "origin.idle_conn_timeout"},
		{"dial", func(c *Config) { c.Origin.DialTimeout = 0 }, "origin.dial_timeout"},
		{"read", func(c *Config) { c.Origin.ReadTimeout = 0 }, "origin.read_timeout"},
		{"write", func(c *Config) { c.Origin.WriteTimeout = 0 }, "origin.write_timeout"},
		{"health", func(c *Config) { c.Origin.HealthWindow = 0 }, "origin.health_window"},
		{"rewrite max", func(c *Config) { c.Rewrite.MaxBodyBytes = 0 }, "rewrite.max_body_bytes: must be between"},
		{"gzip level", func(c *Config) { c.Rewrite.GzipLevel = 10 }, "rewrite.gzip_level: must be 1 to 9"},
		{"quick level", func(c *Config) { c.Rewrite.QuickLevel = 0 }, "rewrite.quick_level: must be 1 to 9"},
		{"brotli level", func(c *Config) { c.Rewrite.BrotliLevel = 12 }, "rewrite.brotli_level: must be 0 to 11"},
		{"log level", func(c *Config) { c.Log.Level = "loud" }, `log.level: must be debug, info, warn or error, got "loud"`},
		{"log format", func(c *Config) { c.Log.Format = "xml" }, "log.format"},
		{"log sample", func(c *Config) { c.Log.AccessSample = 0 }, "log.access_sample"},
		{"time zone", func(c *Config) { c.Signals.TimeZone = "Mars/Olympus" }, `signals.time_zone: unknown time zone "Mars/Olympus"`},
		{"consent default", func(c *Config) { c.Consent.Default = "maybe" }, "consent.default: must be granted or denied"},
		{"consent cookie", func(c *Config) { c.Consent.Cookie = "bad name" }, "consent.cookie: is not a valid cookie name"},
		{"profile cookie", func(c *Config) { c.Profile.Cookie = "a;b" }, "profile.cookie: is not a valid cookie name"},
		{"profile path", func(c *Config) { c.Profile.Path = "x" }, "profile.path: must start with /"},
		{"profile age", func(c *Config) { c.Profile.MaxAge = 0 }, "profile.max_age"},
		{"visit gap", func(c *Config) { c.Profile.VisitGap = 0 }, "profile.visit_gap"},
		{"categories", func(c *Config) { c.Profile.MaxCategories = 0 }, "profile.max_categories: must be 1 to 50"},
		{"products", func(c *Config) { c.Profile.MaxProducts = 99 }, "profile.max_products: must be 0 to 50"},
		{"max bytes", func(c *Config) { c.Profile.MaxBytes = 5000 }, "profile.max_bytes: must be 400 to 4000"},
		{"scores", func(c *Config) { c.Profile.DecisionScore = 2 }, "profile.decision_score: must be above"},
		{"key id", func(c *Config) { c.Profile.Keys = []Key{{Secret: strings.Repeat("k", 32)}} }, "profile.keys[0].id: is required"},
		{"key dup", func(c *Config) {
			c.Profile.Keys = []Key{{ID: "a", Secret: strings.Repeat("k", 32)}, {ID: "a", Secret: strings.Repeat("k", 32)}}
		}, `profile.keys[1].id: duplicate key id "a"`},
		{"key none", func(c *Config) { c.Profile.Keys = []Key{{ID: "a"}} }, "profile.keys[0].secret: one of secret or secret_env is required"},
		{"key both", func(c *Config) { c.Profile.Keys = []Key{{ID: "a", Secret: "x", SecretEnv: "Y"}} }, "set secret or secret_env, not both"},
		{"key short", func(c *Config) { c.Profile.Keys = []Key{{ID: "a", Secret: "short"}} }, "profile.keys[0].secret: must be at least 32 bytes, got 5"},
		{"signing key", func(c *Config) { c.Profile.SigningKey = "zz" }, `profile.signing_key: names no key in profile.keys: "zz"`},
		{"identity algs", func(c *Config) { c.Identity.Cookie = "session" }, "identity.algorithms: is required"},
		{"identity alg", func(c *Config) { c.Identity.Cookie = "s"; c.Identity.Algorithms = []string{"none"} }, `identity.algorithms[0]: unknown algorithm "none"`},
		{"identity keys", func(c *Config) { c.Identity.Header = "Authorization"; c.Identity.Algorithms = []string{"RS256"} }, "identity.keys: at least one key"},
		{"identity key", func(c *Config) {
			c.Identity.Cookie = "s"
			c.Identity.Algorithms = []string{"HS256"}
			c.Identity.Keys = []IdentityKey{{ID: "a", Secret: "x", PublicKeyFile: "y"}}
		}, "identity.keys[0]: set exactly one of"},
		{"event match", func(c *Config) { c.Behavior.Events = []EventMapping{{Event: "x"}} }, "behavior.events[0].match: is required"},
		{"event name", func(c *Config) { c.Behavior.Events = []EventMapping{{Match: "GET /"}} }, "behavior.events[0].event: is required"},
		{"event name chars", func(c *Config) { c.Behavior.Events = []EventMapping{{Match: "GET /", Event: "Add To Cart"}} }, "behavior.events[0].event: must be lower case"},
		{"segment name", func(c *Config) { c.Segments = []Segment{{Name: "../x", Rule: "true"}} }, "segments[0].name: must be lower case"},
		{"segment dup", func(c *Config) { c.Segments = []Segment{{Name: "a", Rule: "true"}, {Name: "a", Rule: "true"}} }, `segments[1].name: duplicate segment "a" (also segments[0])`},
		{"segment rule", func(c *Config) { c.Segments = []Segment{{Name: "a", Rule: " "}} }, "segments[0].rule: is required"},
		{"segment holdout", func(c *Config) { c.Segments = []Segment{{Name: "a", Rule: "true", Holdout: -0.1}} }, "segments[0].holdout: must be between 0 and 0.9"},
		{"templates dir", func(c *Config) { c.Templates.Dir = "" }, "templates.dir: is required"},
		{"cache items", func(c *Config) { c.Cache.Assignment.MaxItems = 0 }, "cache.assignment.max_items: must be positive"},
		{"cache bytes", func(c *Config) { c.Cache.Blocks.MaxBytes = 10 }, "cache.blocks.max_bytes: must be at least 1KiB"},
		{"cache ttl", func(c *Config) { c.Cache.Origin.TTL = -time.Second }, "cache.origin.ttl: must not be negative"},
		{"cache path", func(c *Config) { c.Cache.Origin.Paths = []string{"category/*"} }, "cache.origin.paths[0]: must start with /"},
		{"ignored query", func(c *Config) { c.Cache.Origin.IgnoreQuery = []string{"utm_*", "*id"} }, "cache.origin.ignore_query[1]: must be a query parameter name"},
		{"bypass cookie", func(c *Config) { c.Cache.Origin.BypassCookies = []string{"session id"} }, "cache.origin.bypass_cookies[0]: must be a cookie name"},
		{"stale while revalidate", func(c *Config) { c.Cache.Origin.StaleWhileRevalidate = -time.Second }, "cache.origin.stale_while_revalidate: must not be negative"},
		{"stale if error", func(c *Config) { c.Cache.Origin.StaleIfError = -time.Second }, "cache.origin.stale_if_error: must not be negative"},
		{"ignored query empty", func(c *Config) { c.Cache.Origin.IgnoreQuery = []string{"*"} }, "cache.origin.ignore_query[0]: must be a query parameter name"},
		{"cache object", func(c *Config) { c.Cache.Origin.MaxObjectBytes = 0 }, "cache.origin.max_object_bytes"},
		{"preview secret", func(c *Config) { c.Preview.Secret = "short" }, "preview.secret: must be at least 32 bytes"},
		{"events sink", func(c *Config) { c.Events.Sink = "" }, "events.sink"},
		{"events queue", func(c *Config) { c.Events.QueueSize = 0 }, "events.queue_size"},
		{"events file", func(c *Config) { c.Events.MaxFileBytes = 1 }, "events.max_file_bytes"},
		{"events backups", func(c *Config) { c.Events.MaxBackups = -1 }, "events.max_backups"},
		{"events rate", func(c *Config) { c.Events.ClientEventsPerMinute = 0 }, "events.client_events_per_minute"},
		{"disabled segment still checked", func(c *Config) { c.Segments = []Segment{{Name: "a", Rule: "", Enabled: &f}} }, "segments[0].rule"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			ok(c)
			tc.mutate(c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant %q", err, tc.want)
			}
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("not Problems: %T", err)
			}
		})
	}
	c := Default()
	ok(c)
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults with an origin do not validate: %v", err)
	}
	for _, u := range []string{"unix:/run/app.sock", "unix:///run/app.sock", "unix:app.sock"} {
		c := Default()
		c.Origin.URL = u
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	// Origins that only look like edgeseg's own address.
	for _, lo := range [][2]string{
		{":8080", "http://localhost:9000"},
		{"127.0.0.1:8080", "http://127.0.0.2:8080"},
		{"10.0.0.5:8080", "http://localhost:8080"},
		{":80", "https://localhost"},
		{":8080", "http://shop.example:8080"},
	} {
		c := Default()
		c.Listen, c.Origin.URL = lo[0], lo[1]
		if err := c.Validate(); err != nil {
			t.Errorf("listen %s, origin %s: %v", lo[0], lo[1], err)
		}
	}
}

func TestValidateReportsAllProblems(t *testing.T) {
	c := Default()
	c.Listen = "x"
	c.Log.Level = "loud"
	err := c.Validate()
	var ps Problems
	if !errors.As(err, &ps) || len(ps) != 3 { // listen, log.level, origin.url
		t.Fatalf("want 3 problems at once, got %v", err)
	}
}

func TestApplyEnv(t *testing.T) {
	c := Default()
	err := c.ApplyEnv([]string{
		"EDGESEG_ORIGIN_URL=http://10.0.0.5:8000",
		"EDGESEG_SERVER_MAX_HEADER_BYTES=64KiB",
		"EDGESEG_SERVER_READ_TIMEOUT=5s",
		"EDGESEG_SERVER_VIA=true",
		"EDGESEG_SERVER_TRUSTED_PROXIES=10.0.0.0/8, 192.168.0.1",
		"EDGESEG_CACHE_ORIGIN_MAX_ITEMS=7",
		"EDGESEG_CONFIG=ignored.yaml",
		"PATH=/bin",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Origin.URL != "http://10.0.0.5:8000" || c.Server.MaxHeaderBytes != 64<<10 || c.Server.ReadTimeout != 5*time.Second ||
		!c.Server.Via || len(c.Server.TrustedProxies) != 2 || c.Cache.Origin.MaxItems != 7 {
		t.Fatalf("env not applied: %+v", c.Server)
	}
	for _, tc := range []struct{ env, want string }{
		{"EDGESEG_SERVER_READ_TIMEOUT=soon", `EDGESEG_SERVER_READ_TIMEOUT: invalid duration "soon"`},
		{"EDGESEG_SERVER_VIA=perhaps", `EDGESEG_SERVER_VIA: invalid boolean "perhaps"`},
		{"EDGESEG_ORIGIN_MAX_CONNS=many", `EDGESEG_ORIGIN_MAX_CONNS: invalid integer "many"`},
		{"EDGESEG_SERVER_MAX_BODY_BYTES=lots", "EDGESEG_SERVER_MAX_BODY_BYTES: invalid size"},
		{"EDGESEG_ORIGN_URL=x", "EDGESEG_ORIGN_URL: no such config key"},
	} {
		if err := Default().ApplyEnv([]string{tc.env}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.env, err, tc.want)
		}
	}
	// A value Validate refuses names the variable that set it, not the
	// file, which does not hold it; a key the file sets stays the file's.
	t.Setenv("EDGESEG_SERVER_READ_TIMEOUT", "-5s")
	t.Setenv("EDGESEG_SERVER_TRUSTED_PROXIES", "10.0.0.0/8,bogus")
	_, err = Load("testdata/bad-values.yaml", os.Environ())
	for _, want := range []string{
		"environment: EDGESEG_SERVER_READ_TIMEOUT (server.read_timeout): must be a positive duration",
		`environment: EDGESEG_SERVER_TRUSTED_PROXIES (server.trusted_proxies[1]): invalid IP or CIDR "bogus"`,
		"testdata/bad-values.yaml:3: origin.url: scheme must be http or https",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want %q", err, want)
		}
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{"512": 512, "16KiB": 16 << 10, "16kb": 16 << 10, "2MiB": 2 << 20, "1 GiB": 1 << 30, "3M": 3 << 20} {
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("%q = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "abc", "-1", "5 parsecs", "99999999999999GiB"} {
		if _, err := ParseByteSize(in); err == nil {
			t.Errorf("%q parsed", in)
		}
	}
	if s := ByteSize(2 << 20).String(); s != "2MiB" {
		t.Errorf("String = %s", s)
	}
}

// FuzzParse: whatever a config file holds, loading it gives a config or
// an error naming the file, never a panic, and a config that validates
// validates again (Validate only reads and fills defaults once).
func FuzzParse(f *testing.F) {
	example, err := os.ReadFile("../examples/edgeseg.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	f.Add([]byte("origin:\n  url: http://127.0.0.1:9000\nsegments:\n  - name: a\n    rule: 'device == \"mobile\"'\n"))
	f.Add([]byte("origin: &a {url: *a}\n"))
	f.Add([]byte("server:\n  max_header_bytes: 99999999999999999999 TB\n  read_timeout: -1s\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		// What Check validates: the config as decoded past the keys it
		// could not decode.
		if c, _, err := parse("fuzz.yaml", raw); c != nil && err == nil {
			if err := c.Validate(); err != nil && !strings.Contains(err.Error(), "fuzz.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
		}
		c, err := Parse("fuzz.yaml", raw)
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			if !strings.Contains(err.Error(), "fuzz.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("valid once, not twice: %v", err)
		}
	})
}
