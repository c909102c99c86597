package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mattn/go-isatty"

	"github.com/edgeseg/edgeseg/segments/events"
)

// runReport reads event files and prints segment sizes, overlaps and
// uplift with its statistics.
func (m *Main) runReport(ctx context.Context, args []string) error {
	fs := m.flagSet("report")
	var files multiFlag
	fs.Var(&files, "events", "event file (JSON lines, gzip-compressed or not; - for standard input); repeatable, or list files after the flags")
	since := fs.String("since", "", "only events at or after this time (RFC 3339 or YYYY-MM-DD)")
	until := fs.String("until", "", "only events before this time")
	format := fs.String("format", "text", "text, json or csv")
	minVisitors := fs.Int("min-visitors", 100, "segments with fewer visitors are flagged too small to judge")
	overlap := fs.Float64("overlap", 0.5, "flag segment pairs sharing more than this share of the smaller one")
	cfgPath := fs.String("config", "", "config file, to flag events of segments it does not define")
	if err := fs.Parse(args); err != nil {
		return err
	}
	files = append(files, fs.Args()...)
	if len(files) == 0 {
		return errors.New("report: --events FILE is required")
	}
	opts := events.ReportOptions{MinVisitors: *minVisitors, OverlapShare: *overlap}
	var err error
	if opts.Since, err = parseTime(*since); err != nil {
		return fmt.Errorf("--since: %w", err)
	}
	if opts.Until, err = parseTime(*until); err != nil {
		return fmt.Errorf("--until: %w", err)
	}
	if *cfgPath != "" {
		cfg, err := m.loadConfig(*cfgPath)
		if err != nil {
			return err
		}
		for _, s := range cfg.Segments {
			opts.Known = append(opts.Known, s.Name)
		}
	}
	if f, ok := m.Stderr.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
		start := time.Now()
		opts.Progress = func(n int64) {
			fmt.Fprintf(m.Stderr, "\rread %d MiB (%.0f MiB/s)", n>>20, float64(n>>20)/time.Since(start).Seconds())
		}
	}
	r := events.NewReport(opts)
	for _, name := range files {
		if name == "-" {
			if err := r.Add("stdin", m.Stdin); err != nil {
				return err
			}
			continue
		}
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("report: %w", err)
		}
		err = r.Add(name, f)
		f.Close()
		if err != nil {
			return err
		}
	}
	if opts.Progress != nil {
		fmt.Fprintln(m.Stderr)
	}
	rep := r.Finish()
	switch *format {
	case "json":
		enc := json.NewEncoder(m.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(jsonReport(rep))
	case "csv":
		return writeCSV(m.Stdout, rep)
	case "text":
		writeText(m.Stdout, rep, opts)
		return nil
	}
	return fmt.Errorf("--format %q: want text, json or csv", *format)
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: want RFC 3339 (2026-03-01T00:00:00Z) or a date (2026-03-01)", s)
	}
	return t, nil
}

func pct(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "n/a"
	}
	return strconv.FormatFloat(f*100, 'f', 2, 64) + "%"
}

func writeText(w io.Writer, rep *events.Report, opts events.ReportOptions) {
	fmt.Fprintf(w, "%d events from %d lines; %d skipped; %d visitors seen, %d of them in segments\n",
		rep.Events, rep.Lines, rep.Skipped, rep.Seen, rep.Visitors)
	if rep.LogLines > 0 {
		fmt.Fprintf(w, "  %d of the lines are edgeseg's log lines (a stdout sink's stream), passed over\n", rep.LogLines)
	}
	for _, s := range rep.SkippedLines {
		fmt.Fprintf(w, "  skipped %s\n", s)
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nSEGMENT\tVISITORS\tSHARE\tEXPOSURES BY SLOT\tNOTE")
	for _, s := range rep.Segments {
		var ex []string
		for slot, n := range s.Exposures {
			ex = append(ex, fmt.Sprintf("%s=%d", slot, n))
		}
		note := ""
		if s.TooSmall {
			note = fmt.Sprintf("too small to judge (< %d)", opts.MinVisitors)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", s.Name, s.Visitors, pct(s.Share), strings.Join(ex, " "), note)
	}
	tw.Flush()
	if len(rep.Overlaps) > 0 {
		fmt.Fprintln(w, "\nOVERLAP (visitors in both, share of the smaller segment)")
		for _, o := range rep.Overlaps {
			flag := ""
			if o.Flagged {
				flag = fmt.Sprintf("  <- over %s: consider merging or prioritizing", pct(opts.OverlapShare))
			}
			fmt.Fprintf(w, "  %s & %s: %d (%s)%s\n", o.A, o.B, o.Both, pct(o.Share), flag)
		}
	}
	tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nSEGMENT\tSLOT\tBLOCK CONV\tHOLDOUT CONV\tUPLIFT\tRELATIVE\t95% CI\tP\tVERDICT")
	for _, u := range rep.Uplift {
		ci := "n/a"
		if !math.IsNaN(u.CILow) {
			ci = "[" + pct(u.CILow) + ", " + pct(u.CIHigh) + "]"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d/%d %s\t%d/%d %s\t%s\t%s\t%s\t%.4f\t%s\n", u.Segment, u.Slot,
			u.BlockConverted, u.BlockVisitors, pct(u.BlockRate), u.HoldoutConvert, u.HoldoutVisitors, pct(u.HoldoutRate),
			pct(u.AbsUplift), pct(u.RelUplift), ci, u.P, u.Verdict)
	}
	tw.Flush()
	for _, name := range rep.Unknown {
		fmt.Fprintf(w, "warning: events for segment %q, which the config does not define\n", name)
	}
	for _, warn := range rep.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
}

// jsonReport replaces NaN (which JSON cannot hold) with nil.
func jsonReport(rep *events.Report) map[string]any {
	var ups []map[string]any
	num := func(f float64) any {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil
		}
		return f
	}
	for _, u := range rep.Uplift {
		ups = append(ups, map[string]any{"segment": u.Segment, "slot": u.Slot,
			"block_visitors": u.BlockVisitors, "block_converted": u.BlockConverted, "block_rate": num(u.BlockRate),
			"holdout_visitors": u.HoldoutVisitors, "holdout_converted": u.HoldoutConvert, "holdout_rate": num(u.HoldoutRate),
			"uplift": num(u.AbsUplift), "relative_uplift": num(u.RelUplift), "ci_low": num(u.CILow), "ci_high": num(u.CIHigh),
			"z": num(u.Z), "chi_square": num(u.ChiSquare), "p": num(u.P), "significant": u.Significant, "verdict": u.Verdict})
	}
	return map[string]any{"lines": rep.Lines, "events": rep.Events, "skipped": rep.Skipped, "log_lines": rep.LogLines, "skipped_lines": rep.SkippedLines,
		"visitors": rep.Visitors, "visitors_seen": rep.Seen, "segments": rep.Segments, "overlaps": rep.Overlaps, "uplift": ups,
		"unknown_segments": rep.Unknown, "warnings": rep.Warnings}
}

func writeCSV(w io.Writer, rep *events.Report) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"segment", "slot", "visitors", "block_visitors", "block_converted", "holdout_visitors", "holdout_converted",
		"block_rate", "holdout_rate", "uplift", "relative_uplift", "ci_low", "ci_high", "p", "significant", "verdict"})
	size := map[string]int{}
	for _, s := range rep.Segments {
		size[s.Name] = s.Visitors
	}
	f := func(x float64) string {
		if math.IsNaN(x) {
			return ""
		}
		return strconv.FormatFloat(x, 'f', 6, 64)
	}
	for _, u := range rep.Uplift {
		cw.Write([]string{u.Segment, u.Slot, strconv.Itoa(size[u.Segment]), strconv.Itoa(u.BlockVisitors), strconv.Itoa(u.BlockConverted),
			strconv.Itoa(u.HoldoutVisitors), strconv.Itoa(u.HoldoutConvert), f(u.BlockRate), f(u.HoldoutRate), f(u.AbsUplift),
			f(u.RelUplift), f(u.CILow), f(u.CIHigh), f(u.P), strconv.FormatBool(u.Significant), u.Verdict})
	}
	cw.Flush()
	return cw.Error()
}
