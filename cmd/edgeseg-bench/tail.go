package main

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
)

// Targets of bench/run.sh tail: the pass-through edgeseg every other is
// compared with, a second one run alike (the A/A pair), and the
// personalizing one.
const (
	tailBase     = "edgeseg-passthrough"
	tailSame     = "edgeseg-passthrough-b"
	tailMeasured = "edgeseg"
)

// tailRound is one round of one page: the three targets' p99 at one rate.
type tailRound struct {
	page             string
	base, same, meas float64
}

// tailRounds pairs the runs of each page by their order: the n-th run of
// each target is round n. Rounds missing a target are left out.
func tailRounds(rs []result) []tailRound {
	type run struct{ page, target string }
	type round struct {
		page string
		n    int
	}
	seen := map[run]int{}
	var out []tailRound
	index := map[round]int{} // where in out each round is
	for _, r := range rs {
		if r.Rate == 0 {
			continue
		}
		k := run{r.Page, r.Target}
		n := seen[k]
		seen[k] = n + 1
		rk := round{r.Page, n}
		i, ok := index[rk]
		if !ok {
			i = len(out)
			index[rk] = i
			out = append(out, tailRound{page: r.Page, base: -1, same: -1, meas: -1})
		}
		switch r.Target {
		case tailBase:
			out[i].base = r.P99ms
		case tailSame:
			out[i].same = r.P99ms
		case tailMeasured:
			out[i].meas = r.P99ms
		}
	}
	return slices.DeleteFunc(out, func(t tailRound) bool { return t.base < 0 || t.same < 0 || t.meas < 0 })
}

// printTail prints each round's p99 and, per page, the range of what the
// second pass-through adds to the first (how far a p99 moves with nothing
// changed) beside the range of what personalizing adds.
func printTail(path string, w io.Writer) error {
	rs, err := readResults(path)
	if err != nil {
		return err
	}
	rounds := tailRounds(rs)
	if len(rounds) == 0 {
		return fmt.Errorf("%s: no round with all of %s, %s and %s at a fixed rate", path, tailBase, tailSame, tailMeasured)
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "page\tround\tpass-through p99 ms\tsecond pass-through\tpersonalizing\tsecond − first\tpersonalizing − first\t")
	n := 0
	for i, r := range rounds {
		if i > 0 && rounds[i-1].page != r.page {
			n = 0
		}
		n++
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.2f\t%.2f\t%+.2f\t%+.2f\t\n", r.page, n, r.base, r.same, r.meas, r.same-r.base, r.meas-r.base)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "page\trounds\tsecond − first: median\t(min to max)\tpersonalizing − first: median\t(min to max)\t")
	for i := 0; i < len(rounds); {
		j := i
		var same, meas []float64
		for ; j < len(rounds) && rounds[j].page == rounds[i].page; j++ {
			same = append(same, rounds[j].same-rounds[j].base)
			meas = append(meas, rounds[j].meas-rounds[j].base)
		}
		fmt.Fprintf(tw, "%s\t%d\t%+.2f ms\t%+.2f to %+.2f\t%+.2f ms\t%+.2f to %+.2f\t\n", rounds[i].page, j-i,
			median(same), slices.Min(same), slices.Max(same), median(meas), slices.Min(meas), slices.Max(meas))
		i = j
	}
	return tw.Flush()
}

// median is the middle of v (the mean of the two middle ones when even);
// v is sorted in place.
func median(v []float64) float64 {
	slices.Sort(v)
	if n := len(v); n%2 == 0 {
		return (v[n/2-1] + v[n/2]) / 2
	}
	return v[len(v)/2]
}
