package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
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
}
