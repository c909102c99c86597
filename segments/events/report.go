package events

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"time"
)

// ReportOptions tune a report.
type ReportOptions struct {
	Since, Until time.Time // zero: unbounded
	// MinVisitors flags segments smaller than this as too small to judge.
	MinVisitors int
	// OverlapShare flags segment pairs sharing more than this share of the
	// smaller segment's visitors.
	OverlapShare float64
	// Known lists the configured segments; others are reported as unknown.
	// Empty: no check.
	Known []string
	// Progress, when set, is called now and then with bytes read so far.
	Progress func(bytes int64)
}

// Report is the analysis of a set of event files.
type Report struct {
	Lines, Events, Skipped int
	// LogLines counts edgeseg's log lines among the events (a stdout
	// sink's stream, as docker logs keeps it), passed over, not skipped.
	LogLines int
	// SkippedLines lists the first bad lines as "file:line: why".
	SkippedLines []string
	Visitors     int // distinct visitors in any segment
	// Seen counts distinct visitors with a visit or any exposure, a
	// segment's or the default content's: the traffic segments are a
	// share of.
	Seen     int
	Segments []SegmentStats
	Overlaps []Overlap
	Uplift   []Uplift
	Unknown  []string
	Warnings []string
}

// SegmentStats is one segment's size.
type SegmentStats struct {
	Name      string
	Visitors  int
	Share     float64 // of all visitors seen (Report.Seen)
	Exposures map[string]int
	TooSmall  bool
}

// Overlap is the number of visitors two segments share.
type Overlap struct {
	A, B    string
	Both    int
	Share   float64 // of the smaller segment
	Flagged bool
}

// Uplift compares the block with the holdout for one segment and slot,
// by visitors: converted means a conversion at or after the first exposure.
type Uplift struct {
	Segment, Slot                   string
	BlockVisitors, BlockConverted   int
	HoldoutVisitors, HoldoutConvert int
	BlockRate, HoldoutRate          float64 // NaN for an arm without visitors
	AbsUplift                       float64 // BlockRate - HoldoutRate; NaN unless both arms have visitors
	RelUplift                       float64 // AbsUplift / HoldoutRate; NaN when HoldoutRate is 0 or NaN
	CILow, CIHigh                   float64 // 95% CI of AbsUplift; NaN with it
	Z, ChiSquare, P                 float64
	Significant                     bool
	Verdict                         string
}

// visitorState is what the report keeps per visitor: bounded by the
// number of distinct visitors, not by the size of the input. It holds a
// visitor's first exposures in place (a page's slots, for one segment or
// two): most visitors need no other allocation.
type visitorState struct {
	segs       uint64 // bit per segment index
	lastConvAt int64
	seen       bool // a visit, or any exposure, a segment's or the default's
	n          uint8
	first      [3]visitorExposure // the first n exposures
	more       []visitorExposure  // the rest
}

// visitorExposure is a visitor's first exposure to a segment in a slot.
type visitorExposure struct {
	first     int64
	seg, slot uint16
	arm       arm
}

// arm is the side of the comparison an exposure puts its visitor on.
type arm uint8

const (
	noArm      arm = iota // a default exposure
	blockArm              // the segment's block
	holdoutArm            // the segment's holdout
)

func armOf(v Variant) arm {
	switch v {
	case Block:
		return blockArm
	case Holdout:
		return holdoutArm
	}
	return noArm
}

// exposures returns the visitor's exposures: those held in place, then
// the rest.
func (v *visitorState) exposures() (inPlace, more []visitorExposure) {
	return v.first[:v.n], v.more
}

// exposure returns the visitor's exposure to seg in slot, nil if none.
func (v *visitorState) exposure(seg, slot uint16) *visitorExposure {
	inPlace, more := v.exposures()
	for _, xs := range [2][]visitorExposure{inPlace, more} {
		for i := range xs {
			if x := &xs[i]; x.seg == seg && x.slot == slot {
				return x
			}
		}
	}
	return nil
}

func (v *visitorState) addExposure(x visitorExposure) {
	if int(v.n) < len(v.first) {
		v.first[v.n] = x
		v.n++
		return
	}
	v.more = append(v.more, x)
}

// visitorChunk is how many visitors' states are allocated at once.
const visitorChunk = 4096

// Reporter reads event files and builds a Report. Its memory grows with
// the number of distinct visitors (about 130 bytes each for visitors
// shown three slots, edgeseg's own 22-character visitor ids), not with the
// size of the input.
type Reporter struct {
	opts     ReportOptions
	segIdx   map[string]uint16
	segNames []string
	slotIdx  map[string]uint16
	slots    []string
	// A visitor's state is found by its id: edgeseg's ids (16 random
	// bytes in unpadded base64url) by their bytes, any other by the
	// string. States are kept in chunks, never moved.
	ids      map[[16]byte]int32
	otherIDs map[string]int32
	states   [][]visitorState
	expo     map[[2]uint16]int // exposures by segment and slot
	rep      *Report
	read     int64
}

// visitor returns the state of the visitor with id, made when new.
func (r *Reporter) visitor(id string) *visitorState {
	var key [16]byte
	binary := len(id) == visitorIDLen
	if binary {
		n, err := visitorIDEncoding.Decode(key[:], []byte(id))
		binary = err == nil && n == len(key)
	}
	var i int32
	var ok bool
	if binary {
		i, ok = r.ids[key]
	} else {
		i, ok = r.otherIDs[id]
	}
	if ok {
		return &r.states[i/visitorChunk][i%visitorChunk]
	}
	last := len(r.states) - 1
	if last < 0 || len(r.states[last]) == visitorChunk {
		r.states = append(r.states, make([]visitorState, 0, visitorChunk))
		last++
	}
	i = int32(last*visitorChunk + len(r.states[last]))
	r.states[last] = append(r.states[last], visitorState{})
	if binary {
		r.ids[key] = i
	} else {
		r.otherIDs[id] = i
	}
	return &r.states[last][len(r.states[last])-1]
}

// visitorIDLen and visitorIDEncoding are the form of edgeseg's visitor
// ids. Strict decoding makes it one to one: no two ids share bytes.
const visitorIDLen = 22

var visitorIDEncoding = base64.RawURLEncoding.Strict()

// NewReport starts a report; feed it files with Add, then call Finish.
func NewReport(opts ReportOptions) *Reporter {
	if opts.MinVisitors <= 0 {
		opts.MinVisitors = 100
	}
	if opts.OverlapShare <= 0 {
		opts.OverlapShare = 0.5
	}
	return &Reporter{opts: opts, segIdx: map[string]uint16{}, slotIdx: map[string]uint16{},
		ids: map[[16]byte]int32{}, otherIDs: map[string]int32{}, expo: map[[2]uint16]int{}, rep: &Report{}}
}

// maxLine bounds one event line; longer lines are skipped as garbled.
const maxLine = 64 << 10

// maxSlots bounds the distinct slot names a report tells apart; a log
// with more is not one edgeseg wrote.
const maxSlots = 4096

// Event times outside these are garbled: nanoseconds since 1970 hold
// them, and no exposure happened before 2000.
var (
	minEventTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxEventTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Add reads one file of JSON-lines events, gzip-compressed or not (as
// log rotation often leaves them). Bad lines are counted and skipped; a
// compressed file cut short or damaged is read up to where it breaks, with
// a warning; only a read error fails.
func (r *Reporter) Add(name string, in io.Reader) error {
	br := bufio.NewReaderSize(in, 256<<10)
	compressed := false
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			r.rep.Warnings = append(r.rep.Warnings, fmt.Sprintf("%s: not read: %v", name, err))
			return nil
		}
		br, compressed = bufio.NewReaderSize(zr, 256<<10), true
	}
	line := 0
	for {
		raw, err := br.ReadSlice('\n')
		long := false
		for errors.Is(err, bufio.ErrBufferFull) { // skip the rest of a too long line
			long = true
			r.read += int64(len(raw))
			raw, err = br.ReadSlice('\n')
		}
		if len(raw) > 0 || err == nil {
			line++
			r.rep.Lines++
			r.read += int64(len(raw))
			if long || len(raw) > maxLine {
				r.skip(name, line, "line too long")
			} else {
				r.line(name, line, raw)
			}
			if r.opts.Progress != nil && line%100000 == 0 {
				r.opts.Progress(r.read)
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil && compressed && damaged(err) {
			r.rep.Warnings = append(r.rep.Warnings, fmt.Sprintf("%s: the compressed file breaks off after line %d (%v): the events before are counted", name, line, err))
			return nil
		}
		if err != nil {
			return fmt.Errorf("report: %s: %w", name, err)
		}
	}
}

// damaged reports whether err is a gzip stream's: cut short, or not what
// its checksum says.
func damaged(err error) bool {
	var corrupt flate.CorruptInputError
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) || errors.As(err, &corrupt)
}

func (r *Reporter) skip(name string, line int, why string) {
	r.rep.Skipped++
	if len(r.rep.SkippedLines) < 20 {
		r.rep.SkippedLines = append(r.rep.SkippedLines, fmt.Sprintf("%s:%d: %s", name, line, why))
	}
}

func (r *Reporter) line(name string, n int, raw []byte) {
	if len(raw) == 0 || raw[0] == '\n' {
		return
	}
	var e Event
	if err := json.Unmarshal(raw, &e); err != nil {
		r.skip(name, n, "not a JSON event: "+trimErr(err))
		return
	}
	if e.Type == "" && e.Visitor == "" && bytes.Contains(raw, []byte(`"level":`)) && bytes.Contains(raw, []byte(`"message":`)) {
		r.rep.LogLines++ // a log line, written beside the events to stdout
		return
	}
	if e.Visitor == "" || e.Time.IsZero() || (e.Type != "exposure" && e.Type != "conversion" && e.Type != "visit") {
		r.skip(name, n, "missing type, time or visitor")
		return
	}
	if e.Time.Before(minEventTime) || !e.Time.Before(maxEventTime) {
		r.skip(name, n, "time out of range")
		return
	}
	if !r.opts.Since.IsZero() && e.Time.Before(r.opts.Since) || !r.opts.Until.IsZero() && !e.Time.Before(r.opts.Until) {
		return
	}
	r.rep.Events++
	v := r.visitor(e.Visitor)
	t := e.Time.UnixNano()
	if e.Type == "conversion" {
		if t > v.lastConvAt {
			v.lastConvAt = t
		}
		return
	}
	v.seen = true
	if e.Type == "visit" {
		// The segments the visitor was in as the visit began.
		for _, s := range e.Segments {
			si, ok := r.segment(s)
			if !ok {
				r.skip(name, n, "more than 64 segments")
				return
			}
			v.segs |= 1 << si
		}
		return
	}
	if e.Segment == "" {
		return // a default exposure with no segment: counted as traffic only
	}
	li, slotOK := r.slotIdx[e.Slot]
	if !slotOK && len(r.slots) >= maxSlots {
		r.skip(name, n, fmt.Sprintf("more than %d slots", maxSlots))
		return
	}
	si, ok := r.segment(e.Segment)
	if !ok {
		r.skip(name, n, "more than 64 segments")
		return
	}
	if !slotOK {
		li = uint16(len(r.slots))
		r.slotIdx[e.Slot] = li
		r.slots = append(r.slots, e.Slot)
	}
	v.segs |= 1 << si
	r.expo[[2]uint16{si, li}]++
	if x := v.exposure(si, li); x != nil {
		if t < x.first {
			x.first, x.arm = t, armOf(e.Variant)
		}
		return
	}
	v.addExposure(visitorExposure{seg: si, slot: li, arm: armOf(e.Variant), first: t})
}

// segment returns the index of the segment named s, giving it one if it
// is new; false past 64 segments, which the visitors' bit sets cannot hold.
func (r *Reporter) segment(s string) (uint16, bool) {
	if si, ok := r.segIdx[s]; ok {
		return si, true
	}
	if len(r.segNames) >= 64 {
		return 0, false
	}
	si := uint16(len(r.segNames))
	r.segIdx[s] = si
	r.segNames = append(r.segNames, s)
	return si, true
}

func trimErr(err error) string {
	s := err.Error()
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

// Finish computes the report.
func (r *Reporter) Finish() *Report {
	rep := r.rep
	sizes := make([]int, len(r.segNames))
	both := map[[2]int]int{}
	type tally struct{ n, x int }
	arms := map[[3]int]*tally{} // seg, slot, 0 block / 1 holdout
	count := func(v *visitorState, x *visitorExposure) {
		if x.arm == noArm {
			return
		}
		key := [3]int{int(x.seg), int(x.slot), int(x.arm - blockArm)}
		a := arms[key]
		if a == nil {
			a = &tally{}
			arms[key] = a
		}
		a.n++
		if v.lastConvAt >= x.first {
			a.x++
		}
	}
	for _, chunk := range r.states {
		for i := range chunk {
			v := &chunk[i]
			if v.seen {
				rep.Seen++
			}
			if v.segs == 0 {
				continue
			}
			rep.Visitors++
			for i := range r.segNames {
				if v.segs&(1<<i) == 0 {
					continue
				}
				sizes[i]++
				for j := i + 1; j < len(r.segNames); j++ {
					if v.segs&(1<<j) != 0 {
						both[[2]int{i, j}]++
					}
				}
			}
			inPlace, more := v.exposures()
			for _, xs := range [2][]visitorExposure{inPlace, more} {
				for i := range xs {
					count(v, &xs[i])
				}
			}
		}
	}
	known := map[string]bool{}
	for _, k := range r.opts.Known {
		known[k] = true
	}
	for i, name := range r.segNames {
		s := SegmentStats{Name: name, Visitors: sizes[i], Exposures: map[string]int{}, TooSmall: sizes[i] < r.opts.MinVisitors}
		if rep.Seen > 0 {
			s.Share = float64(sizes[i]) / float64(rep.Seen)
		}
		for li, slot := range r.slots {
			if n := r.expo[[2]uint16{uint16(i), uint16(li)}]; n > 0 {
				s.Exposures[slot] = n
			}
		}
		rep.Segments = append(rep.Segments, s)
		if len(known) > 0 && !known[name] {
			rep.Unknown = append(rep.Unknown, name)
		}
	}
	sort.Slice(rep.Segments, func(i, j int) bool { return rep.Segments[i].Visitors > rep.Segments[j].Visitors })
	for k, n := range both {
		a, b := k[0], k[1]
		smaller := min(sizes[a], sizes[b])
		o := Overlap{A: r.segNames[a], B: r.segNames[b], Both: n}
		if smaller > 0 {
			o.Share = float64(n) / float64(smaller)
		}
		o.Flagged = o.Share > r.opts.OverlapShare
		rep.Overlaps = append(rep.Overlaps, o)
	}
	sort.Slice(rep.Overlaps, func(i, j int) bool { return rep.Overlaps[i].Share > rep.Overlaps[j].Share })
	for si, seg := range r.segNames {
		for li, slot := range r.slots {
			b, h := arms[[3]int{si, li, 0}], arms[[3]int{si, li, 1}]
			if b == nil && h == nil {
				continue
			}
			if b == nil {
				b = &tally{}
			}
			if h == nil {
				h = &tally{}
			}
			u := Compare(b.x, b.n, h.x, h.n)
			u.Segment, u.Slot = seg, slot
			// Too small to judge, unless there is nothing to judge: an arm
			// without visitors says what to do instead.
			if sizes[si] < r.opts.MinVisitors && b.n > 0 && h.n > 0 {
				u.Significant = false
				u.Verdict = fmt.Sprintf("too small to judge (%d visitors, need %d)", sizes[si], r.opts.MinVisitors)
			}
			rep.Uplift = append(rep.Uplift, u)
		}
	}
	if len(r.segNames) > 15 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d segments: more than 15 splits traffic too thin to measure", len(r.segNames)))
	}
	return rep
}

// rate is x of n as a fraction, NaN when n is 0.
func rate(x, n int) float64 {
	if n == 0 {
		return math.NaN()
	}
	return float64(x) / float64(n)
}

// Compare tests a block arm (x1 conversions of n1 visitors) against a
// holdout arm (x2 of n2) with a two-proportion z-test (pooled variance);
// the 95% confidence interval of the difference uses unpooled variance.
// ChiSquare is z², the uncorrected 2x2 chi-square.
func Compare(x1, n1, x2, n2 int) Uplift {
	nan := math.NaN()
	u := Uplift{BlockVisitors: n1, BlockConverted: x1, HoldoutVisitors: n2, HoldoutConvert: x2,
		BlockRate: rate(x1, n1), HoldoutRate: rate(x2, n2), AbsUplift: nan, RelUplift: nan, CILow: nan, CIHigh: nan, P: 1}
	switch {
	case n1 == 0 && n2 == 0:
		u.Verdict = "no exposures"
		return u
	case n1 == 0:
		u.Verdict = "no block exposures yet"
		return u
	case n2 == 0:
		u.Verdict = "no holdout: set a holdout fraction to measure uplift"
		return u
	}
	p1, p2 := u.BlockRate, u.HoldoutRate
	u.AbsUplift = p1 - p2
	if p2 > 0 {
		u.RelUplift = u.AbsUplift / p2
	}
	se := math.Sqrt(p1*(1-p1)/float64(n1) + p2*(1-p2)/float64(n2))
	u.CILow, u.CIHigh = u.AbsUplift-1.959964*se, u.AbsUplift+1.959964*se
	p := float64(x1+x2) / float64(n1+n2)
	sePooled := math.Sqrt(p * (1 - p) * (1/float64(n1) + 1/float64(n2)))
	if sePooled == 0 {
		u.Verdict = "no difference possible yet (no conversions, or all converted)"
		return u
	}
	u.Z = u.AbsUplift / sePooled
	u.ChiSquare = u.Z * u.Z
	u.P = math.Erfc(math.Abs(u.Z) / math.Sqrt2)
	// The normal approximation needs about 5 expected conversions and
	// non-conversions in each arm.
	small := false
	for _, e := range []float64{p * float64(n1), (1 - p) * float64(n1), p * float64(n2), (1 - p) * float64(n2)} {
		if e < 5 {
			small = true
		}
	}
	switch {
	case small:
		u.Verdict = "too few conversions for the test yet"
	case u.P < 0.05:
		u.Significant = true
		if u.AbsUplift > 0 {
			u.Verdict = "significant uplift"
		} else {
			u.Verdict = "significant: the block does worse"
		}
	default:
		u.Verdict = "not significant yet"
	}
	return u
}
