package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc (100 on Linux).
const clockTicks = 100

func parsePIDs(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// cpuTicks sums user and system time of pids.
func cpuTicks(pids []int) int64 {
	var t int64
	for _, p := range pids {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		s := string(raw)
		if i := strings.LastIndexByte(s, ')'); i >= 0 {
			f := strings.Fields(s[i+1:])
			if len(f) > 12 {
				u, _ := strconv.ParseInt(f[11], 10, 64)
				k, _ := strconv.ParseInt(f[12], 10, 64)
				t += u + k
			}
		}
	}
	return t
}

// rssMB sums VmRSS of pids.
func rssMB(pids []int) float64 {
	var kb float64
	for _, p := range pids {
		f, err := os.Open(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
				n, _ := strconv.ParseFloat(strings.Fields(v)[0], 64)
				kb += n
			}
		}
		f.Close()
	}
	return kb / 1024
}

// printTable reads results (JSON lines) and prints, per page, target and
// load, the median of the rounds run (bench/run.sh interleaves them, so
// a noisy neighbour hits every target alike), with ratios to
// nginx+sub_filter and to edgeseg pass-through on the same page:
//   - req/s: what each sustained on this machine, where the load generator
//     and the origin share the cores with the proxy;
//   - per core: the inverse of each proxy's own CPU time per request, what
//     req/s would compare as if each proxy had the cores to itself;
//   - p99 vs pass-through: at the same fixed rate, the p99 latency
//     personalizing adds.
//
// A target named "name+variant" (edgeseg+cache) is compared with the
// baselines of the same variant (nginx-subfilter+cache).
func printTable(path string, w io.Writer) error {
	rs, err := readResults(path)
	if err != nil {
		return err
	}
	rows := medians(rs)
	find := func(target, page string, fixed bool) *row {
		for i := range rows {
			if rows[i].Target == target && rows[i].Page == page && (rows[i].Rate > 0) == fixed {
				return &rows[i]
			}
		}
		return nil
	}
	ratio := func(a, b float64) string {
		if a == 0 || b == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2fx", a/b)
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "page\ttarget\tload\trounds\treq/s\t(min-max)\tp50 ms\tp99 ms\tp99.9 ms\tCPU µs/req\tRSS MiB\treq/s vs nginx+sub_filter\treq/s vs pass-through\tper core vs nginx+sub_filter\tper core vs pass-through\tp99 vs pass-through\terrors\t")
	for _, r := range rows {
		load := "max"
		if r.Rate > 0 {
			load = fmt.Sprintf("%.0f/s", r.Rate)
		}
		vsNginx, vsPass, coreNginx, corePass, addedP99 := "-", "-", "-", "-", "-"
		// A target is compared with the baselines run the same way: "edgeseg+cache"
		// with "nginx-subfilter+cache" and "edgeseg-passthrough+cache".
		variant := ""
		if i := strings.IndexByte(r.Target, '+'); i >= 0 {
			variant = r.Target[i:]
		}
		if r.Rate == 0 {
			if n := find("nginx-subfilter"+variant, r.Page, false); n != nil {
				vsNginx, coreNginx = ratio(r.RPS, n.RPS), ratio(n.CPUus, r.CPUus)
			}
			if p := find("edgeseg-passthrough"+variant, r.Page, false); p != nil {
				vsPass, corePass = ratio(r.RPS, p.RPS), ratio(p.CPUus, r.CPUus)
			}
		} else if p := find("edgeseg-passthrough"+variant, r.Page, true); p != nil && p.Target != r.Target && p.Rate == r.Rate {
			// The same fixed rate: what personalizing adds to the tail.
			addedP99 = fmt.Sprintf("%+.2f ms", r.P99ms-p.P99ms)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.0f\t%.0f-%.0f\t%.2f\t%.2f\t%.2f\t%.1f\t%.1f\t%s\t%s\t%s\t%s\t%s\t%d\t\n", r.Page, r.Target, load, r.rounds,
			r.RPS, r.minRPS, r.maxRPS, r.P50ms, r.P99ms, r.P999ms, r.CPUus, r.RSSMB, vsNginx, vsPass, coreNginx, corePass, addedP99, r.Errors+r.Non2xx)
	}
	return tw.Flush()
}

// readResults reads a results file: one JSON result per line.
func readResults(path string) ([]result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rs []result
	dec := json.NewDecoder(f)
	for {
		var r result
		if err := dec.Decode(&r); err == io.EOF {
			return rs, nil
		} else if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		rs = append(rs, r)
	}
}

// row is the median of the rounds of one page, target and load.
type row struct {
	result
	rounds         int
	minRPS, maxRPS float64
}

// medians groups rs by page, target and load (max, or a fixed rate), in
// the order they first appear, and takes each figure's median; errors add
// up and RSS is the largest seen.
func medians(rs []result) []row {
	type key struct {
		page, target string
		fixed        bool
	}
	var order []key
	groups := map[key][]result{}
	for _, r := range rs {
		k := key{r.Page, r.Target, r.Rate > 0}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	out := make([]row, 0, len(order))
	for _, k := range order {
		g := groups[k]
		med := func(get func(*result) float64) float64 {
			v := make([]float64, len(g))
			for i := range g {
				v[i] = get(&g[i])
			}
			return median(v)
		}
		r := row{result: g[0], rounds: len(g), minRPS: g[0].RPS, maxRPS: g[0].RPS}
		r.RPS = med(func(x *result) float64 { return x.RPS })
		r.Rate = med(func(x *result) float64 { return x.Rate })
		r.P50ms = med(func(x *result) float64 { return x.P50ms })
		r.P99ms = med(func(x *result) float64 { return x.P99ms })
		r.P999ms = med(func(x *result) float64 { return x.P999ms })
		r.CPUus = med(func(x *result) float64 { return x.CPUus })
		r.Errors, r.Non2xx = 0, 0
		for _, x := range g {
			r.minRPS, r.maxRPS = min(r.minRPS, x.RPS), max(r.maxRPS, x.RPS)
			r.RSSMB = max(r.RSSMB, x.RSSMB)
			r.Errors += x.Errors
			r.Non2xx += x.Non2xx
		}
		out = append(out, r)
	}
	return out
}
