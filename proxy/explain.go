package proxy

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/edgeseg/edgeseg/segments"
	"github.com/edgeseg/edgeseg/templates/inject"
)

// Explanation is what edgeseg decided for one request and why: the
// debugger editors and analysts use (edgeseg explain, /_edgeseg/explain).
type Explanation struct {
	// Request says what kind of request it is: a page view, a part of a
	// page (a frame, a fragment a script swaps in), a prefetch, or only a
	// behavior event.
	Request  string            `json:"request"`
	Consent  string            `json:"consent"`
	Profile  map[string]any    `json:"profile"`
	Signals  map[string]any    `json:"signals"`
	Rules    []RuleExplanation `json:"rules"`
	Segments []string          `json:"segments"`
	Forced   string            `json:"forced,omitempty"`
	Slots    map[string]string `json:"slots"`
	Warnings []string          `json:"warnings,omitempty"`
}

// kind names the visit's request as Explanation.Request does; get: it is
// a GET or HEAD.
func (v *Visit) kind(get bool) string {
	switch {
	case !v.navigation:
		return "behavior event " + v.match.Event + " (no page to fill)"
	case !get:
		return "form post (its answer is not filled)"
	case v.head:
		return "HEAD request (no page shown: not counted)"
	case v.prefetch && v.countsWhenSeen():
		return "prefetch (filled; counted once shown, by the beacon it carries)"
	case v.prefetch:
		return "prefetch (filled, not counted)"
	case v.strangersPart():
		return "part of a page, without the profile cookie (filled, not counted)"
	case v.part:
		return "part of a page: a frame, or swapped in by a script (filled, no page view)"
	}
	return "page view"
}

// RuleExplanation is one rule's outcome with the values it read.
type RuleExplanation struct {
	Segment  string            `json:"segment"`
	Priority int               `json:"priority"`
	Rule     string            `json:"rule"`
	Matched  bool              `json:"matched"`
	Error    string            `json:"error,omitempty"`
	Reads    map[string]string `json:"reads"`
	Holdout  string            `json:"holdout,omitempty"`
}

// Explain runs steps 2–6 for a request and reports every decision. With a
// page (the plan of a page saved from the site), the slots are those of the
// page, and a block is checked against its slot's element there, as serve
// checks it; without one, every slot some block fills is reported.
func (p *Personalizer) Explain(ctx *fasthttp.RequestCtx, now time.Time, page *inject.Plan) *Explanation {
	v := p.begin(ctx, now)
	if v == nil {
		return &Explanation{Request: "not a page: passed as sent", Consent: "n/a: not a page navigation (send Accept: text/html)"}
	}
	defer p.end(v)
	e := &Explanation{Request: v.kind(ctx.IsGet() || ctx.IsHead()), Consent: v.consent.Reason, Slots: map[string]string{}, Forced: v.forced, Warnings: v.pl.engine.Warnings}
	if v.consent.Granted {
		e.Consent = "granted (" + v.consent.Reason + ")"
	} else {
		e.Consent = "denied (" + v.consent.Reason + ")"
	}
	if v.prof != nil {
		e.Profile = map[string]any{"id": v.prof.ID, "cookie": v.status.String(), "visits": v.prof.Visits,
			"pageviews": v.prof.PageViews, "stage": v.env.Visitor.Stage, "score": v.env.Visitor.Score,
			"top_categories": v.env.TopCategories(5), "products": v.prof.Products}
	}
	c := &v.ctx
	e.Signals = map[string]any{"device": c.Device, "browser": c.Browser, "os": c.OS, "bot": c.Bot, "hour": c.Hour,
		"weekday": c.Weekday, "daypart": c.Daypart, "referrer": c.Referrer, "referrer_host": c.ReferrerHost,
		"utm": c.UTM, "country": c.Country, "region": c.Region, "language": c.Language, "path": c.Path}
	id := ""
	if v.prof != nil && v.consent.Granted {
		id = v.prof.ID
	}
	matched, _ := v.pl.engine.Eval(&v.env)
	for i, s := range v.pl.engine.Segments() {
		r := RuleExplanation{Segment: s.Name, Priority: s.Priority, Rule: s.Rule, Matched: matched&(1<<uint(i)) != 0, Reads: map[string]string{}}
		for _, read := range s.Reads() {
			r.Reads[read] = readValue(&v.env, read)
		}
		if r.Matched && s.Holdout > 0 && id != "" {
			b := segments.Bucket(id, s.Name)
			if b < s.Holdout {
				r.Holdout = "in holdout (bucket " + ftoa(b) + " < " + ftoa(s.Holdout) + ")"
			} else {
				r.Holdout = "not in holdout (bucket " + ftoa(b) + ")"
			}
		}
		e.Rules = append(e.Rules, r)
	}
	for _, m := range v.members {
		name := m.Segment.Name
		if m.Holdout {
			name += " (holdout)"
		}
		e.Segments = append(e.Segments, name)
	}
	places := map[string][]inject.Place{}
	if page != nil {
		for _, ig := range page.Ignored() {
			e.Slots[ig.Slot] = "default (the page's marker cannot be filled: " + ig.Reason + ")"
		}
		for _, ps := range page.PlacedSlots() {
			places[ps.Slot] = append(places[ps.Slot], ps.At)
			e.Slots[ps.Slot] = "default (no block)"
		}
	}
	decided := map[string]bool{}
	for _, b := range v.set.Blocks() {
		if _, onPage := places[b.Slot]; page != nil && !onPage || decided[b.Slot] {
			continue
		}
		decided[b.Slot] = true
		e.Slots[b.Slot] = "default"
		for _, m := range v.members {
			blk := v.set.Lookup(b.Slot, m.Segment.Name)
			if blk == nil {
				continue
			}
			e.Slots[b.Slot] = blk.File
			if m.Holdout {
				e.Slots[b.Slot] = "default (holdout of " + m.Segment.Name + ")"
			} else if r, err := p.templates.Render(blk, m.Segment, &v.env); err != nil {
				e.Slots[b.Slot] = "default (" + err.Error() + ")"
			} else {
				for _, at := range places[b.Slot] {
					if why := inject.Misfit(at, r.Shape); why != "" {
						e.Slots[b.Slot] = "default (" + blk.File + " does not fit <" + string(at.Element) + "> on this page: " + why + ")"
						break
					}
				}
			}
			break
		}
	}
	return e
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', 4, 64) }

// readValue renders the value of one thing a rule reads, for explain.
func readValue(env *segments.Env, read string) string {
	f, err := segments.CompileValue(read)
	if err != nil {
		return "?"
	}
	return f(env)
}

// serveExplain answers /_edgeseg/explain for a request carrying a valid
// preview token; others get 404, so the endpoint reveals nothing.
func (p *Personalizer) serveExplain(ctx *fasthttp.RequestCtx) {
	pl := p.pl.Load()
	tok := ctx.QueryArgs().Peek(pl.cfg.Preview.Param)
	if len(tok) == 0 {
		tok = ctx.Request.Header.Cookie(pl.cfg.Preview.Cookie)
	}
	if pl.previews == nil || len(tok) == 0 {
		notFound(ctx)
		return
	}
	token := string(tok)
	if _, err := pl.previews.Verify(token, time.Now()); err != nil {
		notFound(ctx)
		return
	}
	// Explain the request as if it were for the page in ?path= (default
	// /); the access log names the request as it came.
	path := "/"
	if u := ctx.QueryArgs().Peek("path"); len(u) > 0 && u[0] == '/' {
		path = string(u)
	}
	defer ctx.Request.SetRequestURI(string(ctx.Request.RequestURI()))
	ctx.Request.SetRequestURI(path)
	ctx.Request.URI().QueryArgs().Set(pl.cfg.Preview.Param, token)
	if len(ctx.Request.Header.Peek("Accept")) == 0 || !strings.Contains(string(ctx.Request.Header.Peek("Accept")), "text/html") {
		ctx.Request.Header.Set("Accept", "text/html")
	}
	ctx.Request.Header.Del("Sec-Fetch-Dest")
	e := p.Explain(ctx, time.Now(), nil)
	ctx.Response.Header.SetContentType("application/json")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	enc := json.NewEncoder(ctx)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // rules read "views(...) >= 3", not \u003e; served as JSON, never as HTML
	enc.Encode(e)
}

// notFound answers 404 in plain text, as if nothing were at the path.
func notFound(ctx *fasthttp.RequestCtx) {
	ctx.SetStatusCode(fasthttp.StatusNotFound)
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString("404 Not Found\n")
}
