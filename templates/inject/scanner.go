package inject

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"strings"

	"golang.org/x/net/html"
)

// isRawText reports elements that hold text, not markup, up to their end
// tag. name is lower case. (A <template> holds markup, read as such: see
// templateLevel.)
func isRawText(name []byte) bool {
	switch string(name) {
	case "script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "noscript", "plaintext":
		return true
	}
	return false
}

// isVoid reports elements that never have content, so a slot on one
// cannot be filled.
func isVoid(name []byte) bool {
	switch string(name) {
	case "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr", "param", "keygen":
		return true
	}
	return false
}

// scanner is the tokenizer state shared by Slots and Rewriter. Output is
// the input with edits: verbatim spans are not copied token by token but
// in one piece up to the next edit (mark is where the uncopied span starts).
type scanner struct {
	lookup   Lookup
	charset  Charset
	head     []byte
	headDone bool
	// policy decides the head snippet after <meta> policies (metaCSP,
	// those found before the first </head>, pastHead once it came).
	policy   MetaPolicy
	metaCSP  [][]byte
	pastHead bool
	maxSlot  int
	slots    int // slot start tags seen, bounded by MaxSlots
	out      []byte
	filled   int
	plain    bool // inside <plaintext>: the rest is text
	mark     int
	// skip is what the scanner is inside of when a chunk ended before its
	// end: a comment, a raw-text element (skipName), ... Its content is
	// let go of as it comes, not held until the end arrives: a script of
	// megabytes streamed in pieces, or a comment a broken page never
	// closes, would otherwise be held whole and searched again from its
	// start with every piece.
	skip     skipKind
	skipName [12]byte
	skipLen  int
	esc      uint8 // a script's text being skipped: its escape state (scriptEndAt)
	// svg follows the SVG and MathML elements open. In foreign content
	// (svg.foreign) "/>" closes an element, while in HTML browsers ignore
	// it (<div/> opens a div), and the elements followed around a slot
	// are not looked for.
	svg foreignStack
	// unclear, once set, says why no slot marker from there on is filled:
	// after an end tag that leaves the scanner unsure whether it is in
	// SVG (foreignStack.unsure), a tag that SVG and HTML read differently
	// came, and what the scanner follows may no longer be what browsers
	// build.
	unclear string
	// paras follows whether a <p> is open and in reach (Place.InParagraph),
	// a <button> (Place.InButton), and an HTML <a>, as in a card made a
	// link: what fills a slot inside it must hold no link of its own
	// (Place.InLink).
	paras paraState
	// inForm: a <form> is open (Place.InForm). Start and end tags are
	// matched by name only.
	inForm bool
	// lists follows the lists and list items open (Place.InListItem,
	// Place.InTerm).
	lists listStack
	// mode is the document's, once its start has told it (its doctype, or
	// the lack of one); bom counts the bytes of a byte order mark read at
	// the start, 3 once past where one may be.
	mode docMode
	bom  uint8
	// templates are the <template> elements open, innermost last, with
	// what was open around each. Past maxTemplates they are only counted
	// (deepTemplates).
	templates     []templateLevel
	deepTemplates int
	// before is what a slot's start tag found open, for the tag to be
	// read again when its end has not arrived yet. (A field: a local of
	// every tag's would be cleared for every tag.)
	before tagState
	// ignored are the slot markers found that cannot be filled.
	ignored []Ignored
	// values, when set, collects where the quoted attribute values of the
	// document's tags, and the texts of its raw text elements, are
	// (ScanReference). Those of tags before
	// unnotedUntil are not: a misnested slot's content, which its Ignored
	// detail quotes.
	values       *[]uint32
	unnotedUntil int
	// plan, when set, records slots and </head> positions instead of
	// filling; discard drops the output.
	plan    *Plan
	discard bool
	// waiting: the last feed stopped at a slot whose end tag had not
	// come, at the start of what it returned; its element's name as
	// written is waitName, its content starts waitFrom bytes further.
	waiting  bool
	waitName []byte
	waitFrom int
}

// defaultMaxSlot is how far past a slot's start tag its end tag is looked
// for, unless Options.MaxSlotBytes says otherwise.
const defaultMaxSlot = 1 << 20

func (s *scanner) init(lookup Lookup, opts *Options) {
	s.lookup = lookup
	s.maxSlot = defaultMaxSlot
	if opts != nil {
		s.charset = opts.Charset
		s.head = opts.HeadSnippet
		s.policy = opts.MetaPolicy
		if opts.MaxSlotBytes > 0 {
			s.maxSlot = opts.MaxSlotBytes
		}
	}
	s.headDone = len(s.head) == 0 && (opts == nil || !opts.ReadHead)
}

// copyTo appends the verbatim input from mark up to i.
func (s *scanner) copyTo(data []byte, i int) {
	if i > s.mark && !s.discard {
		s.out = append(s.out, data[s.mark:i]...)
	}
	s.mark = i
}

// tag is one parsed start or end tag.
type tag struct {
	end       int // index just past '>'
	nameAt    int // the name as written is data[nameAt:nameEnd]
	nameEnd   int
	closing   bool
	selfClose bool
	slot      []byte // value of SlotAttr, if present
	decides   bool   // a tag whose attribute values the Plan depends on (noted only with values)
	hasSlot   bool
	hasSeg    bool       // already carries SegmentAttr
	shadow    shadowAttr // what its shadowrootmode attribute says
	closeAt   int        // index of '>' (or of "/>")
	// low is the name lower-cased when it has at most len(low) bytes, as
	// every name the scanner looks for has; lowLen is 0 for longer names.
	// An array, not a slice into a buffer: a tag that pointed into itself
	// would have to live on the heap.
	low    [12]byte
	lowLen int
}

// shadowAttr is what a tag's shadowrootmode attribute says: a <template>
// with "open" or "closed" is a declarative shadow root.
type shadowAttr uint8

const (
	shadowUnset shadowAttr = iota
	shadowOther
	shadowMode
)

// isTemplate reports a <template> tag (lower-cased by parseTag:
// lookedFor).
func (t *tag) isTemplate() bool { return t.lowLen == 8 && string(t.low[:8]) == "template" }

// lname is the tag's name lower-cased, or empty when it is not one the
// scanner looks for in every tag (fold makes it for any short name).
func (t *tag) lname() []byte { return t.low[:t.lowLen] }

// fold lower-cases the tag's name into low, when it fits.
func (t *tag) fold(data []byte) {
	if n := t.nameEnd - t.nameAt; n <= len(t.low) {
		for k, c := range data[t.nameAt:t.nameEnd] {
			t.low[k] = lower(c)
		}
		t.lowLen = n
	}
}

// lookedFor reports whether a name of n bytes starting with c may be one
// the scanner checks on every tag: a raw-text element, head, or an element
// around a slot that Place tells of (button, form, lists, the elements
// that keep a paragraph out of reach). Most tags
// (div, a, p, span, img, li) are ruled out by length and first letter, so
// their names are not lower-cased at all. A table, to stay small enough to
// be inlined into parseTag.
func lookedFor(n int, c byte) bool {
	return n < 16 && lookedForLens[(c|0x20)&31]>>n&1 != 0
}

// lookedForLens holds, by first letter (its low five bits), a bit for each
// length of a name lookedFor looks for.
var lookedForLens = [32]uint16{
	'x' & 31: 1 << 3,             // xmp
	'h' & 31: 1 << 4,             // head
	'l' & 31: 1 << 2,             // li
	'u' & 31: 1 << 2,             // ul
	'o' & 31: 1<<2 | 1<<6,        // ol, object
	'd' & 31: 1 << 2,             // dl, dd, dt
	'b' & 31: 1 << 6,             // button
	'f' & 31: 1 << 4,             // form
	'a' & 31: 1 << 6,             // applet
	'c' & 31: 1 << 7,             // caption
	's' & 31: 1<<3 | 1<<5 | 1<<6, // svg, style, script
	'm' & 31: 1<<4 | 1<<7,        // math, menu, marquee
	't' & 31: 1<<2 | 1<<5 | 1<<8, // td, th, tr, title, table, textarea, template
	'i' & 31: 1 << 6,             // iframe
	'n' & 31: 1<<7 | 1<<8,        // noembed, noframes, noscript
	'p' & 31: 1 << 9,             // plaintext
}

// skipKind is what the scanner passes over without looking for tags.
type skipKind uint8

const (
	skipNone    skipKind = iota
	skipComment          // <!-- to --> (or --!>)
	skipCDATA            // <![CDATA[ to ]]>
	skipBogus            // <!x, <?x: to the next '>'
	skipRawText          // script, style, textarea, ...: to its end tag
)

// enterRaw starts skipping a raw-text element's content; name is lower
// case and fits skipName (isRawText's names do).
func (s *scanner) enterRaw(name []byte) {
	s.skip = skipRawText
	s.skipLen = copy(s.skipName[:], name)
}

// skipEnd looks in data[from:] for the end of what is being skipped. It
// returns the index just past it, or -1 and how much of data can be let
// go of: bytes from safe on may be the start of the end.
func (s *scanner) skipEnd(data []byte, from int) (end, safe int) {
	switch s.skip {
	case skipComment:
		if j := commentEnd(data[from:]); j >= 0 {
			return from + j, 0
		}
		return -1, max(from, len(data)-len("--!"))
	case skipCDATA:
		if j := bytes.Index(data[from:], []byte("]]>")); j >= 0 {
			return from + j + 3, 0
		}
		return -1, max(from, len(data)-len("]]"))
	case skipBogus:
		if j := bytes.IndexByte(data[from:], '>'); j >= 0 {
			return from + j + 1, 0
		}
		return -1, len(data)
	}
	return rawTextEnd(data, from, s.skipName[:s.skipLen], &s.esc)
}

// feed tokenizes data, appending output to s.out. It returns how many bytes
// of data were consumed (and written out); unless final, the rest is an
// incomplete token that must be fed again with more data after it.
func (s *scanner) feed(data []byte, final bool) int {
	s.mark, s.waiting = 0, false
	i := 0
	if s.skip != skipNone {
		// The last chunk ended inside a comment or raw-text element.
		end, safe := s.skipEnd(data, 0)
		switch {
		case end >= 0:
			s.skip = skipNone
			i = end
		case !final:
			s.copyTo(data, safe)
			return safe
		default:
			i = len(data) // unclosed: the rest is in it
		}
	}
	var t tag
	for i < len(data) && !s.plain {
		lt := indexNear(data[i:], '<')
		if s.mode == modeUnknown {
			s.beforeDoctype(data[i:], lt)
		}
		if lt < 0 {
			break // the rest is text
		}
		i += lt
		n, complete := s.markup(data, i, final, &t)
		if !complete {
			if s.skip != skipNone {
				i = n // what arrived of the skipped content goes on
			}
			s.copyTo(data, i)
			return i
		}
		i = n
	}
	s.copyTo(data, len(data))
	return len(data)
}

// markup handles the token starting at data[i] == '<' and returns the index
// after it. complete is false when the token needs more input; with final
// set, an incomplete token is taken as text.
func (s *scanner) markup(data []byte, i int, final bool, t *tag) (int, bool) {
	rest := data[i:]
	if len(rest) < 2 {
		return len(data), final
	}
	switch c := rest[1]; {
	case c == '!':
		if s.mode == modeUnknown {
			if n, held := s.doctype(rest, final); held {
				return i, false
			} else if n > 0 {
				return i + n, true
			}
		}
		if s.svg.unsure != "" && s.unclear == "" && bytes.HasPrefix(rest, []byte("<![CDATA[")) {
			s.giveUp("a CDATA section")
		}
		end := bangEnd(rest, s.svg.foreign())
		if end >= 0 {
			return i + end, true
		}
		if final {
			return len(data), true
		}
		// Not closed in data: skipped as it comes, once it is known
		// what it is.
		const cdata = "<![CDATA["
		switch {
		case bytes.HasPrefix(rest, []byte("<!--")):
			if len(rest) < len("<!---->") {
				return len(data), false // "<!-->" and "<!--->" end at once
			}
			s.skip = skipComment
			_, safe := s.skipEnd(data, i+4)
			return safe, false
		case s.svg.foreign() && bytes.HasPrefix(rest, []byte(cdata)):
			s.skip = skipCDATA
			_, safe := s.skipEnd(data, i+len(cdata))
			return safe, false
		case bytes.HasPrefix([]byte("<!--"), rest),
			s.svg.foreign() && bytes.HasPrefix([]byte(cdata), rest):
			return len(data), false // too short to tell
		}
		s.skip = skipBogus
		return len(data), false
	case c == '?':
		end := bytes.IndexByte(rest, '>')
		if end >= 0 {
			return i + end + 1, true
		}
		if !final {
			s.skip = skipBogus
		}
		return len(data), final
	case c == '/' || isAlpha(c):
		var ok bool
		if s.values == nil {
			ok = parseTag(data, i, t, nil)
		} else {
			ok = s.parseNoting(data, i, t)
		}
		if !ok {
			if !final && len(data)-i > s.maxSlot {
				// A tag that does not end (an attribute value left
				// open): what follows is not tokenized, and passes as
				// it is, rather than be held and parsed again and again.
				s.plain = true
				return len(data), true
			}
			return len(data), final
		}
		if t.end == 0 { // "</>", "</ ": text
			return i + 1, true
		}
		if s.mode == modeUnknown {
			s.mode = modeQuirks // a tag before any doctype
		}
		return s.onTag(data, i, t, final)
	}
	if s.mode == modeUnknown {
		s.mode = modeQuirks // a '<' that is text
	}
	return i + 1, true
}

// beforeDoctype looks at the text at the start of rest, up to the next
// '<' at lt (or all of it, lt < 0), while no doctype or tag has told the
// document's mode: text other than whitespace (and a byte order mark at
// the start, which goes with the decoding) takes the doctype's place, and
// the page is in quirks mode.
func (s *scanner) beforeDoctype(rest []byte, lt int) {
	text := rest
	if lt >= 0 {
		text = rest[:lt]
	}
	const bom = "\xef\xbb\xbf"
	for s.bom < 3 && len(text) > 0 && text[0] == bom[s.bom] {
		text, s.bom = text[1:], s.bom+1
	}
	if more := len(text) > 0 || lt >= 0; more && s.bom > 0 && s.bom < 3 {
		s.mode = modeQuirks // a mark cut short
		return
	} else if more {
		s.bom = 3 // past the start
	}
	for _, c := range text {
		if !isSpace(c) {
			s.mode = modeQuirks
			return
		}
	}
}

// doctype reads the document's doctype at rest, "<!" before anything
// that tells the mode. It returns the token's length once read (0: not a
// doctype), or held: more of it must arrive.
func (s *scanner) doctype(rest []byte, final bool) (n int, held bool) {
	is, partial := isDoctype(rest)
	switch {
	case partial && !final:
		return 0, true
	case !is:
		return 0, false // a comment, a bogus one: the doctype may follow
	}
	end := bytes.IndexByte(rest, '>')
	switch {
	case end >= 0:
		s.mode = doctypeMode(rest[:end+1])
		return end + 1, false
	case !final && len(rest) < maxDoctype:
		return 0, true
	}
	s.mode = modeQuirks // cut off, or too long to hold
	return 0, false
}

// parseNoting is parseTag noting the values of the tag's attributes in
// s.values, but none of something that is not a tag, none of a <meta>
// declaring the encoding, which PageCharset reads, and none before
// s.unnotedUntil.
func (s *scanner) parseNoting(data []byte, i int, t *tag) bool {
	kept := len(*s.values)
	ok := parseTag(data, i, t, s.values)
	if !ok || t.end == 0 || t.decides || i < s.unnotedUntil {
		*s.values = (*s.values)[:kept]
	}
	return ok
}

// noteRawText notes in s.values, when it collects them, where the text of
// the raw text element whose start tag ends at t.end (at i) is: a
// script's, a style's, up to its end tag at. A Plan depends on none of it,
// only on where it ends, the first end tag of the element's name
// (endTagAt), as on where a quoted attribute value ends; a page that
// differs from a Reference inside such text reuses its Plan. The text of
// an element whose tag the Plan depends on (t.decides) is not noted, nor
// any before s.unnotedUntil.
//
// Nor a script's text with "<!--" in it, where the tokenizer's escape
// states decide which "</script" ends it (scriptEndAt): a text that differs
// there is told from its end otherwise than by endTagAt.
func (s *scanner) noteRawText(data []byte, i int, t *tag, at int) {
	if s.values == nil || t.decides || i < s.unnotedUntil ||
		string(t.lname()) == "script" && bytes.Contains(data[t.end:at], []byte("<!--")) {
		return
	}
	*s.values = append(*s.values, uint32(t.end), uint32(at))
}

// onTag handles a complete start or end tag at data[i:t.end].
func (s *scanner) onTag(data []byte, i int, t *tag, final bool) (int, bool) {
	// Before this tag, for a slot tag to be read again.
	if t.hasSlot {
		s.before = tagState{svg: s.svg, paras: s.paras, lists: s.lists}
	}
	pushed, wasForeign := false, false
	// A </template> closes the innermost HTML template from wherever in
	// it, SVG included, unless an SVG element of that name is open.
	endsTemplate := t.closing && t.isTemplate() &&
		!(s.svg.foreign() && s.svg.has(nameHash(data[t.nameAt:t.nameEnd])))
	if t.closing && s.svg.foreign() && s.endsAroundForeign(data, t) {
		s.svg.popTo(0) // then read as HTML
	}
	depth := s.svg.n
	opened := false // an HTML element inside an element that holds HTML
	if s.svg.reads(t) {
		wasForeign = s.svg.foreign()
		pushed, opened = s.svg.tag(data, t)
	}
	s.syncPoints()
	// An end tag that closed nothing of the SVG may have closed it with
	// an HTML element around it.
	unsure := t.closing && wasForeign && s.svg.n == depth && s.svg.foreign() && s.endsUnfollowed(data, t)
	if unsure || s.svg.unsure != "" {
		s.doubt(data, t, unsure, pushed)
	}
	if t.hasSlot && (s.unclear != "" || s.svg.unsure != "") {
		s.ignoreUnclear(t)
		t.hasSlot = false
	}
	// What is open around this tag, for a slot it may be.
	inForm, item := s.inForm, s.lists.top()
	inButton := s.paras.top() == shieldButton
	// What this tag is, of the elements followed (none in SVG or MathML).
	var link, para, form bool
	list := listNone
	foreign := s.svg.foreign()
	if !foreign {
		if t.nameEnd-t.nameAt == 1 {
			c := data[t.nameAt] | 0x20
			link, para = c == 'a', c == 'p'
		}
		if s.paras.open() {
			t.fold(data) // whether it closes the paragraph goes by its name
		}
		// parseTag lower-cased the name if it may be one that matters
		// (lookedFor); most are not.
		if n := t.lowLen; n > 0 {
			form = n == 4 && string(t.low[:4]) == "form"
			if n == 2 || n == 4 {
				list = listKindOf(t.lname())
			}
		}
		// Browsers drop a <form> start tag inside a form: it closes nothing.
		switch {
		case !para && t.lowLen == 0, form && !t.closing && inForm:
		case t.closing:
			s.paras.end(t.lname(), para)
		default:
			s.paras.start(t.lname(), para, s.mode == modeQuirks)
		}
	}
	// Inside this tag, once it closed what it closes; a <p> is not inside
	// a paragraph (it closed the one open).
	inPara := s.paras.open() && !para
	if t.closing {
		if endsTemplate {
			s.leaveTemplate()
			return t.end, true
		}
		if link {
			s.paras.endLink()
		}
		if form {
			s.inForm = false
		}
		if list != listNone {
			s.lists.end(list, s.paras.bounds())
		}
		// A </head> in a template's content is the fragment's: a snippet
		// there would not run.
		if s.inTemplate() {
			return t.end, true
		}
		if string(t.lname()) == "head" {
			s.pastHead = true
			if s.plan != nil {
				s.plan.heads = append(s.plan.heads, i)
			}
			if !s.headDone {
				s.copyTo(data, i)
				s.out = append(s.out, s.headSnippet()...)
				s.headDone = true
			}
		}
		return t.end, true
	}
	// A policy in a <meta> counts in the head only; one inside SVG breaks
	// out of it (foreign is what the tag left open).
	if !s.pastHead && !foreign && !s.inTemplate() && isMeta(data, t) {
		s.noteMeta(data[i:t.end])
	}
	if t.hasSlot && s.inert() {
		s.ignore(t, IgnoredTemplate)
		t.hasSlot = false
	}
	if t.isTemplate() && !wasForeign {
		if t.hasSlot {
			s.ignore(t, IgnoredTemplate)
		}
		s.enterTemplate(t)
		return t.end, true
	}
	// In HTML "/>" closes nothing: <script src=x/> opens a script whose
	// text runs to </script>, as in a browser. In SVG and MathML a
	// <script> or <style> is read as any element is: markup.
	if isRawText(t.lname()) && !wasForeign {
		if t.hasSlot {
			s.ignore(t, IgnoredText)
		}
		if string(t.lname()) == "plaintext" {
			s.plain = true
			return len(data), true
		}
		s.esc = scriptData
		at, safe := textEndAt(data, t.end, t.lname(), &s.esc)
		end := tagEnd(data, at, t.lname())
		if end < 0 && at >= 0 {
			safe = at
		}
		switch {
		case end >= 0:
			s.noteRawText(data, i, t, at)
			return end, true
		case final:
			return len(data), true
		}
		s.enterRaw(t.lname())
		return safe, false
	}
	if !t.hasSlot || t.selfClose || s.slots >= MaxSlots {
		if t.hasSlot {
			if t.selfClose {
				s.ignore(t, IgnoredSelfClosing)
			} else {
				s.ignore(t, IgnoredTooMany)
			}
		}
		s.opens(link, form, list)
		return t.end, true
	}
	if t.fold(data); isVoid(t.lname()) {
		s.ignore(t, IgnoredVoid)
		return t.end, true
	}
	// A link is told after this tag closed what it closes (a cell: a link
	// in the one before it).
	at := Place{InLink: s.paras.linked(), InParagraph: inPara, InButton: inButton, InForm: inForm,
		InListItem: item == listItem, InTerm: item == listTerm, InForeign: foreign, InMath: foreign && s.svg.inMath()}
	n, complete := s.slot(data, i, t, at, final)
	switch {
	case !complete:
		// The tag is read again when more has come.
		s.paras, s.svg, s.lists = s.before.paras, s.before.svg, s.before.lists
	case complete && n == t.end:
		s.opens(link, form, list)
	default:
		// Filled, the slot's end tag is passed too: what it closes is
		// closed (a <p> slot's paragraph, a <button> slot's shield, an
		// <svg> slot).
		if !foreign && (para || t.lowLen > 0) {
			s.paras.end(t.lname(), para)
		}
		switch {
		case pushed:
			s.svg.popTo(s.svg.n - 1)
			s.syncPoints()
		case opened:
			s.svg.nInner-- // the slot, inside an element that holds HTML
		}
	}
	return n, complete
}

// opens records a start tag that opened a link, a form or an element of
// a list (list), if it did.
func (s *scanner) opens(link, form bool, list listKind) {
	if link {
		s.paras.startLink()
	}
	s.inForm = s.inForm || form
	if list != listNone {
		s.lists.start(list, s.paras.bounds())
	}
}

// tagState is what onTag changes of the elements open that a slot's
// start tag, read again, must find as it was.
type tagState struct {
	svg   foreignStack
	paras paraState
	lists listStack
}

// syncPoints follows the elements that hold HTML inside SVG and MathML
// (a <foreignObject>, an <mtext>, an <annotation-xml> of HTML: HTML's
// integration points) as they open and close. HTML's scopes end at them:
// from inside one, no paragraph, button, list or item open around the
// SVG is in reach (a <div> there closes no <p> around it, a </button>
// or </li> there is ignored); only a link around it is, to a link in a
// block. Each one opened sets aside the paragraphs and lists open
// around it (foreignStack.points) and starts afresh; each one closed
// brings them back. Past maxPoints inside each other, the scanner stops
// following and gives up on the rest of the page.
func (s *scanner) syncPoints() {
	if s.svg.n > 0 || s.svg.nPoints > 0 { // most tags are outside SVG
		s.followPoints()
	}
}

// followPoints is syncPoints in SVG and MathML, or right after.
func (s *scanner) followPoints() {
	f := &s.svg
	want := f.holding()
	for f.nPoints > want {
		f.nPoints--
		if f.nPoints < maxPoints {
			l := &f.points[f.nPoints]
			s.paras, s.lists = l.paras, l.lists
		}
	}
	for f.nPoints < want {
		if f.nPoints < maxPoints {
			f.points[f.nPoints] = pointLevel{paras: s.paras, lists: s.lists}
		} else if s.unclear == "" {
			s.unclear = fmt.Sprintf("more than %d SVG or MathML elements that hold HTML inside each other: nothing after them is filled", maxPoints)
		}
		f.nPoints++
		s.paras = paraState{outerLink: s.paras.linked()}
		s.lists = listStack{}
	}
}

// templateLevel is what a <template> start tag set aside. A template's
// content is a document fragment of its own: nothing open around the
// template is open in it (a <div> in it closes no paragraph of the page,
// an <a> in it splits no link of the page), and after its end tag what was
// open is again, whatever the content left open. Its content is not shown,
// and its slots are not filled, unless the template is a declarative
// shadow root (shadowrootmode="open" or "closed"): then it is the shadow
// tree of the element around it, shown in its place, and its slots are
// filled for the place they have inside it.
type templateLevel struct {
	inForm bool
	paras  paraState
	lists  listStack
	svg    foreignStack
	inert  bool // the template's content is not shown
}

// maxTemplates bounds the templates followed inside each other;
// components nest their shadow roots a few deep.
const maxTemplates = 16

// enterTemplate records the start tag t of an HTML <template>.
func (s *scanner) enterTemplate(t *tag) {
	if s.deepTemplates > 0 || len(s.templates) >= maxTemplates {
		s.deepTemplates++
		return
	}
	s.templates = append(s.templates, templateLevel{inForm: s.inForm, paras: s.paras, lists: s.lists, svg: s.svg,
		inert: s.inert() || t.shadow != shadowMode})
	s.inForm = false
	s.paras = paraState{}
	s.lists = listStack{}
	s.svg = foreignStack{}
}

// leaveTemplate records a </template> end tag: it closes the innermost
// template open, from wherever in its content (SVG included), and what it
// set aside is open again. With none open, browsers ignore it.
func (s *scanner) leaveTemplate() {
	if s.deepTemplates > 0 {
		s.deepTemplates--
		return
	}
	n := len(s.templates)
	if n == 0 {
		return
	}
	l := &s.templates[n-1]
	s.inForm, s.paras, s.lists, s.svg = l.inForm, l.paras, l.lists, l.svg
	s.templates = s.templates[:n-1]
}

// inTemplate reports whether the scanner is in a template's content.
func (s *scanner) inTemplate() bool { return len(s.templates) > 0 || s.deepTemplates > 0 }

// inert reports whether the content where the scanner is is not shown:
// a template's that is not a declarative shadow root (or inside one), or
// one past what is followed.
func (s *scanner) inert() bool {
	return s.deepTemplates > 0 || len(s.templates) > 0 && s.templates[len(s.templates)-1].inert
}

// endsAroundForeign reports whether the end tag t, met in SVG or MathML,
// closes an HTML element the scanner follows (a button, a link, a list or
// item, a table or cell, an object) that is open around the foreign
// elements open, and that it would close in HTML (a button's not past a
// table, an item's not past a list), as when an icon's <svg> is left unclosed in a <button>:
// browsers then close the SVG elements with it, and go on in HTML. Only
// with no element holding HTML among them (a <foreignObject>), where an
// HTML element open is around them all, and none of the foreign elements
// of its name. (A </form> closes the form, but not what is open in it.)
func (s *scanner) endsAroundForeign(data []byte, t *tag) bool {
	f := &s.svg
	if f.n > maxForeign {
		return false
	}
	h := nameHash(data[t.nameAt:t.nameEnd])
	link := t.nameEnd-t.nameAt == 1 && data[t.nameAt]|0x20 == 'a'
	for i := range f.n {
		// A link's end tag would move what is inside an <annotation-xml>
		// (special, as a <div> is) out of it instead.
		if f.html[i] || f.names[i] == h || link && f.names[i] == annotationHash {
			return false
		}
	}
	if link {
		// Past a <button> opened inside the link, the link's end tag
		// moves the button, and the SVG in it stays open.
		return s.paras.linkHere()
	}
	t.fold(data)
	name := t.lname()
	if k := shieldOf(name); k != shieldNone {
		return s.paras.find(k) > 0
	}
	if k := listKindOf(name); k != listNone {
		return s.lists.find(k, s.paras.bounds()) >= 0
	}
	return false
}

// endsUnfollowed reports whether the end tag t (at data), met in foreign
// content and closing none of it, may close the SVG or MathML elements
// open and an HTML element around them that the scanner does not follow:
// the walk down them (endWalk) meets neither an element of its name nor
// one that ends HTML's scopes (an end tag of an element the scanner
// follows, a link or a list, is read by endsAroundForeign; one of an
// element that never holds SVG, such as <body>, is ignored).
func (s *scanner) endsUnfollowed(data []byte, t *tag) bool {
	if s.svg.n > maxForeign {
		return false
	}
	t.fold(data)
	name := t.lname()
	if t.lowLen == t.nameEnd-t.nameAt {
		switch string(name) {
		case "a", "body", "html", "head", "form", "svg", "math", "br", "p", "template":
			return false
		}
		if shieldOf(name) != shieldNone || listKindOf(name) != listNone {
			return false
		}
	}
	match, k, scoped := s.svg.endWalk(nameHash(data[t.nameAt:t.nameEnd]))
	return match < 0 && k == 0 && !scoped
}

// doubt follows the tag t (at data) where the scanner may be unsure
// whether it is in SVG: unsure, an end tag that begins the doubt
// (endsUnfollowed); else, while it lasts, a start tag (pushed: it opened
// an SVG or MathML element) that SVG and HTML read differently
// (readsOtherwise) ends the filling of the page.
func (s *scanner) doubt(data []byte, t *tag, unsure, pushed bool) {
	switch {
	case unsure && s.svg.unsure == "":
		s.svg.unsure = nameOf(data, t)
	case s.svg.unsure != "" && s.unclear == "" && !t.closing && s.readsOtherwise(data, t, pushed):
		s.giveUp("<" + nameOf(data, t) + ">")
	}
}

// giveUp ends the filling of the page where the scanner is: what, a tag or
// a CDATA section met while it cannot tell SVG from HTML, is read
// differently by the two.
func (s *scanner) giveUp(what string) {
	root := s.svg.rootName()
	s.unclear = fmt.Sprintf("after </%s> inside %s, %s is read as HTML or as SVG: nothing after it is filled (close the %s before </%s>)",
		s.svg.unsure, root, what, root, s.svg.unsure)
}

// ignoreUnclear notes the slot marker t that cannot be filled, as the
// scanner cannot tell SVG from HTML there.
func (s *scanner) ignoreUnclear(t *tag) {
	why := s.unclear
	if why == "" {
		root := s.svg.rootName()
		why = fmt.Sprintf("after </%s> inside %s, browsers leave the %s if a <%s> is open around it, and stay in it if not (close the %s before </%s>)",
			s.svg.unsure, root, root, s.svg.unsure, root, s.svg.unsure)
	}
	s.ignoreWhy(t, IgnoredUnclear, why)
}

// readsOtherwise reports whether the start tag t (at data), met while the
// scanner cannot tell SVG from HTML (foreignStack.unsure), changes what
// the scanner follows when read as HTML, where it read it as SVG: a link,
// a form, a button, a raw-text element, a template, or an element that
// holds HTML (pushed by it). Start tags that break out of SVG end the
// doubt instead, and others are elements of no account either way.
func (s *scanner) readsOtherwise(data []byte, t *tag, pushed bool) bool {
	link := t.nameEnd-t.nameAt == 1 && data[t.nameAt]|0x20 == 'a'
	holder := pushed && s.svg.n <= maxForeign && s.svg.html[s.svg.n-1]
	return link || holder || t.lowLen > 0
}

// nameOf is t's name (at data), lower case, cut short, for a message.
func nameOf(data []byte, t *tag) string {
	return strings.ToLower(string(data[t.nameAt:min(t.nameEnd, t.nameAt+40)]))
}

// ignore notes a slot marker that cannot be filled (at most MaxSlots).
func (s *scanner) ignore(t *tag, reason string) { s.ignoreWhy(t, reason, "") }

// ignoreWhy is ignore with a detail for the editor.
func (s *scanner) ignoreWhy(t *tag, reason, detail string) {
	if len(s.ignored) < MaxSlots {
		s.ignored = append(s.ignored, Ignored{Slot: string(t.slot), Reason: reason, Detail: detail})
	}
	if p := s.plan; p != nil {
		if len(p.holds) < MaxSlots {
			p.holds = append(p.holds, hold{start: t.nameAt - 1, settle: t.end})
		} else {
			p.manyHolds = true
		}
	}
}

// contentMisfit reports why a slot's own content, read as a block in the
// slot's place, would not keep to the slot, or "" when it does. Content
// without a '<' cannot leave it, and is not read.
func contentMisfit(content []byte, at Place) string {
	if bytes.IndexByte(content, '<') < 0 || at.InForeign || at.InMath {
		// In an SVG or MathML slot the content is read as SVG or MathML
		// ("/>" closes), which ReadBlock's reading as HTML is not.
		return ""
	}
	shape, err := ReadBlock(content)
	if err != nil {
		return err.Error()
	}
	return Misfit(at, shape)
}

// slot handles a slot element's start tag: it finds the matching end tag
// and fills the slot when lookup has a block for it.
func (s *scanner) slot(data []byte, i int, t *tag, at Place, final bool) (int, bool) {
	at.Element = t.lname()
	// The end is looked for within maxSlot bytes only: unclosed markers
	// must not make the scan quadratic.
	window := data
	if len(data)-t.end > s.maxSlot {
		window = data[:t.end+s.maxSlot]
	}
	chk := newContentCheck(window, t.end, &at)
	_, closeStart, closeEnd := findSlotEnd(window, t.end, data[t.nameAt:t.nameEnd], s.svg, &chk)
	if closeStart < 0 {
		if !final && len(data)-t.end <= s.maxSlot {
			s.waiting, s.waitFrom = true, t.end-i
			s.waitName = append(s.waitName[:0], data[t.nameAt:t.nameEnd]...)
			return i, false // wait for the end tag
		}
		s.slots++
		s.ignore(t, IgnoredNoEnd)
		// No end tag, or too long to hold: leave the slot as sent, and
		// go on scanning inside it.
		return t.end, true
	}
	// The end tag that matches by name is the slot's end only when the
	// content before it keeps to the slot as a browser reads it, as a
	// block must: an end tag of an element around the slot, or one left
	// open inside it, makes the browser end the slot elsewhere, and a
	// block put in up to that end tag would replace part of the page.
	if chk.left || !chk.done() { // plainly well-formed content needs no more
		why := "a tag in it ends the slot's element before its end tag does (an HTML element inside SVG or MathML breaks out of them)"
		if !chk.left {
			why = contentMisfit(data[t.end:closeStart], at)
		}
		if why != "" {
			s.slots++
			s.ignoreWhy(t, IgnoredMisnested, why)
			if p := s.plan; p != nil && !p.manyHolds {
				p.holds[len(p.holds)-1].settle = closeEnd // decided by the content
			}
			// The detail quotes the content's tags, attributes and all: a
			// page that differs there is not to reuse this one's Plan.
			s.unnotedUntil = max(s.unnotedUntil, closeStart)
			return t.end, true
		}
	}
	if s.plan != nil {
		s.plan.recordSlot(data, i, t, at, closeStart, closeEnd)
	}
	s.slots++
	b, ok := s.lookup(t.slot, at)
	if !ok {
		// Keep the origin's content; nested slots inside it are still live.
		return t.end, true
	}
	s.filled++
	// the start tag, with the segment attribute before its '>'
	s.copyTo(data, t.closeAt)
	if !t.hasSeg {
		s.out = appendSegmentAttr(s.out, b.Segment)
	}
	s.copyTo(data, t.end)
	s.out = s.charset.AppendHTML(s.out, b.HTML)
	s.mark = closeStart // the origin's inner HTML is dropped
	return closeEnd, true
}

// findSlotEnd finds the end tag matching a start tag named name (in any
// case) whose content begins at from, counting nested elements of the same
// name and skipping comments and raw-text elements. svg is what SVG and
// MathML elements are open at from, the slot's own included: where their
// content is foreign, "/>" closes an element, while in HTML (and in the
// HTML a <foreignObject> or <mtext> holds, or after a <div> broke out of
// an <svg>) <div/> opens one as <div> does. It returns the content's end
// and the end tag's span, or closeStart -1 when it is not in data.
func findSlotEnd(data []byte, from int, name []byte, svg foreignStack, chk *contentCheck) (innerEnd, closeStart, closeEnd int) {
	depth := 1
	i := from
	var t tag
	// Templates open in the content: what is in them is a fragment of its
	// own, which elements of the slot's name in it do not nest in, and
	// which a </template> ends from wherever in it.
	templates := 0
	// An SVG or MathML slot's own element is at level: content that
	// closes it before its end tag leaves it (chk.left).
	level, foreignSlot := svg.n, svg.foreign()
	for i < len(data) {
		lt := bytes.IndexByte(data[i:], '<')
		if lt < 0 {
			return 0, -1, -1
		}
		i += lt
		rest := data[i:]
		if len(rest) < 2 {
			return 0, -1, -1
		}
		switch c := rest[1]; {
		case c == '!':
			end := bangEnd(rest, svg.foreign())
			if end < 0 {
				return 0, -1, -1
			}
			chk.text(i)
			i += end
			chk.last = i
		case c == '?':
			end := bytes.IndexByte(rest, '>')
			if end < 0 {
				return 0, -1, -1
			}
			chk.text(i)
			i += end + 1
			chk.last = i
		case c == '/' || isAlpha(c):
			if !parseTag(data, i, &t, nil) {
				return 0, -1, -1
			}
			if t.end == 0 {
				chk.irregular = true // "</" and no name: a bogus comment, or nothing
				i++
				continue
			}
			if t.isTemplate() && (templates > 0 || !svg.foreign()) {
				chk.irregular = true
				if t.closing && templates > 0 {
					templates--
				} else if !t.closing {
					templates++
				}
				i = t.end
				continue
			}
			// In a template only what ends it, and raw text, matter: its
			// content is HTML of its own.
			wasForeign := false
			if templates == 0 {
				wasForeign = svg.foreign()
				if svg.reads(&t) {
					svg.tag(data, &t)
				}
			}
			same := templates == 0 && equalFoldASCII(data[t.nameAt:t.nameEnd], name)
			closed := t.selfClose && svg.foreign() // "/>" in foreign content
			if foreignSlot && svg.n < level && !(t.closing && same && depth == 1) {
				chk.left = true
			}
			if !chk.irregular {
				chk.text(i)
				switch {
				case templates > 0:
					chk.irregular = true
				case t.closing && !(same && depth == 1):
					chk.end(t.nameAt, t.nameEnd)
				case t.closing:
					// the slot's own end tag
				case wasForeign && !svg.foreign():
					chk.irregular = true // it broke out of SVG or MathML
				default:
					t.fold(data)
					if !wasForeign && isRawText(t.lname()) {
						break // its text is skipped below, and chk told
					}
					chk.start(t.lname(), t.nameAt, t.nameEnd, t.selfClose, svg.foreign())
				}
				chk.last = t.end
			}
			switch {
			case t.closing && same:
				depth--
				if depth == 0 {
					return i, i, t.end
				}
			case !t.closing && same && !closed:
				depth++
			case !t.closing && isRawText(t.lname()) && !wasForeign:
				if string(t.lname()) == "plaintext" {
					return 0, -1, -1
				}
				end := findEndTag(data, t.end, t.lname())
				if end < 0 {
					return 0, -1, -1
				}
				chk.rawText(t.lname(), end)
				i = end
				continue
			}
			i = t.end
		default:
			i++
		}
	}
	return 0, -1, -1
}

// bangEnd returns the length of the <!…> token at the start of rest, or -1.
// A CDATA section is one in foreign content only; in HTML "<![CDATA[" opens
// a bogus comment, which the next '>' ends.
func bangEnd(rest []byte, foreign bool) int {
	switch {
	case bytes.HasPrefix(rest, []byte("<!--")):
		if bytes.HasPrefix(rest[4:], []byte(">")) {
			return 5
		}
		if bytes.HasPrefix(rest[4:], []byte("->")) {
			return 6
		}
		if j := commentEnd(rest[4:]); j >= 0 {
			return 4 + j
		}
		return -1
	case foreign && bytes.HasPrefix(rest, []byte("<![CDATA[")):
		if j := bytes.Index(rest[9:], []byte("]]>")); j >= 0 {
			return 9 + j + 3
		}
		return -1
	}
	if j := bytes.IndexByte(rest, '>'); j >= 0 {
		return j + 1
	}
	return -1
}

// commentEnd returns the index just past the first "-->" or "--!>" in
// data, whichever comes first (either ends a comment), or -1.
func commentEnd(data []byte) int {
	for i := 0; ; {
		j := bytes.Index(data[i:], []byte("--"))
		if j < 0 {
			return -1
		}
		i += j + 2
		for i < len(data) && data[i] == '-' { // "--->" ends it too
			i++
		}
		switch {
		case i < len(data) && data[i] == '>':
			return i + 1
		case i+1 < len(data) && data[i] == '!' && data[i+1] == '>':
			return i + 2
		}
	}
}

// findEndTag returns the index just past the first "</name" end tag
// (any case) at or after from, or -1.
func findEndTag(data []byte, from int, name []byte) int {
	esc := scriptData
	end, _ := rawTextEnd(data, from, name, &esc)
	return end
}

// rawTextEnd returns the index just past the end tag of the raw text of
// name (lower case) going on at from, in escape state *esc when a script's
// (textEndAt); or -1, and the index from which data may hold the start of
// that end tag, *esc the state there.
func rawTextEnd(data []byte, from int, name []byte, esc *uint8) (end, safe int) {
	at, safe := textEndAt(data, from, name, esc)
	if at < 0 {
		return -1, safe
	}
	if end = tagEnd(data, at, name); end < 0 {
		return -1, at
	}
	return end, 0
}

// tagEnd returns the index just past the '>' that closes the end tag
// "</name" at data[at:] (found by endTagAt), or -1: at < 0, or the '>' has
// not arrived.
func tagEnd(data []byte, at int, name []byte) int {
	if at < 0 {
		return -1
	}
	k := at + 2 + len(name)
	e := bytes.IndexByte(data[k:], '>')
	if e < 0 {
		return -1
	}
	return k + e + 1
}

// textEndAt is endTagAt for the raw text of name (lower case), but for a
// script's: scriptEndAt, from escape state *esc, which it leaves as it is
// at safe.
func textEndAt(data []byte, from int, name []byte, esc *uint8) (at, safe int) {
	if string(name) == "script" {
		at, safe, *esc = scriptEndAt(data, from, *esc)
		return at, safe
	}
	return endTagAt(data, from, name)
}

// A script's text goes through escape states (HTML's tokenizer, "script
// data escaped" and "double escaped"): after "<!--" it is escaped, and an
// escaped text that opens "<script" is double escaped, where "</script"
// does not end the script but goes back to escaped. "-->" goes back to
// plain script data from either.
const (
	scriptData uint8 = iota
	scriptEscaped
	scriptDoubleEscaped
)

// scriptEndAt returns the index of the "</script" that ends a script's
// text, looking from from in escape state st; or -1, the index from which
// data may hold the start of it (or of what changes the state), and the
// state there.
func scriptEndAt(data []byte, from int, st uint8) (at, safe int, state uint8) {
	i := from
	for {
		var j int
		if st == scriptData {
			j = bytes.IndexByte(data[i:], '<')
		} else {
			j = bytes.IndexAny(data[i:], "<-")
		}
		if j < 0 {
			return -1, len(data), st
		}
		i += j
		rest := data[i:]
		if rest[0] == '-' { // escaped: "-->" ends it
			switch {
			case bytes.HasPrefix(rest, []byte("-->")):
				st, i = scriptData, i+3
			case bytes.HasPrefix([]byte("-->"), rest):
				return -1, i, st // too short to tell
			default:
				i++
			}
			continue
		}
		if len(rest) > 1 && rest[1] != '/' && rest[1] != '!' && (st == scriptData || rest[1] != 's' && rest[1] != 'S') {
			i++ // "a < b": nothing that ends or escapes a script
			continue
		}
		switch st {
		case scriptData:
			if n, ok := hasTagName(rest, "</script"); !ok {
				return -1, i, st
			} else if n > 0 {
				return i, 0, st
			}
			switch {
			case bytes.HasPrefix(rest, []byte("<!--")):
				// "<!--" leaves the tokenizer where a '>' (after more
				// dashes) goes back to script data: "<!-->" is no escape.
				k := i + 4
				for k < len(data) && data[k] == '-' {
					k++
				}
				if k == len(data) {
					return -1, i, st
				}
				if data[k] == '>' {
					i = k + 1
				} else {
					st, i = scriptEscaped, k
				}
			case bytes.HasPrefix([]byte("<!--"), rest):
				return -1, i, st
			default:
				i++
			}
		case scriptEscaped:
			if n, ok := hasTagName(rest, "</script"); !ok {
				return -1, i, st
			} else if n > 0 {
				return i, 0, st
			}
			if n, ok := hasTagName(rest, "<script"); !ok {
				return -1, i, st
			} else if n > 0 {
				st, i = scriptDoubleEscaped, i+n
				continue
			}
			i++
		default: // double escaped
			if n, ok := hasTagName(rest, "</script"); !ok {
				return -1, i, st
			} else if n > 0 {
				st, i = scriptEscaped, i+n
				continue
			}
			i++
		}
	}
}

// hasTagName reports whether rest begins with prefix ("</script",
// "<script": any case) followed by a space, '/' or '>': n is the length of
// the prefix then, else 0. ok is false when rest is too short to tell.
func hasTagName(rest []byte, prefix string) (n int, ok bool) {
	if m := min(len(rest), len(prefix)); !bytes.EqualFold(rest[:m], []byte(prefix[:m])) {
		return 0, true // not it
	}
	if len(rest) <= len(prefix) {
		return 0, false // too short to tell
	}
	if c := rest[len(prefix)]; c == '>' || isSpace(c) || c == '/' {
		return len(prefix), true
	}
	return 0, true
}

// endTagAt returns the index of the first "</name" (any case) at or after
// from that is followed by '>', '/' or a space: where the raw text of an
// element of that name ends. Or -1, and the index from which data may
// hold the start of it.
func endTagAt(data []byte, from int, name []byte) (at, safe int) {
	i := from
	for {
		j := bytes.Index(data[i:], []byte("</"))
		if j < 0 {
			return -1, max(i, len(data)-1) // a last '<' may begin one
		}
		i += j
		k := i + 2 + len(name)
		if k >= len(data) {
			return -1, i
		}
		if bytes.EqualFold(data[i+2:k], name) {
			if c := data[k]; c == '>' || isSpace(c) || c == '/' {
				return i, 0
			}
		}
		i += 2
	}
}

// parseTag parses a start or end tag at data[i] == '<' into t. It returns
// false when the tag is incomplete. t.end == 0 means "not a tag" (e.g.
// "</ "), to be treated as text. t is filled in place, not returned: it is
// parsed once per tag of every page, and copying it cost more than parsing.
// With values, it also notes where the tag's attribute values are
// (noteValue).
func parseTag(data []byte, i int, t *tag, values *[]uint32) bool {
	*t = tag{}
	p := i + 1
	if data[p] == '/' {
		t.closing = true
		p++
		if p >= len(data) {
			return false
		}
		if !isAlpha(data[p]) {
			// "</>" is dropped by browsers, "</ " is a bogus comment:
			// either way, copied as text.
			t.end = 0
			return true
		}
	}
	start := p
	for p < len(data) && class[data[p]]&nameEnd == 0 {
		p++
	}
	if p >= len(data) {
		return false
	}
	t.nameAt, t.nameEnd = start, p
	if lookedFor(p-start, data[start]) {
		t.fold(data)
	}
	// attributes
	for {
		for p < len(data) && (isSpace(data[p]) || data[p] == '/') {
			if data[p] == '/' && p+1 < len(data) && data[p+1] == '>' {
				t.selfClose = true
				t.closeAt = p
				t.end = p + 2
				return true
			}
			p++
		}
		if p >= len(data) {
			return false
		}
		if data[p] == '>' {
			t.closeAt = p
			t.end = p + 1
			return true
		}
		// attribute name (a leading '=' is part of the name, per the spec)
		ns := p
		p++
		for p < len(data) && class[data[p]]&attrEnd == 0 {
			p++
		}
		an := data[ns:p]
		for p < len(data) && isSpace(data[p]) {
			p++
		}
		if p >= len(data) {
			return false
		}
		var val []byte
		quoted := false
		if data[p] == '=' {
			p++
			for p < len(data) && isSpace(data[p]) {
				p++
			}
			if p >= len(data) {
				return false
			}
			switch q := data[p]; q {
			case '"', '\'':
				e := indexNear(data[p+1:], q)
				if e < 0 {
					return false
				}
				val = data[p+1 : p+1+e]
				p += e + 2
				quoted = true
			case '>':
				// "a=>" : empty value; '>' ends the tag
			default:
				vs := p
				for p < len(data) && class[data[p]]&valueEnd == 0 {
					p++
				}
				val = data[vs:p]
			}
		}
		if !t.closing {
			switch len(an) {
			case len(SlotAttr):
				if !t.hasSlot && bytes.EqualFold(an, []byte(SlotAttr)) {
					t.hasSlot = true
					t.slot = val
				}
			case len(SegmentAttr):
				if bytes.EqualFold(an, []byte(SegmentAttr)) {
					t.hasSeg = true
				}
			case len("shadowrootmode"):
				// The first of a name counts, as in browsers.
				if t.shadow == shadowUnset && bytes.EqualFold(an, []byte("shadowrootmode")) {
					t.shadow = shadowOther
					if bytes.EqualFold(val, []byte("open")) || bytes.EqualFold(val, []byte("closed")) {
						t.shadow = shadowMode
					}
				}
			}
		}
		if values != nil {
			t.noteValue(values, data, an, val, quoted, p)
		}
	}
}

// noteValue appends to values the start and end of the value val of the
// attribute an, which ends just before data[p] (its closing quote, when
// quoted), when the value is quoted and not one a Plan depends on: the
// slot attributes', or any of a tag whose values decide how the page is
// read (t.decides, for the caller to drop the tag's values).
func (t *tag) noteValue(values *[]uint32, data, an, val []byte, quoted bool, p int) {
	if !t.closing && decidingAttr(data[t.nameAt:t.nameEnd], an) {
		t.decides = true
	}
	if !quoted || bytes.EqualFold(an, []byte(SlotAttr)) || bytes.EqualFold(an, []byte(SegmentAttr)) {
		return
	}
	*values = append(*values, uint32(p-1-len(val)), uint32(p-1))
}

// decidingAttr reports the attributes whose values decide how a page is
// read, by the name of the element (as written) they are on: a <meta>'s
// declaring the encoding, a <template>'s making it a shadow root (whose
// slots are filled), an <annotation-xml>'s saying it holds HTML.
func decidingAttr(elem, an []byte) bool {
	switch {
	case bytes.EqualFold(elem, []byte("meta")):
		return bytes.EqualFold(an, []byte("charset")) || bytes.EqualFold(an, []byte("http-equiv"))
	case bytes.EqualFold(elem, []byte("template")):
		return bytes.EqualFold(an, []byte("shadowrootmode"))
	case bytes.EqualFold(elem, []byte("annotation-xml")):
		return bytes.EqualFold(an, []byte("encoding"))
	}
	return false
}

// indexNear is bytes.IndexByte for a byte that is usually near: the
// closing quote of an attribute value, the '<' after the text between two
// tags. Most are a few bytes away, fewer than it takes the vectorised
// search to pay for its setup, so the first bytes are looked at eight at a
// time in a word.
func indexNear(v []byte, q byte) int {
	const near = 32
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	pat := uint64(q) * ones
	i := 0
	for ; i+8 <= len(v) && i < near; i += 8 {
		// A byte of x is zero where v has q; the lowest flagged byte
		// is always such a zero (a borrow only flags bytes above one).
		x := binary.LittleEndian.Uint64(v[i:]) ^ pat
		if z := (x - ones) &^ x & highs; z != 0 {
			return i + bits.TrailingZeros64(z)>>3
		}
	}
	if i < near {
		for ; i < len(v); i++ {
			if v[i] == q {
				return i
			}
		}
		return -1
	}
	if e := bytes.IndexByte(v[i:], q); e >= 0 {
		return i + e
	}
	return -1
}

// appendSegmentAttr appends the segment attribute naming seg, with the
// space before it; nothing when seg is empty.
func appendSegmentAttr(dst []byte, seg string) []byte {
	if seg == "" {
		return dst
	}
	dst = append(dst, ' ')
	dst = append(dst, SegmentAttr...)
	dst = append(dst, '=', '"')
	dst = appendAttrEscaped(dst, seg)
	return append(dst, '"')
}

func appendAttrEscaped(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			dst = append(dst, "&quot;"...)
		case '&':
			dst = append(dst, "&amp;"...)
		case '<':
			dst = append(dst, "&lt;"...)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

func isAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isSpace(c byte) bool { return class[c]&space != 0 }

// Byte classes of the tag tokenizer, looked up instead of compared.
const (
	space    = 1 << iota // HTML whitespace
	nameEnd              // ends a tag name: whitespace, '/', '>'
	attrEnd              // ends an attribute name: nameEnd and '='
	valueEnd             // ends an unquoted value: whitespace, '>'
)

var class = func() (t [256]uint8) {
	for _, c := range []byte(" \t\n\r\f") {
		t[c] |= space | nameEnd | attrEnd | valueEnd
	}
	t['/'] |= nameEnd | attrEnd
	t['>'] |= nameEnd | attrEnd | valueEnd
	t['='] |= attrEnd
	return t
}()

// equalFoldASCII reports whether a and b are the same tag name: equal
// but for the case of ASCII letters, as HTML compares names.
func equalFoldASCII(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 32
	}
	return c
}

// listStack follows the lists (<ul>, <ol>, <menu>, <dl>) and list items
// (<li>, <dd>, <dt>) open at the scanner's place, innermost last, as far
// as a list item a block opens would close one of the page's: an item
// start tag closes the open item of its kind (HTML's tree construction
// looks for it past the elements around, up to a special one; that they
// are all such is assumed), and a list's end tag closes its items. Past
// maxLists levels it only counts.
type listStack struct {
	kinds [maxLists]listKind
	// bound is how many shields that end HTML's scopes were open where
	// each was opened (paraState.bounds): one opened outside a table
	// cell or an <object> open since is out of reach of an end tag.
	bound [maxLists]uint8
	n     int
}

// maxLists bounds the lists and items followed; pages nest a few.
const maxLists = 32

// listKind is what a listStack entry is.
type listKind uint8

const (
	listNone listKind = iota
	listList          // <ul>, <ol>, <menu>, <dl>
	listItem          // <li>
	listTerm          // <dd>, <dt>
)

// listKindOf returns what an element named name (lower case) is to a list.
func listKindOf(name []byte) listKind {
	switch string(name) {
	case "ul", "ol", "dl", "menu":
		return listList
	case "li":
		return listItem
	case "dd", "dt":
		return listTerm
	}
	return listNone
}

// top returns the innermost list or item open, or listNone.
func (l *listStack) top() listKind {
	if l.n == 0 || l.n > maxLists {
		return listNone
	}
	return l.kinds[l.n-1]
}

// start records the start tag of an element of kind k, opened with bound
// shields that end HTML's scopes open.
func (l *listStack) start(k listKind, bound int) {
	if k != listList && l.top() == k {
		return // closes the open item of its kind, and opens another
	}
	if l.n < maxLists {
		l.kinds[l.n], l.bound[l.n] = k, uint8(min(bound, 255))
	}
	l.n++
}

// end records the end tag of an element of kind k, met with bound shields
// open: it closes the innermost open one of its kind inside the innermost
// list, and what is open in it; a list's closes the list.
func (l *listStack) end(k listKind, bound int) {
	if i := l.find(k, bound); i >= 0 {
		l.n = i
	} else if l.n > maxLists {
		l.n-- // past what is followed: only counted
	}
}

// find returns where the innermost open element of kind k is that an end
// tag of its kind, met with bound shields open, closes, or -1: an item's
// is looked for in the innermost list only (no such item in this list:
// the end tag is ignored), and none past a shield opened inside it.
// Those opened inside a shield closed since were closed with it.
func (l *listStack) find(k listKind, bound int) int {
	bound = min(bound, 255)
	for i := min(l.n, maxLists) - 1; i >= 0; i-- {
		switch b := int(l.bound[i]); {
		case b > bound:
			continue
		case b < bound:
			return -1
		case l.kinds[i] == k:
			return i
		case l.kinds[i] == listList:
			return -1
		}
	}
	return -1
}

// paraState follows whether a <p> is open where the scanner is, and in
// reach of what a block there may hold: a <div> in the block would close
// it. Elements that shield what is inside them from a paragraph around
// them (a <button>, a <table> and its cells, an <object>) each start a
// level of their own, where a paragraph may be open in turn; their end
// tags bring back the level around them. (A <template>'s content starts
// a paraState of its own: templateLevel.) A <button> whose level is the
// innermost is in reach too: another one would close it. Past maxShields
// levels it only counts, and takes no paragraph to be open.
type paraState struct {
	levels [maxShields + 1]paraLevel // [0]: the document's
	n      int                       // shields open
	// outerLink: a link is open around the element holding HTML in SVG
	// or MathML that this paraState is inside (scanner.syncPoints).
	outerLink bool
}

// maxShields bounds the shielding elements followed; pages nest a few.
const maxShields = 16

// paraLevel is one level of a paraState.
type paraLevel struct {
	shield shieldKind
	open   bool // a <p> is open in it
	// link: an <a> opened in it is open. A link's end tag closes the one
	// of its level; one opened outside a table cell, an <object> or a
	// <button> open since is out of its reach (browsers' list of
	// formatting elements has a marker at the first two; at the button
	// it would move the button), and is taken to stay open.
	link bool
}

// shieldKind is an element that keeps a paragraph around it out of reach
// (HTML's button scope).
type shieldKind uint8

const (
	shieldNone shieldKind = iota
	shieldButton
	shieldTable
	shieldCell // <td>, <th>
	shieldCaption
	shieldObject // <object>, <applet>, <marquee>
)

// shieldOf returns the shield an element named name (lower case) is.
func shieldOf(name []byte) shieldKind {
	switch string(name) {
	case "button":
		return shieldButton
	case "table":
		return shieldTable
	case "td", "th":
		return shieldCell
	case "caption":
		return shieldCaption
	case "object", "applet", "marquee":
		return shieldObject
	}
	return shieldNone
}

// linked reports whether a link is open, in reach or not: past
// maxShields levels, one is taken to be.
func (p *paraState) linked() bool {
	if p.outerLink || p.n > maxShields {
		return true
	}
	for i := range p.n + 1 {
		if p.levels[i].link {
			return true
		}
	}
	return false
}

// linkHere reports whether a link is open in the current level: its end
// tag would close it.
func (p *paraState) linkHere() bool {
	c := p.cur()
	return c != nil && c.link
}

// startLink and endLink record a link's start and end tag.
func (p *paraState) startLink() {
	if c := p.cur(); c != nil {
		c.link = true
	}
}

func (p *paraState) endLink() {
	if c := p.cur(); c != nil {
		c.link = false
	}
}

// bounds counts the shields open that end HTML's scopes (all but a
// <button>): a list or item opened outside the innermost is out of its
// reach (listStack).
func (p *paraState) bounds() int {
	b := max(0, p.n-maxShields)
	for i := 1; i <= min(p.n, maxShields); i++ {
		if p.levels[i].shield != shieldButton {
			b++
		}
	}
	return b
}

// open reports whether a <p> is open and in reach.
func (p *paraState) open() bool {
	return p.n <= maxShields && p.levels[p.n].open
}

// cur returns the current level, or nil past maxShields.
func (p *paraState) cur() *paraLevel {
	if p.n > maxShields {
		return nil
	}
	return &p.levels[p.n]
}

// start records a start tag: name is the element's (lower case; "" for a
// name not lower-cased, which is none that matters here), para says it is
// a <p>, quirks that the document is in quirks mode (a <table> leaves a
// <p> open).
func (p *paraState) start(name []byte, para, quirks bool) {
	if para {
		if c := p.cur(); c != nil {
			c.open = true // closes an open one, and opens its own
		}
		return
	}
	if c := p.cur(); c != nil && c.open && closesParagraph(string(name)) && !(quirks && string(name) == "table") {
		c.open = false
	}
	k := shieldOf(name)
	top := p.top()
	switch {
	case k == shieldButton && top == shieldButton, k == shieldCell && top == shieldCell:
		p.popTo(p.n - 1) // a button closes an open button; a cell the open cell
	case k == shieldNone && string(name) == "tr" && top == shieldCell:
		p.popTo(p.n - 1) // a row closes the open cell
	}
	if k != shieldNone {
		p.n++
		if p.n <= maxShields {
			p.levels[p.n] = paraLevel{shield: k}
		}
	}
}

// end records an end tag, as start does.
func (p *paraState) end(name []byte, para bool) {
	if para {
		if c := p.cur(); c != nil {
			c.open = false
		}
		return
	}
	if k := shieldOf(name); k != shieldNone {
		p.close(k)
		return
	}
	if string(name) == "tr" && p.top() == shieldCell {
		p.popTo(p.n - 1) // closes the open cell
	}
	// The end tag of an element that cannot be inside a paragraph (a
	// </div>) closes one inside it, but is ignored if there is no such
	// element (a stray end tag, as broken pages have): not knowing which,
	// the paragraph is taken to be still open. That costs a block with a
	// <div> a <span> slot right after <div><p>text</div>, but never lets
	// one into a paragraph.
}

// popTo closes the levels past n. A link open in a button's level stays
// open (browsers open it again after the button, as a formatting element
// no marker ends), in the level the button was in; one in a cell's, a
// caption's or an object's is closed with it.
func (p *paraState) popTo(n int) {
	carry := false
	for i := min(p.n, maxShields); i > n; i-- {
		carry = carry || p.levels[i].link
		if p.levels[i].shield != shieldButton {
			carry = false
		}
	}
	p.n = n
	if c := p.cur(); c != nil && carry {
		c.link = true
	}
}

// top returns the innermost shield open.
func (p *paraState) top() shieldKind {
	if p.n == 0 || p.n > maxShields {
		return shieldNone
	}
	return p.levels[p.n].shield
}

// close records the end tag of a shield of kind k: it closes the
// innermost open one, and what is open inside it, but not past a table
// (the end tag of a button inside a table cell is ignored).
func (p *paraState) close(k shieldKind) {
	if p.n > maxShields {
		p.n-- // past what is followed: only counted
		return
	}
	if i := p.find(k); i > 0 {
		p.popTo(i - 1)
	}
}

// find returns the level of the innermost open shield of kind k that its
// end tag closes, or 0: not past a table, and a button's or an object's
// not past a cell, a caption or an object either (HTML's scope, where a
// table's and a cell's end tags look in table scope).
func (p *paraState) find(k shieldKind) int {
	for i := min(p.n, maxShields); i >= 1; i-- {
		sh := p.levels[i].shield
		switch {
		case sh == k:
			return i
		case sh == shieldTable:
			return 0
		case (k == shieldButton || k == shieldObject) && sh != shieldButton:
			return 0
		}
	}
	return 0
}

// foreignStack follows the SVG and MathML elements open where the scanner
// is, innermost last, as HTML's tree construction keeps them: an <svg> or
// <math> start tag in HTML opens one; inside, each element that is not
// closed at once ("/>") is another, until an HTML element breaks out of
// them (a <div>, <p>, <b>, ..., which closes them all, up to one that
// holds HTML) or their end tags close them. Their names are kept as
// hashes. Past maxForeign elements it only counts, and takes its place
// to be foreign content.
type foreignStack struct {
	names [maxForeign]uint32
	html  [maxForeign]bool // the element holds HTML (<foreignObject>, <mtext>, ...)
	math  [maxForeign]bool // a MathML element; else SVG
	// inner are the HTML elements open inside elements that hold HTML,
	// innermost last, as name hashes (innerSpecial marks HTML's special
	// ones); base[i] is where those inside level i start. With none open
	// inside it, an end tag there is read as in SVG and MathML: it
	// closes the element (</foreignObject>), or one of its name around it
	// (an </svg> right after a <foreignObject>'s content closes both);
	// with one open, browsers ignore it. Past maxInner they are only
	// counted.
	inner  [maxInner]uint32
	base   [maxForeign]uint8
	nInner int
	n      int
	// unsure names the end tag (lower case) after which the scanner
	// cannot tell whether it is still in SVG or MathML: one met in
	// foreign content that names none of the elements open, walking
	// down to the HTML around them, which the scanner does not follow
	// (onTag). Browsers leave the SVG there when an HTML element of
	// that name is open around it (<span><svg></span>: an icon's <svg>
	// left unclosed), and ignore the end tag otherwise. It holds until
	// the SVG and MathML elements are closed either way: by their own
	// end tags, or by an HTML start tag that breaks out of them.
	unsure string
	// points are what the elements that hold HTML open set aside
	// (scanner.syncPoints), innermost last; nPoints counts them, past
	// maxPoints too.
	points  [maxPoints]pointLevel
	nPoints int
}

// pointLevel is what an element that holds HTML inside SVG or MathML set
// aside: the paragraphs and lists open around it.
type pointLevel struct {
	paras paraState
	lists listStack
}

// maxPoints bounds the elements that hold HTML followed inside each other.
const maxPoints = 4

// holding counts the elements open that hold HTML.
func (f *foreignStack) holding() int {
	n := 0
	for i := range min(f.n, maxForeign) {
		if f.html[i] {
			n++
		}
	}
	return n
}

// maxInner bounds the HTML elements followed inside SVG's and MathML's
// elements that hold HTML.
const maxInner = 16

// innerSpecial marks the hash of an element HTML calls special (a <div>,
// a <p>, ...) in foreignStack.inner: an end tag of another name is
// ignored while one is open. The hashes kept there and compared with
// them are innerHash's, without that bit.
const innerSpecial = 1 << 31

// innerHash is the hash of the name of an HTML element, as
// foreignStack.inner keeps it.
func innerHash(name []byte) uint32 { return nameHash(name) &^ innerSpecial }

// maxForeign bounds the SVG and MathML elements followed; icons nest a few.
const maxForeign = 32

// foreign reports foreign content: an SVG or MathML element is open, and
// the innermost one does not hold HTML.
func (f *foreignStack) foreign() bool {
	return f.n > 0 && (f.n > maxForeign || !f.html[f.n-1])
}

// popTo closes the elements open from level i on, and the HTML elements
// inside them.
func (f *foreignStack) popTo(i int) {
	if i < f.n && i < maxForeign {
		f.nInner = int(f.base[i])
	}
	f.n = i
	if i == 0 {
		f.unsure = ""
	}
}

// rootName is the outermost open SVG or MathML element, for a message.
func (f *foreignStack) rootName() string {
	if f.n > 0 && f.math[0] {
		return "<math>"
	}
	return "<svg>"
}

// endWalk follows an end tag named by hash h, met in foreign content,
// as HTML's tree construction does: from the innermost element open
// down, the first of its name closes it, and those opened after it;
// the walk ends at the first HTML element, where the end tag is read
// as HTML. It returns the level of the element of that name (-1 when
// none), else the lowest level walked: at 0, that HTML element is
// around the SVG, and not followed here; above 0, it is one open inside
// the element below, which holds HTML. scoped reports an element among
// those walked that ends HTML's scopes (a <foreignObject>, an
// <annotation-xml>, ...): read as HTML, the end tag is then ignored.
func (f *foreignStack) endWalk(h uint32) (match, low int, scoped bool) {
	for k := min(f.n, maxForeign) - 1; k >= 0; k-- {
		if f.names[k] == h {
			return k, k, scoped
		}
		scoped = scoped || f.html[k] || f.names[k] == annotationHash
		if k == 0 || f.base[k] > f.base[k-1] {
			return -1, k, scoped
		}
	}
	return -1, 0, true // past what is followed
}

// foreignEnd handles an end tag, named name (low: lower case, or ""),
// met in foreign content that it does not break out of: it closes the
// innermost open element of its name walking down to the first HTML
// element (endWalk), or is read as HTML there, when that element is one
// open inside an element that holds HTML. Else it is ignored here; the
// scanner looks at one read against the HTML around the SVG.
func (f *foreignStack) foreignEnd(name []byte, low string) {
	if f.n > maxForeign {
		f.closeNamed(nameHash(name))
		return
	}
	match, k, scoped := f.endWalk(nameHash(name))
	switch {
	case match >= 0:
		f.popTo(match)
	case scoped || k == 0 || int(f.base[k]) > maxInner:
	case low == "form":
		// Read as HTML there, a form's end tag takes the form out of the
		// elements open, and leaves those opened inside it open, the SVG
		// or MathML among them. (It stays among the inner elements here:
		// an end tag reaching past it is taken to be ignored.)
	default:
		// The innermost HTML element inside level k-1, which holds HTML,
		// is first: the end tag is read as HTML there, and closes the
		// SVG above it with what it closes, or is ignored.
		was := *f
		f.popTo(k)
		n := f.nInner
		f.innerEnd(innerHash(name), special(low))
		if f.nInner == n {
			*f = was
		}
	}
}

// innerOpen reports whether an HTML element is open inside the innermost
// element, which holds HTML.
func (f *foreignStack) innerOpen() bool {
	return f.nInner > int(f.base[f.n-1])
}

// innerStart records the start tag of an HTML element named low (lower
// case; "" for a long name) inside the innermost element, which holds
// HTML: it closes a <p>, <li>, <dd> or <dt> open inside as HTML does, and
// opens one unless void or passed over to its end tag (raw text, a
// <template>). It reports whether it opened one.
func (f *foreignStack) innerStart(name []byte, low string) bool {
	b := []byte(low)
	switch {
	case low == "li":
		f.innerClose(liHash, liHash)
	case low == "dd" || low == "dt":
		f.innerClose(ddHash, dtHash)
	}
	if closesParagraph(low) {
		f.innerCloseInScope(pHash)
	}
	if isVoid(b) || isRawText(b) || low == "template" {
		return false
	}
	h := innerHash(name)
	if special(low) {
		h |= innerSpecial
	}
	if f.nInner < maxInner {
		f.inner[f.nInner] = h
	}
	f.nInner++
	return true
}

// innerClose closes an open item of a list (h1 or h2: <li>, or <dd> and
// <dt>) that a new one closes: the innermost, unless a special element
// other than an <address>, <div> or <p> is open inside it.
func (f *foreignStack) innerClose(h1, h2 uint32) {
	for i := min(f.nInner, maxInner) - 1; i >= int(f.base[f.n-1]); i-- {
		switch h := f.inner[i] &^ innerSpecial; {
		case h == h1 || h == h2:
			f.nInner = i
			return
		case f.inner[i]&innerSpecial != 0 && h != addressHash && h != divHash && h != pHash:
			return
		}
	}
}

// innerCloseInScope closes the innermost open element named by hash h
// (a <p> a <div> closes, the element of an end tag), and those inside
// it, unless an element that ends HTML's scopes (a table, a cell, a
// button, ...) is open inside it.
func (f *foreignStack) innerCloseInScope(h uint32) {
	for i := min(f.nInner, maxInner) - 1; i >= int(f.base[f.n-1]); i-- {
		e := f.inner[i] &^ innerSpecial
		if e == h {
			f.nInner = i
			return
		}
		if scopeHashes[e] {
			return
		}
	}
}

// innerEnd records an HTML end tag named by hash h, of an element HTML
// calls special or not, inside the innermost element, which holds HTML:
// it closes the innermost open element of its name. A special one's
// closes those opened inside it too (</div> a <p> left open), short of a
// scope's end; another's is ignored past a special element, as browsers
// do. One of no open element's name is ignored.
func (f *foreignStack) innerEnd(h uint32, isSpecial bool) {
	if f.nInner > maxInner {
		f.nInner-- // past what is followed: only counted
		return
	}
	if isSpecial {
		f.innerCloseInScope(h)
		return
	}
	for i := f.nInner - 1; i >= int(f.base[f.n-1]); i-- {
		if f.inner[i]&^innerSpecial == h {
			f.nInner = i
			return
		}
		if f.inner[i]&innerSpecial != 0 {
			return
		}
	}
}

// Name hashes the inner HTML elements are compared with.
var (
	pHash, liHash, ddHash, dtHash = innerHash([]byte("p")), innerHash([]byte("li")), innerHash([]byte("dd")), innerHash([]byte("dt"))
	addressHash, divHash          = innerHash([]byte("address")), innerHash([]byte("div"))
	// scopeHashes are the HTML elements that end HTML's scopes ("has an
	// element in scope"), and a <button>, which ends a paragraph's.
	scopeHashes = hashSet("applet", "caption", "html", "table", "td", "th", "marquee", "object", "template", "button")
)

func hashSet(names ...string) map[uint32]bool {
	m := make(map[uint32]bool, len(names))
	for _, n := range names {
		m[innerHash([]byte(n))] = true
	}
	return m
}

// closeNamed closes the innermost open element named by hash h, and those
// opened after it, if one is open.
func (f *foreignStack) closeNamed(h uint32) {
	for i := min(f.n, maxForeign) - 1; i >= 0; i-- {
		if f.names[i] == h {
			f.popTo(i)
			return
		}
	}
}

// has reports whether an element named by hash h is open.
func (f *foreignStack) has(h uint32) bool {
	for i := range min(f.n, maxForeign) {
		if f.names[i] == h {
			return true
		}
	}
	return false
}

// push records an open element named by hash h, MathML or SVG.
func (f *foreignStack) push(h uint32, html, math bool) {
	if f.n < maxForeign {
		f.names[f.n], f.html[f.n], f.math[f.n], f.base[f.n] = h, html, math, uint8(min(f.nInner, maxInner+1))
	}
	f.n++
}

// inMath reports whether the innermost element open is MathML: an
// element opened in foreign content is of its parent's kind (a <math> in
// an SVG is SVG's).
func (f *foreignStack) inMath() bool {
	return f.n > 0 && f.n <= maxForeign && f.math[f.n-1]
}

// reads reports whether tag may change the SVG and MathML elements open
// (tag is to be called): outside them, only an <svg> or <math> start tag
// does (lower-cased by parseTag: lookedFor), and most tags are ruled out
// by the length of their name alone.
func (f *foreignStack) reads(t *tag) bool {
	return f.n > 0 || !t.closing && uint(t.lowLen-3) <= 1
}

// tag records what tag t (at data) does to the SVG and MathML elements
// open, before the rest of the reader reads it: in foreign content, an HTML
// start tag that breaks out of it is then read as HTML. It reports whether
// t opened an element that its end tag closes: pushed, an SVG or MathML
// one; opened, an HTML one inside an element that holds HTML. Outside SVG
// and MathML only an <svg> or <math> start tag matters (onTag calls it for
// those alone).
func (f *foreignStack) tag(data []byte, t *tag) (pushed, opened bool) {
	name := data[t.nameAt:t.nameEnd]
	var buf [len("annotation-xml")]byte
	low := lowerName(buf[:], name) // "" for a name longer than any compared
	switch {
	case f.foreign() && (breaksOutOfForeign(low, t.closing) || !t.closing && low == "font" && t.readOtherwise(data, otherFont)):
		for f.foreign() {
			f.popTo(f.n - 1)
		}
		// Then read as HTML: inside an element that holds it, if one is
		// open.
		switch {
		case f.n == 0 || f.n > maxForeign:
		case !t.closing:
			opened = f.innerStart(name, low)
		case f.innerOpen():
			f.innerEnd(innerHash(name), special(low))
		}
	case f.foreign() && t.closing:
		f.foreignEnd(name, low)
	case f.foreign():
		// A <script> or <style> here holds markup, as any element does.
		if !t.selfClose {
			// Of its parent's kind, but that an <svg> in MathML's
			// <annotation-xml> is SVG.
			math := f.inMath() && !(low == "svg" && f.names[f.n-1] == annotationHash)
			html := holdsHTML(low, math) || math && low == "annotation-xml" && t.readOtherwise(data, otherAnnotation)
			f.push(nameHash(name), html, math)
			pushed = true
		}
	case t.closing:
		// In HTML inside an element that holds it (foreignStack.inner).
		if f.n == 0 || f.n > maxForeign {
			break
		}
		switch h := nameHash(name); {
		case f.has(h):
			if !f.innerOpen() {
				f.closeNamed(h)
			}
		case f.innerOpen():
			f.innerEnd(innerHash(name), special(low))
		}
	case !t.selfClose && (low == "svg" || low == "math"):
		f.push(nameHash(name), false, low == "math")
		pushed = true
	case f.n > 0 && f.n <= maxForeign:
		opened = f.innerStart(name, low) // an HTML element in an element that holds HTML
	}
	return pushed, opened
}

// annotationHash is MathML's <annotation-xml>'s name's: an <svg> in it
// is SVG, and a link's end tag does not reach past it.
var annotationHash = nameHash([]byte("annotation-xml"))

// nameHash is the FNV-1a hash of name, lower-cased.
func nameHash(name []byte) uint32 {
	h := uint32(2166136261)
	for _, c := range name {
		h ^= uint32(lower(c))
		h *= 16777619
	}
	return h
}

// lowerName returns name lower-cased in buf, or "" when it does not fit:
// no name compared with one is that long.
func lowerName(buf []byte, name []byte) string {
	if len(name) > len(buf) {
		return ""
	}
	for i, c := range name {
		buf[i] = lower(c)
	}
	return string(buf[:len(name)])
}

// readOtherwise reports whether the start tag t (at data), a <font> (kind
// otherFont) or an <annotation-xml> (otherAnnotation), is read otherwise
// in SVG and MathML for its attributes: a <font> with a color, face or
// size breaks out of them, an <annotation-xml> whose encoding is HTML
// holds HTML. Such tags are rare, and read again here (otherwiseOf); an
// encoding with a character reference in it, by the tokenizer blocks are
// read with.
func (t *tag) readOtherwise(data []byte, kind int) bool {
	switch t.otherwiseOf(data, kind) {
	case otherYes:
		return true
	case otherAsk:
		if kind == otherFont {
			return t.tokenized(data, breaksOut)
		}
		return t.tokenized(data, annotationOfHTML)
	}
	return false
}

// The start tags readOtherwise reads.
const (
	otherFont = iota
	otherAnnotation
)

// otherAttr is what otherwiseOf read of a tag's attributes.
type otherAttr uint8

const (
	otherNo  otherAttr = iota // nothing that changes how it is read
	otherYes                  // a font's color, face or size; an encoding of HTML
	otherAsk                  // an encoding with a character reference: for the tokenizer
	otherNot                  // an encoding of something else
)

// otherwiseOf reads the attributes of t (at data), a complete start tag
// parseTag parsed, as parseTag does, for what readOtherwise asks: any of
// a font's color, face or size; an annotation's first encoding (browsers
// drop a later attribute of a name).
func (t *tag) otherwiseOf(data []byte, kind int) otherAttr {
	p, end := t.nameEnd, t.closeAt
	got := otherNo
	for p < end && got == otherNo {
		for p < end && (isSpace(data[p]) || data[p] == '/') {
			p++
		}
		if p >= end {
			break
		}
		ns := p // a leading '=' is part of the name
		p++
		for p < end && class[data[p]]&attrEnd == 0 {
			p++
		}
		an := data[ns:p]
		for p < end && isSpace(data[p]) {
			p++
		}
		var val []byte
		if p < end && data[p] == '=' {
			p++
			for p < end && isSpace(data[p]) {
				p++
			}
			switch {
			case p >= end:
			case data[p] == '"' || data[p] == '\'':
				e := bytes.IndexByte(data[p+1:end], data[p])
				if e < 0 {
					return otherAsk // not as parseTag read it: let the tokenizer say
				}
				val = data[p+1 : p+1+e]
				p += e + 2
			default:
				vs := p
				for p < end && class[data[p]]&valueEnd == 0 {
					p++
				}
				val = data[vs:p]
			}
		}
		switch {
		case kind == otherFont:
			if bytes.EqualFold(an, []byte("color")) || bytes.EqualFold(an, []byte("face")) || bytes.EqualFold(an, []byte("size")) {
				got = otherYes
			}
		case bytes.EqualFold(an, []byte("encoding")):
			switch {
			case bytes.IndexByte(val, '&') >= 0:
				got = otherAsk // "text&sol;html" is text/html
			case bytes.EqualFold(val, []byte("text/html")) || bytes.EqualFold(val, []byte("application/xhtml+xml")):
				got = otherYes
			default:
				got = otherNot
			}
		}
	}
	return got
}

// tokenized is readOtherwise by the tokenizer alone.
func (t *tag) tokenized(data []byte, by func(name string, z *html.Tokenizer, hasAttr bool) bool) bool {
	z := html.NewTokenizer(bytes.NewReader(data[t.nameAt-1 : t.end]))
	z.Next()
	name, hasAttr := z.TagName()
	return by(string(name), z, hasAttr)
}

// breaksOutOfForeign reports the tags (lower case) that, in foreign
// content, close the SVG and MathML elements open and are read as HTML:
// the start tags leavesForeign names, </br> and </p>. (<font> does too
// when it has a color, face or size: breaksOut.)
func breaksOutOfForeign(name string, closing bool) bool {
	if closing {
		return name == "br" || name == "p"
	}
	return leavesForeign(name)
}
