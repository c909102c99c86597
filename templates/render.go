package templates

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/cespare/xxhash/v2"

	"github.com/edgeseg/edgeseg/segments"
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
		"top_categories": env.TopCategories(5), "products": env.Products(), "purchases": v.Purchases,
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
// bad arguments, a missing partial) is returned as an error, never raised.
func (b *Block) Exec(seg *segments.Segment, env *segments.Env) (out string, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = "", fmt.Errorf("templates: %s: render: %v", b.File, r)
		}
	}()
	out, err = b.tpl.Exec(Context(seg, env, b.data))
	if err != nil {
		return "", fmt.Errorf("templates: %s: render: %w", b.File, err)
	}
	return out, nil
}

// Key returns the block cache key for rendering b for seg and env: the
// slot, segment (and what it holds), version, and exactly the visitor
// values the block reads.
func (b *Block) Key(seg *segments.Segment, env *segments.Env, buf []byte) (uint64, []byte) {
	buf = append(buf[:0], b.Slot...)
	buf = append(buf, 0)
	buf = append(buf, b.Segment...)
	buf = strconv.AppendUint(append(buf, 0), b.Version, 16)
	if seg != nil {
		buf = strconv.AppendUint(append(buf, 0), seg.Fingerprint, 16)
	}
	if b.dynamic {
		buf = appendAll(env, buf)
		return xxhash.Sum64(buf), buf
	}
	for _, r := range b.reads {
		buf = append(append(buf, 0), r...)
		buf = append(buf, '=')
		switch {
		case strings.HasPrefix(r, "signals."):
			buf, _ = env.AppendValue(r[len("signals."):], buf)
		case r == "visitor.top_categories":
			buf = append(buf, strings.Join(env.TopCategories(5), ",")...)
		case r == "visitor.products":
			buf = append(buf, strings.Join(env.Products(), ",")...)
		case strings.HasPrefix(r, "visitor."):
			buf, _ = env.AppendValue(r, buf)
		}
	}
	return xxhash.Sum64(buf), buf
}

// appendAll appends every value a block could read.
func appendAll(env *segments.Env, buf []byte) []byte {
	for _, k := range allKeys {
		buf = append(append(buf, 0), k...)
		buf, _ = env.AppendValue(k, buf)
	}
	buf = append(buf, strings.Join(env.TopCategories(5), ",")...)
	buf = append(buf, 0)
	return append(buf, strings.Join(env.Products(), ",")...)
}

// allKeys is every value a block could read through segments.Env.
var allKeys = segments.Paths()
