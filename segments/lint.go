package segments

import (
	"fmt"
	"slices"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/edgeseg/edgeseg/segments/profile"
	"github.com/edgeseg/edgeseg/segments/signals"
)

// WarnSegments is the segment count past which results get too thin to
// judge: the load warns.
const WarnSegments = 15

// SlowRule is the time per visitor past which a rule is reported as slow.
// Rules like the example config's take well under a microsecond each
// (BenchmarkAssignMiss).
const SlowRule = 200 * time.Microsecond

// slowLint is the time a rule may take over the sample visitors before the
// rest are skipped: a slow rule would otherwise hold up every config load.
const slowLint = 250 * time.Millisecond

// lint evaluates every rule on a grid of sample visitors and reports rules
// that never match, pairs that always agree (likely equivalent) and rules
// that are slow to run.
func (e *Engine) lint() []string {
	var warns []string
	if len(e.segs) > WarnSegments {
		warns = append(warns, fmt.Sprintf("%d segments: more than %d splits traffic too thin to measure; consider merging", len(e.segs), WarnSegments))
	}
	samples := sampleEnvs()
	results := make([]uint64, len(samples))
	// Each rule is timed on the samples. One that is slow (a range such as
	// 1..1000000, a loop over it) is slow on every visitor whose assignment
	// is not cached, and is run on as few samples as it takes to tell. Its
	// median time is reported: a pause of the process (a busy host) during
	// one sample does not make a rule slow.
	spent := make([]time.Duration, len(e.segs))
	times := make([][]time.Duration, len(e.segs))
	var m vm.VM
	for i := range samples {
		for j, s := range e.segs {
			if spent[j] >= slowLint {
				continue
			}
			start := time.Now()
			ok, err := runRule(&m, s.program, &samples[i])
			took := time.Since(start)
			spent[j] += took
			times[j] = append(times[j], took)
			if ok && err == nil {
				results[i] |= 1 << uint(j)
			}
		}
	}
	partial := uint64(0) // rules not run on every sample
	for j, s := range e.segs {
		slices.Sort(times[j])
		if per := times[j][len(times[j])/2]; per >= SlowRule {
			warns = append(warns, fmt.Sprintf("segment %q: its rule takes %v per visitor (the median of %d sample visitors): every page whose visitor's assignment is not cached waits for it; look for a range (1..n) or a loop (all, any, filter, map) over a long list", s.Name, per.Round(time.Microsecond), len(times[j])))
		}
		if len(times[j]) < len(samples) {
			partial |= 1 << uint(j)
		}
	}
	for i, s := range e.segs {
		bit := uint64(1) << uint(i)
		if partial&bit != 0 {
			continue
		}
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
			if partial&(bi|bj) != 0 {
				continue
			}
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
