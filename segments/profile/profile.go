package profile

import (
	"crypto/rand"
	"encoding/base64"
	"sort"
	"time"
)

// Windows: counts are kept per day for this many days.
const keepDays = 30

// Event names the mapper and rules know. Custom names are allowed too.
const (
	PageView      = "page_view"
	CategoryView  = "category_view"
	ProductView   = "product_view"
	CartAdd       = "cart_add"
	CheckoutStart = "checkout_start"
	Purchase      = "purchase"
	Search        = "search"
)

// weights give each event's contribution to the engagement score.
var weights = map[string]int{
	PageView: 1, CategoryView: 1, ProductView: 2, Search: 2,
	CartAdd: 5, CheckoutStart: 8, Purchase: 10,
}

// Profile is one visitor's behavior. The zero value is not valid: use
// Fresh, or Codec.Decode.
type Profile struct {
	ID        string    `json:"id"`
	First     int64     `json:"f"`           // unix seconds of the first request
	Last      int64     `json:"l"`           // unix seconds of the last page view
	Visits    int       `json:"n"`           // visits, a new one after the visit gap
	PageViews int       `json:"pv"`          // all-time page views
	Cats      []Counter `json:"c,omitempty"` // per-category day counts
	Events    []Counter `json:"e,omitempty"` // per-event day counts
	Products  []string  `json:"p,omitempty"` // recently viewed products, newest first
	Recent    []Recency `json:"r,omitempty"` // last day of each event kind
	Fresh     bool      `json:"-"`           // minted for this request
	Started   bool      `json:"-"`           // this request's page navigation began a visit
	Changed   bool      `json:"-"`           // must be written back
}

// Counter counts one name per day: Days holds pairs of (day number, count),
// newest first. Day numbers are days since the Unix epoch.
type Counter struct {
	Name string  `json:"k"`
	Days []int32 `json:"d"`
}

// Recency is the last day an event happened.
type Recency struct {
	Name string `json:"k"`
	Day  int32  `json:"d"`
}

// Event is one observed behavior.
type Event struct {
	Name     string
	Category string
	Product  string
	// Navigation is true for a page view of any kind.
	Navigation bool
}

// NewFresh returns a new profile with a random id, first seen at now.
func NewFresh(now time.Time) *Profile {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return &Profile{ID: base64.RawURLEncoding.EncodeToString(b[:]), First: now.Unix(), Fresh: true, Changed: true}
}

func dayOf(t time.Time) int32 { return int32(t.Unix() / 86400) }

// Settings are the behavior thresholds from config.
type Settings struct {
	VisitGap           time.Duration
	MaxCategories      int
	MaxProducts        int
	ConsiderationScore int
	DecisionScore      int
}

// Observe records ev at now. A page navigation after more than VisitGap
// since the last one starts a new visit.
func (p *Profile) Observe(ev Event, now time.Time, s Settings) {
	day := dayOf(now)
	if ev.Navigation {
		p.Started = p.Visits == 0 || p.Last == 0 || now.Unix()-p.Last > int64(s.VisitGap/time.Second)
		if p.Started {
			p.Visits++
		}
		if now.Unix() > p.Last {
			p.Last = now.Unix()
		}
		p.PageViews++
	}
	if ev.Name != "" {
		p.Events = bump(p.Events, ev.Name, day)
		p.Recent = setRecent(p.Recent, ev.Name, day)
	}
	if ev.Category != "" {
		p.Cats = bump(p.Cats, ev.Category, day)
	}
	if ev.Product != "" && s.MaxProducts > 0 {
		p.Products = pushFront(p.Products, ev.Product, s.MaxProducts)
	}
	p.expire(day)
	if len(p.Cats) > s.MaxCategories {
		// The category just seen always stays: new interests must be able
		// to displace old ones.
		p.Cats = keepTop(p.Cats, s.MaxCategories, day, ev.Category)
	}
	p.Changed = true
}

func bump(cs []Counter, name string, day int32) []Counter {
	for i := range cs {
		if cs[i].Name == name {
			d := cs[i].Days
			if len(d) >= 2 && d[0] == day {
				d[1]++
			} else {
				cs[i].Days = append([]int32{day, 1}, d...)
			}
			return cs
		}
	}
	return append(cs, Counter{Name: name, Days: []int32{day, 1}})
}

func setRecent(rs []Recency, name string, day int32) []Recency {
	for i := range rs {
		if rs[i].Name == name {
			rs[i].Day = day
			return rs
		}
	}
	return append(rs, Recency{Name: name, Day: day})
}

func pushFront(list []string, v string, max int) []string {
	out := make([]string, 0, max)
	out = append(out, v)
	for _, x := range list {
		if x != v && len(out) < max {
			out = append(out, x)
		}
	}
	return out
}

// expire drops day counts older than the longest window, and counters left
// empty.
func (p *Profile) expire(today int32) {
	p.Cats = expireCounters(p.Cats, today)
	p.Events = expireCounters(p.Events, today)
}

func expireCounters(cs []Counter, today int32) []Counter {
	out := cs[:0]
	for _, c := range cs {
		d := c.Days
		n := 0
		for n+1 < len(d) && today-d[n] < keepDays {
			n += 2
		}
		c.Days = d[:n]
		if len(c.Days) > 0 {
			out = append(out, c)
		}
	}
	return out
}

// keepTop keeps the n counters used most in the window (ties: most recent
// first) and protect, dropping the least used.
func keepTop(cs []Counter, n int, today int32, protect string) []Counter {
	rank := func(c Counter) (bool, int, int32) {
		last := int32(0)
		if len(c.Days) > 0 {
			last = c.Days[0]
		}
		return c.Name == protect, total(c.Days, today, keepDays), last
	}
	sort.SliceStable(cs, func(i, j int) bool {
		pi, ti, li := rank(cs[i])
		pj, tj, lj := rank(cs[j])
		if pi != pj {
			return pi
		}
		if ti != tj {
			return ti > tj
		}
		return li > lj
	})
	return cs[:n]
}

func total(days []int32, today int32, window int) int {
	t := 0
	for i := 0; i+1 < len(days); i += 2 {
		if today-days[i] < int32(window) && days[i] <= today {
			t += int(days[i+1])
		}
	}
	return t
}

func find(cs []Counter, name string) []int32 {
	for _, c := range cs {
		if c.Name == name {
			return c.Days
		}
	}
	return nil
}

// Views returns how often category was viewed in the last days days
// (today counts as day 1). days is clamped to 1..30.
func (p *Profile) Views(category string, days int, now time.Time) int {
	if p == nil {
		return 0
	}
	return total(find(p.Cats, category), dayOf(now), clampDays(days))
}

// Count returns how often event happened in the last days days.
func (p *Profile) Count(event string, days int, now time.Time) int {
	if p == nil {
		return 0
	}
	return total(find(p.Events, event), dayOf(now), clampDays(days))
}

// DaysSince returns whole days since event last happened, or -1 if never
// (or too long ago to remember).
func (p *Profile) DaysSince(event string, now time.Time) int {
	if p == nil {
		return -1
	}
	for _, r := range p.Recent {
		if r.Name == event {
			return int(dayOf(now) - r.Day)
		}
	}
	return -1
}

// DaysSinceLastVisit returns whole days since the last page view before
// now, or -1 for a new visitor.
func (p *Profile) DaysSinceLastVisit(now time.Time) int {
	if p == nil || p.Last == 0 {
		return -1
	}
	return int((now.Unix() - p.Last) / 86400)
}

func clampDays(d int) int {
	switch {
	case d < 1:
		return 1
	case d > keepDays:
		return keepDays
	}
	return d
}

// Score is the engagement score: weighted events over the last 30 days.
func (p *Profile) Score(now time.Time) int {
	if p == nil {
		return 0
	}
	today := dayOf(now)
	s := 0
	for _, c := range p.Events {
		w, ok := weights[c.Name]
		if !ok {
			w = 1
		}
		s += w * total(c.Days, today, keepDays)
	}
	return s
}

// Stage is awareness, consideration or decision: decision after a cart
// add or checkout start in the last 7 days (without a purchase since), or
// at the decision score; consideration at the consideration score.
func (p *Profile) Stage(now time.Time, s Settings) string {
	if p == nil {
		return "awareness"
	}
	intent := recentest(p.DaysSince(CartAdd, now), p.DaysSince(CheckoutStart, now))
	bought := p.DaysSince(Purchase, now)
	if intent >= 0 && intent < 7 && (bought < 0 || bought > intent) {
		return "decision"
	}
	switch score := p.Score(now); {
	case score >= s.DecisionScore:
		return "decision"
	case score >= s.ConsiderationScore:
		return "consideration"
	}
	return "awareness"
}

// TopCategories returns up to n categories by views in the last 30 days.
func (p *Profile) TopCategories(n int, now time.Time) []string {
	if p == nil {
		return nil
	}
	today := dayOf(now)
	type ct struct {
		name string
		n    int
	}
	var cs []ct
	for _, c := range p.Cats {
		if t := total(c.Days, today, keepDays); t > 0 {
			cs = append(cs, ct{c.Name, t})
		}
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].n > cs[j].n })
	out := make([]string, 0, min(n, len(cs)))
	for i := 0; i < len(cs) && i < n; i++ {
		out = append(out, cs[i].name)
	}
	return out
}

// recentest returns the smaller non-negative of a and b (-1 means never).
func recentest(a, b int) int {
	switch {
	case a < 0:
		return b
	case b < 0:
		return a
	}
	return min(a, b)
}
