package signals

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"github.com/edgeseg/edgeseg/config"
)

const (
	uaIPhone   = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
	uaAndroid  = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36"
	uaFirefox  = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0"
	uaGoogle   = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
	uaCurl     = "curl/8.5.0"
	uaIPad     = "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
	uaMacSafar = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15"
)

func extract(t *testing.T, cfg *config.Config, setup func(*fasthttp.Request), now time.Time, trusted bool) Context {
	t.Helper()
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var req fasthttp.Request
	req.SetRequestURI("/")
	req.Header.SetHost("shop.example")
	setup(&req)
	var c Context
	e.Extract(Request{Req: &req, Now: now, PeerTrusted: trusted}, &c)
	return c
}

func TestDevice(t *testing.T) {
	for _, tc := range []struct {
		name, ua, device, browser, os string
		bot                           bool
		mobileHint                    bool
	}{
		{"mobile safari", uaIPhone, "mobile", "Safari", "iOS", false, false},
		{"android chrome", uaAndroid, "mobile", "Chrome", "Android", false, false},
		{"desktop firefox", uaFirefox, "desktop", "Firefox", "Windows", false, false},
		{"googlebot", uaGoogle, "bot", "", "", true, false},
		{"curl", uaCurl, "bot", "", "", true, false},
		{"empty", "", "bot", "", "", true, false},
		{"ipad", uaIPad, "tablet", "Safari", "iOS", false, false},
		{"mac ua with mobile hint", uaMacSafar, "mobile", "Safari", "MacOS", false, true},
		// The parser takes every Android device for a phone; a phone's
		// browser says "Mobile", a tablet's does not, a TV names itself.
		{"android tablet chrome", "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "tablet", "Chrome", "Android", false, false},
		{"android reduced ua tablet", "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "tablet", "Chrome", "Android", false, false},
		{"android reduced ua phone", "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", "mobile", "Chrome", "Android", false, false},
		{"android tablet firefox", "Mozilla/5.0 (Android 13; Tablet; rv:133.0) Gecko/133.0 Firefox/133.0", "tablet", "Firefox", "Android", false, false},
		{"android phone firefox", "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0", "mobile", "Firefox", "Android", false, false},
		{"fire tablet", "Mozilla/5.0 (Linux; Android 9; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) Silk/126.4.1 like Chrome/126.0.6478.186 Safari/537.36", "tablet", "", "Android", false, false},
		{"android webview phone", "Mozilla/5.0 (Linux; Android 14; SM-S918B Build/UP1A; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/131.0.0.0 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/480.0.0.0;]", "mobile", "", "Android", false, false},
		{"android tv", "Mozilla/5.0 (Linux; Android 11; BRAVIA 4K GB ATV3) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36", "tv", "", "Android", false, false},
		{"chromecast", "Mozilla/5.0 (Linux; Android 12; Chromecast) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/108.0.0.0 Safari/537.36 CrKey/1.56.500000 DeviceType/AndroidTV", "tv", "", "Android", false, false},
		{"opera mini", "Opera/9.80 (Android; Opera Mini/36.2.2254/119.132; U; id) Presto/2.12.423 Version/12.16", "mobile", "", "", false, false},
		{"invalid utf-8", "Mozilla/5.0 \xff\xfe (X11)", "", "", "", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := extract(t, config.Default(), func(r *fasthttp.Request) {
				r.Header.SetUserAgent(tc.ua)
				if tc.mobileHint {
					r.Header.Set("Sec-CH-UA-Mobile", "?1")
				}
			}, time.Now(), false)
			if tc.device == "" { // only: no panic, some class
				if c.Device == "" {
					t.Fatal("no device class")
				}
				return
			}
			if c.Device != tc.device || c.Bot != tc.bot || (tc.browser != "" && c.Browser != tc.browser) || (tc.os != "" && c.OS != tc.os) {
				t.Fatalf("got device=%s browser=%s os=%s bot=%v", c.Device, c.Browser, c.OS, c.Bot)
			}
		})
	}
}

func TestTime(t *testing.T) {
	cfg := config.Default()
	cfg.Signals.TimeZone = "America/New_York"
	// 2026-03-06 is a Friday; 23:30 UTC is 18:30 in New York (EST).
	now := time.Date(2026, 3, 6, 23, 30, 0, 0, time.UTC)
	c := extract(t, cfg, func(*fasthttp.Request) {}, now, false)
	if c.Hour != 18 || c.Weekday != "friday" || c.Daypart != "evening" || c.Weekend {
		t.Fatalf("got hour=%d weekday=%s daypart=%s weekend=%v", c.Hour, c.Weekday, c.Daypart, c.Weekend)
	}
	for h, want := range map[int]string{0: "night", 4: "night", 5: "morning", 11: "morning", 12: "afternoon", 16: "afternoon", 17: "evening", 21: "evening", 22: "night"} {
		if got := Daypart(h); got != want {
			t.Errorf("Daypart(%d) = %s, want %s", h, got, want)
		}
	}
}

func TestReferrer(t *testing.T) {
	for _, tc := range []struct{ name, ref, query, class, host string }{
		{"direct", "", "", "direct", ""},
		{"search", "https://www.google.com/search?q=shoes", "", "search", "www.google.com"},
		{"search country tld", "https://www.google.de/", "", "search", "www.google.de"},
		{"bing", "https://www.bing.com/", "", "search", "www.bing.com"},
		{"social", "https://t.co/abc", "", "social", "t.co"},
		{"social subdomain", "https://m.facebook.com/", "", "social", "m.facebook.com"},
		{"email host", "https://mail.google.com/mail/u/0/", "", "email", "mail.google.com"},
		{"internal", "http://shop.example/category/sale", "", "internal", "shop.example"},
		{"paid by medium", "https://www.google.com/", "utm_medium=cpc&utm_source=google&utm_campaign=spring", "paid", "www.google.com"},
		{"email by medium", "", "utm_medium=email", "email", ""},
		{"other site", "https://blog.example.org/post", "", "other", "blog.example.org"},
		{"campaign without referer", "", "utm_source=partner", "other", ""},
		{"garbage referer", "not a url \xff", "", "direct", ""},
		{"userinfo trick", "https://google.com@evil.example/", "", "other", "evil.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := extract(t, config.Default(), func(r *fasthttp.Request) {
				if tc.ref != "" {
					r.Header.SetReferer(tc.ref)
				}
				r.SetRequestURI("/?" + tc.query)
			}, time.Now(), false)
			if c.Referrer != tc.class || c.ReferrerHost != tc.host {
				t.Fatalf("got %s (%s), want %s (%s)", c.Referrer, c.ReferrerHost, tc.class, tc.host)
			}
		})
	}
}

func TestUTMGeoLanguageAllowed(t *testing.T) {
	cfg := config.Default()
	cfg.Signals.GeoCountryHeader = "CF-IPCountry"
	cfg.Signals.Cookies = []string{"tier"}
	cfg.Signals.Headers = []string{"X-Plan"}
	cfg.Signals.Query = []string{"ref"}
	setup := func(r *fasthttp.Request) {
		r.SetRequestURI("/p?utm_source=news&utm_campaign=promo-1&utm_term=%FF%FE&ref=abc&secret=no")
		r.Header.Set("CF-IPCountry", "de")
		r.Header.Set("Accept-Language", "fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5")
		r.Header.SetCookie("tier", "gold")
		r.Header.SetCookie("session", "secret")
		r.Header.Set("X-Plan", "pro")
	}
	c := extract(t, cfg, setup, time.Now(), false)
	if c.UTM.Source != "news" || c.UTM.Campaign != "promo-1" || c.Country != "DE" || c.Language != "fr" {
		t.Fatalf("got %+v", c)
	}
	if c.UTM.Term != "\uFFFD" && c.UTM.Term != "\uFFFD\uFFFD" {
		t.Errorf("invalid UTF-8 not cleaned: %q", c.UTM.Term)
	}
	if Lookup(c.Cookies, "tier") != "gold" || Lookup(c.Cookies, "session") != "" || Lookup(c.Headers, "X-Plan") != "pro" ||
		Lookup(c.Query, "ref") != "abc" || Lookup(c.Query, "secret") != "" {
		t.Errorf("allowed lists: %+v %+v %+v", c.Cookies, c.Headers, c.Query)
	}
	// With trusted proxies configured, geo is believed only from them.
	cfg.Server.TrustedProxies = []string{"10.0.0.0/8"}
	if c := extract(t, cfg, setup, time.Now(), false); c.Country != "" {
		t.Errorf("geo header believed from an untrusted peer: %q", c.Country)
	}
	if c := extract(t, cfg, setup, time.Now(), true); c.Country != "DE" {
		t.Errorf("geo header from a trusted peer ignored")
	}
	// A malformed country is dropped.
	if c := extract(t, config.Default(), func(r *fasthttp.Request) { r.Header.Set("CF-IPCountry", "<script>") }, time.Now(), false); c.Country != "" {
		t.Errorf("bad country kept: %q", c.Country)
	}
}

func oneTrust(c *config.Consent)  { c.Cookie, c.Granted = "cc", []string{"C0004:1"} }
func cookiebot(c *config.Consent) { c.Cookie, c.Granted = "cc", []string{"marketing:true"} }

func TestConsent(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     func(*config.Consent)
		headers map[string]string
		cookie  string
		granted bool
		reason  string
	}{
		{"default granted", nil, nil, "", true, "default"},
		{"gpc", nil, map[string]string{"Sec-GPC": "1"}, "", false, "gpc"},
		{"dnt ignored by default", nil, map[string]string{"DNT": "1"}, "", true, "default"},
		{"dnt respected", func(c *config.Consent) { c.RespectDNT = true }, map[string]string{"DNT": "1"}, "", false, "dnt"},
		{"cookie required, missing", func(c *config.Consent) { c.Cookie = "cc" }, nil, "", false, "default"},
		{"cookie granted", func(c *config.Consent) { c.Cookie = "cc" }, nil, "yes", true, "cookie"},
		{"cookie substring", func(c *config.Consent) { c.Cookie = "cc"; c.Granted = []string{"personalization:1"} }, nil, "ads:0|personalization:1", true, "cookie"},
		{"cookie denied", func(c *config.Consent) { c.Cookie = "cc" }, nil, "no", false, "cookie"},
		{"one character is whole", func(c *config.Consent) { c.Cookie = "cc" }, nil, "C0001", false, "cookie"},
		// OneTrust's OptanonConsent and Cookiebot's CookieConsent, as browsers send them.
		{"OneTrust granted", oneTrust, nil, "isGpcEnabled=0&datestamp=Mon+Dec+07+2026+10%3A15%3A02+GMT%2B0100&version=202411.1.0&groups=C0001%3A1%2CC0002%3A0%2CC0003%3A1%2CC0004%3A1&AwaitingReconsent=false", true, "cookie"},
		{"OneTrust denied", oneTrust, nil, "isGpcEnabled=0&version=202411.1.0&groups=C0001%3A1%2CC0002%3A1%2CC0003%3A1%2CC0004%3A0&AwaitingReconsent=false", false, "cookie"},
		{"Cookiebot granted", cookiebot, nil, "{stamp:%27Zx2H1eTb0yQ==%27%2Cnecessary:true%2Cpreferences:true%2Cstatistics:false%2Cmarketing:true%2Cmethod:%27explicit%27%2Cver:3}", true, "cookie"},
		{"Cookiebot denied", cookiebot, nil, "{stamp:%27Zx2H1eTb0yQ==%27%2Cnecessary:true%2Cpreferences:true%2Cstatistics:true%2Cmarketing:false%2Cmethod:%27explicit%27%2Cver:3}", false, "cookie"},
		{"bad escapes", oneTrust, nil, "groups=C0004%3%zz%", false, "cookie"},
		{"escape at the end", oneTrust, nil, "groups=C0004:1%", true, "cookie"},
		{"gpc beats cookie", func(c *config.Consent) { c.Cookie = "cc" }, map[string]string{"Sec-GPC": "1"}, "yes", false, "gpc"},
		{"default denied", func(c *config.Consent) { c.Default = "denied" }, nil, "", false, "default"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc := config.Default().Consent
			if tc.cfg != nil {
				tc.cfg(&cc)
			}
			var h fasthttp.RequestHeader
			for k, v := range tc.headers {
				h.Set(k, v)
			}
			if tc.cookie != "" {
				h.SetCookie("cc", tc.cookie)
			}
			d := NewConsent(cc).From(&h)
			if d.Granted != tc.granted || d.Reason != tc.reason || !d.Context {
				t.Fatalf("got %+v", d)
			}
		})
	}
}

func BenchmarkExtract(b *testing.B) {
	cfg := config.Default()
	cfg.Signals.GeoCountryHeader = "CF-IPCountry"
	e, _ := New(cfg)
	var req fasthttp.Request
	req.SetRequestURI("/category/sale?utm_source=news&utm_medium=email&utm_campaign=promo-1")
	req.Header.SetHost("shop.example")
	req.Header.SetUserAgent(uaAndroid)
	req.Header.SetReferer("https://www.google.com/search?q=shoes")
	req.Header.Set("Accept-Language", "de-DE,de;q=0.9,en;q=0.8")
	req.Header.Set("CF-IPCountry", "DE")
	var c Context
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		e.Extract(Request{Req: &req, Now: now}, &c)
	}
}

// TestDeviceCache: classifications are remembered per User-Agent string,
// and the cache never answers for another string nor keeps per-request
// hints: a flood of distinct UAs (more than the cache holds) and the same
// UA with and without Sec-CH-UA-Mobile get what a fresh parse gives.
func TestDeviceCache(t *testing.T) {
	e, err := New(config.Default())
	if err != nil {
		t.Fatal(err)
	}
	classify := func(ua string, hint bool) Context {
		var req fasthttp.Request
		req.SetRequestURI("/")
		req.Header.SetUserAgent(ua)
		if hint {
			req.Header.Set("Sec-CH-UA-Mobile", "?1")
		}
		var c Context
		e.Extract(Request{Req: &req, Now: time.Now()}, &c)
		return c
	}
	type class struct {
		device, browser, os string
		bot                 bool
	}
	of := func(c Context) class { return class{c.Device, c.Browser, c.OS, c.Bot} }

	if got := of(classify(uaMacSafar, true)); got.device != "mobile" {
		t.Fatalf("mac UA with mobile hint: %+v", got)
	}
	if got := of(classify(uaMacSafar, false)); got.device != "desktop" {
		t.Fatalf("the same UA without the hint must not inherit it from the cache: %+v", got)
	}
	known := []string{uaIPhone, uaAndroid, uaFirefox, uaGoogle, uaCurl, uaIPad, uaMacSafar}
	want := map[string]class{}
	for _, ua := range known {
		want[ua] = of(classify(ua, false))
	}
	for i := range 3 * uaCacheSize {
		ua := fmt.Sprintf("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.0.0 Safari/537.36", i)
		if i%3 == 0 {
			ua = fmt.Sprintf("curl/%d.%d", i/100, i%100)
		}
		got := of(classify(ua, false))
		wantBot := i%3 == 0
		if got.bot != wantBot || (!wantBot && (got.device != "desktop" || got.browser != "Chrome")) {
			t.Fatalf("%q: %+v", ua, got)
		}
	}
	for _, ua := range known {
		if got := of(classify(ua, false)); got != want[ua] {
			t.Fatalf("%q after the flood: %+v, want %+v", ua, got, want[ua])
		}
	}
}

// TestUserAgentsKeptAcrossReload: an Extractor built on config reload
// keeps its predecessor's table and counts, so a reload does not send
// every visitor's User-Agent through the parser again.
func TestUserAgentsKeptAcrossReload(t *testing.T) {
	classify := func(e *Extractor) {
		var req fasthttp.Request
		req.SetRequestURI("/")
		req.Header.SetUserAgent(uaAndroid)
		var c Context
		e.Extract(Request{Req: &req, Now: time.Now()}, &c)
		if c.Device != "mobile" {
			t.Fatalf("device %q", c.Device)
		}
	}
	old, _ := New(config.Default())
	classify(old)
	classify(old)
	if h, m := old.UserAgentCacheStats(); h != 1 || m != 1 {
		t.Fatalf("hits %d misses %d, want 1 and 1", h, m)
	}
	next, _ := New(config.Default())
	next.KeepUserAgents(old)
	classify(next)
	if h, m := next.UserAgentCacheStats(); h != 2 || m != 1 {
		t.Fatalf("after reload: hits %d misses %d, want 2 and 1", h, m)
	}
}

// TestPrepare: Prepare builds the User-Agent parser, which is otherwise
// built by the first request (and, after a start, by the first visitors
// waiting on each other); the first request then uses it as is. An
// Extractor given its predecessor's on reload builds none.
func TestPrepare(t *testing.T) {
	e, _ := New(config.Default())
	if e.ua.parser != nil {
		t.Fatal("the parser is built before it is asked for")
	}
	e.Prepare()
	built := e.ua.parser
	if built == nil {
		t.Fatal("Prepare did not build the parser")
	}
	var req fasthttp.Request
	req.SetRequestURI("/")
	req.Header.SetUserAgent(uaAndroid)
	var c Context
	e.Extract(Request{Req: &req, Now: time.Now()}, &c)
	if c.Device != "mobile" || e.ua.parser != built {
		t.Fatalf("device %q; parser rebuilt: %v", c.Device, e.ua.parser != built)
	}
	next, _ := New(config.Default())
	next.KeepUserAgents(e)
	next.Prepare()
	if next.ua.parser != built {
		t.Fatal("an Extractor that keeps its predecessor's User-Agents built a parser of its own")
	}
}

// BenchmarkUserAgentParser is what Prepare takes off the first requests:
// building the parser.
func BenchmarkUserAgentParser(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		var u userAgents
		u.prepare()
	}
}

// FuzzExtract: whatever a request carries, the context it gives is one
// templates, rules and logs can take: every string valid UTF-8 and
// bounded, the classes from their fixed sets.
func FuzzExtract(f *testing.F) {
	for _, s := range [][6]string{
		{uaIPhone, "https://www.google.com/search?q=x", "de-CH;q=0.9,*;q=0.1", "DE", "/p?utm_source=news&utm_medium=email&ref=a", "plan=gold"},
		{uaMacSafar, "android-app://com.google.android.gm/", "en-US,en;q=0.5", "zz", "/?utm_medium=cpc", ""},
		{"Mozilla/5.0 \xff\xfe (X11)", "http://user@[::1]:80/x", "q=1;de", "\xff\xfe", "/%ff%fe?utm_campaign=%c3%28", "plan=\xff"},
		{"", "//", ",,;q=,", "", "/" + string(make([]byte, 300)), ""},
		{"curl/8", "https://" + string(make([]byte, 300)), "e-, xx;q=NaN, yy;q=1e400", "D\x00", "/?utm_source=" + string(make([]byte, 600)), "plan="},
	} {
		f.Add(s[0], s[1], s[2], s[3], s[4], s[5])
	}
	cfg := config.Default()
	cfg.Signals.GeoCountryHeader = "CF-IPCountry"
	cfg.Signals.GeoRegionHeader = "CF-Region"
	cfg.Signals.Cookies = []string{"plan"}
	cfg.Signals.Headers = []string{"X-Tier"}
	cfg.Signals.Query = []string{"ref"}
	e, err := New(cfg)
	if err != nil {
		f.Fatal(err)
	}
	devices := map[string]bool{"mobile": true, "tablet": true, "desktop": true, "tv": true, "bot": true, "unknown": true}
	referrers := map[string]bool{"search": true, "social": true, "email": true, "paid": true, "internal": true, "direct": true, "other": true}
	f.Fuzz(func(t *testing.T, ua, ref, lang, country, uri, cookie string) {
		var req fasthttp.Request
		req.SetRequestURI(uri)
		req.Header.SetHost("shop.example")
		req.Header.SetUserAgent(ua)
		req.Header.SetReferer(ref)
		req.Header.Set("Accept-Language", lang)
		req.Header.Set("CF-IPCountry", country)
		req.Header.Set("CF-Region", country+lang)
		req.Header.Set("X-Tier", ua)
		req.Header.Set("Cookie", cookie)
		req.Header.Set("Sec-CH-UA-Mobile", lang)
		var c Context
		e.Extract(Request{Req: &req, Now: time.Unix(int64(len(uri))*7919, 0), PeerTrusted: true}, &c)

		if !devices[c.Device] || !referrers[c.Referrer] || c.Bot != (c.Device == "bot") {
			t.Fatalf("device %q bot %v referrer %q", c.Device, c.Bot, c.Referrer)
		}
		if c.Hour < 0 || c.Hour > 23 || c.Daypart != Daypart(c.Hour) || c.Weekday == "" {
			t.Fatalf("time %d %q %q", c.Hour, c.Daypart, c.Weekday)
		}
		if c.Country != "" && (len(c.Country) != 2 || strings.ToUpper(c.Country) != c.Country || !isAlpha(c.Country[0]) || !isAlpha(c.Country[1])) {
			t.Fatalf("country %q", c.Country)
		}
		if c.Language != "" && (len(c.Language) < 2 || len(c.Language) > 3 || strings.ToLower(c.Language) != c.Language) {
			t.Fatalf("language %q", c.Language)
		}
		strs := []string{c.Browser, c.OS, c.ReferrerHost, c.UTM.Source, c.UTM.Medium, c.UTM.Campaign, c.UTM.Term, c.UTM.Content, c.Region, c.Path, c.Method}
		for _, kvs := range [][]KV{c.Cookies, c.Headers, c.Query} {
			for _, kv := range kvs {
				strs = append(strs, kv.Value)
			}
		}
		for _, s := range strs {
			if !utf8.ValidString(s) || len(s) > 3*256 {
				t.Fatalf("%q: not valid UTF-8 or too long (%d bytes)", s, len(s))
			}
		}
	})
}

func TestReferrerOrigin(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"https://www.google.com/search?q=shoes", "https://www.google.com"},
		{"https://www.google.com", "https://www.google.com"},
		{"http://shop.example:8080/a/b#c", "http://shop.example:8080"},
		{"https://user:pw@mail.example/inbox", "https://mail.example"},
		{"https://news.example?x=1", "https://news.example"},
		{"android-app://com.google.android.gm/", "android-app://com.google.android.gm"},
		{"/relative/path", ""},
		{"", ""},
		{"https://" + strings.Repeat("a", 300) + "/", ""},
		{strings.Repeat("s", 40) + "://host/", ""},
	} {
		if got := string(ReferrerOrigin([]byte(c.in))); got != c.want {
			t.Errorf("ReferrerOrigin(%.40q) = %q, want %q", c.in, got, c.want)
		}
	}
}
