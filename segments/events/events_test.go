package events

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

func approx(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// TestCompareTextbook checks the statistics against values worked out by
// hand from the textbook formulas (pooled z for the test, chi-square = z²
// for the uncorrected 2x2 table, unpooled standard error for the 95% Wald
// interval), independently of the code. For 60/1000 vs 40/1000:
// p = 0.05, SE = sqrt(0.05·0.95·(2/1000)) = 0.0097468, z = 2.0520,
// chi² = 4.2105, two-sided p = 0.0402; SE' = sqrt(0.06·0.94/1000 +
// 0.04·0.96/1000) = 0.0097365, CI = 0.02 ± 1.96·SE' = [0.00092, 0.03908].
func TestCompareTextbook(t *testing.T) {
	for _, tc := range []struct {
		x1, n1, x2, n2 int
		chi2, p        float64
		lo, hi         float64
		sig            bool
	}{
		{60, 1000, 40, 1000, 4.2105, 0.0402, 0.00092, 0.03908, true},
		// p = 0.125, SE = 0.046771, z = 1.0690; SE' = 0.046637
		{15, 100, 10, 100, 1.1429, 0.2850, -0.04141, 0.14141, false},
		// p = 0.11, SE = 0.013993, z = 1.4293; SE' = 0.013986
		{120, 1000, 100, 1000, 2.0429, 0.1529, -0.00741, 0.04741, false},
		// p = 0.25, SE = 0.019365, z = 5.1640; SE' = 0.019235
		{300, 1000, 200, 1000, 26.667, 2.418e-07, 0.06230, 0.13770, true},
	} {
		u := Compare(tc.x1, tc.n1, tc.x2, tc.n2)
		if !approx(u.ChiSquare, tc.chi2, 0.001) || !approx(u.P, tc.p, math.Max(1e-4, tc.p*0.01)) ||
			!approx(u.CILow, tc.lo, 0.0001) || !approx(u.CIHigh, tc.hi, 0.0001) || u.Significant != tc.sig {
			t.Errorf("%d/%d vs %d/%d: chi2 %.4f p %.5g CI [%.5f, %.5f] sig %v", tc.x1, tc.n1, tc.x2, tc.n2, u.ChiSquare, u.P, u.CILow, u.CIHigh, u.Significant)
		}
	}
	if u := Compare(6, 100, 3, 100); !approx(u.RelUplift, 1.0, 1e-9) || !approx(u.AbsUplift, 0.03, 1e-9) {
		t.Errorf("uplift: abs %v rel %v", u.AbsUplift, u.RelUplift)
	}
}

func TestCompareEdgeCases(t *testing.T) {
	for _, tc := range []struct {
		x1, n1, x2, n2 int
		verdict        string
	}{
		{0, 0, 0, 0, "no exposures"},
		{0, 10, 0, 0, "no holdout"},
		{0, 0, 1, 10, "no block exposures"},
		{0, 500, 0, 500, "no difference possible"},
		{500, 500, 500, 500, "no difference possible"},
		{2, 10, 0, 10, "too few conversions"},
		{0, 1000, 5, 1000, "too few conversions"},
		{50, 1000, 45, 1000, "not significant yet"},
	} {
		u := Compare(tc.x1, tc.n1, tc.x2, tc.n2)
		if !strings.Contains(u.Verdict, tc.verdict) || u.Significant || math.IsNaN(u.P) {
			t.Errorf("%d/%d vs %d/%d: %q sig=%v p=%v", tc.x1, tc.n1, tc.x2, tc.n2, u.Verdict, u.Significant, u.P)
		}
	}
	if u := Compare(5, 100, 0, 100); !math.IsNaN(u.RelUplift) {
		t.Error("relative uplift over a zero holdout rate should be undefined")
	}
	// An arm with visitors has its rate whatever the other has; what needs
	// both arms is undefined without one.
	for _, tc := range []struct {
		x1, n1, x2, n2 int
		block, holdout float64
	}{
		{241, 944, 0, 0, 241.0 / 944, math.NaN()},
		{0, 0, 3, 12, math.NaN(), 0.25},
		{0, 0, 0, 0, math.NaN(), math.NaN()},
	} {
		u := Compare(tc.x1, tc.n1, tc.x2, tc.n2)
		same := func(a, b float64) bool { return math.IsNaN(a) && math.IsNaN(b) || approx(a, b, 1e-12) }
		if !same(u.BlockRate, tc.block) || !same(u.HoldoutRate, tc.holdout) ||
			!math.IsNaN(u.AbsUplift) || !math.IsNaN(u.RelUplift) || !math.IsNaN(u.CILow) || !math.IsNaN(u.CIHigh) {
			t.Errorf("%d/%d vs %d/%d: rates %v %v, uplift %v %v, CI [%v, %v]", tc.x1, tc.n1, tc.x2, tc.n2,
				u.BlockRate, u.HoldoutRate, u.AbsUplift, u.RelUplift, u.CILow, u.CIHigh)
		}
	}
}

func ev(typ, visitor, seg, slot string, v Variant, at time.Time) string {
	if typ == "conversion" {
		return fmt.Sprintf(`{"type":"conversion","time":%q,"visitor":%q,"event":"purchase"}`, at.Format(time.RFC3339Nano), visitor)
	}
	return fmt.Sprintf(`{"type":"exposure","time":%q,"visitor":%q,"segment":%q,"slot":%q,"variant":%q,"path":"/"}`, at.Format(time.RFC3339Nano), visitor, seg, slot, v)
}

func TestReport(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var b strings.Builder
	lines := 0
	line := func(s string) { b.WriteString(s + "\n"); lines++ }
	for i := 0; i < 400; i++ {
		id := fmt.Sprintf("v%d", i)
		at := t0.Add(time.Duration(i) * time.Minute)
		variant := Block
		if i%2 == 1 {
			variant = Holdout
		}
		line(ev("exposure", id, "deals", "hero", variant, at))
		if i < 150 {
			line(ev("exposure", id, "mobile", "hero", Block, at)) // overlap 150
		}
		// block (even i) converts 1 in 4, holdout (odd i) 1 in 10, after exposure
		if variant == Block && i%8 == 0 || variant == Holdout && i%20 == 1 {
			// even i: 400/8 = 50 of 200; odd i: 400/20 = 20 of 200
			line(ev("conversion", id, "", "", "", at.Add(time.Minute)))
		}
		// a conversion before the exposure does not count
		if i == 3 {
			line(ev("conversion", id, "", "", "", at.Add(-time.Hour)))
		}
	}
	line(`{"type":"exposure","time":"2026-03-01T00:00:00Z","visitor":"x","segment":"ghost","slot":"hero","variant":"block"}`)
	// Traffic in no segment: 200 visitors shown only the default content,
	// v0 of deals shown it too, and one who only converted, never exposed.
	for i := 0; i < 200; i++ {
		line(ev("exposure", fmt.Sprintf("d%d", i), "", "hero", Default, t0))
	}
	line(ev("exposure", "v0", "", "sidebar", Default, t0))
	line(ev("conversion", "c0", "", "", "", t0))
	// Visits: 100 visitors seen only as they began a visit, 50 of them in
	// mobile; and v1, already seen, in deals.
	for i := 0; i < 100; i++ {
		segs := ""
		if i < 50 {
			segs = `,"segments":["mobile"]`
		}
		line(fmt.Sprintf(`{"type":"visit","time":%q,"visitor":"w%d"%s}`, t0.Format(time.RFC3339), i, segs))
	}
	line(fmt.Sprintf(`{"type":"visit","time":%q,"visitor":"v1","segments":["deals"],"holdouts":["deals"]}`, t0.Format(time.RFC3339)))
	line(`{garbled`)
	line(`{"type":"exposure"}`)
	line(`{"type":"exposure","time":"2026-03-01T00:00:00Z","visitor":"trunc`)
	line(strings.Repeat("x", 100<<10))
	line(`{"type":"exposure","time":"2031-01-01T00:00:00Z","visitor":"late","segment":"deals","slot":"hero","variant":"block"}`)
	b.WriteString(`{"type":"conversion","time":"2026-03-01T00:00:00Z"`) // last line cut off, no newline

	r := NewReport(ReportOptions{MinVisitors: 100, Known: []string{"deals", "mobile"}, Until: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err := r.Add("events.jsonl", strings.NewReader(b.String())); err != nil {
		t.Fatal(err)
	}
	rep := r.Finish()
	if rep.Skipped != 5 {
		t.Errorf("skipped %d: %v", rep.Skipped, rep.SkippedLines)
	}
	if rep.Lines != lines+1 { // the last, cut off, counts too
		t.Errorf("%d lines read, want %d (too long ones count)", rep.Lines, lines+1)
	}
	if len(rep.SkippedLines) == 0 || !strings.HasPrefix(rep.SkippedLines[0], "events.jsonl:") {
		t.Errorf("skipped lines do not name file and line: %v", rep.SkippedLines)
	}
	sizes := map[string]int{}
	for _, s := range rep.Segments {
		sizes[s.Name] = s.Visitors
		if s.Name == "ghost" && !s.TooSmall {
			t.Error("1-visitor segment not flagged too small")
		}
	}
	if sizes["deals"] != 400 || sizes["mobile"] != 200 || rep.Visitors != 451 || rep.Seen != 701 {
		t.Errorf("sizes %v, visitors %d in segments, %d seen", sizes, rep.Visitors, rep.Seen)
	}
	for _, s := range rep.Segments {
		if s.Name == "deals" && s.Share != 400.0/701 {
			t.Errorf("deals: share %v of traffic, want 400 of 701 seen", s.Share)
		}
	}
	if len(rep.Unknown) != 1 || rep.Unknown[0] != "ghost" {
		t.Errorf("unknown segments: %v", rep.Unknown)
	}
	var found bool
	for _, o := range rep.Overlaps {
		if o.A == "deals" && o.B == "mobile" || o.A == "mobile" && o.B == "deals" {
			found = true
			if o.Both != 150 || !o.Flagged {
				t.Errorf("overlap %+v", o)
			}
		}
	}
	if !found {
		t.Error("overlap missing")
	}
	for _, u := range rep.Uplift {
		if u.Segment == "deals" {
			if u.BlockVisitors != 200 || u.BlockConverted != 50 || u.HoldoutVisitors != 200 || u.HoldoutConvert != 20 || !u.Significant {
				t.Errorf("deals uplift %+v", u)
			}
		}
	}
}

// TestQueueOverflowDropsAndCounts: with the sink stuck in a write, the
// queue fills and every event after it is dropped and counted; Emit never
// waits for the sink (a blocking Emit would hang here).
func TestQueueOverflowDropsAndCounts(t *testing.T) {
	block := make(chan struct{})
	w := &blockingWriter{release: block, entered: make(chan struct{})}
	l := NewWriter(w, 10, metrics.NewSet())
	// A first event, for the writer to get stuck writing it.
	l.Emit(Event{Type: "exposure", Time: time.Now(), Visitor: "v"})
	select {
	case <-w.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the writer never wrote the first event")
	}
	for i := 0; i < 1000; i++ {
		l.Emit(Event{Type: "exposure", Time: time.Now(), Visitor: "v"})
	}
	if l.Dropped() != 990 {
		t.Fatalf("dropped %d of 1000 with a queue of 10 and the sink stuck", l.Dropped())
	}
	close(block)
	l.Close()
}

// blockingWriter is a sink whose writes wait for release; entered is
// closed by the first.
type blockingWriter struct {
	release chan struct{}
	entered chan struct{}
	once    sync.Once
}

func (b *blockingWriter) Write(p []byte) (int, error) {
	b.once.Do(func() { close(b.entered) })
	<-b.release
	return len(p), nil
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestSinkFailureIsCounted(t *testing.T) {
	l := NewWriter(failWriter{}, 10, metrics.NewSet())
	l.Emit(Event{Type: "exposure", Time: time.Now(), Visitor: "v"})
	l.Close()
	if l.Failed() != 1 {
		t.Fatalf("failed = %d", l.Failed())
	}
}

func TestRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ev.jsonl")
	r, err := OpenRotating(path, 1000, 2)
	if err != nil {
		t.Fatal(err)
	}
	line := bytes.Repeat([]byte("x"), 99)
	line = append(line, '\n')
	for i := 0; i < 55; i++ {
		if _, err := r.Write(line); err != nil {
			t.Fatal(err)
		}
	}
	r.Close()
	for _, f := range []string{path, path + ".1", path + ".2"} {
		st, err := os.Stat(f)
		if err != nil || st.Size() > 1000 {
			t.Errorf("%s: %v size %d", f, err, st.Size())
		}
	}
	if _, err := os.Stat(path + ".3"); err == nil {
		t.Error("more backups than configured")
	}
	if _, err := OpenRotating("/proc/nope/x.jsonl", 1000, 1); err == nil {
		t.Error("unwritable sink opened")
	}
}

// TestRotationByAnotherProgram: a file logrotate moves aside (its create
// mode), or someone removes, is opened anew at the next look, so events
// go on into the path and not into a file about to be compressed or gone;
// one truncated in place (copytruncate) is written on from its start. Until
// the next look (at most a second), events go where they went.
func TestRotationByAnotherProgram(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ev.jsonl")
	r, err := OpenRotating(path, 1<<20, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	write := func(line string, look bool) {
		t.Helper()
		if look {
			r.looked = time.Time{} // as a second after the last look
		}
		if _, err := r.Write([]byte(line + "\n")); err != nil {
			t.Fatal(err)
		}
	}
	read := func(name string) string {
		t.Helper()
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	write("one", true)
	if err := os.Rename(path, path+"-moved"); err != nil {
		t.Fatal(err)
	}
	write("two", false) // before the next look
	write("three", true)
	if got, moved := read(path), read(path+"-moved"); got != "three\n" || moved != "one\ntwo\n" {
		t.Fatalf("after a move: %q in the path, %q in the moved file", got, moved)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	write("four", true)
	if got := read(path); got != "four\n" {
		t.Fatalf("after a removal: %q", got)
	}
	write(strings.Repeat("x", 100), false)
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	write("five", true)
	if got := read(path); got != "five\n" || r.size != int64(len("five\n")) {
		t.Fatalf("after a truncation: %q, size %d", got, r.size)
	}
}

func BenchmarkEmit(b *testing.B) {
	l := NewWriter(discard{}, 8192, nil)
	defer l.Close()
	e := Event{Type: "exposure", Time: time.Now(), Visitor: "v", Segment: "s", Slot: "hero", Variant: Block}
	b.ReportAllocs()
	for b.Loop() {
		l.Emit(e)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// FuzzReport: whatever an event file holds, the report reads it to the
// end without failing, and its figures are consistent: counts add up,
// shares are shares, no arm converts more visitors than it has.
func FuzzReport(f *testing.F) {
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	f.Add(ev("exposure", "v1", "deals", "hero", Block, t0) + "\n" + ev("conversion", "v1", "", "", "", t0.Add(time.Minute)) + "\n" +
		ev("exposure", "v2", "deals", "hero", Holdout, t0) + "\n" + ev("exposure", "v2", "mobile", "", Default, t0))
	f.Add(`{"type":"exposure","time":"0001-01-01T00:00:01Z","visitor":"a","segment":"s","slot":"x","variant":"block"}` + "\n" +
		`{"type":"exposure","time":"9999-12-31T23:59:59Z","visitor":"a","segment":"s","slot":"y","variant":"holdout"}`)
	f.Add("{garbled\n\n\r\n{\"type\":\"conversion\"}\n[1,2]\nnull\n\"x\"")
	f.Fuzz(func(t *testing.T, data string) {
		r := NewReport(ReportOptions{MinVisitors: 1, Known: []string{"deals"}})
		if err := r.Add("fuzz.jsonl", strings.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		rep := r.Finish()
		lines := strings.Count(data, "\n")
		if data != "" && !strings.HasSuffix(data, "\n") {
			lines++
		}
		if rep.Lines != lines || rep.Events+rep.Skipped+rep.LogLines > rep.Lines {
			t.Fatalf("%d lines read of %d, %d events, %d skipped, %d log lines", rep.Lines, lines, rep.Events, rep.Skipped, rep.LogLines)
		}
		for _, s := range rep.Segments {
			if s.Visitors < 1 || s.Visitors > rep.Visitors || s.Share <= 0 || s.Share > 1 {
				t.Fatalf("segment %+v of %d visitors", s, rep.Visitors)
			}
		}
		for _, o := range rep.Overlaps {
			if o.Both < 1 || o.Share <= 0 || o.Share > 1 {
				t.Fatalf("overlap %+v", o)
			}
		}
		for _, u := range rep.Uplift {
			if u.BlockConverted > u.BlockVisitors || u.HoldoutConvert > u.HoldoutVisitors || u.BlockVisitors+u.HoldoutVisitors == 0 ||
				math.IsNaN(u.P) || u.P < 0 || u.P > 1 {
				t.Fatalf("uplift %+v", u)
			}
		}
	})
}

// TestReportSkipsWhatItCannotHold: a log naming more slots than a report
// tells apart, or an event time nanoseconds cannot hold, is skipped line
// by line and said so, not folded into another slot's figures.
func TestReportSkipsWhatItCannotHold(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var b strings.Builder
	for i := range maxSlots + 1 {
		b.WriteString(ev("exposure", "v", "deals", fmt.Sprintf("slot-%d", i), Block, t0) + "\n")
	}
	b.WriteString(ev("exposure", "w", "deals", "slot-0", Block, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)) + "\n")
	r := NewReport(ReportOptions{})
	if err := r.Add("big.jsonl", strings.NewReader(b.String())); err != nil {
		t.Fatal(err)
	}
	rep := r.Finish()
	if rep.Skipped != 2 || len(rep.SkippedLines) != 2 ||
		rep.SkippedLines[0] != fmt.Sprintf("big.jsonl:%d: more than %d slots", maxSlots+1, maxSlots) ||
		rep.SkippedLines[1] != fmt.Sprintf("big.jsonl:%d: time out of range", maxSlots+2) {
		t.Fatalf("skipped %d: %q", rep.Skipped, rep.SkippedLines)
	}
	if rep.Visitors != 1 || len(rep.Segments) != 1 || len(rep.Segments[0].Exposures) != maxSlots {
		t.Fatalf("visitors %d, segments %+v", rep.Visitors, len(rep.Segments))
	}
}

// writesRecorder keeps each write the sink gets; the first waits for
// release, so events queue behind it.
type writesRecorder struct {
	mu      sync.Mutex
	writes  [][]byte
	release chan struct{}
	once    sync.Once
}

func (w *writesRecorder) Write(p []byte) (int, error) {
	w.once.Do(func() { <-w.release })
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, append([]byte(nil), p...))
	return len(p), nil
}

func (w *writesRecorder) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.writes)
}

// TestEventsAreWrittenInBatches: events queued together reach the sink in
// few writes, each of whole lines (a file rotates between writes, so no
// line is split across files); an event alone is written within the flush
// interval, not held for others to come or until Close.
func TestEventsAreWrittenInBatches(t *testing.T) {
	w := &writesRecorder{release: make(chan struct{})}
	set := metrics.NewSet()
	l := NewWriter(w, 2000, set)
	l.Emit(Event{Type: "exposure", Time: time.Now(), Visitor: "first"})
	for i := 0; i < 1000; i++ {
		l.Emit(Event{Type: "exposure", Time: time.Now(), Visitor: fmt.Sprint("v", i), Segment: "s", Slot: "hero", Variant: Block})
	}
	close(w.release)
	deadline := time.Now().Add(5 * time.Second)
	for set.GetOrCreateCounter("edgeseg_events_written_total").Get() < 1001 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	n := w.count()
	l.Emit(Event{Type: "conversion", Time: time.Now(), Visitor: "alone", Event: "purchase"})
	for w.count() == n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if w.count() != n+1 {
		t.Fatalf("an event alone was not written before Close")
	}
	l.Close()
	lines := 0
	for _, p := range w.writes {
		if len(p) == 0 || p[len(p)-1] != '\n' {
			t.Fatalf("a write ends mid-line: %q", p[max(0, len(p)-40):])
		}
		for _, line := range bytes.Split(p[:len(p)-1], []byte("\n")) {
			if !json.Valid(line) {
				t.Fatalf("not a JSON line: %q", line)
			}
			lines++
		}
		if len(p) > maxBatchBytes+1024 {
			t.Errorf("a write of %d bytes", len(p))
		}
	}
	if lines != 1002 || l.Dropped() != 0 || l.Failed() != 0 {
		t.Fatalf("%d lines written, %d dropped, %d failed; want 1002, 0, 0", lines, l.Dropped(), l.Failed())
	}
	if len(w.writes) > 20 {
		t.Errorf("1002 events in %d writes", len(w.writes))
	}
}

// TestReportPassesOverLogLines: a stdout sink's stream, events and
// edgeseg's log lines together (as docker logs keeps it), is read for its
// events; the log lines are counted apart, not as skipped.
func TestReportPassesOverLogLines(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	in := strings.Join([]string{
		`{"level":"info","listen":":8080","origin":"http://app:9000","time":"2026-03-01T00:00:00Z","message":"edgeseg serving"}`,
		ev("exposure", "v1", "deals", "hero", Block, t0),
		`{"level":"info","method":"GET","path":"/","status":200,"duration":1.2,"personalized":true,"remote":"10.0.0.7","time":"2026-03-01T00:00:00Z","message":"request"}`,
		ev("conversion", "v1", "", "", "", t0.Add(time.Minute)),
		`{"level":"warn","note":"no message"}`, // not edgeseg's log line: skipped
	}, "\n")
	r := NewReport(ReportOptions{MinVisitors: 1})
	if err := r.Add("stdout.jsonl", strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	rep := r.Finish()
	if rep.Events != 2 || rep.LogLines != 2 || rep.Skipped != 1 || rep.Visitors != 1 {
		t.Errorf("%d events, %d log lines, %d skipped, %d visitors; want 2, 2, 1, 1", rep.Events, rep.LogLines, rep.Skipped, rep.Visitors)
	}
}

// TestReportVisitorIDs: visitors are told apart by their ids as written:
// edgeseg's (kept by their 16 bytes), ids of another form, and an id that
// differs from one of edgeseg's only in bits its last character carries
// past the 16 bytes (which lax decoding would take for the same visitor).
func TestReportVisitorIDs(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	ids := []string{"ViEbv6sEJofAasWOmQnoLw", "ViEbv6sEJofAasWOmQnoLx", "ViEbv6sEJofAasWOmQnoL", "visitor-7", "U-T9fdxuncwA4aNsD_fJqQ"}
	var b strings.Builder
	for i, id := range ids {
		b.WriteString(ev("exposure", id, "deals", "hero", Block, t0) + "\n")
		b.WriteString(ev("exposure", id, "deals", "footer", Block, t0) + "\n")
		if i%2 == 0 {
			b.WriteString(ev("conversion", id, "", "", "", t0.Add(time.Minute)) + "\n")
		}
	}
	r := NewReport(ReportOptions{MinVisitors: 1})
	if err := r.Add("ids.jsonl", strings.NewReader(b.String())); err != nil {
		t.Fatal(err)
	}
	rep := r.Finish()
	if rep.Visitors != len(ids) || rep.Seen != len(ids) {
		t.Fatalf("%d visitors, %d seen; want %d", rep.Visitors, rep.Seen, len(ids))
	}
	for _, u := range rep.Uplift {
		if u.BlockVisitors != len(ids) || u.BlockConverted != 3 {
			t.Errorf("%s/%s: %d of %d converted, want 3 of %d", u.Segment, u.Slot, u.BlockConverted, u.BlockVisitors, len(ids))
		}
	}
}

// BenchmarkReportVisitors: what a report holds per visitor (B/visitor),
// for visitors with edgeseg's ids, a visit and three slots' exposures.
func BenchmarkReportVisitors(b *testing.B) {
	const visitors = 100_000
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var in bytes.Buffer
	id := make([]byte, 16)
	for i := range visitors {
		binary.LittleEndian.PutUint64(id, uint64(i)*0x9e3779b97f4a7c15)
		vid := base64.RawURLEncoding.EncodeToString(id)
		fmt.Fprintf(&in, `{"type":"visit","time":%q,"visitor":%q,"segments":["deals"]}`+"\n", t0.Format(time.RFC3339), vid)
		for _, slot := range []string{"hero", "sidebar", "footer"} {
			in.WriteString(ev("exposure", vid, "deals", slot, Block, t0) + "\n")
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		r := NewReport(ReportOptions{})
		if err := r.Add("bench.jsonl", bytes.NewReader(in.Bytes())); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/visitors, "B/visitor")
		if rep := r.Finish(); rep.Visitors != visitors {
			b.Fatalf("%d visitors", rep.Visitors)
		}
	}
}

// TestReportCompressedFiles: a gzip-compressed file (two members, as
// appended archives are) reads as the file it holds; one cut short, or
// damaged, is read up to where it breaks, with a warning naming it.
func TestReportCompressedFiles(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var plain strings.Builder
	for i := range 2000 {
		id := fmt.Sprintf("v%d", i)
		plain.WriteString(ev("exposure", id, "deals", "hero", []Variant{Block, Holdout}[i%2], t0) + "\n")
		if i%3 == 0 {
			plain.WriteString(ev("conversion", id, "", "", "", t0.Add(time.Minute)) + "\n")
		}
	}
	half := strings.Index(plain.String()[plain.Len()/2:], "\n") + plain.Len()/2 + 1
	compressed := append(gzipped(plain.String()[:half]), gzipped(plain.String()[half:])...)
	report := func(name string, in []byte) *Report {
		r := NewReport(ReportOptions{})
		if err := r.Add(name, bytes.NewReader(in)); err != nil {
			t.Fatal(err)
		}
		return r.Finish()
	}
	want, got := report("e.jsonl", []byte(plain.String())), report("e.jsonl.gz", compressed)
	if got.Lines != want.Lines || got.Events != want.Events || got.Visitors != want.Visitors || len(got.Warnings) != 0 ||
		fmt.Sprint(got.Uplift) != fmt.Sprint(want.Uplift) {
		t.Fatalf("compressed: %d lines, %d events, %d visitors, warnings %q; plain: %d, %d, %d", got.Lines, got.Events, got.Visitors, got.Warnings, want.Lines, want.Events, want.Visitors)
	}

	cut := report("cut.gz", compressed[:len(compressed)/3])
	if cut.Events == 0 || cut.Events >= want.Events || len(cut.Warnings) != 1 || !strings.Contains(cut.Warnings[0], "cut.gz: the compressed file breaks off after line") {
		t.Errorf("cut short: %d events of %d, warnings %q", cut.Events, want.Events, cut.Warnings)
	}
	damaged := bytes.Clone(compressed)
	damaged[len(damaged)-6] ^= 0xff // the second member's checksum
	if rep := report("damaged.gz", damaged); len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "damaged.gz") || rep.Events == 0 {
		t.Errorf("damaged: %d events, warnings %q", rep.Events, rep.Warnings)
	}
	if rep := report("header.gz", []byte("\x1f\x8bnot gzip")); len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "header.gz: not read") {
		t.Errorf("not gzip after its magic: warnings %q", rep.Warnings)
	}
}

func gzipped(s string) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	zw.Close()
	return b.Bytes()
}
