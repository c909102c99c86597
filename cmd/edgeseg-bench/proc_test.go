package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTableComparesLikeWithLike: ratios are medians over rounds, and a
// variant ("+cache") is compared with the baselines run the same way, never
// with the plain ones.
func TestTableComparesLikeWithLike(t *testing.T) {
	results := `{"target":"nginx-subfilter","rps":1000,"cpu_us_per_req":50,"p99_ms":5,"page":"5k"}
{"target":"edgeseg-passthrough","rps":2000,"cpu_us_per_req":40,"p99_ms":4,"page":"5k"}
{"target":"edgeseg","rps":1500,"cpu_us_per_req":80,"p99_ms":6,"page":"5k"}
{"target":"edgeseg","rps":900,"cpu_us_per_req":80,"p99_ms":6,"page":"5k"}
{"target":"edgeseg","rps":1700,"cpu_us_per_req":80,"p99_ms":6,"page":"5k"}
{"target":"nginx-subfilter+cache","rps":4000,"cpu_us_per_req":25,"p99_ms":2,"page":"5k"}
{"target":"edgeseg-passthrough+cache","rps":5000,"cpu_us_per_req":20,"p99_ms":2,"page":"5k"}
{"target":"edgeseg+cache","rps":3000,"cpu_us_per_req":40,"p99_ms":3,"page":"5k"}
{"target":"edgeseg-passthrough","rps":750,"cpu_us_per_req":40,"p99_ms":1.5,"page":"5k","rate":750}
{"target":"edgeseg-passthrough-b","rps":750,"cpu_us_per_req":40,"p99_ms":1.25,"page":"5k","rate":750}
{"target":"edgeseg","rps":750,"cpu_us_per_req":80,"p99_ms":2.25,"page":"5k","rate":750}
{"target":"edgeseg-passthrough+cache","rps":1500,"cpu_us_per_req":20,"p99_ms":1,"page":"5k","rate":1500}
{"target":"edgeseg+cache","rps":1500,"cpu_us_per_req":40,"p99_ms":1.5,"page":"5k","rate":1500}
`
	path := filepath.Join(t.TempDir(), "results.jsonl")
	if err := os.WriteFile(path, []byte(results), 0o644); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := printTable(path, &out); err != nil {
		t.Fatal(err)
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n")[1:] {
		f := strings.Fields(line)
		rows[f[1]+" "+f[2]] = f
	}
	// Columns after the page: target, load, rounds, req/s, (min-max), p50,
	// p99, p99.9, CPU, RSS, vs nginx, vs pass, per core vs nginx, per core
	// vs pass, added p99, errors.
	for _, tc := range []struct {
		row                                  string
		rounds, rps, vsNginx, vsPass, coreNg string
		addedP99                             string
	}{
		{"edgeseg max", "3", "1500", "1.50x", "0.75x", "0.62x", "-"},
		{"edgeseg+cache max", "1", "3000", "0.75x", "0.60x", "0.62x", "-"},
		{"nginx-subfilter+cache max", "1", "4000", "1.00x", "0.80x", "1.00x", "-"},
		{"edgeseg 750/s", "1", "750", "-", "-", "-", "+0.75"},
		// The second pass-through, against the first: the p99's noise.
		{"edgeseg-passthrough-b 750/s", "1", "750", "-", "-", "-", "-0.25"},
		{"edgeseg+cache 1500/s", "1", "1500", "-", "-", "-", "+0.50"},
	} {
		f, ok := rows[tc.row]
		if !ok {
			t.Fatalf("no row %q in\n%s", tc.row, out.String())
		}
		got := []string{f[3], f[4], f[11], f[12], f[13], f[15]}
		want := []string{tc.rounds, tc.rps, tc.vsNginx, tc.vsPass, tc.coreNg, tc.addedP99}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: rounds, req/s, vs nginx, vs pass, per core vs nginx, added p99 = %v, want %v", tc.row, got, want)
		}
	}
}

// TestTailPairsRounds: the tail table pairs each page's runs by their
// order, puts what a second pass-through adds beside what personalizing
// adds, and leaves out max-rate runs and rounds missing a target.
func TestTailPairsRounds(t *testing.T) {
	results := `{"target":"edgeseg","rps":9000,"p99_ms":9,"page":"5k"}
{"target":"edgeseg-passthrough","rate":4500,"p99_ms":2.0,"page":"5k"}
{"target":"edgeseg-passthrough-b","rate":4500,"p99_ms":2.25,"page":"5k"}
{"target":"edgeseg","rate":4500,"p99_ms":4.0,"page":"5k"}
{"target":"edgeseg-passthrough","rate":4500,"p99_ms":3.0,"page":"5k"}
{"target":"edgeseg-passthrough-b","rate":4500,"p99_ms":2.5,"page":"5k"}
{"target":"edgeseg","rate":4500,"p99_ms":3.5,"page":"5k"}
{"target":"edgeseg-passthrough","rate":4500,"p99_ms":1.0,"page":"5k"}
{"target":"edgeseg-passthrough-b","rate":4500,"p99_ms":1.5,"page":"5k"}
{"target":"edgeseg","rate":4500,"p99_ms":2.0,"page":"5k"}
{"target":"edgeseg-passthrough","rate":2000,"p99_ms":5,"page":"60k"}
{"target":"edgeseg-passthrough-b","rate":2000,"p99_ms":4,"page":"60k"}
{"target":"edgeseg","rate":2000,"p99_ms":8,"page":"60k"}
{"target":"edgeseg-passthrough","rate":2000,"p99_ms":5,"page":"60k"}
`
	path := filepath.Join(t.TempDir(), "tail.jsonl")
	if err := os.WriteFile(path, []byte(results), 0o644); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := printTail(path, &out); err != nil {
		t.Fatal(err)
	}
	tables := strings.Split(strings.TrimSpace(out.String()), "\n\n")
	if len(tables) != 2 {
		t.Fatalf("want the rounds and the summary, got\n%s", out.String())
	}
	var rounds []string
	for _, line := range strings.Split(tables[0], "\n")[1:] {
		rounds = append(rounds, strings.Join(strings.Fields(line), " "))
	}
	want := []string{
		"5k 1 2.00 2.25 4.00 +0.25 +2.00",
		"5k 2 3.00 2.50 3.50 -0.50 +0.50",
		"5k 3 1.00 1.50 2.00 +0.50 +1.00",
		"60k 1 5.00 4.00 8.00 -1.00 +3.00",
	}
	if strings.Join(rounds, "\n") != strings.Join(want, "\n") {
		t.Errorf("rounds:\n%s\nwant:\n%s", strings.Join(rounds, "\n"), strings.Join(want, "\n"))
	}
	summary := strings.Split(tables[1], "\n")
	if got := strings.Join(strings.Fields(summary[1]), " "); got != "5k 3 +0.25 ms -0.50 to +0.50 +1.00 ms +0.50 to +2.00" {
		t.Errorf("5k summary: %s", got)
	}
	if got := strings.Join(strings.Fields(summary[2]), " "); got != "60k 1 -1.00 ms -1.00 to -1.00 +3.00 ms +3.00 to +3.00" {
		t.Errorf("60k summary: %s", got)
	}

	empty := filepath.Join(t.TempDir(), "max-only.jsonl")
	if err := os.WriteFile(empty, []byte(`{"target":"edgeseg","rps":9000,"p99_ms":9,"page":"5k"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := printTail(empty, io.Discard); err == nil || !strings.Contains(err.Error(), "no round") {
		t.Errorf("a file with no fixed-rate round: err = %v", err)
	}
}
