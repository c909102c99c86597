package signals

import (
	"bytes"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/cespare/xxhash/v2"
	useragent "github.com/medama-io/go-useragent"
	"github.com/medama-io/go-useragent/agents"
	"github.com/valyala/fasthttp"

	"github.com/edgeseg/edgeseg/config"
)

// Context is the set of context signals of one request.
type Context struct {
	// Device is mobile, tablet, desktop, tv, bot, or unknown.
	Device  string
	Browser string // e.g. Chrome, Safari, Firefox; "" when unknown
	OS      string // e.g. iOS, Android, Windows, MacOS; "" when unknown
	Bot     bool

	Hour    int    // 0-23 in the configured time zone
	Weekday string // monday … sunday
	Weekend bool
	Daypart string // morning (5-11), afternoon (12-16), evening (17-21), night (22-4)

	// Referrer is search, social, email, paid, internal, direct or other.
	Referrer     string
	ReferrerHost string
	UTM          UTM

	Country  string // ISO 3166 alpha-2, upper case, from the trusted geo header
	Region   string
	Language string // primary language subtag, lower case ("en")

	Path   string
	Method string

	// Cookies, Headers and Query hold only the names config allows.
	Cookies []KV
	Headers []KV
	Query   []KV
}

// UTM holds the utm_* query parameters.
type UTM struct {
	Source   string `json:"source"`
	Medium   string `json:"medium"`
	Campaign string `json:"campaign"`
	Term     string `json:"term"`
	Content  string `json:"content"`
}

// String lists the parameters that are set (`medium="cpc"
// campaign="promo"`), or "none".
func (u UTM) String() string {
	var b strings.Builder
	for _, kv := range [...]KV{{"source", u.Source}, {"medium", u.Medium}, {"campaign", u.Campaign}, {"term", u.Term}, {"content", u.Content}} {
		if kv.Value == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%q", kv.Name, kv.Value) // quoted: a visitor's URL chose it
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

// KV is a name and a value.
type KV struct{ Name, Value string }

// Lookup returns the value for name in kvs (exact match), or "".
func Lookup(kvs []KV, name string) string {
	for _, kv := range kvs {
		if kv.Name == name {
			return kv.Value
		}
	}
	return ""
}

// Extractor derives Contexts from requests. It is safe for concurrent use.
type Extractor struct {
	ua          *userAgents
	loc         *time.Location
	geoCountry  string
	geoRegion   string
	search      []string
	social      []string
	email       []string
	paid        map[string]bool
	cookies     []string
	headers     []string
	query       []string
	geoTrusted  bool // geo headers need a trusted peer (when trusted proxies are set)
	maxValueLen int
}

// New builds an Extractor from cfg.
func New(cfg *config.Config) (*Extractor, error) {
	loc, err := time.LoadLocation(cfg.Signals.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("signals: time zone %q: %w", cfg.Signals.TimeZone, err)
	}
	e := &Extractor{
		ua:          &userAgents{},
		loc:         loc,
		geoCountry:  cfg.Signals.GeoCountryHeader,
		geoRegion:   cfg.Signals.GeoRegionHeader,
		search:      lowerAll(cfg.Signals.SearchHosts),
		social:      lowerAll(cfg.Signals.SocialHosts),
		email:       lowerAll(cfg.Signals.EmailHosts),
		paid:        map[string]bool{},
		cookies:     cfg.Signals.Cookies,
		headers:     cfg.Signals.Headers,
		query:       cfg.Signals.Query,
		geoTrusted:  len(cfg.Server.TrustedProxies) > 0,
		maxValueLen: 256,
	}
	for _, m := range cfg.Signals.PaidMediums {
		e.paid[strings.ToLower(m)] = true
	}
	return e, nil
}

func lowerAll(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = strings.ToLower(strings.TrimPrefix(s, "."))
	}
	return out
}

// Request is what Extract reads of one request.
type Request struct {
	Req *fasthttp.Request
	// PeerTrusted: the connection comes from a trusted proxy, so its geo
	// headers may be believed.
	PeerTrusted bool
	Now         time.Time
}

// Extract fills c from r. c is reset first; it keeps its slices' capacity.
func (e *Extractor) Extract(r Request, c *Context) {
	cookies, headers, query := c.Cookies[:0], c.Headers[:0], c.Query[:0]
	*c = Context{Cookies: cookies, Headers: headers, Query: query}
	h := &r.Req.Header

	e.device(h, c)

	t := r.Now.In(e.loc)
	c.Hour = t.Hour()
	wd := t.Weekday()
	c.Weekday = weekdays[wd]
	c.Weekend = wd == time.Saturday || wd == time.Sunday
	c.Daypart = Daypart(c.Hour)

	args := r.Req.URI().QueryArgs()
	c.UTM = UTM{
		Source:   e.clean(args.Peek("utm_source")),
		Medium:   e.clean(args.Peek("utm_medium")),
		Campaign: e.clean(args.Peek("utm_campaign")),
		Term:     e.clean(args.Peek("utm_term")),
		Content:  e.clean(args.Peek("utm_content")),
	}
	c.ReferrerHost, c.Referrer = e.referrer(h.Referer(), h.Host(), c.UTM)

	if e.geoCountry != "" && (!e.geoTrusted || r.PeerTrusted) {
		if v := h.Peek(e.geoCountry); len(v) == 2 && isAlpha(v[0]) && isAlpha(v[1]) {
			c.Country = strings.ToUpper(string(v))
		}
		if e.geoRegion != "" {
			c.Region = e.clean(h.Peek(e.geoRegion))
		}
	}
	c.Language = primaryLanguage(h.Peek("Accept-Language"))
	c.Path = e.clean(r.Req.URI().Path())
	c.Method = string(h.Method())

	for _, n := range e.cookies {
		if v := h.Cookie(n); v != nil {
			c.Cookies = append(c.Cookies, KV{n, e.clean(v)})
		}
	}
	for _, n := range e.headers {
		if v := h.Peek(n); v != nil {
			c.Headers = append(c.Headers, KV{n, e.clean(v)})
		}
	}
	for _, n := range e.query {
		if v := args.Peek(n); v != nil {
			c.Query = append(c.Query, KV{n, e.clean(v)})
		}
	}
}

// clean copies v as valid UTF-8, bounded in length.
func (e *Extractor) clean(v []byte) string {
	if len(v) == 0 {
		return ""
	}
	if len(v) > e.maxValueLen {
		v = v[:e.maxValueLen]
	}
	if utf8.Valid(v) {
		return string(v)
	}
	return strings.ToValidUTF8(string(v), "\uFFFD")
}

var weekdays = [...]string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"}

// Daypart names the part of the day an hour (0-23) falls in: morning
// (5-11), afternoon (12-16), evening (17-21) or night (22-4).
func Daypart(hour int) string {
	switch {
	case hour >= 5 && hour < 12:
		return "morning"
	case hour >= 12 && hour < 17:
		return "afternoon"
	case hour >= 17 && hour < 22:
		return "evening"
	}
	return "night"
}

// device classifies the User-Agent, corrected by client hints: iPadOS
// sends a desktop Mac UA, but Sec-CH-UA-Mobile and touch hints tell.
func (e *Extractor) device(h *fasthttp.RequestHeader, c *Context) {
	ua := h.UserAgent()
	if len(ua) == 0 {
		c.Device, c.Bot = "bot", true
		return
	}
	if len(ua) > 1024 {
		ua = ua[:1024]
	}
	d := e.ua.table.get(ua)
	if d != nil {
		e.ua.hits.Add(1)
	} else {
		e.ua.misses.Add(1)
		d = e.ua.parse(ua)
		e.ua.table.put(d)
	}
	c.Device, c.Browser, c.OS, c.Bot = d.device, d.browser, d.os, d.bot
	if m := h.Peek("Sec-CH-UA-Mobile"); len(m) > 0 && !c.Bot {
		if bytes.Equal(m, []byte("?1")) && c.Device == "desktop" {
			c.Device = "mobile"
		}
	}
}

// userAgents classifies User-Agent strings: the parser and a table of
// recent classifications, with its hit counts. Nothing in it depends on
// config, so an Extractor built on reload keeps its predecessor's.
type userAgents struct {
	// The parser is built by Prepare, or on first use: an Extractor whose
	// userAgents are replaced on reload (KeepUserAgents) never builds one.
	once         sync.Once
	parser       *useragent.Parser
	table        uaCache
	hits, misses atomic.Uint64
}

// KeepUserAgents makes e classify User-Agents with prev's parser and table
// (after a config reload: no rebuilt parser, no cold table, counts go on).
func (e *Extractor) KeepUserAgents(prev *Extractor) {
	if prev != nil {
		e.ua = prev.ua
	}
}

// Prepare builds what e otherwise builds on first use: the User-Agent
// parser, whose tables take milliseconds of CPU to build, and tens of
// them for the first visitors after a start, queued behind the build
// while they compete for the CPU. Called before serving, it keeps them
// from waiting; after KeepUserAgents it has nothing to do.
func (e *Extractor) Prepare() { e.ua.prepare() }

// prepare builds the parser, once.
func (u *userAgents) prepare() { u.once.Do(func() { u.parser = useragent.NewParser() }) }

// UserAgentCacheStats returns the hits and misses of the User-Agent table.
func (e *Extractor) UserAgentCacheStats() (hits, misses uint64) {
	return e.ua.hits.Load(), e.ua.misses.Load()
}

// parse classifies one User-Agent string.
func (u *userAgents) parse(ua []byte) *uaClass {
	d := &uaClass{ua: string(ua)}
	s := d.ua
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "")
	}
	u.prepare()
	p := u.parser.Parse(s)
	d.browser = string(p.Browser())
	d.os = string(p.OS())
	switch p.Device() {
	case agents.DeviceMobile:
		d.device = "mobile"
		if d.os == "Android" {
			d.device = androidDevice(s)
		}
	case agents.DeviceTablet:
		d.device = "tablet"
	case agents.DeviceDesktop:
		d.device = "desktop"
	case agents.DeviceTV:
		d.device = "tv"
	case agents.DeviceBot:
		d.device, d.bot = "bot", true
	default:
		d.device = "unknown"
		if isTool(ua) {
			d.device, d.bot = "bot", true
		}
	}
	return d
}

// androidDevice tells an Android phone from a tablet or a TV, which the
// parser takes for phones too. Android browsers mark phones with a
// "Mobile" token ("Mobile Safari", Firefox's "Mobile;") and leave it out
// on tablets (Chrome's reduced "Android 10; K" User-Agent too); TVs name
// themselves. Opera Mini's User-Agent carries no such token and is a
// phone's.
func androidDevice(ua string) string {
	for _, tv := range []string{"Android TV", "AndroidTV", "GoogleTV", "Google TV", "SMART-TV", "SmartTV", "BRAVIA", "CrKey", "; AFT"} {
		if strings.Contains(ua, tv) {
			return "tv"
		}
	}
	switch {
	case strings.Contains(ua, "Tablet"):
		return "tablet"
	case strings.Contains(ua, "Mobile"), strings.Contains(ua, "Opera Mini"):
		return "mobile"
	}
	return "tablet"
}

// uaClass is what a User-Agent string says, as device reads it.
type uaClass struct {
	ua                  string
	device, browser, os string
	bot                 bool
}

// uaCache remembers recent User-Agent classifications. Most traffic comes
// from a few hundred browser builds, and parsing a UA costs more than the
// rest of the context signals together. It is direct-mapped by a hash of
// the string: a lookup is one hash and one comparison, never a lock, and
// it holds at most uaCacheSize entries however many UAs arrive (a new one
// replaces whatever shared its slot).
type uaCache [uaCacheSize]atomic.Pointer[uaClass]

const uaCacheSize = 4096 // a power of two

func (c *uaCache) get(ua []byte) *uaClass {
	if d := c[xxhash.Sum64(ua)&(uaCacheSize-1)].Load(); d != nil && d.ua == string(ua) {
		return d
	}
	return nil
}

func (c *uaCache) put(d *uaClass) { c[xxhash.Sum64String(d.ua)&(uaCacheSize-1)].Store(d) }

// isTool reports HTTP libraries and command-line clients, which get the
// default content like crawlers do.
func isTool(ua []byte) bool {
	l := bytes.ToLower(ua)
	for _, t := range []string{"curl/", "wget/", "python-requests", "python-urllib", "go-http-client", "okhttp", "java/", "libwww", "httpie", "axios/", "node-fetch", "bot", "crawler", "spider", "scrapy"} {
		if bytes.Contains(l, []byte(t)) {
			return true
		}
	}
	return false
}

// referrer classifies where the visitor came from.
func (e *Extractor) referrer(ref, host []byte, utm UTM) (refHost, class string) {
	medium := strings.ToLower(utm.Medium)
	switch {
	case e.paid[medium]:
		class = "paid"
	case medium == "email" || medium == "newsletter":
		class = "email"
	case medium == "social" || medium == "social-media" || medium == "social_media":
		class = "social"
	}
	if len(ref) > 0 {
		refHost = hostOf(ref)
	}
	if class != "" {
		return refHost, class
	}
	switch {
	case refHost == "":
		if utm.Source != "" {
			return "", "other"
		}
		return "", "direct"
	case refHost == strings.ToLower(hostOnly(string(host))):
		return refHost, "internal"
	case matchHost(refHost, e.email):
		return refHost, "email"
	case matchHost(refHost, e.search) || strings.HasPrefix(refHost, "google.") || strings.Contains(refHost, ".google."):
		return refHost, "search"
	case matchHost(refHost, e.social):
		return refHost, "social"
	}
	return refHost, "other"
}

// hostOf returns the lower-case host of an absolute URL, or "".
func hostOf(ref []byte) string {
	_, rest, ok := authority(ref)
	if !ok {
		return ""
	}
	s := hostOnly(string(rest))
	if !utf8.ValidString(s) || len(s) > 253 {
		return ""
	}
	return strings.ToLower(s)
}

// authority splits an absolute URL into its scheme, with "://", and its
// host and port, without userinfo; ok is false without "://".
func authority(ref []byte) (scheme, hostport []byte, ok bool) {
	i := bytes.Index(ref, []byte("://"))
	if i < 0 {
		return nil, nil, false
	}
	scheme, hostport = ref[:i+3], ref[i+3:]
	if j := bytes.IndexAny(hostport, "/?#"); j >= 0 {
		hostport = hostport[:j]
	}
	if j := bytes.LastIndexByte(hostport, '@'); j >= 0 {
		hostport = hostport[j+1:]
	}
	return scheme, hostport, true
}

// ReferrerOrigin is all the signals read of a Referer: its scheme and
// host (and port), a new slice, or nil for one without a host. What a
// request's Referer says of where the visitor came from survives being
// cut down to it, and no more of that page is kept.
func ReferrerOrigin(ref []byte) []byte {
	scheme, hostport, ok := authority(ref)
	if !ok || len(scheme) > 16 || len(hostport) > 260 { // past any host hostOf reads
		return nil
	}
	return append(scheme[:len(scheme):len(scheme)], hostport...)
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}

// matchHost reports whether host is one of list or a subdomain of one.
func matchHost(host string, list []string) bool {
	for _, d := range list {
		if host == d || strings.HasSuffix(host, "."+d) {
			return true
		}
	}
	return false
}

// primaryLanguage returns the primary subtag of the most preferred
// language in an Accept-Language header.
func primaryLanguage(v []byte) string {
	var best []byte
	bestQ := -1.0
	for len(v) > 0 {
		var part []byte
		part, v, _ = bytes.Cut(v, []byte(","))
		tag, params, _ := bytes.Cut(bytes.TrimSpace(part), []byte(";"))
		q := 1.0
		if p := bytes.TrimSpace(params); bytes.HasPrefix(p, []byte("q=")) {
			if f, err := strconv.ParseFloat(string(p[2:]), 64); err == nil {
				q = f
			}
		}
		if i := bytes.IndexByte(tag, '-'); i >= 0 {
			tag = tag[:i]
		}
		if len(tag) < 2 || len(tag) > 3 || !allAlpha(tag) || q <= bestQ || q <= 0 {
			continue
		}
		best, bestQ = tag, q
	}
	if best == nil {
		return ""
	}
	return strings.ToLower(string(best))
}

func isAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

func allAlpha(b []byte) bool {
	for _, c := range b {
		if !isAlpha(c) {
			return false
		}
	}
	return true
}
