package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgeseg/edgeseg/segments/profile"
)

var update = flag.Bool("update", false, "rewrite golden files")

// exampleCodec reads and signs profile cookies as the example config's
// key does.
func exampleCodec(t *testing.T) *profile.Codec {
	t.Helper()
	c, err := profile.NewCodec(map[string][]byte{"demo-1": []byte("demo-secret-change-me-0123456789abcdef")}, "demo-1", 365*24*time.Hour, 1200)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// goldenCookie mints a profile cookie with the example config's key for a
// fixed visitor: three sale views today and two luxury views, two visits.
func goldenCookie(t *testing.T, now time.Time) string {
	c := exampleCodec(t)
	s := profile.Settings{VisitGap: 30 * time.Minute, MaxCategories: 12, MaxProducts: 6, ConsiderationScore: 5, DecisionScore: 15}
	p := profile.NewFresh(now.Add(-72 * time.Hour))
	p.ID = "golden-visitor-00001"
	p.Observe(profile.Event{Name: profile.CategoryView, Category: "luxury", Navigation: true}, now.Add(-72*time.Hour), s)
	p.Observe(profile.Event{Name: profile.CategoryView, Category: "luxury", Navigation: true}, now.Add(-71*time.Hour), s)
	for i := 3; i > 0; i-- {
		p.Observe(profile.Event{Name: profile.CategoryView, Category: "sale", Navigation: true}, now.Add(-time.Duration(i)*time.Minute), s)
	}
	v, err := c.Encode(p, now)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestExplainGolden pins the explain output for fixed visitors.
func TestExplainGolden(t *testing.T) {
	now := time.Date(2026, 3, 4, 19, 30, 0, 0, time.UTC) // a Wednesday evening (UTC)
	cookie := goldenCookie(t, now)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"returning-deal-seeker", []string{"--url", "/", "--cookie", "edgeseg=" + cookie}},
		{"mobile-from-promo", []string{"--url", "/?utm_campaign=promo-spring&utm_medium=cpc",
			"--header", "User-Agent: Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
			"--header", "Sec-GPC: 1"}},
	} {
		for _, format := range []string{"text", "json"} {
			t.Run(tc.name+"."+format, func(t *testing.T) {
				m := NewMain()
				var out bytes.Buffer
				m.Stdout, m.Stderr, m.Environ = &out, io.Discard, nil
				m.Now = func() time.Time { return now }
				args := append([]string{"explain", "--config", "../../examples/edgeseg.yaml", "--format", format}, tc.args...)
				if err := m.ParseFlags(args); err != nil {
					t.Fatal(err)
				}
				if err := m.Run(context.Background()); err != nil {
					t.Fatal(err)
				}
				got := out.Bytes()
				golden := filepath.Join("testdata", "explain-"+tc.name+"."+format+".golden")
				if *update {
					os.WriteFile(golden, got, 0o644)
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run with -update)", err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("explain output differs from %s:\n%s", golden, got)
				}
			})
		}
	}
}

// TestExplainOnAPage: with --page, explain names the page's slots, and a
// block that would not fit its slot's element there is explained as the
// default it becomes, as serve shows it.
func TestExplainOnAPage(t *testing.T) {
	now := time.Date(2026, 3, 4, 19, 30, 0, 0, time.UTC)
	page := filepath.Join(t.TempDir(), "home.html")
	os.WriteFile(page, []byte(`<!doctype html><body>
<p data-edgeseg-slot="hero">Welcome</p>
<div data-edgeseg-slot="sidebar">Side</div>
<div data-edgeseg-slot="newslot">x</div>
<img data-edgeseg-slot="footer-offer">
</body>`), 0o644)
	m := NewMain()
	var out bytes.Buffer
	m.Stdout, m.Stderr, m.Environ = &out, io.Discard, nil
	m.Now = func() time.Time { return now }
	if err := m.ParseFlags([]string{"explain", "--config", "../../examples/edgeseg.yaml", "--page", page, "--cookie", "edgeseg=" + goldenCookie(t, now)}); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, slots, _ := strings.Cut(out.String(), "\nslots:\n")
	lacks(t, "slots", slots,
		"  footer-offer   default (the page's marker cannot be filled: void element)\n",
		"  hero           default (../../examples/templates/hero/deal-seekers.hbs does not fit <p> on this page: the block holds an element that closes a paragraph",
		"  newslot        default (no block)\n",
		"  sidebar        ../../examples/templates/sidebar/deal-seekers.hbs\n",
	)
	if strings.Count(slots, "\n  ") != 3 {
		t.Errorf("want the page's four slots, no others:\n%s", slots)
	}
}

// TestExplainNamesTheRequest: explain says what kind of request it read,
// as the proxy counts it.
func TestExplainNamesTheRequest(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--url", "/"}, "request: page view\n"},
		{[]string{"--url", "/", "--header", "Sec-Fetch-Dest: empty", "--header", "X-Turbo-Request-Id: 1"}, "request: page view\n"},
		{[]string{"--url", "/", "--header", "Sec-Fetch-Dest: empty", "--header", "Turbo-Frame: cart", "--cookie", "edgeseg=x"},
			"request: part of a page: a frame, or swapped in by a script (filled, no page view)\n"},
		{[]string{"--url", "/", "--header", "Sec-Fetch-Dest: iframe"}, "request: part of a page, without the profile cookie (filled, not counted)\n"},
		{[]string{"--url", "/", "--header", "Sec-Purpose: prefetch"}, "request: prefetch (filled; counted once shown, by the beacon it carries)\n"},
		{[]string{"--url", "/", "--header", "Sec-Purpose: prefetch", "--header", "Sec-GPC: 1"}, "request: prefetch (filled, not counted)\n"},
		{[]string{"--url", "/", "--header", "X-Sec-Purpose: prefetch", "--header", "Turbo-Frame: cart", "--header", "Sec-Fetch-Dest: empty"}, "request: prefetch (filled, not counted)\n"},
		{[]string{"--url", "/", "--header", "Sec-Fetch-Dest: script"}, "request: not a page: passed as sent\n"},
	} {
		m := NewMain()
		var out bytes.Buffer
		m.Stdout, m.Stderr, m.Environ = &out, io.Discard, nil
		if err := m.ParseFlags(append([]string{"explain", "--config", "../../examples/edgeseg.yaml"}, tc.args...)); err != nil {
			t.Fatal(err)
		}
		if err := m.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(out.String(), tc.want) {
			t.Errorf("%q: got\n%.200s", tc.args, out.String())
		}
	}
}
