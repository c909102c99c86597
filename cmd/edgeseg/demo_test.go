package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// TestDemoOutsideTheSourceTree: run where there is no examples/ (as an
// installed binary is), demo says what it needs instead of failing on a
// file name; given the config by EDGESEG_CONFIG, as the image does, it
// finds the shop beside it and serves it personalized.
func TestDemoOutsideTheSourceTree(t *testing.T) {
	m := NewMain()
	m.Stdout, m.Stderr, m.Environ = io.Discard, io.Discard, nil
	if err := m.ParseFlags([]string{"demo"}); err != nil {
		t.Fatal(err)
	}
	err := m.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no demo shop in examples/site") || !strings.Contains(err.Error(), "--site DIR") {
		t.Fatalf("demo without examples/: %v", err)
	}

	stderr := &lockedBuffer{}
	m = NewMain()
	m.Stdout, m.Stderr = io.Discard, stderr
	m.Environ = []string{"EDGESEG_CONFIG=" + mustAbs(t, "../../examples/edgeseg.yaml"), "EDGESEG_LISTEN=127.0.0.1:0"}
	runUntilCleanup(t, m, stderr, "demo")
	req, _ := http.NewRequest("GET", "http://"+m.Addr+"/?utm_campaign=promo-winter", nil)
	req.Header.Set("Accept", "text/html")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "data-edgeseg-slot") {
		t.Fatalf("demo shop through the proxy: %d\n%.500s", resp.StatusCode, body)
	}
	if !strings.Contains(resp.Header.Get("Set-Cookie"), "edgeseg=") {
		t.Fatalf("the demo does not personalize: no profile cookie in %q", resp.Header)
	}
	// Which build serves, for dashboards: in the metrics and the log.
	resp, err = http.Get("http://" + m.Addr + "/_edgeseg/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "\nedgeseg_build_info{version=\"(devel)\",revision=\"") || !strings.Contains(stderr.String(), `"version":"(devel)"`) {
		t.Errorf("build not named in the metrics or the log:\n%s\n%s", body, stderr.String())
	}
}

// TestBuildLabels: a build's names are written as Prometheus label values,
// whatever they hold.
func TestBuildLabels(t *testing.T) {
	set := metrics.NewSet()
	build{version: `v1 "x"`, revision: "a\\b\nc", goVersion: "go1.26"}.register(set)
	var b bytes.Buffer
	set.WritePrometheus(&b)
	if want := `edgeseg_build_info{version="v1 \"x\"",revision="a\\b\nc",go="go1.26"} 1` + "\n"; b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

// TestListenAddressTaken: a port another program holds (a first try of the
// demo beside a dev server on 8080) is named, with how to choose another.
func TestListenAddressTaken(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	for _, tc := range []struct {
		args []string
		how  string
	}{
		{[]string{"demo"}, "--listen"},
		{[]string{"serve", "--config", "../../examples/edgeseg.yaml"}, "EDGESEG_LISTEN"},
	} {
		m := NewMain()
		m.Stdout, m.Stderr = io.Discard, io.Discard
		m.Environ = []string{"EDGESEG_CONFIG=" + mustAbs(t, "../../examples/edgeseg.yaml"), "EDGESEG_LISTEN=" + held.Addr().String()}
		if err := m.ParseFlags(tc.args); err != nil {
			t.Fatal(err)
		}
		err := m.Run(context.Background())
		if err == nil || !strings.Contains(err.Error(), held.Addr().String()+" is taken by another program") || !strings.Contains(err.Error(), tc.how) {
			t.Errorf("%s on a taken port: %v", tc.args[0], err)
		}
	}
}

// TestAdminAddress: with server.admin_listen, metrics are read there (the
// build among them) and the main address no longer answers them.
func TestAdminAddress(t *testing.T) {
	stderr := &lockedBuffer{}
	m := NewMain()
	m.Stdout, m.Stderr = io.Discard, stderr
	m.Environ = []string{"EDGESEG_CONFIG=" + mustAbs(t, "../../examples/edgeseg.yaml"), "EDGESEG_LISTEN=127.0.0.1:0", "EDGESEG_SERVER_ADMIN_LISTEN=127.0.0.1:0"}
	runUntilCleanup(t, m, stderr, "demo")
	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if m.AdminAddr == "" {
		t.Fatal("no admin address")
	}
	if code, body := get("http://" + m.AdminAddr + "/metrics"); code != 200 || !strings.Contains(body, "\nedgeseg_build_info{") {
		t.Errorf("metrics on the admin address: %d\n%.300s", code, body)
	}
	if code, _ := get("http://" + m.Addr + "/_edgeseg/metrics"); code != 404 {
		t.Errorf("metrics on the main address: %d, want 404", code)
	}
}

// TestOriginCheckedAtStart: an origin that does not answer (a wrong
// origin.url, a site not up yet) is told in the log as edgeseg starts,
// not first by a visitor's error page.
func TestOriginCheckedAtStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close() // nothing listens there now
	stderr := &lockedBuffer{}
	m := NewMain()
	m.Stdout, m.Stderr = io.Discard, stderr
	m.Environ = []string{"EDGESEG_LISTEN=127.0.0.1:0", "EDGESEG_ORIGIN_URL=http://" + closed}
	runUntilCleanup(t, m, stderr, "serve", "--config", "../../examples/edgeseg.yaml")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(stderr.String(), "the origin does not answer") {
		if time.Now().After(deadline) {
			t.Fatalf("no word of the origin:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(stderr.String(), "connection refused") {
		t.Errorf("the cause is not named:\n%s", stderr.String())
	}
}
