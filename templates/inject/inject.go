package inject

import (
	"bytes"
	"io"
)

// SlotAttr is the attribute that marks a slot.
const SlotAttr = "data-edgeseg-slot"

// SegmentAttr is added to a filled slot's start tag, naming the segment.
const SegmentAttr = "data-edgeseg-segment"

// MaxSlots bounds the slot markers looked at in one document; later ones
// are left as the origin sent them. It keeps hostile pages (thousands of
// unclosed markers) from making a rewrite slow.
const MaxSlots = 64

// Block is the content that fills one slot.
type Block struct {
	// HTML replaces the slot element's inner HTML, as is.
	HTML []byte
	// Segment is written to the SegmentAttr attribute; empty adds none.
	Segment string
}

// Lookup is asked once per slot element found, in document order, with the
// slot's name and its Place, both valid only during the call. It returns
// the block to fill the slot with, or false to keep the origin's content.
// A block must fit the place (Misfit).
type Lookup func(slot []byte, at Place) (Block, bool)

// Place is where a slot is in its page, as far as what may fill it goes.
type Place struct {
	// Element is the slot element's name, lower case ("" for a name over
	// 12 bytes, as custom elements have).
	Element []byte
	// InLink: the slot is inside an <a> of the page (a card made a link),
	// so a link in a block would close that one.
	InLink bool
	// InParagraph: the slot is inside a <p> of the page (a <span> slot in
	// a sentence), so a <div> in a block would close that one.
	InParagraph bool
	// InButton: the slot is inside a <button> of the page (a call to
	// action's label), so a button in a block would close that one.
	InButton bool
	// InForm: the slot is inside a <form> of the page (as every slot is
	// on a page built as one form), so a form in a block would be
	// ignored, and its end tag would end the page's.
	InForm bool
	// InListItem: the innermost list item open around the slot is an
	// <li> (a menu entry), so an <li> in a block would close it; InTerm:
	// it is a <dd> or <dt>, which a <dd> or <dt> in a block would close.
	InListItem, InTerm bool
	// InForeign: the slot is an SVG or MathML element (not one that
	// holds HTML, as <foreignObject> does), where an HTML element in a
	// block would break out of it, and of the slot. InMath: a MathML one.
	InForeign, InMath bool
}

// Options tune a rewrite.
type Options struct {
	// HeadSnippet, when set, is inserted just before the document's first
	// </head> end tag (for a data layer script).
	HeadSnippet []byte
	// MetaPolicy, when set, decides the head snippet instead of
	// HeadSnippet for a document whose head declares a
	// Content-Security-Policy in a <meta>, which browsers enforce on the
	// snippet too. (Apply, Slots and Rewriter ask it; a caller that made
	// the Plan may read Plan.MetaPolicies itself.)
	MetaPolicy MetaPolicy
	// ReadHead reads the document up to its first </head> even with no
	// HeadSnippet, so that MetaPolicy is shown its <meta> policies (what
	// it returns is placed there as any snippet).
	ReadHead bool
	// MaxSlotBytes bounds how much of one slot's content is held while its
	// end tag is looked for; past it the slot is left unfilled. Default 1 MiB.
	MaxSlotBytes int
	// Charset is the document's encoding (PageCharset); blocks, which are
	// UTF-8, are written in it. The zero Charset (and nil Options) is an
	// unknown encoding: non-ASCII characters are written as character
	// references, which read the same in any ASCII-compatible encoding.
	Charset Charset
}

// Slots rewrites a whole document: it appends html, with slots filled by
// lookup, to dst and returns the result and the number of slots filled.
func Slots(dst, html []byte, lookup Lookup, opts *Options) ([]byte, int) {
	var s scanner
	s.init(lookup, opts)
	s.out = dst
	s.feed(html, true)
	return s.out, s.filled
}

// Rewriter rewrites a document that arrives in chunks, writing the result
// to an io.Writer as soon as it is known. It holds back only an incomplete
// token (or a slot whose end has not arrived yet).
type Rewriter struct {
	w     io.Writer
	s     scanner
	carry []byte
	err   error
	// While following a Reference (Follow), fol is set and doc keeps the
	// document so far, for the scanner to read it should it depart from
	// the Reference. Then drop is how much of the scanner's output was
	// written already.
	fol   *follower
	spare follower
	doc   []byte
	drop  int
	// A slot waiting for its end tag is read from its start each time it
	// is read: for one whose every chunk may end it (a <div> of <div>s),
	// Write reads it again only once it has grown by half since (readAt,
	// the carry's length then), which keeps the reading in proportion to
	// the slot's length, not to its square. endSeen: a tag that may end
	// it has come since; Settle reads it at once.
	readAt  int
	endSeen bool
}

// NewRewriter returns a Rewriter that writes to w.
func NewRewriter(w io.Writer, lookup Lookup, opts *Options) *Rewriter {
	r := &Rewriter{w: w}
	r.s.init(lookup, opts)
	return r
}

// Pending reports how many bytes r holds back, not yet written: an
// incomplete token, or a slot whose end has not arrived. At 0 everything
// fed has been written, and the caller may send on bytes it then gives
// to Skip.
// While following a Reference it reports the document kept so far.
func (r *Rewriter) Pending() int {
	if r.fol != nil {
		return len(r.doc)
	}
	return len(r.carry)
}

// Reset makes r a new Rewriter writing to w, keeping the buffers it grew
// (but a large document's).
func (r *Rewriter) Reset(w io.Writer, lookup Lookup, opts *Options) {
	carry, out, doc, name := r.carry[:0], r.s.out[:0], r.doc[:0], r.s.waitName[:0]
	if cap(doc) > maxKeptDoc {
		doc = nil
	}
	*r = Rewriter{w: w, carry: carry, doc: doc, spare: follower{shifts: r.spare.shifts[:0]}}
	r.s.init(lookup, opts)
	r.s.out, r.s.waitName = out, name
}

// Follow makes r fill the document's slots by ref's Plan, for as long as
// the document keeps to ref's page as PlanFor requires (which it learns as
// the bytes come): a comparison of the bytes instead of tokenizing them.
// Should the document depart from the page, r reads it from where it
// wrote up to, as if it had from the start. Its output is the same either
// way; following keeps the whole document until it is closed. Follow must
// come before the first Write, and reports whether r follows: not with
// another MaxSlotBytes than the default, nor with a head snippet when a
// </head> of ref's page is written other than plainly.
func (r *Rewriter) Follow(ref *Reference) bool {
	if !ref.followable(&r.s) || len(r.carry) > 0 || r.s.mark > 0 {
		return false
	}
	r.spare = follower{ref: ref, shifts: r.spare.shifts[:0], head: r.s.head, policy: r.s.policy, headDone: r.s.headDone}
	r.fol = &r.spare
	// Room for a document as long as the page, and some: grown by
	// doubling as it came, a 500 KB page cost 2 MB of allocations.
	if need := len(ref.page) + len(ref.page)/8 + 4<<10; cap(r.doc) < need {
		r.doc = make([]byte, 0, need)
	}
	return true
}

// maxKeptDoc is the largest document buffer a Rewriter keeps for its next
// document: one for pages up to ~900 KB. Smaller, a 500 KB page streamed
// cost 1.5 MB of allocations and a third more CPU (the buffer and the
// collections it brought on); the memory pooled Rewriters keep so is at
// most what following took while they were in use.
const maxKeptDoc = 1 << 20

// Following reports whether r still fills the document by a Reference's
// Plan.
func (r *Rewriter) Following() bool { return r.fol != nil }

// HeadPending reports whether r has a head snippet (Options.HeadSnippet)
// it has not placed yet: until then, what the document brings must be
// read (or followed) for its </head>.
func (r *Rewriter) HeadPending() bool {
	if r.fol != nil {
		return !r.fol.headDone
	}
	return !r.s.headDone
}

// Write feeds the next chunk of the document.
func (r *Rewriter) Write(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.fol != nil {
		r.doc = append(r.doc, p...)
		if !r.follow(false) {
			r.unfollow()
		}
		return len(p), r.flush()
	}
	r.carry = append(r.carry, p...)
	if r.s.waiting {
		if len(r.carry)-r.s.waitFrom > r.s.maxSlot {
			return len(p), r.read() // past its bound: given up on at once
		}
		r.endSeen = r.endSeen || r.mayEndSlot(len(p))
		if !r.endSeen || len(r.carry) < r.readAt+r.readAt/2 {
			return len(p), nil // the slot still waits, or is read again later
		}
	}
	return len(p), r.read()
}

// Settle reads a slot that waits for its end tag again if a tag that may
// end it came since it was last read, and writes what that lets it:
// call it when the document pauses, so that the slot and what follows it
// go out then, not once more has come (Write reads a long slot again only
// as it grows by half).
func (r *Rewriter) Settle() error {
	if r.err != nil || r.fol != nil || !r.s.waiting || !r.endSeen {
		return r.err
	}
	return r.read()
}

// read feeds the carry to the scanner and writes what it made.
func (r *Rewriter) read() error {
	n := r.s.feed(r.carry, false)
	r.carry = append(r.carry[:0], r.carry[n:]...)
	r.readAt, r.endSeen = len(r.carry), false
	return r.flush()
}

// mayEndSlot reports whether the last added bytes of the carry, which
// begins with a slot waiting for its end tag, may hold that end tag (or
// the end of one begun before them): else reading the slot again from its
// start would only find it waiting still, at a cost that grows with the
// slot for every chunk of it.
func (r *Rewriter) mayEndSlot(added int) bool {
	c, name := r.carry, r.s.waitName
	b := c[max(r.s.waitFrom, len(c)-added-len(name)-1):]
	for {
		j := bytes.Index(b, []byte("</"))
		if j < 0 || j+2+len(name) > len(b) {
			return false // one cut short is seen whole with the next bytes
		}
		if equalFoldASCII(b[j+2:j+2+len(name)], name) {
			return true
		}
		b = b[j+2:]
	}
}

// follow writes what the document that has arrived allows; false once it
// departs from the Reference.
func (r *Rewriter) follow(eof bool) bool {
	f := r.fol
	if len(r.doc) > FollowBytes(f.ref) || !f.advance(r.doc, eof) {
		return false
	}
	out, ok := f.emit(r.s.out, r.doc, r.s.lookup, r.s.charset)
	r.s.out = out
	return ok
}

// unfollow hands the document over to the scanner: it reads what the
// follower wrote, writing nothing, and goes on from there. What it holds
// back of that, an unfinished token, its output repeats, and is dropped.
// (It holds back no slot the follower asked lookup for: the follower
// writes up to the start of a slot until it decides it, and then writes
// past its end, whether it filled it or not, and the slots inside too.)
func (r *Rewriter) unfollow() {
	f := r.fol
	if r.flush() != nil {
		return
	}
	r.fol = nil
	held := r.Skip(r.doc[:f.mark])
	r.drop = len(held)
	r.s.filled += f.filled
	r.carry = append(r.carry, r.doc[f.mark:]...)
	n := r.s.feed(r.carry, false)
	r.carry = append(r.carry[:0], r.carry[n:]...)
	r.readAt, r.endSeen = len(r.carry), false
}

// Skip advances the Rewriter over p, which the caller has already sent on
// as it is and which holds no slot marker (MayHaveSlots is false for it),
// writing nothing: it only learns where the document stands (inside a
// script, a comment...) so that what follows is read rightly. It returns
// the tail of p held back as an incomplete token: the output of the next
// Write begins with those bytes again, and the caller drops them. It is
// for a Rewriter that holds nothing back (Pending is 0): one that follows
// a Reference stops following, which it can only before its first Write.
func (r *Rewriter) Skip(p []byte) (held []byte) {
	if r.fol != nil && len(r.doc) == 0 {
		r.fol = nil
	}
	r.carry = append(r.carry, p...)
	lookup := r.s.lookup
	r.s.lookup = func([]byte, Place) (Block, bool) { return Block{}, false }
	r.s.discard = true
	n := r.s.feed(r.carry, false)
	r.s.discard, r.s.lookup = false, lookup
	r.s.out = r.s.out[:0]
	r.carry = append(r.carry[:0], r.carry[n:]...)
	return r.carry
}

// Close processes what is left and flushes it. It does not close the writer.
func (r *Rewriter) Close() error {
	if r.err != nil {
		return r.err
	}
	if r.fol != nil {
		if r.follow(true) {
			return r.flush()
		}
		r.unfollow()
	}
	r.s.feed(r.carry, true)
	r.carry = r.carry[:0]
	return r.flush()
}

// Filled returns how many slots have been filled so far.
func (r *Rewriter) Filled() int {
	if r.fol != nil {
		return r.fol.filled
	}
	return r.s.filled
}

// Ignored returns the slot markers found so far that cannot be filled;
// for a document followed to its end, the Reference's.
func (r *Rewriter) Ignored() []Ignored {
	if r.fol != nil {
		return r.fol.ref.plan.ignored
	}
	return r.s.ignored
}

func (r *Rewriter) flush() error {
	if r.drop > 0 {
		k := min(r.drop, len(r.s.out))
		r.drop -= k
		r.s.out = append(r.s.out[:0], r.s.out[k:]...)
	}
	if len(r.s.out) > 0 {
		if _, err := r.w.Write(r.s.out); err != nil {
			r.err = err
			return err
		}
		r.s.out = r.s.out[:0]
	}
	return nil
}
