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

// printTable reads results (JSON lines) and prints them with ratios to
// nginx+sub_filter and to edgeseg pass-through on the same page, measured
// in the same run.
func printTable(path string, w io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var rs []result
	dec := json.NewDecoder(f)
	for {
		var r result
		if err := dec.Decode(&r); err == io.EOF {
			break
		} else if err != nil {
			return err
		}
		rs = append(rs, r)
	}
	find := func(target, page string, fixed bool) *result {
		for i := range rs {
			if rs[i].Target == target && rs[i].Page == page && (rs[i].Rate > 0) == fixed {
				return &rs[i]
			}
		}
		return nil
	}
	ratio := func(a, b float64) string {
		if b == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2fx", a/b)
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "page\ttarget\tload\treq/s\tp50 ms\tp99 ms\tp99.9 ms\tCPU µs/req\tRSS MiB\treq/s vs nginx+sub_filter\treq/s vs pass-through\terrors\t")
	for _, r := range rs {
		load := "max"
		if r.Rate > 0 {
			load = fmt.Sprintf("%.0f/s", r.Rate)
		}
		vsNginx, vsPass := "-", "-"
		if r.Rate == 0 {
			if n := find("nginx-subfilter", r.Page, false); n != nil {
				vsNginx = ratio(r.RPS, n.RPS)
			}
			if p := find("edgeseg-passthrough", r.Page, false); p != nil {
				vsPass = ratio(r.RPS, p.RPS)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.0f\t%.2f\t%.2f\t%.2f\t%.1f\t%.1f\t%s\t%s\t%d\t\n", r.Page, r.Target, load, r.RPS, r.P50ms, r.P99ms, r.P999ms,
			r.CPUus, r.RSSMB, vsNginx, vsPass, r.Errors+r.Non2xx)
	}
	return tw.Flush()
}
