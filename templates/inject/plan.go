package inject

import "bytes"

// Plan is where the slots of one document are: the result of tokenizing
// it once. Many requests for the same page get the same origin bytes, so a
// Plan cached by the bytes' hash lets Apply fill slots without scanning
// again. A Plan is immutable and safe for concurrent use.
type Plan struct {
	slots []plannedSlot
	heads []int // positions of </head> end tags, where a snippet goes
	size  int   // length of the document it was made for
	// declared is the encoding the document's byte order mark (bom) or
	// <meta> declaration names, zero for none (see PageCharset).
	declared Charset
	bom      bool
	// noHeads is set on a Plan made by Unmarked: it has no </head>
	// positions, so it cannot place a head snippet.
	noHeads bool
	// ignored are the slot markers found that cannot be filled.
	ignored []Ignored
}

// Ignored is a slot marker a Plan or Rewriter found but cannot fill, and
// why: what an editor whose slot stays at its default needs to know.
type Ignored struct {
	Slot   string
	Reason string // one of the Ignored* reasons
}

// Why a slot marker cannot be filled.
const (
	IgnoredSelfClosing = "self-closing" // <div data-edgeseg-slot="x"/>: no content of its own
	IgnoredVoid        = "void element" // <img data-edgeseg-slot="x">: can have no content
	IgnoredNoEnd       = "no end tag"   // no end tag, or none within the slot bound
	IgnoredTooMany     = "too many"     // past MaxSlots markers in the page
)

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
func Scan(html []byte) *Plan {
	p := &Plan{size: len(html)}
	p.declared, p.bom = declaredCharset(html)
	var s scanner
	s.init(func([]byte, Place) (Block, bool) { return Block{}, false }, nil)
	s.plan = p
	s.out = nil
	s.discard = true
	s.feed(html, true)
	p.ignored = s.ignored
	return p
}

// MayHaveSlots reports whether html contains the slot attribute's name, in
// any case. A document without it has no slots, and finding that out
// this way is many times cheaper than Scan: most pages of a site have no
// slots, and pages that change on every request (a CSRF token, a nonce)
// cannot reuse a cached Plan.
func MayHaveSlots(html []byte) bool {
	// "-" is the only byte of the name that case folding leaves alone:
	// each one is looked at for "edgeseg-slot" around it.
	const pre, post = "edgeseg", "slot"
	for i := 0; ; {
		j := bytes.IndexByte(html[i:], '-')
		if j < 0 {
			return false
		}
		k := i + j
		if k >= len(pre) && k+1+len(post) <= len(html) &&
			bytes.EqualFold(html[k-len(pre):k], []byte(pre)) && bytes.EqualFold(html[k+1:k+1+len(post)], []byte(post)) {
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
	var head []byte
	var cs Charset
	if opts != nil {
		head = opts.HeadSnippet
		cs = opts.Charset
	}
	mark, filled, skipUntil := 0, 0, -1
	headAt := -1
	for _, sl := range p.slots {
		if sl.start < skipUntil {
			continue // inside a slot already filled
		}
		if len(head) > 0 && headAt < 0 {
			if h := p.headBefore(sl.start, skipUntil); h >= 0 {
				dst = append(dst, html[mark:h]...)
				dst = append(dst, head...)
				mark, headAt = h, h
			}
		}
		b, ok := lookup(sl.name, sl.at)
		if !ok {
			continue
		}
		filled++
		dst = append(dst, html[mark:sl.closeAt]...)
		if b.Segment != "" && !sl.hasSeg {
			dst = append(dst, ' ')
			dst = append(dst, SegmentAttr...)
			dst = append(dst, '=', '"')
			dst = appendAttrEscaped(dst, b.Segment)
			dst = append(dst, '"')
		}
		dst = append(dst, html[sl.closeAt:sl.end]...)
		dst = cs.AppendHTML(dst, b.HTML)
		mark = sl.innerEnd
		skipUntil = sl.closeEnd
	}
	if len(head) > 0 && headAt < 0 {
		if h := p.headBefore(len(html)+1, skipUntil); h >= 0 && h >= mark {
			dst = append(dst, html[mark:h]...)
			dst = append(dst, head...)
			mark = h
		}
	}
	return append(dst, html[mark:]...), filled
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
