package inject

import (
	"bytes"
	"sort"
)

// A follower fills the slots of a document that arrives in chunks by a
// Reference's Plan, for as long as what has arrived keeps to the
// Reference's document as PlanFor requires of a whole one (the same bytes
// but inside quoted attribute values and raw texts). Its walks are
// PlanFor's (advance, which PlanFor calls once with the whole document)
// and Apply's (emit), done as the bytes come. A slot is decided once the
// document is known to keep to the Reference up to the slot's end tag,
// where a Rewriter reading the document would decide it too, from the same
// bytes: the two write the same. When the document departs from the
// Reference otherwise, the Rewriter reads on from where the follower wrote
// up to (Rewriter.unfollow).
type follower struct {
	ref *Reference
	// PlanFor's walk over what has arrived: page[:va] and doc[:vb] are
	// read alike, positions from the last shift on moved by delta.
	va, vb int
	delta  int
	shifts []shift
	// inValue: doc is inside the value of the Reference's that ends at
	// valueEnd, quoted by quote, or inside the text of a raw text element
	// (quote 0) whose end tag names name; its end is looked for from from
	// on.
	inValue  bool
	valueEnd int
	quote    byte
	name     []byte
	at, from int // where doc's value or text starts, and where its end is looked for
	// Apply's walk over the Plan's slots.
	next      int // the next slot to decide
	hold      int // the next of the Plan's holds not known to be settled
	skipUntil int // slots starting before it are inside a filled one (the Reference's positions)
	mark      int // doc[:mark] is written, as it is or filled
	filled    int
	// head is the snippet that goes before the first </head> outside a
	// filled slot, as Apply places it; headDone once it is placed (or
	// there is none).
	head     []byte
	policy   MetaPolicy
	headDone bool
	eof      bool // the document is whole (advance)
}

// headTag is the </head> end tag as a followable Reference has it at each
// of its Plan's head positions: one written otherwise (</head >, or with
// attributes) ends elsewhere than seven bytes on.
const headTag = "</head>"

// followable reports whether a Rewriter with these options can follow r:
// another slot bound, or a slot whose end tag was not found within it,
// decides slots at other places than their end tags; a head snippet (or
// a head to read, Options.ReadHead) needs r's </head> tags written
// plainly, so that the follower knows where each ends.
func (r *Reference) followable(s *scanner) bool {
	if r == nil || s.maxSlot != defaultMaxSlot || r.plan.manyHolds {
		return false
	}
	if len(s.head) > 0 || s.policy != nil && !s.headDone {
		if r.plan.noHeads {
			return false
		}
		for _, h := range r.plan.heads {
			if h+len(headTag) > len(r.page) || !bytes.EqualFold(r.page[h:h+len(headTag)], []byte(headTag)) {
				return false
			}
		}
	}
	for _, ig := range r.plan.ignored {
		if ig.Reason == IgnoredNoEnd {
			return false
		}
	}
	return true
}

// FollowBytes is the most of a document a Rewriter following ref keeps:
// one that grew further past ref's page does not keep to it.
func FollowBytes(ref *Reference) int { return 2*len(ref.page) + 64<<10 }

// advance compares what has arrived of doc with the Reference's page, from
// where the last call stopped; false when doc departs from it. eof: doc is
// whole. PlanFor is one call with the whole document.
func (f *follower) advance(doc []byte, eof bool) bool {
	f.eof = eof
	a, v := f.ref.page, f.ref.values
	for {
		if f.inValue {
			var q int
			if f.quote != 0 {
				n := bytes.IndexByte(doc[f.from:], f.quote)
				if n < 0 {
					f.from = len(doc)
					return !eof
				}
				q = f.from + n
			} else {
				at, safe := endTagAt(doc, f.from, f.name)
				if at < 0 {
					f.from = max(f.from, safe)
					return !eof
				}
				// A script's text with "<!--" in it may not end at the
				// first "</script" (scriptEndAt): not followed.
				if bytes.EqualFold(f.name, []byte("script")) && bytes.Contains(doc[f.at:at], []byte("<!--")) {
					return false
				}
				q = at
			}
			if nd := q - f.valueEnd; nd != f.delta {
				f.delta = nd
				f.shifts = append(f.shifts, shift{at: f.valueEnd, delta: nd})
			}
			f.va, f.vb, f.inValue = f.valueEnd, q, false
		}
		n := min(len(a)-f.va, len(doc)-f.vb)
		d := firstDiff(a[f.va:f.va+n], doc[f.vb:f.vb+n])
		if d < 0 {
			d = n
		}
		f.va, f.vb = f.va+d, f.vb+d
		if d == n && f.vb == len(doc) && (!eof || f.va == len(a)) {
			return true // alike so far; or, at the end, alike
		}
		// A difference at va: inside one of the Reference's values, or at
		// its end (where doc's goes on), or not allowed. The value is the
		// first to end at or after va. doc's starts where the Reference's
		// does, moved by the values before it, and ends at its first
		// quote (a raw text: at the first end tag of its element's name,
		// as the scanner ends it): what follows must then be the
		// Reference's again.
		at := f.va
		k := sort.Search(len(v)/2, func(k int) bool { return int(v[2*k+1]) >= at })
		if k == len(v)/2 || int(v[2*k]) > at {
			var enter, wait bool
			if k > 0 {
				enter, wait = f.pastRawText(k-1, doc, eof)
			}
			if wait {
				return true // alike so far: more of doc tells
			}
			if !enter {
				return false
			}
			k-- // doc's text goes on with what begins as the end tag does
		}
		start := int(v[2*k])
		f.inValue, f.valueEnd, f.quote = true, int(v[2*k+1]), a[start-1]
		if f.quote == '>' { // the end of a start tag: a raw text
			f.quote, f.name = 0, rawTextName(a, f.valueEnd)
		}
		f.va, f.vb = start, start+f.delta
		f.at, f.from = f.vb, f.vb
	}
}

// pastRawText tells, for a difference at va past the end of the
// Reference's value k, whether it is inside the "</name" of the end tag of
// a raw text there while doc has no such end tag in its place: doc's text
// then goes on, in bytes that begin as the Reference's end tag does, to an
// end tag further on (or none), and the value is read again (enter). An
// end tag in doc's place that differs in case or what follows the name is
// not allowed. wait: doc has not yet arrived far enough to tell.
func (f *follower) pastRawText(k int, doc []byte, eof bool) (enter, wait bool) {
	a, v := f.ref.page, f.ref.values
	start, end := int(v[2*k]), int(v[2*k+1])
	if start == 0 || a[start-1] != '>' {
		return false, false // a quoted value ends at its quote
	}
	name := rawTextName(a, end)
	if f.va > end+2+len(name) {
		return false, false // past the byte after the name: in the tag
	}
	at := end + f.delta // where doc's end tag would be
	if need := at + 2 + len(name) + 1; len(doc) < need && !eof {
		return false, true
	}
	got, _ := endTagAt(doc[:min(len(doc), at+2+len(name)+1)], at, name)
	return got != at, false
}

// rawTextName returns the element name of the end tag at page[at:], as a
// raw text's is ("</script>").
func rawTextName(page []byte, at int) []byte {
	i := at + 2
	for i < len(page) && page[i] != '>' && page[i] != '/' && !isSpace(page[i]) {
		i++
	}
	return page[at+2 : i]
}

// pos is where position x of the Reference's page is in doc; x must be
// no further than va.
func (f *follower) pos(x int) int { return moveBy(f.shifts, x) }

// emit appends to out what can be written of doc: up to the next slot
// that cannot be decided yet, the slots before it filled by lookup as
// Apply fills them. A slot marker the Plan ignores is one such too, until
// doc is known to keep to the Reference up to where the scanner decided
// it: should doc depart from it before, the scanner may fill it (the
// content of a misnested slot mended), and what was written of it would
// not be what it writes. false when a slot of the Plan is one no longer
// in doc (its end tag moved past the slot bound).
func (f *follower) emit(out, doc []byte, lookup Lookup, cs Charset) ([]byte, bool) {
	slots, holds := f.ref.plan.slots, f.ref.plan.holds
	for {
		for f.hold < len(holds) && (holds[f.hold].settle <= f.va || holds[f.hold].start < f.skipUntil) {
			f.hold++
		}
		stop := len(f.ref.page) + 1 // the first place not to write past
		if f.hold < len(holds) {
			stop = holds[f.hold].start
		}
		if f.next < len(slots) && slots[f.next].start < f.skipUntil {
			f.next++
			continue
		}
		if !f.headDone {
			// Where Apply places the head snippet: the first </head> before
			// the next slot and past the filled ones. It goes in once the
			// whole end tag has arrived alike (the scanner places it at
			// the tag's '>'), and nothing is written past the tag's start
			// before.
			limit := len(f.ref.page) + 1
			if f.next < len(slots) {
				limit = slots[f.next].start
			}
			if h := f.ref.plan.headBefore(limit, f.skipUntil); h >= 0 && h < stop {
				if h+len(headTag) > f.va {
					stop = h
				} else {
					out = f.copyTo(out, doc, f.pos(h))
					out = append(out, f.headSnippet()...)
					out = f.copyTo(out, doc, f.pos(h+len(headTag)))
					f.headDone = true
					continue
				}
			}
		}
		if f.next == len(slots) || slots[f.next].start >= stop || slots[f.next].closeEnd > f.va {
			if f.next < len(slots) {
				stop = min(stop, slots[f.next].start)
			}
			upTo := f.vb
			if stop <= f.va {
				upTo = f.pos(stop)
			}
			if !f.headDone && !f.eof {
				upTo = beforeOpenEndTag(doc, f.mark, upTo)
			}
			return f.copyTo(out, doc, upTo), true
		}
		sl := &slots[f.next]
		m, ok := sl.movedBy(f.shifts)
		if !ok {
			return out, false
		}
		out = f.copyTo(out, doc, m.start)
		b, fill := lookup(sl.name, sl.at)
		f.next++
		if !fill {
			continue
		}
		f.filled++
		out = m.appendFilled(out, doc, f.mark, b, cs)
		out = append(out, doc[m.innerEnd:m.closeEnd]...)
		f.mark, f.skipUntil = m.closeEnd, sl.closeEnd
	}
}

// copyTo appends doc from mark up to i.
func (f *follower) copyTo(out, doc []byte, i int) []byte {
	if i > f.mark {
		out = append(out, doc[f.mark:i]...)
		f.mark = i
	}
	return out
}

// headSnippet is the snippet the follower places. The document has kept
// to the Reference's page up to it, <meta> tags included (they decide
// how a page is read: none of their values may differ), so the page's
// <meta> policies are the document's.
func (f *follower) headSnippet() []byte {
	return snippetFor(f.head, f.policy, f.ref.plan.metaCSP)
}

// beforeOpenEndTag is upTo, or the start of an end tag doc[from:upTo] ends
// inside of: while the head snippet waits, a follower writes no part of
// one. Should the document depart from the Reference within the tag, and
// the tag be a </head> in the document where it is none in the page, the
// snippet goes before the tag, and no part of it may have gone out.
func beforeOpenEndTag(doc []byte, from, upTo int) int {
	if upTo <= from {
		return upTo // nothing to write
	}
	k := bytes.LastIndexByte(doc[from:upTo], '<')
	if k < 0 {
		return upTo
	}
	k += from
	if (k+1 == upTo || doc[k+1] == '/') && bytes.IndexByte(doc[k:upTo], '>') < 0 {
		return k
	}
	return upTo
}
