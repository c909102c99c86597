package templates

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/edgeseg/edgeseg/segments"
	"github.com/edgeseg/edgeseg/templates/inject"
)

// Context builds a block's render context for a segment and a visitor.
func Context(seg *segments.Segment, env *segments.Env, data map[string]any) map[string]any {
	segData := map[string]any{}
	name, prio := "", 0
	if seg != nil {
		name, prio = seg.Name, seg.Priority
		for k, v := range seg.Data {
			segData[k] = v
		}
	}
	sig := map[string]any{
		"device": env.Device, "browser": env.Browser, "os": env.OS, "bot": env.Bot,
		"hour": env.Hour, "weekday": env.Weekday, "weekend": env.Weekend, "daypart": env.Daypart,
		"referrer": env.Referrer, "referrer_host": env.ReferrerHost, "country": env.Country,
		"region": env.Region, "language": env.Language, "path": env.Path,
		"utm": map[string]any{"source": env.UTM.Source, "medium": env.UTM.Medium, "campaign": env.UTM.Campaign,
			"term": env.UTM.Term, "content": env.UTM.Content},
	}
	v := env.Visitor
	vis := map[string]any{
		"consent": v.Consent, "new": v.New, "visits": v.Visits, "pageviews": v.PageViews, "score": v.Score,
		"stage": v.Stage, "days_since_last_visit": v.DaysSinceLastVisit, "top_category": v.TopCategory,
		"top_categories": env.TopCategories(5), "products": slices.Clone(env.Products()), "purchases": v.Purchases,
	}
	if data == nil {
		data = map[string]any{}
	}
	return map[string]any{
		"segment": map[string]any{"name": name, "priority": prio, "data": segData},
		"signals": sig, "visitor": vis, "data": data,
	}
}

// Exec renders b for seg and env. A panic inside raymond (a helper given
// bad arguments, a missing partial) is returned as an error, never raised;
// so is HTML that would break the page around the slot (see
// inject.CheckBlock) or more than maxRenderedBytes of it.
func (b *Block) Exec(seg *segments.Segment, env *segments.Env) (string, error) {
	out, _, err := b.exec(Context(seg, env, b.data))
	return out, err
}

// ExecWithin is Exec, waiting at most d. raymond cannot stop a render, so
// one that takes longer (an {{#each}} in an {{#each}} over a long list) is
// left to finish on its own, its result dropped, and ErrTooSlow returned.
// A block renders for a few callers at once (as many as there are CPUs);
// the others wait their turn, within d. A block without an {{#each}} or a
// partial cannot take long (see Block.loops) and is rendered as Exec does.
// shape is the output's, read in the check of it (what slot elements it
// fits: inject.Misfit).
func (b *Block) ExecWithin(seg *segments.Segment, env *segments.Env, d time.Duration) (out string, shape inject.Shape, err error) {
	return b.execWithin(seg, env, d, 0, nil)
}

// execWithin is ExecWithin; when giveUp > 0, a render still running after
// giveUp marks b too slow (b.tooSlow) and calls onGiveUp with why. A wait
// of d is about a visitor, and may be the host's doing (a CPU too busy to
// run the render at once); a render running for giveUp is about the block.
func (b *Block) execWithin(seg *segments.Segment, env *segments.Env, d, giveUp time.Duration, onGiveUp func(error)) (string, inject.Shape, error) {
	if !b.loops {
		// Its time is in proportion to its size: run here, not apart.
		return b.exec(Context(seg, env, b.data))
	}
	// The context is built here: env is the request's, and is reused once
	// the request is answered, which a slow render may outlive.
	ctx := Context(seg, env, b.data)
	type result struct {
		out   string
		shape inject.Shape
		err   error
	}
	t := time.NewTimer(d)
	defer t.Stop()
	if b.renders != nil {
		select {
		case b.renders <- struct{}{}:
		case <-t.C:
			return "", 0, fmt.Errorf("templates: %s: %w (%s)", b.File, ErrTooSlow, d)
		}
	}
	done := make(chan result, 1)
	go func() {
		if b.renders != nil {
			defer func() { <-b.renders }()
		}
		if giveUp > 0 {
			w := time.AfterFunc(giveUp, func() {
				err := fmt.Errorf("templates: %s: a render ran for over %s; the block is not rendered again until the templates are reloaded", b.File, giveUp)
				if b.tooSlow.CompareAndSwap(nil, &err) && onGiveUp != nil {
					onGiveUp(err)
				}
			})
			defer w.Stop()
		}
		out, shape, err := b.exec(ctx)
		done <- result{out, shape, err}
	}()
	select {
	case r := <-done:
		return r.out, r.shape, r.err
	case <-t.C:
		return "", 0, fmt.Errorf("templates: %s: %w (%s)", b.File, ErrTooSlow, d)
	}
}

// evalError is a render error of the Handlebars engine, said in its first
// line: the rest dumps the engine's nodes.
type evalError struct{ err error }

func (e evalError) Error() string {
	msg, _, _ := strings.Cut(e.err.Error(), "\n")
	return strings.TrimPrefix(msg, "Evaluation error: ")
}

func (e evalError) Unwrap() error { return e.err }

// ErrTooSlow is a render that took longer than a block's render may.
var ErrTooSlow = errors.New("rendering took longer than a block may")

func (b *Block) exec(ctx map[string]any) (out string, shape inject.Shape, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, shape, err = "", 0, fmt.Errorf("templates: %s: render: %v", b.File, r)
		}
	}()
	out, err = b.tpl.Exec(ctx)
	if err != nil {
		return "", 0, fmt.Errorf("templates: %s: render: %w", b.File, evalError{err})
	}
	if len(out) > maxRenderedBytes {
		return "", 0, fmt.Errorf("templates: %s: renders %d bytes; a block may render at most %d", b.File, len(out), maxRenderedBytes)
	}
	// A block that does not close what it opens (or closes what it did not)
	// would break the page around its slot, not just the slot. Read in the
	// same pass: what slot elements it fits (inject.Misfit).
	shape, err = inject.ReadBlock([]byte(out))
	if err != nil {
		return "", 0, fmt.Errorf("templates: %s: as rendered: %w", b.File, err)
	}
	return out, shape, nil
}

// AppendKey appends to buf the block cache key for rendering b for seg and
// env: the slot, segment (and what it holds), version, and exactly the
// visitor values the block reads, each length-delimited (see
// segments.AppendString), so different values never give the same bytes.
func (b *Block) AppendKey(buf []byte, seg *segments.Segment, env *segments.Env) []byte {
	buf = segments.AppendString(buf, b.Slot)
	buf = segments.AppendString(buf, b.Segment)
	buf = binary.AppendUvarint(buf, b.Version)
	if seg != nil {
		buf = binary.AppendUvarint(buf, seg.Fingerprint)
	}
	if b.dynamic {
		return appendAll(env, buf)
	}
	for _, r := range b.reads {
		switch {
		case strings.HasPrefix(r, "signals."):
			buf = segments.AppendString(buf, r)
			buf, _ = env.AppendValue(r[len("signals."):], buf)
		case r == "visitor.top_categories":
			buf = appendList(segments.AppendString(buf, r), env.TopCategories(5))
		case r == "visitor.products":
			buf = appendList(segments.AppendString(buf, r), env.Products())
		case strings.HasPrefix(r, "visitor."):
			buf = segments.AppendString(buf, r)
			buf, _ = env.AppendValue(r, buf)
		}
	}
	return buf
}

// appendList appends a list of values, counted and each delimited.
func appendList(buf []byte, vs []string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(vs)))
	for _, v := range vs {
		buf = segments.AppendString(buf, v)
	}
	return buf
}

// appendAll appends every value a block could read.
func appendAll(env *segments.Env, buf []byte) []byte {
	for _, k := range allKeys {
		buf = segments.AppendString(buf, k)
		buf, _ = env.AppendValue(k, buf)
	}
	buf = appendList(buf, env.TopCategories(5))
	return appendList(buf, env.Products())
}

// allKeys is every value a block could read through segments.Env.
var allKeys = segments.Paths()
