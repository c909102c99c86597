package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/edgeseg/edgeseg/config"
	"github.com/edgeseg/edgeseg/proxy"
	"github.com/edgeseg/edgeseg/segments"
	"github.com/edgeseg/edgeseg/segments/signals"
	"github.com/edgeseg/edgeseg/templates"
	"github.com/edgeseg/edgeseg/templates/inject"
)

// exitError carries an exit code.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }
func (e *exitError) ExitCode() int { return e.code }

// runValidate checks config, rules and templates, renders every block
// against sample visitors, prints every problem with file:line, and fails
// (exit 1) on any error. Content teams run it in their CI.
func (m *Main) runValidate(ctx context.Context, args []string) error {
	fs := m.flagSet("validate")
	cfgPath := fs.String("config", "", "config file")
	strict := fs.Bool("strict", false, "treat warnings as errors")
	var pages multiFlag
	fs.Var(&pages, "page", "an HTML file of the site (a page saved from it): check that every block fits the element of its slot there (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := m.checkConfig(*cfgPath)
	var cps config.Problems
	if err != nil && (cfg == nil || !errors.As(err, &cps)) {
		if errors.As(err, &cps) {
			for _, p := range cps {
				fmt.Fprintln(m.Stdout, "error:", p.Error())
			}
			return &exitError{1, fmt.Sprintf("%d config problem(s)", len(cps))}
		}
		return &exitError{1, err.Error()}
	}
	errs, warns := 0, 0
	report := func(level, msg string) {
		fmt.Fprintf(m.Stdout, "%s: %s\n", level, msg)
		if level == "error" {
			errs++
		} else {
			warns++
		}
	}
	reportErr := func(err error) {
		var ps config.Problems
		if errors.As(err, &ps) {
			for _, p := range ps {
				report("error", p.Error())
			}
		} else if err != nil {
			report("error", err.Error())
		}
	}
	// The config's own problems come first, then those of the rules and
	// templates it names, all in one run. A config with problems is not
	// made into a pipeline (its refused values are left at defaults); its
	// rules are compiled on their own.
	reportErr(cps)
	var engine *segments.Engine
	if len(cps) == 0 {
		pl, err := proxy.NewPipeline(cfg, m.getenv)
		reportErr(err)
		if pl != nil {
			engine = pl.Engine()
		}
	} else {
		var rps config.Problems
		if engine, err = segments.New(cfg); errors.As(err, &rps) {
			reportErr(cps.Merge(rps)[len(cps):])
		} else {
			reportErr(err)
		}
	}
	if msg, expired := certificateEnd(cfg.Server, m.Now()); msg != "" {
		report(map[bool]string{true: "error", false: "warning"}[expired], msg)
	}
	set, tps := templates.Load(cfg.Templates.Dir, nil)
	for _, p := range tps {
		if p.Warning {
			report("warning", p.Error())
		} else {
			report("error", p.Error())
		}
	}
	known := map[string]bool{}
	for _, sc := range cfg.Segments {
		known[sc.Name] = true
	}
	for _, b := range set.Blocks() {
		if !known[b.Segment] {
			report("warning", fmt.Sprintf("%s: no segment named %q in %s: this block is never shown", b.File, b.Segment, cfg.File()))
		}
	}
	if engine != nil {
		for _, w := range engine.Warnings {
			report("warning", "segments: "+w)
		}
		for _, p := range set.SegmentDataProblems(engine.Lookup) {
			report("warning", p.Error())
		}
		// Each block's shapes, as rendered for the sample visitors (those
		// before a render failed), for the pages given.
		shapes := map[*templates.Block][]inject.Shape{}
		for _, b := range set.Blocks() {
			seg := engine.Lookup(b.Segment)
			if seg == nil {
				continue
			}
			shapes[b] = nil
			for _, env := range sampleRenderEnvs() {
				_, shape, err := b.ExecWithin(seg, env, templates.MaxRenderRun)
				if err != nil {
					report("error", strings.TrimPrefix(err.Error(), "templates: "))
					break
				}
				shapes[b] = append(shapes[b], shape)
			}
		}
		for _, page := range pages {
			validatePage(page, set, shapes, report)
		}
	}
	fmt.Fprintf(m.Stdout, "%d segment(s), %d block(s): %d error(s), %d warning(s)\n", len(cfg.Segments), set.Len(), errs, warns)
	if errs > 0 || *strict && warns > 0 {
		return &exitError{1, "validation failed"}
	}
	return nil
}

// ignoredHint tells an editor what a slot marker that cannot be filled
// needs, by the reason it is not (inject.Ignored).
func ignoredHint(reason string) string {
	switch reason {
	case inject.IgnoredSelfClosing:
		return `in HTML "/>" closes nothing, and the element would hold the rest of its parent: write its end tag, <div data-edgeseg-slot="x"></div>`
	case inject.IgnoredVoid:
		return "an element such as <img> or <input> holds nothing: put the marker on an element around it"
	case inject.IgnoredNoEnd:
		return "its end tag is missing, or more than 1 MiB after it"
	case inject.IgnoredTooMany:
		return fmt.Sprintf("only the first %d markers of a page are read", inject.MaxSlots)
	case inject.IgnoredText:
		return "a block's markup would show there as text: put the marker on an element around it"
	case inject.IgnoredTemplate:
		return `browsers do not show a <template>'s content, unless it is a shadow root: <template shadowrootmode="open">`
	case inject.IgnoredUnclear:
		return "browsers read the page around the slot one of two ways: close each <svg> and <math> before the end tag of an element around it"
	case inject.IgnoredMisnested:
		return "a browser ends the slot elsewhere than at its end tag, and a block put in would take part of the page with it: close what the content opens, in order, and nothing else"
	}
	return "see the README's slots section"
}

// validatePage checks the blocks of each slot of an HTML file against the
// slot's element there, as serve does for every page: a block browsers
// would move out of it (a <div> in a <p>) is an error, since the slot keeps
// its default on that page. Slot markers that cannot be filled, and slots
// without a block, are warnings.
func validatePage(page string, set *templates.Set, shapes map[*templates.Block][]inject.Shape, report func(level, msg string)) {
	html, err := readPage(page)
	if err != nil {
		report("error", err.Error())
		return
	}
	plan := inject.Scan(html)
	for _, ig := range plan.Ignored() {
		reason := ig.Reason
		if ig.Detail != "" {
			reason += ": " + ig.Detail
		}
		report("warning", fmt.Sprintf("%s: slot %q is never filled: %s (%s)", page, ig.Slot, reason, ignoredHint(ig.Reason)))
	}
	for _, ps := range plan.PlacedSlots() {
		blocks := 0
		for _, b := range set.Blocks() {
			bs, known := shapes[b] // a block of a segment the config has
			if b.Slot != ps.Slot || !known {
				continue
			}
			blocks++
			for _, shape := range bs {
				if why := inject.Misfit(ps.At, shape); why != "" {
					report("error", fmt.Sprintf("%s: slot %q (<%s>): %s does not fit it: %s", page, ps.Slot, ps.At.Element, b.File, why))
					break
				}
			}
		}
		if blocks == 0 {
			msg := fmt.Sprintf("%s: slot %q has no block: it always shows the page's own content", page, ps.Slot)
			if near := set.NearestSlot(ps.Slot); near != "" {
				msg += fmt.Sprintf(": did you mean %q?", near)
			}
			report("warning", msg)
		}
	}
	if len(plan.PlacedSlots()) == 0 && len(plan.Ignored()) == 0 {
		report("warning", fmt.Sprintf("%s: no slot markers: nothing on this page is personalized (mark an element data-edgeseg-slot=\"NAME\")", page))
	}
}

// readPage reads an HTML file for validate, up to 16 MiB.
func readPage(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	const most = 16 << 20
	b, err := io.ReadAll(io.LimitReader(f, most+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > most {
		return nil, fmt.Errorf("%s: larger than 16 MiB: not a page", path)
	}
	return b, nil
}

// sampleRenderEnvs are visitors blocks are rendered for by validate:
// a new anonymous one and a returning one with history.
func sampleRenderEnvs() []*segments.Env {
	now := time.Now()
	var a, b segments.Env
	a.Fill(&signals.Context{Device: "mobile", Daypart: "evening"}, nil, nil, now, profileSettings(), 0)
	b.Fill(&signals.Context{Device: "desktop", Daypart: "morning", Referrer: "search"}, nil, nil, now, profileSettings(), now.Add(-48*time.Hour).Unix())
	return []*segments.Env{&a, &b}
}

// runExplain shows what edgeseg decides for one request.
func (m *Main) runExplain(ctx context.Context, args []string) error {
	fs := m.flagSet("explain")
	cfgPath := fs.String("config", "", "config file")
	rawURL := fs.String("url", "/", "request URL (path and query, or absolute)")
	var headers, cookies multiFlag
	fs.Var(&headers, "header", "request header K:V (repeatable)")
	fs.Var(&cookies, "cookie", "request cookie N=V (repeatable)")
	format := fs.String("format", "text", "text or json")
	pagePath := fs.String("page", "", "an HTML page saved from the site: explain its slots, and whether each block fits there")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := m.loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	var page *inject.Plan
	if *pagePath != "" {
		html, err := readPage(*pagePath)
		if err != nil {
			return err
		}
		page = inject.Scan(html)
	}
	nop := zerolog.Nop()
	pl, err := proxy.NewPipeline(cfg, m.getenv)
	if err != nil {
		return err
	}
	store, _, err := templates.NewStore(cfg.Templates.Dir, cfg.Cache.Blocks, nil, &nop)
	if err != nil {
		return err
	}
	p, err := proxy.NewPersonalizer(proxy.PersonalizerOptions{Pipeline: pl, Templates: store, AssignCache: cfg.Cache.Assignment, Metrics: metrics.NewSet(), Log: &nop})
	if err != nil {
		return err
	}
	var rc fasthttp.RequestCtx
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.SetRequestURI(*rawURL)
	if len(req.Header.Host()) == 0 {
		req.Header.SetHost("localhost")
	}
	req.Header.Set("Accept", "text/html")
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
	for _, h := range headers {
		k, v, ok := strings.Cut(h, ":")
		if !ok {
			return fmt.Errorf("--header %q: want K:V", h)
		}
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	for _, c := range cookies {
		k, v, ok := strings.Cut(c, "=")
		if !ok {
			return fmt.Errorf("--cookie %q: want NAME=VALUE", c)
		}
		req.Header.SetCookie(k, v)
	}
	rc.Init(req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, nil)
	e := p.Explain(&rc, m.Now(), page)
	if *format == "json" {
		enc := json.NewEncoder(m.Stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false) // rules read "views(...) >= 3", not \u003e
		return enc.Encode(e)
	}
	printExplanation(m, e)
	return nil
}

func printExplanation(m *Main, e *proxy.Explanation) {
	w := m.Stdout
	fmt.Fprintf(w, "request: %s\n", e.Request)
	fmt.Fprintf(w, "consent: %s\n", e.Consent)
	if e.Profile != nil {
		fmt.Fprintln(w, "profile:")
		for _, k := range sortedKeys(e.Profile) {
			fmt.Fprintf(w, "  %-14s %v\n", k, e.Profile[k])
		}
	}
	fmt.Fprintln(w, "signals:")
	keys := []string{"device", "browser", "os", "bot", "hour", "weekday", "daypart", "referrer", "referrer_host", "utm", "country", "region", "language", "path"}
	for _, k := range keys {
		fmt.Fprintf(w, "  %-14s %v\n", k, e.Signals[k])
	}
	fmt.Fprintln(w, "rules (priority order):")
	for _, r := range e.Rules {
		mark := "no "
		if r.Matched {
			mark = "YES"
		}
		fmt.Fprintf(w, "  [%s] %-20s p=%-3d %s\n", mark, r.Segment, r.Priority, r.Rule)
		for _, k := range sortedKeys(r.Reads) {
			fmt.Fprintf(w, "        %s = %s\n", k, r.Reads[k])
		}
		if r.Holdout != "" {
			fmt.Fprintf(w, "        holdout: %s\n", r.Holdout)
		}
	}
	if e.Forced != "" {
		fmt.Fprintf(w, "forced by preview token: %s\n", e.Forced)
	}
	fmt.Fprintf(w, "segments: %s\n", strings.Join(e.Segments, ", "))
	fmt.Fprintln(w, "slots:")
	for _, slot := range sortedKeys(e.Slots) {
		fmt.Fprintf(w, "  %-14s %s\n", slot, e.Slots[slot])
	}
	for _, warn := range e.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
}

type multiFlag []string

func (f *multiFlag) String() string     { return strings.Join(*f, ",") }
func (f *multiFlag) Set(s string) error { *f = append(*f, s); return nil }

// certificateEnd says when server.tls_cert_file's certificate has ended
// (expired) or ends within two weeks; "" when neither, or there is none.
func certificateEnd(s config.Server, now time.Time) (msg string, expired bool) {
	if s.TLSCertFile == "" {
		return "", false
	}
	cert, err := s.Certificate()
	if err != nil || cert.Leaf == nil {
		return "", false // reported with the config
	}
	end := cert.Leaf.NotAfter
	switch {
	case !now.Before(end):
		return fmt.Sprintf("server.tls_cert_file: %s: the certificate ended on %s: browsers refuse it", s.TLSCertFile, end.UTC().Format(time.DateOnly)), true
	case end.Sub(now) < proxy.CertificateWarning:
		return fmt.Sprintf("server.tls_cert_file: %s: the certificate ends on %s, within two weeks: renew it", s.TLSCertFile, end.UTC().Format(time.DateOnly)), false
	}
	return "", false
}

// runPreviewToken mints a token that forces a segment.
func (m *Main) runPreviewToken(ctx context.Context, args []string) error {
	fs := m.flagSet("preview-token")
	cfgPath := fs.String("config", "", "config file")
	seg := fs.String("segment", "", "segment to force")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	link := fs.String("url", "", "a page of the site (https://shop.example/): print a link to it that previews the segment")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var page *url.URL
	if *link != "" {
		u, err := url.Parse(*link)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--url %q: want a page's address, such as https://shop.example/", *link)
		}
		page = u
	}
	cfg, err := m.loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	pl, err := proxy.NewPipeline(cfg, m.getenv)
	if err != nil {
		return err
	}
	if pl.Previews() == nil {
		return errors.New("previews are off: set preview.secret (or preview.secret_env) in the config")
	}
	if *seg == "" || pl.Engine().Lookup(*seg) == nil {
		names := []string{}
		for _, s := range pl.Engine().Segments() {
			names = append(names, s.Name)
		}
		return fmt.Errorf("--segment %q: want one of %s", *seg, strings.Join(names, ", "))
	}
	if *ttl <= 0 || *ttl > 30*24*time.Hour {
		return errors.New("--ttl must be between 1s and 720h")
	}
	tok, err := pl.Previews().Mint(*seg, *ttl, m.Now())
	if err != nil {
		return err
	}
	if page != nil {
		q := page.Query()
		q.Set(cfg.Preview.Param, tok)
		page.RawQuery = q.Encode()
		fmt.Fprintln(m.Stdout, page.String())
		fmt.Fprintf(m.Stderr, "open it in a browser (valid for %v): the pages opened after it are previewed too, until then or ?%s=off\n", *ttl, cfg.Preview.Param)
		return nil
	}
	fmt.Fprintln(m.Stdout, tok)
	fmt.Fprintf(m.Stderr, "append ?%s=%s to a page URL (valid for %v): the pages opened after it are previewed too, until then or ?%s=off\n", cfg.Preview.Param, tok, *ttl, cfg.Preview.Param)
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
