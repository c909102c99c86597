package proxy

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/edgeseg/edgeseg/cache"
	"github.com/edgeseg/edgeseg/config"
	"github.com/edgeseg/edgeseg/segments"
	"github.com/edgeseg/edgeseg/segments/events"
	"github.com/edgeseg/edgeseg/segments/profile"
	"github.com/edgeseg/edgeseg/segments/signals"
	"github.com/edgeseg/edgeseg/templates"
	"github.com/edgeseg/edgeseg/templates/inject"
)

// Personalizer runs the personalization steps of the request path: consent,
// profile, signals, behavior and segments before the origin; slot filling
// after it; the profile cookie and events at the end. Its config-derived
// parts form an immutable Pipeline swapped on reload. A nil *Personalizer
// personalizes nothing, and every method is safe on nil.
type Personalizer struct {
	pl        atomic.Pointer[Pipeline]
	templates *templates.Store
	assign    *cache.Checked[uint64]
	plans     *cache.Checked[*inject.Plan]
	// refs keeps, by host and path, the last page seen there that was
	// scanned because it changed: a page that differs on every request
	// usually does only in a token or a nonce, and then has its plan
	// (planFor).
	refs *cache.Checked[*inject.Reference]
	// fresh keeps out of plans the pages seen once: a page that differs
	// on every request would fill it with plans never used again.
	fresh *cache.Doorkeeper
	// keys hashes cache keys with a per-process seed: keys built from
	// request values or page bytes cannot be aimed at each other.
	keys   cache.Hasher
	rate   *cache.Cache[uint64, *atomic.Int32] // client events per visitor and minute
	events *events.Logger
	log    zerolog.Logger
	m      personalizeMetrics
	visits sync.Pool
}

// Pipeline is everything derived from one config. Build it with
// NewPipeline; it is immutable.
type Pipeline struct {
	cfg       *config.Config
	consent   *signals.Consent
	extractor *signals.Extractor
	identity  *signals.Identity
	codec     *profile.Codec
	mapper    *profile.Mapper
	engine    *segments.Engine
	previews  *segments.Previews
	settings  profile.Settings
	trusted   netSet
	// ownCookies are the cookies the origin is not sent (ownCookieNames).
	ownCookies []string
	// placeholders names the secrets still set to an example's placeholder.
	placeholders []string
	// version changes with every pipeline, so cached assignments of an old
	// config are never used by a new one.
	version uint64
}

var pipelineVersion atomic.Uint64

// NewPipeline compiles cfg's personalization parts. keys are the profile
// signing keys by id; getenv resolves secret_env. Errors are config.Problems.
func NewPipeline(cfg *config.Config, getenv func(string) string) (*Pipeline, error) {
	var ps config.Problems
	collect := func(err error) {
		var cp config.Problems
		if errors.As(err, &cp) {
			ps = append(ps, cp...)
		} else if err != nil {
			ps = append(ps, config.Problem{File: cfg.File(), Msg: err.Error()})
		}
	}
	pl := &Pipeline{cfg: cfg, consent: signals.NewConsent(cfg.Consent), version: pipelineVersion.Add(1),
		ownCookies: ownCookieNames(cfg)}
	pl.settings = profile.Settings{
		VisitGap: cfg.Profile.VisitGap, MaxCategories: cfg.Profile.MaxCategories, MaxProducts: cfg.Profile.MaxProducts,
		ConsiderationScore: cfg.Profile.ConsiderationScore, DecisionScore: cfg.Profile.DecisionScore,
	}
	var err error
	if pl.extractor, err = signals.New(cfg); err != nil {
		collect(err)
	}
	if pl.identity, err = signals.NewIdentity(cfg, getenv); err != nil {
		collect(err)
	}
	if pl.mapper, err = profile.NewMapper(cfg); err != nil {
		collect(err)
	}
	if pl.engine, err = segments.New(cfg); err != nil {
		collect(err)
	}
	keys, signKID, err := profileKeys(cfg, getenv)
	if err != nil {
		collect(err)
	} else if pl.codec, err = profile.NewCodec(keys, signKID, cfg.Profile.MaxAge, cfg.Profile.MaxBytes); err != nil {
		collect(err)
	}
	secret := cfg.Preview.Secret
	if cfg.Preview.SecretEnv != "" {
		secret = getenv(cfg.Preview.SecretEnv)
	}
	for i, k := range cfg.Profile.Keys {
		if isPlaceholder(k.Value(getenv)) {
			pl.placeholders = append(pl.placeholders, fmt.Sprintf("profile.keys[%d]", i))
		}
	}
	if isPlaceholder(secret) {
		pl.placeholders = append(pl.placeholders, "preview.secret")
	}
	if secret != "" {
		if pl.previews, err = segments.NewPreviews(secret); err != nil {
			ps = append(ps, cfg.Problemf("preview.secret", "%v", err))
		}
	}
	for _, s := range cfg.Server.TrustedProxies {
		if n, err := config.ParseCIDR(s); err == nil {
			pl.trusted = append(pl.trusted, n)
		}
	}
	if len(ps) > 0 {
		return nil, ps
	}
	return pl, nil
}

// ephemeralKey is used when no profile key is configured: profiles then
// last only as long as the process.
var ephemeralKey = func() []byte {
	b := make([]byte, 32)
	_, _ = io.ReadFull(cryptoRand, b)
	return b
}()

func profileKeys(cfg *config.Config, getenv func(string) string) (map[string][]byte, string, error) {
	keys := map[string][]byte{}
	if len(cfg.Profile.Keys) == 0 {
		keys["ephemeral"] = ephemeralKey
		return keys, "ephemeral", nil
	}
	for i, k := range cfg.Profile.Keys {
		v := k.Value(getenv)
		if len(v) < 32 {
			return nil, "", config.Problems{cfg.Problemf(fmt.Sprintf("profile.keys[%d]", i), "key %q: secret (or $%s) must hold at least 32 bytes", k.ID, k.SecretEnv)}
		}
		keys[k.ID] = []byte(v)
	}
	sign := cfg.Profile.SigningKey
	if sign == "" {
		sign = cfg.Profile.Keys[0].ID
	}
	return keys, sign, nil
}

// Engine returns the pipeline's segment engine.
func (pl *Pipeline) Engine() *segments.Engine { return pl.engine }

// Personalizing reports whether the config it was built from has
// personalization on: a reload that turns it off makes edgeseg a plain
// reverse proxy at once (an incident switch), and turning it on again
// takes it back.
func (pl *Pipeline) Personalizing() bool { return pl.cfg.Personalize }

// Previews returns the preview token signer, or nil when previews are off.
func (pl *Pipeline) Previews() *segments.Previews { return pl.previews }

// PlaceholderSecrets names the secrets (profile keys, the preview secret)
// still set to a placeholder like the example config's, which is published
// with edgeseg: anyone can sign profile cookies or preview tokens with it.
func (pl *Pipeline) PlaceholderSecrets() []string { return pl.placeholders }

// isPlaceholder reports a secret that says it is one ("change-me").
func isPlaceholder(secret string) bool {
	s := strings.ToLower(secret)
	return strings.Contains(s, "change-me") || strings.Contains(s, "changeme")
}

// Ephemeral reports whether profiles are signed with a per-process key.
func (pl *Pipeline) Ephemeral() bool { return len(pl.cfg.Profile.Keys) == 0 }

// PersonalizerOptions wire a Personalizer.
type PersonalizerOptions struct {
	Pipeline  *Pipeline
	Templates *templates.Store
	// AssignCache sizes the assignment cache.
	AssignCache config.CacheSize
	// PlanCache sizes the cache of slot positions by page. Zero: defaults.
	PlanCache config.CacheSize
	Events    *events.Logger
	Metrics   *metrics.Set
	Log       *zerolog.Logger
}

type personalizeMetrics struct {
	// segments[i] counts assignments to the pipeline's i-th segment
	// (priority order): [0] members who see blocks, [1] holdouts.
	segments      atomic.Pointer[[][2]*metrics.Counter]
	profileResets [8]*metrics.Counter
	ruleErrors    *metrics.Counter
	renderErrors  *metrics.Counter
	noTransform   *metrics.Counter // pages the origin marked no-transform
	attachments   *metrics.Counter // pages the origin sent as downloads
	cleared       *metrics.Counter // profile cookies deleted once consent was withdrawn
	badCharset    *metrics.Counter // pages in an encoding blocks cannot go into
	layerBlocked  *metrics.Counter // pages whose CSP would block the data layer
	seenBlocked   *metrics.Counter // prefetched pages whose CSP would block the beacon
	seenCounted   *metrics.Counter // prefetched pages counted as shown
	seenRefused   *metrics.Counter // beacons refused (forged, expired, cross-site...)
	plansReused   *metrics.Counter // pages given the plan of the last page at their path
	set           *metrics.Set
	previews      *metrics.Counter
	// ignored counts slot markers pages were served with that cannot be
	// filled, by reason (inject.Ignored).
	ignored map[string]*metrics.Counter
}

// NewPersonalizer builds a Personalizer.
func NewPersonalizer(o PersonalizerOptions) (*Personalizer, error) {
	if o.Pipeline == nil || o.Templates == nil {
		return nil, errors.New("proxy: Pipeline and Templates are required")
	}
	set := o.Metrics
	if set == nil {
		set = metrics.NewSet()
	}
	ac, err := cache.NewChecked[uint64]("assignment", o.AssignCache, set)
	if err != nil {
		return nil, err
	}
	if o.PlanCache.MaxItems == 0 {
		o.PlanCache = config.Default().Cache.Plans
	}
	pc, err := cache.NewChecked[*inject.Plan]("plans", o.PlanCache, set)
	if err != nil {
		return nil, err
	}
	refs, err := cache.NewChecked[*inject.Reference]("page_references", o.PlanCache, set)
	if err != nil {
		return nil, err
	}
	rc, err := cache.New[uint64, *atomic.Int32]("client_event_rate", config.CacheSize{MaxItems: 100_000, MaxBytes: 8 << 20}, nil)
	if err != nil {
		return nil, err
	}
	p := &Personalizer{templates: o.Templates, assign: ac, plans: pc, refs: refs, fresh: cache.NewDoorkeeper(4 * o.PlanCache.MaxItems),
		rate: rc, events: o.Events, log: zerolog.Nop()}
	if p.keys, err = cache.NewHasher(); err != nil {
		return nil, err
	}
	if o.Log != nil {
		p.log = *o.Log
	}
	p.m.ignored = map[string]*metrics.Counter{}
	for _, r := range inject.IgnoredReasons() {
		p.m.ignored[r] = set.GetOrCreateCounter(`edgeseg_slot_markers_ignored_total{reason="` + r + `"}`)
	}
	for s := profile.Missing + 1; s <= profile.Invalid; s++ {
		p.m.profileResets[s] = set.GetOrCreateCounter(`edgeseg_profile_resets_total{reason="` + s.String() + `"}`)
	}
	uaStat := func(hits bool) func() float64 {
		return func() float64 {
			h, m := p.pl.Load().extractor.UserAgentCacheStats()
			if hits {
				return float64(h)
			}
			return float64(m)
		}
	}
	set.GetOrCreateGauge(`edgeseg_cache_hits_total{cache="user_agents"}`, uaStat(true))
	set.GetOrCreateGauge(`edgeseg_cache_misses_total{cache="user_agents"}`, uaStat(false))
	p.m.ruleErrors = set.GetOrCreateCounter("edgeseg_rule_errors_total")
	p.m.renderErrors = set.GetOrCreateCounter("edgeseg_template_render_errors_total")
	p.m.previews = set.GetOrCreateCounter("edgeseg_previews_total")
	p.m.noTransform = set.GetOrCreateCounter(`edgeseg_rewrite_skipped_total{reason="no_transform"}`)
	p.m.attachments = set.GetOrCreateCounter(`edgeseg_rewrite_skipped_total{reason="attachment"}`)
	p.m.cleared = set.GetOrCreateCounter(`edgeseg_profile_cookies_cleared_total`)
	p.m.badCharset = set.GetOrCreateCounter(`edgeseg_rewrite_skipped_total{reason="charset"}`)
	p.m.layerBlocked = set.GetOrCreateCounter(`edgeseg_data_layer_skipped_total{reason="csp"}`)
	p.m.seenBlocked = set.GetOrCreateCounter(`edgeseg_prefetch_beacons_skipped_total{reason="csp"}`)
	p.m.seenCounted = set.GetOrCreateCounter(`edgeseg_prefetches_shown_total`)
	p.m.seenRefused = set.GetOrCreateCounter(`edgeseg_prefetch_beacons_refused_total`)
	p.m.plansReused = set.GetOrCreateCounter(`edgeseg_plans_reused_total`)
	p.m.set = set
	o.Pipeline.extractor.Prepare() // not while the first visitors wait
	p.pl.Store(o.Pipeline)
	p.countSegments(o.Pipeline)
	return p, nil
}

// countSegments creates the assignment counters of pl's segments.
func (p *Personalizer) countSegments(pl *Pipeline) {
	segs := pl.engine.Segments()
	cs := make([][2]*metrics.Counter, len(segs))
	for i, s := range segs {
		cs[i][0] = p.m.set.GetOrCreateCounter(fmt.Sprintf(`edgeseg_segment_assignments_total{segment=%q,holdout="false"}`, s.Name))
		cs[i][1] = p.m.set.GetOrCreateCounter(fmt.Sprintf(`edgeseg_segment_assignments_total{segment=%q,holdout="true"}`, s.Name))
	}
	p.m.segments.Store(&cs)
}

// Swap installs a new pipeline (after a config reload). Requests in flight
// finish with the one they started with.
func (p *Personalizer) Swap(pl *Pipeline) {
	pl.extractor.KeepUserAgents(p.pl.Load().extractor)
	pl.extractor.Prepare()
	p.countSegments(pl)
	p.pl.Store(pl)
	p.assign.Clear()
}

// Pipeline returns the current pipeline.
func (p *Personalizer) Pipeline() *Pipeline { return p.pl.Load() }

// exposure is one slot's outcome on a page.
type exposure struct {
	slot    string
	segment string
	variant events.Variant
	version uint64
}

// Visit is one request's personalization state, from the steps before the
// origin to the response. Visits are pooled; nothing in one may be kept
// after the request.
type Visit struct {
	p          *Personalizer
	pl         *Pipeline
	now        time.Time
	consent    signals.Decision
	ctx        signals.Context
	claims     []signals.KV
	prof       *profile.Profile
	status     profile.Status
	lastSeen   int64
	navigation bool
	prefetch   bool // fetched ahead of a navigation that may not happen: not counted
	head       bool // a HEAD request (a link checker, a monitor): nothing shown, nothing counted
	part       bool // a page in a frame, or a part a script swaps in: shown, but no page view
	match      profile.Match
	matched    bool
	env        segments.Env
	members    []segments.Member
	forced     string
	// previewUntil: a preview token came in the query, and the response
	// sets the preview cookie to it, lasting until then, so the pages an
	// editor goes on to are previewed too. previewOff: the query ended
	// the preview the cookie held (?edgeseg_preview=off).
	previewUntil time.Time
	previewOff   bool
	cacheHit     bool
	// streaming: the page is personalized as it is sent; its stream, not
	// commit, records the exposures, once the page is complete.
	streaming bool
	exposures []exposure
	// kept says, for a preview or with templates.debug_header, why slots
	// with a block kept their default (SlotProblemsHeader).
	kept      []string
	set       *templates.Set
	keyBuf    []byte
	cookieBuf []byte
	layerBuf  []byte // the data layer's script (dataLayer)
	// csp is what the page's Content-Security-Policies let the data
	// layer do: its headers' (headSnippet), then its <meta> tags'.
	csp scriptPolicies
	// seenURI and seenRef are a prefetched page's request URI and
	// Referer, for its beacon's note.
	seenURI, seenRef []byte
	lookup           inject.Lookup
}

// begin runs steps 2–6. It returns nil for requests that are not page
// navigations nor mapped behavior events: assets are never personalized,
// counted or given a cookie.
func (p *Personalizer) begin(ctx *fasthttp.RequestCtx, now time.Time) *Visit {
	if p == nil {
		return nil
	}
	pl := p.pl.Load()
	if !pl.Personalizing() {
		return nil // switched off by a reload: a plain reverse proxy until on again
	}
	h := &ctx.Request.Header
	prefetch := isPrefetch(h)
	dest := h.Peek("Sec-Fetch-Dest")
	nav := isNavigation(h, dest, prefetch)
	part := false
	if swapped, whole := scriptPage(h, dest); swapped {
		nav, part = true, !whole
	} else if isFramed(h, dest) {
		nav, part = true, true
	}
	match, matched := pl.mapper.Lookup(h.Method(), ctx.Path())
	if !nav && !matched {
		return nil
	}
	v, _ := p.visits.Get().(*Visit)
	if v == nil {
		v = &Visit{p: p}
		v.lookup = v.fill
	}
	v.pl, v.now, v.navigation, v.match, v.matched = pl, now, nav, match, matched
	v.prefetch, v.part, v.streaming = prefetch, part, false
	v.head = h.IsHead()

	// 2. consent
	v.consent = pl.consent.From(h)

	// 3. profile (only with consent: no cookie is read or written without)
	if v.consent.Granted {
		v.prof, v.status = p.decodeProfile(h, pl, now)
		v.lastSeen = v.prof.Last
	}

	// 4. context signals
	if v.consent.Context {
		pl.extractor.Extract(signalsRequest(ctx, pl, now), &v.ctx)
		v.claims = pl.identity.Claims(h, v.claims[:0], now)
	}

	// 5. behavior (a prefetch is not a visit: the page may never be seen;
	// nor a HEAD request, whose page is never seen; a part of a page is
	// not a page view, though it may be a mapped event)
	if v.prof != nil && !v.prefetch && !v.head && (!part || matched) {
		ev := profile.Event{Navigation: nav && !part && h.IsGet()}
		if matched {
			ev.Name, ev.Category, ev.Product = match.Event, match.Category, match.Product
		} else {
			ev.Name = profile.PageView
		}
		v.prof.Observe(ev, now, pl.settings)
	}

	// 6. segments
	var prof *profile.Profile
	if v.consent.Granted {
		prof = v.prof
	}
	v.env.Fill(&v.ctx, prof, v.claims, now, pl.settings, v.lastSeen)
	v.forced = p.previewSegment(ctx, v, now)
	p.assignSegments(v)
	v.set = p.templates.Set()
	return v
}

// adjustRequest changes the origin request of a page navigation that may
// be personalized: conditional headers are dropped, so the origin answers
// with the whole page rather than a 304 that would let the browser show a
// variant chosen for an earlier state of the visitor; so are ranges, which
// would be of the origin's bytes, not of the page the visitor gets.
func (p *Personalizer) adjustRequest(v *Visit, req *fasthttp.Request) {
	if p == nil || v == nil || !v.navigation || !req.Header.IsGet() {
		return
	}
	req.Header.Del("If-None-Match")
	req.Header.Del("If-Modified-Since")
	req.Header.Del("Range")
	req.Header.Del("If-Range")
}

// ownCookieNames names the cookies of cfg that are edgeseg's alone, the
// profile and the preview token: requests to the origin go without them
// unless profile.to_origin says otherwise.
func ownCookieNames(cfg *config.Config) []string {
	if cfg.Profile.ToOrigin {
		return nil
	}
	return []string{cfg.Profile.Cookie, cfg.Preview.Cookie}
}

// ownCookies is ownCookieNames of the current pipeline's config.
func (p *Personalizer) ownCookies() []string {
	return p.pl.Load().ownCookies
}

// signalsRequest is what signals.Extract reads of ctx.
func signalsRequest(ctx *fasthttp.RequestCtx, pl *Pipeline, now time.Time) signals.Request {
	peerTrusted := len(pl.trusted) > 0 && pl.trusted.contains(ctx.RemoteIP())
	return signals.Request{Req: &ctx.Request, PeerTrusted: peerTrusted, Now: now}
}

// decodeProfile reads the profile cookie. Browsers may send the cookie
// twice (set for two paths or domains): the first that verifies wins.
func (p *Personalizer) decodeProfile(h *fasthttp.RequestHeader, pl *Pipeline, now time.Time) (*profile.Profile, profile.Status) {
	name := pl.cfg.Profile.Cookie
	var prof *profile.Profile
	status := profile.Missing
	var err error
	n := 0
	for k, val := range h.Cookies() {
		if string(k) != name {
			continue
		}
		n++
		var pr *profile.Profile
		var st profile.Status
		pr, st, err = pl.codec.Decode(val, now)
		if st == profile.OK {
			return pr, st
		}
		if prof == nil || status == profile.Missing {
			prof, status = pr, st
		}
		if n >= 4 {
			break
		}
	}
	if prof == nil {
		return profile.NewFresh(now), profile.Missing
	}
	if status != profile.Missing && status != profile.OK {
		p.m.profileResets[status].Inc()
		p.log.Debug().Str("reason", status.String()).AnErr("error", err).Msg("profile cookie replaced by a fresh profile")
	}
	return prof, status
}

// isNavigation reports a request for a page (not an asset or API call).
// A page prefetched with <link rel=prefetch> comes with Sec-Fetch-Dest
// "empty" but is the document a navigation will show, so it is one.
// dest is the request's Sec-Fetch-Dest.
func isNavigation(h *fasthttp.RequestHeader, dest []byte, prefetch bool) bool {
	if !h.IsGet() && !h.IsHead() && !h.IsPost() {
		return false
	}
	html := bytes.Contains(h.Peek("Accept"), []byte("text/html"))
	if len(dest) > 0 {
		return bytes.Equal(dest, []byte("document")) || prefetch && html && h.IsGet() && bytes.Equal(dest, []byte("empty"))
	}
	if h.IsPost() {
		return false
	}
	return html
}

// scriptPage reports a page fetched by one of the libraries that load a
// site's pages with fetch() and swap their HTML into the page shown, with
// the header each sends: to the browser such a request is no navigation
// (Sec-Fetch-Dest "empty"), though the visitor sees its answer. whole: the
// answer takes the place of the page, and the URL changes, as on a click
// (Turbo Drive, htmx's hx-boost and history restore, pjax, Livewire's
// wire:navigate), so it is a page view; otherwise it is a part swapped
// into the page (a Turbo frame, an htmx or Unpoly fragment), whose slots
// are filled and seen, but which is no page view. dest is the request's
// Sec-Fetch-Dest.
func scriptPage(h *fasthttp.RequestHeader, dest []byte) (swapped, whole bool) {
	if !h.IsGet() && !h.IsHead() {
		return false, false
	}
	if len(dest) > 0 && !bytes.Equal(dest, []byte("empty")) {
		return false, false
	}
	switch {
	case len(h.Peek("Turbo-Frame")) > 0:
		return true, false
	case len(h.Peek("X-Turbo-Request-Id")) > 0:
		return true, true
	case len(h.Peek("HX-Request")) > 0:
		return true, bytes.EqualFold(h.Peek("HX-Boosted"), []byte("true")) ||
			bytes.EqualFold(h.Peek("HX-History-Restore-Request"), []byte("true"))
	case len(h.Peek("X-PJAX")) > 0:
		return true, true
	case len(h.Peek("X-Up-Version")) > 0:
		return true, false
	case len(dest) > 0 && hasHeader(h, "X-Livewire-Navigate"): // sent empty
		return true, true
	}
	return false, false
}

// hasHeader reports whether h has a header named name, whatever its
// value, empty too.
func hasHeader(h *fasthttp.RequestHeader, name string) bool {
	for k := range h.All() {
		if bytes.EqualFold(k, []byte(name)) {
			return true
		}
	}
	return false
}

// isFramed reports a page loaded into an <iframe> (or <frame>) of another:
// a navigation, though the browser names it apart (Sec-Fetch-Dest), whose
// slots are filled and seen; but the visitor navigated to the page around
// it, so it is no page view of its own (a page with three frames of the
// site's own would count four). dest is the request's Sec-Fetch-Dest.
func isFramed(h *fasthttp.RequestHeader, dest []byte) bool {
	return (h.IsGet() || h.IsHead()) && (bytes.Equal(dest, []byte("iframe")) || bytes.Equal(dest, []byte("frame")))
}

// isPrefetch reports a request made ahead of a navigation that may never
// happen: speculation rules and <link rel=prefetch> (Sec-Purpose), Turbo's
// prefetch of a link hovered (X-Sec-Purpose), the legacy Purpose and X-Moz
// headers, Safari's X-Purpose: preview.
func isPrefetch(h *fasthttp.RequestHeader) bool {
	return bytes.Contains(h.Peek("Sec-Purpose"), []byte("prefetch")) ||
		bytes.Contains(h.Peek("X-Sec-Purpose"), []byte("prefetch")) ||
		bytes.EqualFold(h.Peek("Purpose"), []byte("prefetch")) ||
		bytes.EqualFold(h.Peek("X-Moz"), []byte("prefetch")) ||
		bytes.EqualFold(h.Peek("X-Purpose"), []byte("preview"))
}

// previewSegment returns the segment a valid preview token forces, or "".
// A token in the query is kept in the preview cookie by the response
// (commit); "off" there ends the preview the cookie holds.
func (p *Personalizer) previewSegment(ctx *fasthttp.RequestCtx, v *Visit, now time.Time) string {
	v.previewUntil, v.previewOff = time.Time{}, false
	pl := v.pl
	if pl.previews == nil {
		return ""
	}
	tok := ctx.QueryArgs().Peek(pl.cfg.Preview.Param)
	inQuery := len(tok) > 0
	if string(tok) == "off" {
		v.previewOff = len(ctx.Request.Header.Cookie(pl.cfg.Preview.Cookie)) > 0
		return ""
	}
	if !inQuery {
		tok = ctx.Request.Header.Cookie(pl.cfg.Preview.Cookie)
	}
	if len(tok) == 0 {
		return ""
	}
	seg, until, err := pl.previews.VerifyUntil(string(tok), now)
	if err != nil || pl.engine.Lookup(seg) == nil {
		p.log.Debug().AnErr("error", err).Str("segment", seg).Msg("preview token ignored")
		return ""
	}
	p.m.previews.Inc()
	if inQuery && !bytes.Equal(tok, ctx.Request.Header.Cookie(pl.cfg.Preview.Cookie)) {
		v.previewUntil = until
	}
	return seg
}

// setPreviewCookie keeps the preview token of ctx's query in the preview
// cookie until the token expires, or, with off, deletes the cookie.
func setPreviewCookie(ctx *fasthttp.RequestCtx, v *Visit, off bool) {
	pl := v.pl
	c := fasthttp.AcquireCookie()
	defer fasthttp.ReleaseCookie(c)
	c.SetKey(pl.cfg.Preview.Cookie)
	c.SetPath("/")
	c.SetHTTPOnly(true)
	c.SetSecure(pl.cfg.Profile.Secure || overHTTPS(ctx))
	c.SetSameSite(fasthttp.CookieSameSiteLaxMode)
	if off {
		c.SetExpire(fasthttp.CookieExpireDelete)
	} else {
		c.SetValueBytes(ctx.QueryArgs().Peek(pl.cfg.Preview.Param))
		c.SetMaxAge(max(1, int(v.previewUntil.Sub(v.now)/time.Second)))
	}
	ctx.Response.Header.SetCookie(c)
	ctx.Response.Header.Set("Cache-Control", "no-store")
}

// assignSegments fills v.members: the forced preview segment, nothing for
// bots (they get the origin's content, for SEO), or the cached or freshly
// evaluated matches with holdout buckets.
func (p *Personalizer) assignSegments(v *Visit) {
	v.members = v.members[:0]
	eng := v.pl.engine
	if v.forced != "" {
		v.members = append(v.members, segments.Member{Segment: eng.Lookup(v.forced)})
		return
	}
	if v.ctx.Bot || len(eng.Segments()) == 0 {
		return
	}
	// The pipeline version is part of the key, so a new config never
	// uses assignments made under an old one.
	buf := binary.AppendUvarint(v.keyBuf[:0], v.pl.version)
	buf, cacheable := eng.AppendKey(&v.env, buf)
	v.keyBuf = buf
	key := p.keys.Sum(buf)
	var matched uint64
	hit := false
	if cacheable {
		matched, hit = p.assign.Get(key)
	}
	if !hit {
		var failed int
		matched, failed = eng.Eval(&v.env)
		if failed > 0 {
			p.m.ruleErrors.Add(failed)
		}
		if cacheable && failed == 0 {
			p.assign.Set(key, matched, 16)
		}
	}
	v.cacheHit = hit
	id := ""
	if v.prof != nil && v.consent.Granted {
		id = v.prof.ID
	}
	v.members = eng.Members(v.members, matched, id)
	if cs := *p.m.segments.Load(); len(cs) == len(eng.Segments()) {
		for i, s := range eng.Segments() {
			if matched&(1<<uint(i)) == 0 {
				continue
			}
			for _, m := range v.members {
				if m.Segment == s {
					if m.Holdout {
						cs[i][1].Inc()
					} else {
						cs[i][0].Inc()
					}
				}
			}
		}
	}
}

// end returns v to the pool.
func (p *Personalizer) end(v *Visit) {
	if p == nil || v == nil {
		return
	}
	v.prof, v.set, v.pl = nil, nil, nil
	v.exposures = v.exposures[:0]
	v.kept = v.kept[:0]
	v.claims = v.claims[:0]
	v.seenURI, v.seenRef = v.seenURI[:0], v.seenRef[:0] // no page of another visit's may carry them
	v.env = segments.Env{}
	p.visits.Put(v)
}

// wantsBody reports whether the origin's response should be buffered for
// step 8: a 200 HTML answer to a GET navigation, for a visitor who has a
// segment with a block (or a holdout to record), or when the page gets
// scripts (the data layer, a prefetched page's beacon: addsScripts).
func (p *Personalizer) wantsBody(v *Visit, ctx *fasthttp.RequestCtx, resp *fasthttp.Response) bool {
	if !ctx.IsGet() {
		return false
	}
	fill, skipped := p.wouldFill(v, resp)
	if skipped != nil {
		skipped.Inc()
	}
	return fill
}

// wouldFill reports whether resp, the answer to the visit's navigation,
// is a page to read and rewrite if its body were asked for: wantsBody
// without the method, for a HEAD's answer to match a GET's. A page left
// as sent for a reason counted comes with that reason's counter.
func (p *Personalizer) wouldFill(v *Visit, resp *fasthttp.Response) (bool, *metrics.Counter) {
	if p == nil || v == nil || !v.navigation || resp.StatusCode() != fasthttp.StatusOK {
		return false, nil
	}
	if !isHTML(resp.Header.ContentType()) || len(resp.Header.Peek("Content-Range")) > 0 {
		return false, nil
	}
	// The origin asked intermediaries not to change the page (RFC 9111
	// no-transform): it is served as sent; the visit still counts.
	if cache.HasDirective(resp.Header.Peek("Cache-Control"), "no-transform") {
		return false, p.m.noTransform
	}
	// A page sent as a download (Content-Disposition: attachment, an
	// export, a saved report) is a file the visitor keeps: not edgeseg's
	// to change.
	if isAttachment(resp.Header.Peek("Content-Disposition")) {
		return false, p.m.attachments
	}
	return v.mayFill(), nil
}

// mayFill reports whether the visit's page, if it turns out to be HTML,
// is to be read and rewritten: a navigation by a visitor with a block to
// show or a holdout to record, or with scripts of edgeseg's to add. v may
// be nil.
func (v *Visit) mayFill() bool {
	if v == nil || !v.navigation {
		return false
	}
	if v.addsScripts() {
		return true
	}
	for _, m := range v.members {
		if m.Holdout || v.set.HasSegment(m.Segment.Name) {
			return true
		}
	}
	return false
}

// isAttachment reports whether a Content-Disposition value's type is
// attachment (RFC 6266: case-insensitive, parameters after ';', as a
// Content-Type's are).
func isAttachment(cd []byte) bool {
	return bytes.EqualFold(mediaType(cd), []byte("attachment"))
}

// isHTML reports a text/html media type, any parameters.
func isHTML(ct []byte) bool {
	return bytes.EqualFold(mediaType(ct), []byte("text/html"))
}

// mediaType is a Content-Type value's type/subtype, its parameters and
// surrounding space cut off.
func mediaType(ct []byte) []byte {
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return bytes.TrimSpace(ct)
}

// personalize is step 8: fill the page's slots. It leaves the page as it
// is to be sent in s, and reports false when nothing was filled and no
// script added.
func (p *Personalizer) personalize(ctx *fasthttp.RequestCtx, v *Visit, html []byte, s *inject.Splice) bool {
	opts := inject.Options{}
	scripts := v.addsScripts()
	if scripts {
		opts.HeadSnippet = v.headSnippet(ctx)
	}
	// The beacon needs the page's <meta> policies: a Plan scanned for them.
	beacon := v.countsWhenSeen()
	plan := p.planFor(html, opts.HeadSnippet != nil || beacon && !v.csp.blocked, p.pageKey(ctx))
	if ig := plan.Ignored(); len(ig) > 0 {
		p.noteIgnored(string(ctx.Path()), ig)
	}
	if meta := plan.MetaPolicies(); scripts && len(meta) > 0 {
		opts.HeadSnippet = v.HeadSnippet(meta)
	}
	beacon = beacon && v.seenAllowed()
	if plan.Slots() == 0 && opts.HeadSnippet == nil && !beacon {
		return false
	}
	// Blocks are UTF-8; a page in another encoding gets them in its own.
	opts.Charset = inject.PageCharset(ctx.Response.Header.ContentType(), plan)
	if !opts.Charset.Supported() {
		p.m.badCharset.Inc()
		p.log.Debug().Str("charset", opts.Charset.Name()).Bytes("path", ctx.Path()).Msg("page encoding cannot take blocks; serving it unchanged")
		return false
	}
	filled := plan.ApplySplice(s, html, v.lookup, &opts)
	if beacon {
		m := len(s.Made)
		s.Made = v.seenScript(s.Made) // after the page: its exposures are known
		s.Extend(m)
	}
	return filled > 0 || opts.HeadSnippet != nil || beacon
}

// noteIgnored counts the slot markers a page is served with that cannot be
// filled, and names them in the debug log: why a slot keeps its default
// whatever the visitor's segments.
func (p *Personalizer) noteIgnored(path string, ig []inject.Ignored) {
	for _, m := range ig {
		if c := p.m.ignored[m.Reason]; c != nil {
			c.Inc()
		}
	}
	if e := p.log.Debug(); e.Enabled() {
		var b strings.Builder
		for i, m := range ig {
			if i > 0 {
				b.WriteString(", ")
			}
			if m.Detail != "" {
				fmt.Fprintf(&b, "%s (%s: %s)", m.Slot, m.Reason, m.Detail)
			} else {
				fmt.Fprintf(&b, "%s (%s)", m.Slot, m.Reason)
			}
		}
		e.Str("path", path).Str("slots", b.String()).Msg("slot markers that cannot be filled")
	}
}

// planFor returns where html's slots are. The same page is usually served
// many times: the plan is looked up by a 128-bit hash of its bytes (and its
// length) instead of tokenizing it again, and kept from the page's second
// request on (a page that changes on every request never is). The hash is
// seeded per process, so a page whose content a visitor can influence (a
// search page echoing the query) cannot be made to collide with another
// page and have that page's plan applied to it.
//
// A page without a slot marker is not scanned at all unless a head snippet
// needs its </head>: that matters for pages that differ on every request.
//
// Most pages that differ on every request do so only in a token, a nonce
// or an id in an attribute value. The first time new bytes come for a path
// (page, a key of the host and path) seen before, the page is kept as a
// Reference, and the pages after it that differ from it only in such
// values get its plan: a comparison of the bytes instead of a scan. A page
// that differs otherwise is scanned, and becomes the path's Reference.
func (p *Personalizer) planFor(html []byte, needHead bool, page cache.Key128) *inject.Plan {
	key := p.keys.Sum(html)
	if plan, ok := p.plans.Get(key); ok && plan.Size() == len(html) && (plan.HeadsKnown() || !needHead) {
		return plan
	}
	if !needHead && !inject.MayHaveSlots(html) {
		plan := inject.Unmarked(html)
		if p.fresh.Again(key) {
			p.plans.Set(key, plan, 96)
		}
		return plan
	}
	if ref, ok := p.refs.Get(page); ok {
		if plan := ref.PlanFor(html); plan != nil {
			p.m.plansReused.Inc()
			return plan
		}
	}
	if p.fresh.Again(key) {
		plan := inject.Scan(html)
		p.plans.Set(key, plan, int64(96+plan.Slots()*96))
		return plan
	}
	if p.fresh.Again(page) {
		return p.keepReference(page, html).Plan()
	}
	return inject.Scan(html)
}

// keepReference scans html and keeps it as page's Reference.
func (p *Personalizer) keepReference(page cache.Key128, html []byte) *inject.Reference {
	ref := inject.ScanReference(html)
	p.refs.Set(page, ref, ref.Cost())
	return ref
}

// reference returns the Reference kept for page, or nil.
func (p *Personalizer) reference(page cache.Key128) *inject.Reference {
	ref, _ := p.refs.Get(page)
	return ref
}

// pageKey is the key of the page a response is for, in refs: its host and
// path. The query is left out: it is where tracking parameters go (an ad's
// click id differs on every visit), and the same page with another query is
// most often the same template.
func (p *Personalizer) pageKey(ctx *fasthttp.RequestCtx) cache.Key128 {
	var buf [256]byte
	b := append(buf[:0], ctx.Host()...)
	b = append(b, 0)
	b = append(b, ctx.Path()...)
	return p.keys.Sum(b)
}

// fill is the inject.Lookup of a visit: the first of the visitor's
// segments, by priority, with a block for the slot wins it. A holdout
// member keeps the default; a block that fails to render keeps it too, as
// does one that browsers would move out of the slot's element (a <div>
// block in a <p> slot: inject.Misfit).
func (v *Visit) fill(slot []byte, at inject.Place) (inject.Block, bool) {
	for _, m := range v.members {
		b := v.set.LookupBytes(slot, m.Segment.Name)
		if b == nil {
			continue
		}
		if m.Holdout {
			v.expose(b.Slot, m.Segment.Name, events.Holdout, b.Version)
			return inject.Block{}, false
		}
		r, err := v.p.templates.Render(b, m.Segment, &v.env)
		misfit := ""
		if err == nil {
			misfit = inject.Misfit(at, r.Shape)
		}
		if err != nil || misfit != "" {
			v.p.m.renderErrors.Inc()
			// Said at most once a minute per block, with how many renders
			// failed since: one that fails for everyone fails per request.
			if n, report := b.Failed(v.now); report {
				msg := "block failed to render; slot keeps its default"
				if misfit != "" {
					err = fmt.Errorf("templates: %s: does not fit the slot's <%s>: %s", b.File, at.Element, misfit)
					msg = "block does not fit its slot on this page; slot keeps its default"
				}
				v.p.log.Warn().Err(err).Str("slot", string(slot)).Str("segment", m.Segment.Name).Int64("failures", n).
					Msg(msg)
			}
			v.expose(b.Slot, m.Segment.Name, events.Default, b.Version)
			v.keep(b, misfit)
			return inject.Block{}, false
		}
		v.expose(b.Slot, m.Segment.Name, events.Block, b.Version)
		return inject.Block{HTML: r.HTML, Segment: m.Segment.Name}, true
	}
	if len(v.members) > 0 {
		v.expose(string(slot), "", events.Default, 0)
	}
	return inject.Block{}, false
}

// SlotProblemsHeader is the response header that says, on a preview or
// with templates.debug_header, which slots with a block kept their default
// and why: "promo (deal-seekers): its block does not fit the slot: ...;
// cta (...): ...". It is set on pages sent whole; a page streamed has sent
// its headers before its slots are filled.
const SlotProblemsHeader = "X-Edgeseg-Slot-Problems"

// keep notes, for SlotProblemsHeader, that b's slot kept its default:
// misfit says why, or else its render failed (the log says how).
func (v *Visit) keep(b *templates.Block, misfit string) {
	if v.forced == "" && !v.pl.cfg.Templates.DebugHeader || len(v.kept) >= 8 {
		return
	}
	why := "its block failed to render (the log says why)"
	if misfit != "" {
		why = "its block does not fit the slot: " + misfit
	}
	v.kept = append(v.kept, b.Slot+" ("+b.Segment+"): "+why)
}

func (v *Visit) expose(slot, segment string, variant events.Variant, version uint64) {
	if len(v.exposures) < maxExposures {
		v.exposures = append(v.exposures, exposure{slot, segment, variant, version})
	}
}

// addsScripts reports whether the visit's page gets scripts of edgeseg's:
// the data layer before its </head>, or a prefetched page's beacon after
// its end (seenScript). Both go where the page's CSP lets them run.
func (v *Visit) addsScripts() bool {
	return v.pl.cfg.Templates.DataLayer || v.countsWhenSeen()
}

// headSnippet reads the CSP headers of the page in ctx.Response, and
// returns the data layer's script for it: nil when off, or when the
// headers would block it. It keeps what the beacon needs of ctx.
func (v *Visit) headSnippet(ctx *fasthttp.RequestCtx) []byte {
	if v.countsWhenSeen() {
		v.seenURI = append(v.seenURI[:0], ctx.Request.Header.RequestURI()...)
		v.seenRef = append(v.seenRef[:0], ctx.Request.Header.Referer()...)
	}
	v.csp.readHeaders(&ctx.Response.Header)
	return v.layerFor()
}

// HeadSnippet reads the Content-Security-Policies a page's head declares
// in <meta http-equiv> tags, which browsers enforce beside the headers'
// (inject.MetaPolicy), and returns the data layer's script as they allow
// it. It is asked once per page, after headSnippet.
func (v *Visit) HeadSnippet(policies [][]byte) []byte {
	blocked := v.csp.blocked
	for _, p := range policies {
		v.csp.enforce(p)
	}
	if blocked {
		return nil // counted already
	}
	return v.layerFor()
}

// layerFor is the data layer's script as the policies read so far allow
// it, built in v's buffer (which lives as long as the visit, as the page
// being rewritten does); nil when off, or blocked (and counted).
func (v *Visit) layerFor() []byte {
	if !v.pl.cfg.Templates.DataLayer {
		return nil
	}
	nonce, ok := v.csp.inlineScript()
	if !ok {
		v.p.m.layerBlocked.Inc()
		return nil
	}
	v.layerBuf = v.dataLayer(v.layerBuf[:0], nonce)
	return v.layerBuf
}

// dataLayer is the <script> that hands the segments to the site's
// analytics: window.edgeseg={"holdouts":[...],"segments":[...]}, both
// lists always there (empty when there is none), so that a page's script
// can read them without a check. It is appended to b.
func (v *Visit) dataLayer(b, nonce []byte) []byte {
	b = append(b, "<script"...)
	if len(nonce) > 0 {
		b = append(append(append(b, ` nonce="`...), nonce...), '"')
	}
	b = append(b, `>window.edgeseg={"holdouts":[`...)
	b = appendNames(b, v.members, true)
	b = append(b, `],"segments":[`...)
	b = appendNames(b, v.members, false)
	return append(b, "]};</script>"...)
}

// appendNames appends the names of the memberships held out (or not) as
// JSON strings separated by commas.
func appendNames(b []byte, members []segments.Member, holdout bool) []byte {
	first := true
	for _, m := range members {
		if m.Holdout != holdout {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendJSONName(b, m.Segment.Name)
	}
	return b
}

// appendJSONName appends the segment name s as a JSON string. A name is
// lower-case letters, digits and '-' (config.Validate): one that is not
// is marshalled, escaped for a <script> as encoding/json escapes it.
func appendJSONName(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	return append(append(append(b, '"'), s...), '"')
}

// commit is step 9: the profile cookie when it changed and the response
// is one that counts, the debug and preview headers, and events.
// personalized says the body was rewritten, its caching headers already set.
func (p *Personalizer) commit(ctx *fasthttp.RequestCtx, v *Visit, personalized bool) {
	status := ctx.Response.StatusCode()
	rh := &ctx.Response.Header
	counts := status < 400 && !v.prefetch && !v.head && (v.matched || isHTML(rh.ContentType()) || (status >= 300 && status < 400))
	if v.prof != nil && v.consent.Granted && v.prof.Changed && counts && !v.strangersPart() {
		p.setCookie(ctx, v, personalized)
	} else if !v.consent.Granted && counts && len(ctx.Request.Header.Cookie(v.pl.cfg.Profile.Cookie)) > 0 {
		// Consent withdrawn (GPC sent, the consent cookie changed): the
		// behavior the visitor's cookie holds is not read, and is not left
		// on the device either.
		p.clearCookie(ctx, v, personalized)
	}
	if v.pl.cfg.Templates.DebugHeader {
		rh.Set("X-Edgeseg-Segments", v.segmentList())
	}
	if v.forced != "" {
		rh.Set("Cache-Control", "no-store")
	}
	if !v.previewUntil.IsZero() || v.previewOff {
		setPreviewCookie(ctx, v, v.previewOff)
	}
	if len(v.kept) > 0 && !v.streaming {
		rh.Set(SlotProblemsHeader, strings.Join(v.kept, "; "))
	}
	// Exposures are recorded for every page whose slots were looked at,
	// filled or not: holdout visitors see the default and are the
	// baseline uplift is measured against.
	if v.hasExposures() && status == fasthttp.StatusOK && !v.streaming {
		p.emitExposures(string(ctx.Path()), v)
	}
	if v.matched && counts && v.prof != nil && v.consent.Granted {
		if v.pl.cfg.Behavior.Events[v.match.Rule].Conversion {
			p.emitConversion(v)
		}
	}
	// A visit is recorded as it begins, whatever the page, so the visitors
	// in no segment, who see no slot filled, count as traffic too. Not a
	// bot's: a crawler keeps no cookie, and would be a visitor per page.
	if v.prof != nil && v.consent.Granted && v.prof.Started && counts && v.forced == "" && !v.ctx.Bot {
		p.emitMembers("visit", v)
	}
}

// setCookie writes the visit's profile cookie and keeps the response out of
// shared caches. personalized: markPersonalized already did the latter.
func (p *Personalizer) setCookie(ctx *fasthttp.RequestCtx, v *Visit, personalized bool) {
	pc := v.pl.cfg.Profile
	var err error
	v.cookieBuf, err = v.pl.codec.AppendEncode(v.cookieBuf[:0], v.prof, v.now)
	if err != nil {
		p.log.Warn().Err(err).Msg("profile cookie not written")
		return
	}
	c := profileCookie(ctx, &pc)
	defer fasthttp.ReleaseCookie(c)
	c.SetValueBytes(v.cookieBuf)
	c.SetMaxAge(int(pc.MaxAge / time.Second))
	ctx.Response.Header.SetCookie(c)
	keepPrivate(ctx, v, personalized)
}

// profileCookie returns the profile cookie with its name, path, domain
// and flags, for its value to be set or deleted; release it after use.
func profileCookie(ctx *fasthttp.RequestCtx, pc *config.Profile) *fasthttp.Cookie {
	c := fasthttp.AcquireCookie()
	c.SetKey(pc.Cookie)
	c.SetPath(pc.Path)
	if pc.Domain != "" {
		c.SetDomain(pc.Domain)
	}
	c.SetHTTPOnly(true)
	c.SetSecure(pc.Secure || overHTTPS(ctx))
	c.SetSameSite(fasthttp.CookieSameSiteLaxMode)
	return c
}

// clearCookie deletes the visitor's profile cookie: an empty value that
// expired long ago, for the cookie's path and domain.
func (p *Personalizer) clearCookie(ctx *fasthttp.RequestCtx, v *Visit, personalized bool) {
	c := profileCookie(ctx, &v.pl.cfg.Profile)
	defer fasthttp.ReleaseCookie(c)
	c.SetExpire(fasthttp.CookieExpireDelete)
	ctx.Response.Header.SetCookie(c)
	keepPrivate(ctx, v, personalized)
	p.m.cleared.Inc()
}

// keepPrivate keeps a response that sets a visitor's cookie out of shared
// caches, which would hand it to others. A tracked page must not be
// reused from the browser's cache either: the visit would go uncounted and
// the page could show a variant for an older state of the visitor.
// personalized: markPersonalized already did so.
func keepPrivate(ctx *fasthttp.RequestCtx, v *Visit, personalized bool) {
	switch {
	case personalized:
	case v.navigation && isHTML(ctx.Response.Header.ContentType()):
		ctx.Response.Header.Set("Cache-Control", "private, no-cache")
		addVary(&ctx.Response.Header, "Cookie")
	default:
		makePrivate(&ctx.Response.Header)
	}
}

func (v *Visit) segmentList() string {
	var b []byte
	for i, m := range v.members {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, m.Segment.Name...)
		if m.Holdout {
			b = append(b, "(holdout)"...)
		}
	}
	return string(b)
}

// hasExposures reports slots looked at on a page that counts as seen: not
// a preview (it forces a segment) nor a prefetch (it may never be shown),
// nor a stranger's part of a page.
func (v *Visit) hasExposures() bool {
	return len(v.exposures) > 0 && v.forced == "" && !v.prefetch && !v.strangersPart()
}

// strangersPart reports a part of a page (a frame, a fragment) that came
// without a profile cookie and is no behavior event: most likely a frame
// in another site's page, which the cookie (SameSite=Lax) is not sent to
// nor set from. It is filled, but neither given a cookie nor counted as
// an exposure: its visitor would be a new one on every request.
func (v *Visit) strangersPart() bool {
	return v.part && v.status == profile.Missing && !v.matched
}

func (p *Personalizer) emitExposures(path string, v *Visit) {
	if p.events == nil || v.prof == nil || !v.consent.Granted {
		return
	}
	for _, e := range v.exposures {
		p.events.Emit(events.Event{Type: "exposure", Time: v.now, Visitor: v.prof.ID, Segment: e.segment, Slot: e.slot,
			Variant: e.variant, Path: path, Version: strconv.FormatUint(e.version, 16)})
	}
}

func (p *Personalizer) emitConversion(v *Visit) { p.emitMembers("conversion", v) }

// emitMembers emits an event of type typ with the visitor's segments:
// a conversion (of the visit's matched behavior event) or a visit.
func (p *Personalizer) emitMembers(typ string, v *Visit) {
	if p.events == nil {
		return
	}
	var segs, holds []string
	for _, m := range v.members {
		segs = append(segs, m.Segment.Name)
		if m.Holdout {
			holds = append(holds, m.Segment.Name)
		}
	}
	e := events.Event{Type: typ, Time: v.now, Visitor: v.prof.ID, Segments: segs, Holdouts: holds}
	if typ == "conversion" {
		e.Event, e.Value = v.match.Event, v.match.Value
	}
	p.events.Emit(e)
}

// logFields adds the visit's decisions to an access log line.
func (v *Visit) logFields(e *zerolog.Event) *zerolog.Event {
	if v == nil {
		return e
	}
	e = e.Str("segments", v.segmentList()).Bool("consent", v.consent.Granted)
	if v.prefetch {
		e = e.Bool("prefetch", true)
	}
	if v.part {
		e = e.Bool("part", true)
	}
	if v.status != profile.OK && v.status != profile.Missing {
		e = e.Str("profile_reset", v.status.String())
	}
	return e
}

// serveReserved answers /_edgeseg/explain (with a valid preview token).
func (p *Personalizer) serveReserved(ctx *fasthttp.RequestCtx) bool {
	if p == nil || !p.pl.Load().Personalizing() {
		return false
	}
	switch string(ctx.Path()) {
	case ReservedPrefix + "explain":
		p.serveExplain(ctx)
		return true
	case ReservedPrefix + "event":
		p.serveClientEvent(ctx)
		return true
	case ReservedPrefix + "seen":
		p.serveSeen(ctx)
		return true
	}
	return false
}

var cryptoRand = rand.Reader

// overHTTPS reports a request that reached the site over HTTPS, as the
// proxy in front says (X-Forwarded-Proto, Forwarded). The claim is taken
// from anyone: all it can do is make the sender's own cookie Secure.
func overHTTPS(ctx *fasthttp.RequestCtx) bool {
	if ctx.IsTLS() {
		return true
	}
	h := &ctx.Request.Header
	if p := h.Peek("X-Forwarded-Proto"); len(p) > 0 {
		first, _, _ := bytes.Cut(p, []byte(","))
		return bytes.EqualFold(bytes.TrimSpace(first), []byte("https"))
	}
	for rest := h.Peek("Forwarded"); len(rest) > 0; {
		var part []byte
		part, rest, _ = bytes.Cut(rest, []byte(";"))
		if i := bytes.IndexByte(part, ','); i >= 0 {
			part, rest = part[:i], nil // the first hop only
		}
		if k, v, ok := bytes.Cut(bytes.TrimSpace(part), []byte("=")); ok && bytes.EqualFold(k, []byte("proto")) {
			return bytes.EqualFold(bytes.Trim(v, `"`), []byte("https"))
		}
	}
	return false
}
