package segments

import (
	"fmt"
	"time"

	"github.com/edgeseg/edgeseg/segments/profile"
	"github.com/edgeseg/edgeseg/segments/signals"
)

// WarnSegments is the segment count past which results get too thin to
// judge: the load warns.
const WarnSegments = 15

// lint evaluates every rule on a grid of sample visitors and reports rules
// that never match and pairs that always agree (likely equivalent).
func (e *Engine) lint() []string {
	var warns []string
	if len(e.segs) > WarnSegments {
		warns = append(warns, fmt.Sprintf("%d segments: more than %d splits traffic too thin to measure; consider merging", len(e.segs), WarnSegments))
	}
	samples := sampleEnvs()
	results := make([]uint64, len(samples))
	for i := range samples {
		results[i], _ = e.Eval(&samples[i])
	}
	for i, s := range e.segs {
		bit := uint64(1) << uint(i)
		any := false
		for _, r := range results {
			if r&bit != 0 {
				any = true
				break
			}
		}
		if !any {
			warns = append(warns, fmt.Sprintf("segment %q never matched on %d sample visitors: check the rule", s.Name, len(samples)))
		}
	}
	for i := range e.segs {
		for j := i + 1; j < len(e.segs); j++ {
			bi, bj := uint64(1)<<uint(i), uint64(1)<<uint(j)
			same, matched := true, false
			for _, r := range results {
				if (r&bi != 0) != (r&bj != 0) {
					same = false
					break
				}
				matched = matched || r&bi != 0
			}
			if same && matched {
				warns = append(warns, fmt.Sprintf("segments %q and %q matched the same %d sample visitors: they may be equivalent", e.segs[i].Name, e.segs[j].Name, len(samples)))
			}
		}
	}
	return warns
}

// sampleEnvs builds a grid of plausible visitors: devices, dayparts,
// referrers, campaigns, and behavior from none to heavy in each category.
func sampleEnvs() []Env {
	now := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	set := profile.Settings{VisitGap: 30 * time.Minute, MaxCategories: 12, MaxProducts: 6, ConsiderationScore: 5, DecisionScore: 15}
	var out []Env
	devices := []string{"mobile", "tablet", "desktop", "bot"}
	hours := []int{8, 14, 19, 23}
	refs := []struct{ ref, medium, campaign string }{{"direct", "", ""}, {"search", "", ""}, {"social", "social", ""}, {"paid", "cpc", "promo-spring"}, {"email", "email", "newsletter"}}
	behaviors := []func(p *profile.Profile, t time.Time){
		func(*profile.Profile, time.Time) {},
		func(p *profile.Profile, t time.Time) {
			for _, c := range []string{"sale", "electronics", "luxury", "home", "fashion"} {
				for k := 3; k >= 0; k-- { // oldest first, as they happen
					p.Observe(profile.Event{Name: profile.CategoryView, Category: c, Navigation: true}, t.Add(-time.Duration(k)*36*time.Hour), set)
				}
			}
		},
		func(p *profile.Profile, t time.Time) {
			p.Observe(profile.Event{Name: profile.CartAdd, Navigation: true}, t.Add(-24*time.Hour), set)
			p.Observe(profile.Event{Name: profile.Purchase, Navigation: true}, t.Add(-2*time.Hour), set)
		},
	}
	for _, d := range devices {
		for _, h := range hours {
			for _, r := range refs {
				for bi, b := range behaviors {
					t := now.Add(time.Duration(h-10) * time.Hour)
					var p *profile.Profile
					if bi > 0 {
						p = profile.NewFresh(t.Add(-40 * 24 * time.Hour))
						b(p, t)
					}
					ctx := signals.Context{Device: d, Hour: h, Daypart: signals.Daypart(h), Weekday: "wednesday",
						Referrer: r.ref, UTM: signals.UTM{Medium: r.medium, Campaign: r.campaign}, Country: "US", Language: "en", Path: "/"}
					var env Env
					env.Fill(&ctx, p, nil, t, set, t.Add(-72*time.Hour).Unix())
					out = append(out, env)
				}
			}
		}
	}
	return out
}
