package segments

import (
	"sort"
	"time"

	"github.com/edgeseg/edgeseg/segments/profile"
	"github.com/edgeseg/edgeseg/segments/signals"
)

// Env is what rules read. Field names in rules are the expr tags.
type Env struct {
	Device       string  `expr:"device"`
	Browser      string  `expr:"browser"`
	OS           string  `expr:"os"`
	Bot          bool    `expr:"bot"`
	Hour         int     `expr:"hour"`
	Weekday      string  `expr:"weekday"`
	Weekend      bool    `expr:"weekend"`
	Daypart      string  `expr:"daypart"`
	Referrer     string  `expr:"referrer"`
	ReferrerHost string  `expr:"referrer_host"`
	UTM          UTM     `expr:"utm"`
	Country      string  `expr:"country"`
	Region       string  `expr:"region"`
	Language     string  `expr:"language"`
	Path         string  `expr:"path"`
	Visitor      Visitor `expr:"visitor"`

	ctx      *signals.Context
	prof     *profile.Profile
	claims   []signals.KV
	now      time.Time
	settings profile.Settings
}

// UTM is utm.* in rules.
type UTM struct {
	Source   string `expr:"source"`
	Medium   string `expr:"medium"`
	Campaign string `expr:"campaign"`
	Term     string `expr:"term"`
	Content  string `expr:"content"`
}

// Visitor is visitor.* in rules: behavior from the profile.
type Visitor struct {
	// Consent is false when the visitor has not consented: behavior is empty.
	Consent            bool   `expr:"consent"`
	New                bool   `expr:"new"`
	Visits             int    `expr:"visits"`
	PageViews          int    `expr:"pageviews"`
	Score              int    `expr:"score"`
	Stage              string `expr:"stage"`
	DaysSinceLastVisit int    `expr:"days_since_last_visit"`
	TopCategory        string `expr:"top_category"`
	Purchases          int    `expr:"purchases"`
}

// Fill sets e from a request's context signals, the visitor's profile (nil
// without consent), verified identity claims, and the time. lastSeen is the
// profile's last page view before this request, for recency.
func (e *Env) Fill(ctx *signals.Context, p *profile.Profile, claims []signals.KV, now time.Time, s profile.Settings, lastSeen int64) {
	*e = Env{
		Device: ctx.Device, Browser: ctx.Browser, OS: ctx.OS, Bot: ctx.Bot,
		Hour: ctx.Hour, Weekday: ctx.Weekday, Weekend: ctx.Weekend, Daypart: ctx.Daypart,
		Referrer: ctx.Referrer, ReferrerHost: ctx.ReferrerHost,
		UTM:     UTM{ctx.UTM.Source, ctx.UTM.Medium, ctx.UTM.Campaign, ctx.UTM.Term, ctx.UTM.Content},
		Country: ctx.Country, Region: ctx.Region, Language: ctx.Language, Path: ctx.Path,
		ctx: ctx, prof: p, claims: claims, now: now, settings: s,
	}
	if p != nil {
		e.Visitor = Visitor{
			Consent:   true,
			New:       p.Visits <= 1,
			Visits:    p.Visits,
			PageViews: p.PageViews,
			Score:     p.Score(now),
			Stage:     p.Stage(now, s),
			Purchases: p.Count(profile.Purchase, 30, now),
		}
		e.Visitor.DaysSinceLastVisit = -1
		if lastSeen > 0 {
			e.Visitor.DaysSinceLastVisit = int((now.Unix() - lastSeen) / 86400)
		}
		if top := p.TopCategories(1, now); len(top) > 0 {
			e.Visitor.TopCategory = top[0]
		}
	} else {
		e.Visitor = Visitor{New: true, Stage: "awareness", DaysSinceLastVisit: -1}
	}
}

// Views is views(category, days) in rules: category views in the last days
// days (1-30).
func (e *Env) Views(category string, days int) int { return e.prof.Views(category, days, e.now) }

// Events is events(name, days) in rules: how often an event happened in
// the last days days (1-30).
func (e *Env) Events(name string, days int) int { return e.prof.Count(name, days, e.now) }

// DaysSince is days_since(event) in rules: whole days since the event last
// happened, or -1 if never.
func (e *Env) DaysSince(event string) int { return e.prof.DaysSince(event, e.now) }

// Claim is claim(name) in rules: a verified claim of the site's login
// token (only those config lists), or "".
func (e *Env) Claim(name string) string { return signals.Lookup(e.claims, name) }

// Cookie is cookie(name) in rules: a request cookie config lists, or "".
func (e *Env) Cookie(name string) string {
	return e.lookup(func(c *signals.Context) []signals.KV { return c.Cookies }, name)
}

// Header is header(name) in rules: a request header config lists, or "".
func (e *Env) Header(name string) string {
	return e.lookup(func(c *signals.Context) []signals.KV { return c.Headers }, name)
}

// Query is query(name) in rules: a query parameter config lists, or "".
func (e *Env) Query(name string) string {
	return e.lookup(func(c *signals.Context) []signals.KV { return c.Query }, name)
}

func (e *Env) lookup(kvs func(*signals.Context) []signals.KV, name string) string {
	if e.ctx == nil {
		return ""
	}
	return signals.Lookup(kvs(e.ctx), name)
}

// functions maps the names rules use to Env's methods.
var functions = map[string]string{
	"views": "Views", "events": "Events", "days_since": "DaysSince",
	"claim": "Claim", "cookie": "Cookie", "header": "Header", "query": "Query",
}

// TopCategories returns the visitor's most viewed categories (30 days).
func (e *Env) TopCategories(n int) []string { return e.prof.TopCategories(n, e.now) }

// Products returns the visitor's recently viewed products, newest first.
func (e *Env) Products() []string {
	if e.prof == nil {
		return nil
	}
	return e.prof.Products
}

// Paths lists, sorted, every field path AppendValue knows: the names rules
// read ("device", "utm.campaign", "visitor.visits").
func Paths() []string {
	out := make([]string, 0, len(readers))
	for p := range readers {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// AppendValue appends the canonical value of a readable field path (the
// names rules use: "device", "utm.campaign", "visitor.visits") to buf, for
// cache keys. ok is false for an unknown path.
func (e *Env) AppendValue(path string, buf []byte) ([]byte, bool) {
	r, ok := readers[path]
	if !ok {
		return buf, false
	}
	return r(e, buf), true
}
