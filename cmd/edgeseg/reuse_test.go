package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestPagesWithATokenReuseTheirPlan: an origin page that carries a new
// CSRF token on every request, in attributes and in the state an inline
// script starts from, and a cart count that grows (moving the slot), is
// filled as well as a page that never changes, each visitor
// getting the token and count the origin gave them, and the page is
// tokenized once for its path instead of once per request. A page that
// changes elsewhere is tokenized again, and filled as its own.
func TestPagesWithATokenReuseTheirPlan(t *testing.T) {
	var mu sync.Mutex
	extra := ""
	count := 0 // a cart count before the slot: 9 items, then 10, moves it
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 16)
		rand.Read(b)
		token := hex.EncodeToString(b)
		mu.Lock()
		more := extra
		count += 3
		n := count
		mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("X-Token", token)
		w.Header().Set("X-Count", strconv.Itoa(n))
		items := strings.Repeat(`{"id":"p1"},`, n)
		fmt.Fprintf(w, `<!doctype html><html><head><meta name="csrf-token" content="%s">`+
			`<script>window.__STATE__={"csrf":"%s","cart":[%s]}</script></head><body>%s`+
			`<form><input type="hidden" name="authenticity_token" value="%s"></form><a class="cart" data-count="%d">Cart</a>`+
			`<section data-edgeseg-slot="hero"><h1>Welcome</h1></section></body></html>`, token, token, items, more, token, n)
	})
	s := startStack(t, origin, noHoldouts)
	b := s.browser(uaDesktop)
	check := func(round int) {
		t.Helper()
		resp, body := b.page("/?utm_campaign=promo-" + strconv.Itoa(round))
		token, count := resp.Header.Get("X-Token"), resp.Header.Get("X-Count")
		if resp.StatusCode != 200 || strings.Count(body, token) != 3 || !strings.Contains(body, `data-count="`+count+`">Cart</a><section data-edgeseg-slot="hero"`) ||
			!strings.Contains(body, "Deals picked for you") || strings.Contains(body, "Welcome") || !strings.HasSuffix(body, "</section></body></html>") {
			t.Fatalf("round %d: not the origin's page (token %s) with the deals block:\n%s", round, token, body)
		}
	}
	reused := func() int {
		m := regexp.MustCompile(`(?m)^edgeseg_plans_reused_total (\d+)$`).FindStringSubmatch(s.get("/_edgeseg/metrics"))
		if m == nil {
			t.Fatal("no edgeseg_plans_reused_total in the metrics")
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	// The first two pages are scanned: the first as any page, the second,
	// new bytes at a path seen before, kept as the path's reference. The
	// cache takes the reference in a moment (its sets are applied by a
	// goroutine of its own), so pages are asked for until one reuses its
	// plan; from then on every page does.
	round := 0
	settle := func() {
		t.Helper()
		start := reused()
		for deadline := time.Now().Add(5 * time.Second); reused() == start; round++ {
			if time.Now().After(deadline) {
				t.Fatalf("%d pages, none reused a plan", round)
			}
			check(round)
		}
	}
	settle()
	before := reused()
	for range 8 {
		check(round)
		round++
	}
	if n := reused() - before; n != 8 {
		t.Fatalf("%d of 8 pages reused the plan of their path's reference", n)
	}
	// The changed page is scanned, and becomes the path's reference (the
	// path is known); the pages after it reuse its plan.
	mu.Lock()
	extra = "<p>A new banner</p>"
	mu.Unlock()
	settle()
	before = reused()
	for range 8 {
		check(round)
		round++
	}
	if n := reused() - before; n != 8 {
		t.Fatalf("%d of 8 pages reused a plan after the page changed", n)
	}
}
