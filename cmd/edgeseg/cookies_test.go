package main

import (
	"net/http"
	"strings"
	"sync"
	"testing"
)

// cookieOrigin is the demo shop, recording the Cookie headers of every
// request it is sent.
type cookieOrigin struct {
	next http.Handler
	mu   sync.Mutex
	seen map[string][]string // path → Cookie header lines
}

func (o *cookieOrigin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	o.seen[r.URL.Path] = append([]string(nil), r.Header.Values("Cookie")...)
	o.mu.Unlock()
	o.next.ServeHTTP(w, r)
}

// newCookieOrigin is the demo shop, recording Cookie headers.
func newCookieOrigin(t *testing.T) *cookieOrigin {
	t.Helper()
	demo, err := NewDemoOrigin("../../examples/site")
	if err != nil {
		t.Fatal(err)
	}
	return &cookieOrigin{next: demo, seen: map[string][]string{}}
}

func (o *cookieOrigin) cookies(path string) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.seen[path]
}

// TestOwnCookiesStayAtTheEdge: the profile and preview cookies are
// edgeseg's. The origin never set them and is not sent them, so an origin
// cache that skips requests with cookies keeps caching once edgeseg sets
// one. The site's own cookies reach it as the browser sent them, odd ones
// included.
func TestOwnCookiesStayAtTheEdge(t *testing.T) {
	o := newCookieOrigin(t)
	s := startStack(t, o, nil)
	own := "edgeseg=" + s.browser(uaDesktop).profile("/category/sale").Value
	preview := "edgeseg_preview=" + strings.Repeat("x", 40)
	cases := []struct {
		name   string
		header []string // Cookie lines the browser sends
		want   []string // Cookie lines the origin gets
		asset  bool
	}{
		{"only edgeseg's", []string{own}, nil, false},
		{"first", []string{own + "; sid=42; theme=dark"}, []string{"sid=42; theme=dark"}, false},
		{"middle", []string{"sid=42; " + own + "; theme=dark"}, []string{"sid=42; theme=dark"}, false},
		{"last", []string{"sid=42;" + own}, []string{"sid=42"}, false},
		{"twice", []string{own + "; sid=42; edgeseg=stale"}, []string{"sid=42"}, false},
		{"preview too", []string{preview + "; " + own + "; sid=42"}, []string{"sid=42"}, false},
		{"asset", []string{"sid=42; " + own}, []string{"sid=42"}, true},
		{"odd site cookies kept as sent", []string{`q="a b"; ` + own + `; j={"k":"v\"w"}; flag; x=1,2`},
			[]string{`q="a b"; j={"k":"v\"w"}; flag; x=1,2`}, false},
		{"lines apart", []string{"sid=42", own, "theme=dark"}, []string{"sid=42", "theme=dark"}, false},
		{"a name that only ends like it", []string{"my_edgeseg=1; edgeseg2=2; " + own}, []string{"my_edgeseg=1; edgeseg2=2"}, false},
		{"none of edgeseg's", []string{`sid=42;  theme="dark"`}, []string{`sid=42;  theme="dark"`}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := "/"
			if tc.asset {
				path = "/static/style.css"
			}
			req, _ := http.NewRequest("GET", s.url+path, nil)
			req.Header.Set("User-Agent", uaDesktop)
			if !tc.asset {
				req.Header.Set("Sec-Fetch-Dest", "document")
			}
			req.Header["Cookie"] = tc.header
			resp, _ := s.browser(uaDesktop).do(req)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			got := o.cookies(path)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("origin got Cookie %q, want %q", got, tc.want)
			}
			if !tc.asset && strings.Contains(tc.header[0], own) && profileCookie(resp) == nil {
				t.Errorf("the profile was not read and renewed")
			}
		})
	}
}

// TestOwnCookiesToOrigin: a plain proxy (during an
// incident) still keeps them from the origin, and profile.to_origin sends
// them on for a site that reads the profile itself.
func TestOwnCookiesToOrigin(t *testing.T) {
	for _, tc := range []struct {
		env  string
		want string
	}{
		{"EDGESEG_PERSONALIZE=false", "sid=42"},
		{"EDGESEG_PROFILE_TO_ORIGIN=true", "sid=42; edgeseg=abc; edgeseg_preview=def"},
	} {
		t.Run(tc.env, func(t *testing.T) {
			o := newCookieOrigin(t)
			s := startStack(t, o, nil, tc.env)
			req, _ := http.NewRequest("GET", s.url+"/", nil)
			req.Header.Set("User-Agent", uaDesktop)
			req.Header.Set("Sec-Fetch-Dest", "document")
			req.Header.Set("Cookie", "sid=42; edgeseg=abc; edgeseg_preview=def")
			if resp, _ := s.browser(uaDesktop).do(req); resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if got := strings.Join(o.cookies("/"), "\n"); got != tc.want {
				t.Errorf("origin got Cookie %q, want %q", got, tc.want)
			}
		})
	}
}

// TestOnlyPagesAskForCodingsEdgesegDecodes: a request whose answer may be
// rewritten asks the origin only for codings edgeseg can decode; a script,
// style or image request keeps what the browser accepts (zstd), since its
// answer passes as sent.
func TestOnlyPagesAskForCodingsEdgesegDecodes(t *testing.T) {
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen-Ae", r.Header.Get("Accept-Encoding"))
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<p>ok</p>"))
	})
	for _, tc := range []struct {
		name, env string
		dest      string
		want      string
	}{
		{"navigation", "", "document", "gzip, deflate, br"},
		{"no Sec-Fetch-Dest", "", "", "gzip, deflate, br"},
		{"fetch", "", "empty", "gzip, deflate, br"},
		{"script", "", "script", "gzip, deflate, br, zstd"},
		{"iframe", "", "iframe", "gzip, deflate, br"},
		{"image", "", "image", "gzip, deflate, br, zstd"},
		{"not personalizing", "EDGESEG_PERSONALIZE=false", "document", "gzip, deflate, br, zstd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var env []string
			if tc.env != "" {
				env = append(env, tc.env)
			}
			s := startStack(t, origin, nil, env...)
			req, _ := http.NewRequest("GET", s.url+"/x", nil)
			req.Header.Set("User-Agent", uaDesktop)
			req.Header.Set("Accept-Encoding", "gzip, deflate, br, zstd")
			if tc.dest != "" {
				req.Header.Set("Sec-Fetch-Dest", tc.dest)
			}
			resp, _ := s.browser(uaDesktop).do(req)
			if got := resp.Header.Get("X-Seen-Ae"); got != tc.want {
				t.Errorf("origin was asked for %q, want %q", got, tc.want)
			}
		})
	}
}
