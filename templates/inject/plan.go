package inject

import (
	"bytes"
	"slices"
	"sort"
)

// Plan is where the slots of one document are: the result of tokenizing
// it once. Many requests for the same page get the same origin bytes, so a
// Plan cached by the bytes' hash lets Apply fill slots without scanning
// again. A Plan is immutable and safe for concurrent use.
type Plan struct {
	slots []plannedSlot
	heads []int // positions of </head> end tags, where a snippet goes
	// metaCSP are the Content-Security-Policy values of the <meta> tags
	// before the first of them (MetaPolicies). Those tags decide how the
	// page is read (decidingAttr): a page given this Plan has them alike.
	metaCSP [][]byte
	size    int // length of the document it was made for
	// declared is the encoding the document's byte order mark (bom) or
	// <meta> declaration names, zero for none (see PageCharset).
	declared Charset
	bom      bool
	// noHeads is set on a Plan made by Unmarked: it has no </head>
	// positions, so it cannot place a head snippet.
	noHeads bool
	// ignored are the slot markers found that cannot be filled.
	ignored []Ignored
	// holds are where those markers are, each from its start tag to where
	// the scanner decided it (the end tag of misnested content), for a
	// follower not to write past one a document may yet have otherwise;
	// manyHolds: past MaxSlots of them, which are not kept.
	holds     []hold
	manyHolds bool
}

// A hold is a slot marker a Plan ignores: its start tag at start, decided
// by the bytes before settle.
type hold struct{ start, settle int }

// Ignored is a slot marker a Plan or Rewriter found but cannot fill, and
// why: what an editor whose slot stays at its default needs to know.
type Ignored struct {
	Slot   string
	Reason string // one of the Ignored* reasons
	// Detail says more, for IgnoredMisnested: what in the content a
	// browser reads otherwise.
	Detail string
}

// Why a slot marker cannot be filled.
const (
	IgnoredSelfClosing = "self-closing" // <div data-edgeseg-slot="x"/>: no content of its own
	IgnoredVoid        = "void element" // <img data-edgeseg-slot="x">: can have no content
	IgnoredNoEnd       = "no end tag"   // no end tag, or none within the slot bound
	IgnoredTooMany     = "too many"     // past MaxSlots markers in the page
	// IgnoredText: <title data-edgeseg-slot="x">: the element holds text
	// only (a <title>, <textarea>, <script>, <style>, ...), where a
	// block's markup would show as written.
	IgnoredText = "text-only element"
	// IgnoredTemplate: a marker inside a <template> (or on one), whose
	// content browsers do not show. A declarative shadow root
	// (<template shadowrootmode="open">) is shown, and its slots are
	// filled.
	IgnoredTemplate = "inside a template"
	// IgnoredMisnested: the slot's own content does not keep to it as a
	// browser reads the page (an end tag of an element it did not open,
	// an element left open, a <div> in a <p> slot), so the browser ends
	// the slot elsewhere than at the end tag that matches by name, and
	// what replaced the content up to that end tag would take part of
	// the page around it with it.
	IgnoredMisnested = "misnested content"
	// IgnoredUnclear: the slot follows an end tag inside an <svg> or
	// <math> that names none of their elements (<span><svg></span>, an
	// icon's <svg> left unclosed). Browsers leave the SVG there if an
	// HTML element of that name is open around it, and stay in it if
	// not; which, edgeseg does not follow. A slot before the SVG is
	// closed either way is not filled, nor any after a tag the two
	// readings take differently (a link, a form, a script).
	IgnoredUnclear = "unclear markup"
)

// IgnoredReasons lists every Ignored reason, for counting them.
func IgnoredReasons() []string {
	return []string{IgnoredSelfClosing, IgnoredVoid, IgnoredNoEnd, IgnoredTooMany, IgnoredText, IgnoredTemplate, IgnoredMisnested, IgnoredUnclear}
}

// Ignored returns the slot markers of the document that cannot be filled
// (at most MaxSlots), in document order.
func (p *Plan) Ignored() []Ignored { return p.ignored }

// plannedSlot is one fillable slot element: start tag html[start:end] with
// its '>' at closeAt, inner HTML html[end:innerEnd], end tag up to closeEnd.
type plannedSlot struct {
	name                          []byte
	at                            Place
	start, closeAt, end, innerEnd int
	closeEnd                      int
	hasSeg                        bool
}

// Scan tokenizes html and returns its Plan. It finds every slot a rewrite
// could fill, nested ones included: which of them are filled is decided
// per request by Apply.
func Scan(html []byte) *Plan { return scan(html, nil) }

func scan(html []byte, values *[]uint32) *Plan {
	p := &Plan{size: len(html)}
	p.declared, p.bom = declaredCharset(html)
	var s scanner
	s.init(func([]byte, Place) (Block, bool) { return Block{}, false }, nil)
	s.plan = p
	s.values = values
	s.out = nil
	s.discard = true
	s.feed(html, true)
	p.ignored = s.ignored
	return p
}

// A Reference is a document scanned together with what may change in it
// from one request to the next without changing its Plan: the values of
// its quoted attributes, where a page carries a CSRF token, a nonce, a
// request id, and the texts of its scripts and styles, where it carries
// the state a server-rendered app starts from. Pages that differ on every request only there are the
// common case of a page that cannot be found by its hash (PlanFor).
type Reference struct {
	page   []byte
	plan   *Plan
	values []uint32 // start and end of each quoted attribute value and raw text, in document order
}

// ScanReference scans html, as Scan does, and keeps a copy of it with
// where its quoted attribute values and raw texts are.
func ScanReference(html []byte) *Reference {
	var values []uint32
	plan := scan(html, &values)
	if !slices.IsSorted(values) { // each tag is parsed once, in order
		return &Reference{page: bytes.Clone(html), plan: plan}
	}
	return &Reference{page: bytes.Clone(html), plan: plan, values: slices.Clip(values)}
}

// Plan returns the Plan of the document the Reference was made from.
func (r *Reference) Plan() *Plan { return r.plan }

// Cost is the memory the Reference holds, in bytes.
func (r *Reference) Cost() int64 {
	return int64(len(r.page) + 4*len(r.values) + 96 + 96*len(r.plan.slots) + 16*len(r.plan.holds))
}

// PlanFor returns a Plan for html made from the Reference's, or nil. It
// can when html differs from the Reference's document only inside quoted
// attribute values, none of which it ends early with its quote, and inside
// the text of raw text elements (a script, a style), none of which it ends
// early with an end tag: a tokenizer then reads the two documents alike,
// tag for tag, the tags after a value or text that grew or shrank moved by
// as much. The values a Plan
// depends on are not among those: the slot attributes', and those of a
// <meta> declaring the encoding. That costs a comparison of the bytes, a
// fraction of tokenizing them again; when no value changed its length, the
// Reference's own Plan is returned, without allocating.
func (r *Reference) PlanFor(html []byte) *Plan {
	f := follower{ref: r}
	if !f.advance(html, true) {
		return nil
	}
	if len(f.shifts) == 0 {
		return r.plan
	}
	return r.plan.moved(f.shifts, len(html))
}

// A shift says that the positions of a Plan from at on move by delta.
type shift struct{ at, delta int }

// moveBy returns where position x is after shifts (in order of at).
func moveBy(shifts []shift, x int) int {
	i := sort.Search(len(shifts), func(i int) bool { return shifts[i].at > x })
	if i == 0 {
		return x
	}
	return x + shifts[i-1].delta
}

// movedBy returns sl with its positions moved by shifts, and false when it
// would no longer be a slot: its end tag past the bound Scan looks for it
// within.
func (sl plannedSlot) movedBy(shifts []shift) (plannedSlot, bool) {
	sl.start, sl.closeAt, sl.end = moveBy(shifts, sl.start), moveBy(shifts, sl.closeAt), moveBy(shifts, sl.end)
	sl.innerEnd, sl.closeEnd = moveBy(shifts, sl.innerEnd), moveBy(shifts, sl.closeEnd)
	return sl, sl.closeEnd-sl.end <= defaultMaxSlot
}

// moved returns a copy of p for a document of size bytes whose parts have
// moved by shifts (in order of at), or nil when a slot would no longer be
// one: its end tag past the bound Scan looks for it within, or a slot
// ignored for being past it that might come within it.
func (p *Plan) moved(shifts []shift, size int) *Plan {
	for _, ig := range p.ignored {
		if ig.Reason == IgnoredNoEnd {
			return nil
		}
	}
	m := *p
	m.size = size
	m.slots = make([]plannedSlot, len(p.slots))
	for i, sl := range p.slots {
		var ok bool
		if m.slots[i], ok = sl.movedBy(shifts); !ok {
			return nil
		}
	}
	if len(p.heads) > 0 {
		m.heads = make([]int, len(p.heads))
		for i, h := range p.heads {
			m.heads[i] = moveBy(shifts, h)
		}
	}
	return &m
}

// firstDiff returns the first index at which a and b differ, len of the
// shorter when it is the other's start, or -1 when they are equal. Whole
// blocks are compared first, as memory.
func firstDiff(a, b []byte) int {
	const block = 256
	n := min(len(a), len(b))
	i := 0
	for ; i+block <= n; i += block {
		if string(a[i:i+block]) != string(b[i:i+block]) {
			break
		}
	}
	for ; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return n
	}
	return -1
}

// MayHaveSlots reports whether html contains the slot attribute's name, in
// any case. A document without it has no slots, and finding that out
// this way is many times cheaper than Scan: most pages of a site have no
// slots, and pages that change on every request (a CSRF token, a nonce)
// cannot reuse a cached Plan.
func MayHaveSlots(html []byte) bool { return hasDashed(html, "edgeseg", "slot") }

// hasDashed reports whether b has pre+"-"+post in it, in any case, looking
// only around its '-' bytes: "-" is the only byte of such a name that
// case folding leaves alone, and the names looked for this way are rare
// beside the '-' bytes of a page.
func hasDashed(b []byte, pre, post string) bool {
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '-')
		if j < 0 {
			return false
		}
		k := i + j
		if k >= len(pre) && k+1+len(post) <= len(b) &&
			bytes.EqualFold(b[k-len(pre):k], []byte(pre)) && bytes.EqualFold(b[k+1:k+1+len(post)], []byte(post)) {
			return true
		}
		i = k + 1
	}
}

// Unmarked returns the Plan of a document MayHaveSlots found no slot in,
// without scanning it. It places no head snippet: Scan when one is needed.
func Unmarked(html []byte) *Plan {
	return &Plan{size: len(html), noHeads: true}
}

// HeadsKnown reports whether the Plan knows where the document's </head>
// is (false for a Plan made by Unmarked).
func (p *Plan) HeadsKnown() bool { return !p.noHeads }

// PlacedSlot is a fillable slot of a document and its Place.
type PlacedSlot struct {
	Slot string
	At   Place
}

// PlacedSlots lists the document's fillable slots, nested ones included,
// in document order.
func (p *Plan) PlacedSlots() []PlacedSlot {
	out := make([]PlacedSlot, len(p.slots))
	for i, sl := range p.slots {
		out[i] = PlacedSlot{Slot: string(sl.name), At: sl.at}
	}
	return out
}

// Slots returns how many fillable slots the document has.
func (p *Plan) Slots() int { return len(p.slots) }

// Size is the length of the document the Plan was made for.
func (p *Plan) Size() int { return p.size }

// Apply fills html's slots by lookup, as Slots would, using the Plan made
// for exactly these bytes. It appends to dst.
func (p *Plan) Apply(dst, html []byte, lookup Lookup, opts *Options) ([]byte, int) {
	var s Splice
	filled := p.ApplySplice(&s, html, lookup, opts)
	return s.AppendTo(dst), filled
}

// ApplySplice is Apply without the copy: it resets s for html and leaves
// in it the page as Apply would write it.
func (p *Plan) ApplySplice(s *Splice, html []byte, lookup Lookup, opts *Options) int {
	s.Reset(html)
	var head []byte
	var cs Charset
	if opts != nil {
		head = opts.HeadSnippet
		cs = opts.Charset
		if len(head) > 0 {
			head = snippetFor(head, opts.MetaPolicy, p.metaCSP)
		}
	}
	mark, filled, skipUntil := 0, 0, -1
	headAt := -1
	for _, sl := range p.slots {
		if sl.start < skipUntil {
			continue // inside a slot already filled
		}
		if len(head) > 0 && headAt < 0 {
			if h := p.headBefore(sl.start, skipUntil); h >= 0 {
				s.keep(mark, h)
				s.add(head)
				mark, headAt = h, h
			}
		}
		b, ok := lookup(sl.name, sl.at)
		if !ok {
			continue
		}
		filled++
		sl.spliceFilled(s, mark, b, cs)
		mark = sl.innerEnd
		skipUntil = sl.closeEnd
	}
	if len(head) > 0 && headAt < 0 {
		if h := p.headBefore(len(html)+1, skipUntil); h >= 0 && h >= mark {
			s.keep(mark, h)
			s.add(head)
			mark = h
		}
	}
	s.keep(mark, len(html))
	return filled
}

// appendFilled appends html from mark on through the slot's start tag,
// with the segment attribute before its '>' when the block names one and
// the tag has none, then the block in place of the slot's content.
func (sl *plannedSlot) appendFilled(dst, html []byte, mark int, b Block, cs Charset) []byte {
	dst = append(dst, html[mark:sl.closeAt]...)
	if !sl.hasSeg {
		dst = appendSegmentAttr(dst, b.Segment)
	}
	dst = append(dst, html[sl.closeAt:sl.end]...)
	return cs.AppendHTML(dst, b.HTML)
}

// spliceFilled is appendFilled into a Splice.
func (sl *plannedSlot) spliceFilled(s *Splice, mark int, b Block, cs Charset) {
	s.keep(mark, sl.closeAt)
	if !sl.hasSeg {
		m := len(s.Made)
		s.Made = appendSegmentAttr(s.Made, b.Segment)
		s.Extend(m)
	}
	s.keep(sl.closeAt, sl.end)
	m := len(s.Made)
	s.Made = cs.AppendHTML(s.Made, b.HTML)
	s.Extend(m)
}

// headBefore returns the first </head> position before limit that is not
// inside the last filled slot (which ends at skipUntil), or -1.
func (p *Plan) headBefore(limit, skipUntil int) int {
	for _, h := range p.heads {
		if h >= limit {
			return -1
		}
		if h >= skipUntil {
			return h
		}
	}
	return -1
}

// recordSlot is called by the scanner in planning mode for every fillable
// slot (one whose end tag was found).
func (p *Plan) recordSlot(data []byte, i int, t *tag, at Place, closeStart, closeEnd int) {
	at.Element = bytes.Clone(at.Element)
	p.slots = append(p.slots, plannedSlot{name: bytes.Clone(t.slot), at: at, start: i, closeAt: t.closeAt, end: t.end,
		innerEnd: closeStart, closeEnd: closeEnd, hasSeg: t.hasSeg})
}
