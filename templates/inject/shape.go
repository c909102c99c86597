package inject

import (
	"bytes"
	"slices"
)

// Shape is what a block holds that not every slot element can hold. A
// browser reading the page moves such content out of the slot element,
// and so out of the slot: a <div> out of a <p> (the <div> closes it), a
// row's text out of its <table>, a link out of a link. The block is well
// formed (CheckBlock) and still breaks the page around its slot. A Shape
// is read once, when a block is rendered (ReadBlock), and compared with
// each slot element it is to fill (Misfit).
type Shape uint32

// What a block may hold that some slot elements cannot: start tags as the
// browser meets them, at the block's top level (not inside an element the
// block opened) or anywhere their effect reaches out of the block.
const (
	// ClosesP: a start tag that closes an open <p> (div, p, ul, table,
	// h1, hr, ...), not inside an element of the block that shields it
	// (button, table, td, object, ...).
	ClosesP Shape = 1 << iota
	// TopHeading: an <h1>–<h6> at the top level; it closes a heading.
	TopHeading
	// HasLink: an <a> that is not inside a cell, caption, object or
	// template of the block; it closes an open <a>.
	HasLink
	// HasButton: a <button> not inside a table, cell, object or template
	// of the block; it closes an open <button>.
	HasButton
	// TopText: text other than white space at the top level.
	TopText
	// TopFlow: an element at the top level that is not a part of a table
	// or a <select> (a <div>, <span>, <img>, ...).
	TopFlow
	// TopSection: a <caption>, <colgroup>, <col>, <thead>, <tbody> or
	// <tfoot> outside a <table> of the block's own.
	TopSection
	// TopRow: a <tr> outside a <table> of the block's own.
	TopRow
	// TopCell: a <td> or <th> outside a <table> of the block's own.
	TopCell
	// TopOption: an <option> or <optgroup> at the top level.
	TopOption
	// LooseItem: an <li> at the top level or inside only passable
	// elements of the block (<div>, <p>, <address>, <span>, <b>, ...); it
	// closes an open <li>.
	LooseItem
	// LooseTerm: a <dd> or <dt> so placed; it closes an open <dd> or <dt>.
	LooseTerm
	// LeftOpen: the block ends with a <p>, <li>, <dd> or <dt> left open
	// (HTML allows it): the end tag of a formatting element around it (an
	// <a> or <b> slot) then moves it out, and that of an element that is
	// not special (a <span> slot) is ignored.
	LeftOpen
	// Deep: the block nests elements deeper than maxShapeDepth, past which
	// its shape is not followed; it fits no slot element.
	Deep
	// OpenP, OpenLi, OpenDd and OpenDt: the block leaves that element
	// open (LeftOpen). The end tag of a slot element of the same name
	// then closes the block's, not the slot.
	OpenP
	OpenLi
	OpenDd
	OpenDt
	// HasForm: a <form> not inside a <template> of the block. Inside a
	// form of the page browsers ignore it, its fields go to the page's
	// form, and its end tag ends the page's form.
	HasForm
	// ClosesSelect: an <input> or <select> not inside a table, cell,
	// object or template of the block; it closes an open <select>.
	ClosesSelect
	// BreaksSVG and BreaksMath: filling an SVG (MathML) slot, the block
	// holds an element that breaks out of it (a <div>, <span>, <b>, <p>,
	// <img>, <br>, a <font> with a color, ...) where it is read as SVG
	// (MathML): not inside an element that holds HTML there, as an SVG
	// <foreignObject> does. Or a <script> or <textarea> whose text holds
	// a '<', markup there.
	BreaksSVG
	BreaksMath
)

// maxShapeDepth bounds the nesting a block's shape is followed to. Each
// start tag looks through the elements open around it, so an unbounded
// depth would make reading a block (up to 1 MiB of nested elements)
// quadratic; blocks editors write nest a dozen deep.
const maxShapeDepth = 64 // Misfit's reason for Deep says 64 too

// shapeReader reads a block's Shape as CheckBlock reads its tokens. It
// keeps its own stack of the block's open elements, closing those the
// browser closes for the page (a <p> at a <div>, an <li> at the next <li>,
// a cell at the next row), which CheckBlock's stack leaves open.
type shapeReader struct {
	shape Shape
	open  []element
	deep  bool // the block nests past maxShapeDepth: no longer followed
}

// start records the start tag of e, an element read as HTML (<svg> and
// <math> included); void says it has no content.
func (r *shapeReader) start(e element, void bool) {
	if r.deep || len(r.open) >= maxShapeDepth {
		r.deep = true
		return
	}
	name := e.name
	if closesParagraph(name) {
		r.closeTo("p", buttonScope)
	}
	switch name {
	case "li":
		r.closeLoose("li", "li")
	case "dd", "dt":
		r.closeLoose("dd", "dt")
	case "td", "th":
		r.closeTablePart("td", "th", "caption", "colgroup")
	case "tr":
		r.closeTablePart("tr", "td", "th", "caption", "colgroup")
	case "caption", "colgroup", "col", "thead", "tbody", "tfoot":
		r.closeTablePart("tbody", "thead", "tfoot", "tr", "td", "th", "caption", "colgroup")
	}
	r.shape.start(name, r.open)
	if !void {
		r.open = append(r.open, e)
	}
}

// push records the start tag of an SVG or MathML element that has content.
func (r *shapeReader) push(e element) {
	if r.deep || len(r.open) >= maxShapeDepth {
		r.deep = true
		return
	}
	r.open = append(r.open, e)
}

// breakOut closes the SVG and MathML elements an HTML start tag leaves.
func (r *shapeReader) breakOut() {
	for len(r.open) > 0 && r.open[len(r.open)-1].foreign && !r.open[len(r.open)-1].integration {
		r.open = r.open[:len(r.open)-1]
	}
}

// end records an end tag: it closes the nearest open element of its name,
// and what was opened after it.
func (r *shapeReader) end(name string) {
	if r.deep {
		return
	}
	for i := len(r.open) - 1; i >= 0; i-- {
		if r.open[i].name == name {
			r.open = r.open[:i]
			return
		}
	}
}

// text records text, raw as written.
func (r *shapeReader) text(raw []byte) {
	if !r.deep {
		r.shape.text(raw, r.open)
	}
}

// finish returns the Shape, with what the block leaves open.
func (r *shapeReader) finish() Shape {
	if r.deep {
		return r.shape | Deep
	}
	for _, e := range r.open {
		if e.foreign {
			continue
		}
		switch e.name {
		case "p":
			r.shape |= LeftOpen | OpenP
		case "li":
			r.shape |= LeftOpen | OpenLi
		case "dd":
			r.shape |= LeftOpen | OpenDd
		case "dt":
			r.shape |= LeftOpen | OpenDt
		}
	}
	return r.shape
}

// closeTo closes the nearest open element named name, if one is in scope.
func (r *shapeReader) closeTo(name string, scope int) {
	for i := len(r.open) - 1; i >= 0; i-- {
		e := r.open[i]
		if e.name == name && !e.foreign {
			r.open = r.open[:i]
			return
		}
		if shielded(r.open[i:i+1], scope) {
			return
		}
	}
}

// closeLoose closes an open element named a or b, when only elements
// that let the start tag through (passable) stand between it and the
// start tag (HTML's rule for <li>, <dd> and <dt>).
func (r *shapeReader) closeLoose(a, b string) {
	for i := len(r.open) - 1; i >= 0; i-- {
		e := r.open[i]
		if e.foreign {
			return
		}
		if e.name == a || e.name == b {
			r.open = r.open[:i]
			return
		}
		if !passable(e.name) {
			return
		}
	}
}

// passable reports whether an <li>, <dd> or <dt> start tag looks past an
// open element named name for one of its kind to close: <div>, <p>,
// <address>, and any element HTML's tree construction does not call
// special (a <span>, <b>, <a>, <dialog>, a custom element).
func passable(name string) bool {
	return name == "div" || name == "p" || name == "address" || name == "dialog" || !special(name)
}

// closeTablePart closes, for a table part's start tag, the outermost open
// element named in parts within the block's innermost table (or, with
// none, within the table around the block): a row closes the open row and
// its cells, a cell the open cell.
func (r *shapeReader) closeTablePart(parts ...string) {
	for i := range r.open {
		if r.open[i].foreign {
			continue
		}
		if slices.Contains(parts, r.open[i].name) && !containsTable(r.open[i+1:]) {
			r.open = r.open[:i]
			return
		}
	}
}

// containsTable reports whether stack holds an HTML <table> or <template>,
// whose parts a table part after it belongs to.
func containsTable(stack []element) bool {
	for _, e := range stack {
		if !e.foreign && (e.name == "table" || e.name == "template") {
			return true
		}
	}
	return false
}

// start records the start tag of an HTML element named name (lower case),
// met with the block's own open elements on stack.
func (s *Shape) start(name string, stack []element) {
	top := len(stack) == 0
	if closesParagraph(name) && !shielded(stack, buttonScope) {
		*s |= ClosesP
	}
	switch name {
	case "h1", "h2", "h3", "h4", "h5", "h6":
		if top {
			*s |= TopHeading
		}
	case "a":
		if !shielded(stack, marker) {
			*s |= HasLink
		}
	case "button":
		if !shielded(stack, defaultScope) {
			*s |= HasButton
		}
	case "input", "select":
		if !shielded(stack, defaultScope) {
			*s |= ClosesSelect
		}
	case "form":
		if !slices.ContainsFunc(stack, func(e element) bool { return e.name == "template" && !e.foreign }) {
			*s |= HasForm
		}
	case "li":
		if loose(stack) {
			*s |= LooseItem
		}
	case "dd", "dt":
		if loose(stack) {
			*s |= LooseTerm
		}
	}
	if !containsTable(stack) {
		// A table part outside a table of the block's own belongs to
		// the table around it, or, with none, is dropped.
		switch name {
		case "caption", "colgroup", "col", "thead", "tbody", "tfoot":
			*s |= TopSection
		case "tr":
			*s |= TopRow
		case "td", "th":
			*s |= TopCell
		}
	}
	if !top {
		// Inside the block's own rows, outside any cell or table of its
		// own, anything but a table part is in the slot's table.
		if rowLevel(stack) && !tableContent(name) {
			*s |= TopFlow
		}
		return
	}
	switch name {
	case "caption", "colgroup", "col", "thead", "tbody", "tfoot", "tr", "td", "th":
		// table parts, above
	case "option", "optgroup":
		*s |= TopOption
	case "script", "template", "style":
		// allowed in tables and selects, as in any element
	default:
		*s |= TopFlow
	}
}

// text records text read (raw, as written) at the block's top level, or
// inside only its rows and row groups.
func (s *Shape) text(raw []byte, stack []element) {
	if rowLevel(stack) && len(bytes.Trim(raw, " \t\n\f\r")) > 0 {
		*s |= TopText
	}
}

// rowLevel reports whether stack holds only row groups and rows: what is
// read there belongs to the table around the block, if any.
func rowLevel(stack []element) bool {
	for _, e := range stack {
		switch e.name {
		case "tbody", "thead", "tfoot", "tr":
		default:
			return false
		}
	}
	return true
}

// tableContent reports the elements a table takes where they stand.
func tableContent(name string) bool {
	switch name {
	case "caption", "colgroup", "col", "thead", "tbody", "tfoot", "tr", "td", "th", "script", "template", "style":
		return true
	}
	return false
}

// closesParagraph reports the start tags that close an open <p> ("close a
// p element" in HTML's tree construction). <table> does so in standards
// mode only: the scanner follows a page's mode (paraState.quirks), and a
// block's shape takes a table to close the paragraph, as it may.
func closesParagraph(name string) bool {
	switch name {
	case "address", "article", "aside", "blockquote", "center", "details", "dialog", "dir", "div", "dl",
		"fieldset", "figcaption", "figure", "footer", "form", "header", "hgroup", "hr", "main", "menu", "nav",
		"ol", "p", "pre", "listing", "search", "section", "summary", "ul", "table", "li", "dd", "dt", "xmp",
		"plaintext", "h1", "h2", "h3", "h4", "h5", "h6":
		return true
	}
	return false
}

// The elements that end HTML's scopes: an element of the page outside the
// nearest one of them is out of reach of what happens inside it.
const (
	defaultScope = iota // "has an element in scope"
	buttonScope         // "in button scope": the default, and <button>
	marker              // the markers of the active formatting elements
)

// shielded reports whether an element of the block's stack keeps what is
// opened inside it from reaching the elements around the block.
func shielded(stack []element, scope int) bool {
	for _, e := range stack {
		if e.integration {
			return true // an SVG or MathML element that holds HTML
		}
		if e.foreign {
			continue
		}
		switch e.name {
		case "applet", "caption", "marquee", "object", "template", "td", "th":
			return true
		case "html", "table":
			if scope != marker {
				return true
			}
		case "button":
			if scope == buttonScope {
				return true
			}
		}
	}
	return false
}

// loose reports whether an <li>, <dd> or <dt> opened inside stack closes
// one around the block: only passable elements stand between.
func loose(stack []element) bool {
	for _, e := range stack {
		if e.foreign || !passable(e.name) {
			return false
		}
	}
	return true
}

// Misfit says why a block of shape s does not stay inside a slot at a
// place, or "" when it does; the reasons are constants, so asking on every
// request costs nothing. Of the elements around the slot it knows a link,
// a paragraph, a button, a form, a list item and SVG or MathML (Place).
func Misfit(at Place, s Shape) string {
	if s&Deep != 0 {
		return "the block nests elements more than 64 deep, past which its fit is not followed"
	}
	if at.InForeign {
		// What is around an SVG or MathML slot in HTML, and what its
		// element is, matter no more: HTML's rules apply to the HTML
		// that breaks out.
		if at.InMath && s&BreaksMath != 0 || !at.InMath && s&BreaksSVG != 0 {
			return "the slot is an SVG or MathML element, and the block holds HTML (a <div>, <span>, <b>, <p>, <img>, <br>, ...): browsers move it out of the slot; write SVG (<tspan>, <a>) or text"
		}
		return ""
	}
	if at.InLink && s&HasLink != 0 {
		return "the slot is inside a link, and the block holds one, which closes it: browsers move the block out of the slot"
	}
	if at.InButton && s&HasButton != 0 {
		return "the slot is inside a <button>, and the block holds one, which closes it: browsers move the block out of the slot"
	}
	if at.InListItem && s&LooseItem != 0 && passable(string(at.Element)) {
		return "the slot is inside a list item, and the block holds an <li> outside a list of its own, which closes it: browsers move the block out of the slot"
	}
	if at.InTerm && s&LooseTerm != 0 && passable(string(at.Element)) {
		return "the slot is inside a <dd> or <dt>, and the block holds one outside a list of its own, which closes it: browsers move the block out of the slot"
	}
	if s&HasForm != 0 && (at.InForm || string(at.Element) == "form") {
		return "the slot is a form or inside one, and the block holds a form: browsers ignore a form inside a form, send its fields with the page's, and end the page's form at its end tag"
	}
	if at.InParagraph && s&ClosesP != 0 {
		return "the slot is inside a paragraph, and the block holds an element that closes it (a <div>, <p>, <ul>, <table>, <h1>, ...): browsers move it out of the slot"
	}
	elem := at.Element
	switch string(elem) {
	case "p":
		if s&ClosesP != 0 {
			return "the block holds an element that closes a paragraph (a <div>, <p>, <ul>, <table>, <h1>, ...): browsers move it out of the slot's <p>"
		}
	case "h1", "h2", "h3", "h4", "h5", "h6":
		if s&TopHeading != 0 {
			return "the block starts a heading, which closes the slot's heading: browsers move it out of the slot"
		}
	case "a":
		if s&HasLink != 0 {
			return "the block holds a link, which closes the slot's <a>: browsers move it out of the slot"
		}
		if s&LeftOpen != 0 {
			return "the block leaves a <p> or list item open: the slot's </a> moves it out of the slot"
		}
	case "b", "big", "code", "em", "font", "i", "nobr", "s", "small", "strike", "strong", "tt", "u":
		if s&LeftOpen != 0 {
			return "the block leaves a <p> or list item open: the slot's end tag moves it out of the slot"
		}
	case "button":
		if s&HasButton != 0 {
			return "the block holds a <button>, which closes the slot's <button>: browsers move it out of the slot"
		}
	case "select":
		if s&ClosesSelect != 0 {
			return "the block holds an <input> or <select>, which closes the slot's <select>: browsers move it out of the slot"
		}
	case "table":
		if s&(TopText|TopFlow|TopOption) != 0 {
			return "the block holds text or elements that are not parts of a table: browsers move them out of the slot's <table>"
		}
		return ""
	case "thead", "tbody", "tfoot":
		if s&(TopText|TopFlow|TopOption|TopSection) != 0 {
			return "the block holds text or elements other than rows and cells: browsers move them out of the slot's table section"
		}
		return ""
	case "tr":
		if s&(TopText|TopFlow|TopOption|TopSection|TopRow) != 0 {
			return "the block holds text or elements other than cells: browsers move them out of the slot's <tr>"
		}
		return ""
	case "li":
		if s&LooseItem != 0 {
			return "the block holds an <li> outside a list of its own, which closes the slot's <li>: browsers move it out of the slot"
		}
	case "dd", "dt":
		if s&LooseTerm != 0 {
			return "the block holds a <dd> or <dt> outside a list of its own, which closes the slot's <dd> or <dt>: browsers move it out of the slot"
		}
	}
	if s&(TopSection|TopRow|TopCell) != 0 {
		return "the block holds parts of a table (<tr>, <td>, ...) outside a table of its own: browsers drop them"
	}
	if s&LeftOpen != 0 && !special(string(elem)) {
		return "the block leaves a <p> or list item open: browsers then ignore the slot's end tag, and the page after the slot goes into it"
	}
	if s&openOf(string(elem)) != 0 {
		return "the block leaves an element of the slot's own kind open: the slot's end tag closes that one, and the page after the slot goes into it"
	}
	return ""
}

// openOf is the Open bit of an element a block may leave open, or 0.
func openOf(name string) Shape {
	switch name {
	case "p":
		return OpenP
	case "li":
		return OpenLi
	case "dd":
		return OpenDd
	case "dt":
		return OpenDt
	}
	return 0
}

// special reports the elements HTML's tree construction calls special
// (with <dialog>, which it does not): an end tag of one closes the <p> or
// <li> a block left open inside it (<dialog>'s by a rule of its own); the
// end tag of any other element (<span>, <label>, a custom element) is
// ignored while one is open.
func special(name string) bool {
	switch name {
	case "address", "applet", "article", "aside", "blockquote", "body", "button", "caption", "center", "col",
		"colgroup", "dd", "details", "dialog", "dir", "div", "dl", "dt", "fieldset", "figcaption", "figure",
		"footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hgroup", "html", "iframe", "li",
		"listing", "main", "marquee", "menu", "nav", "noembed", "noframes", "noscript", "object", "ol", "p",
		"pre", "search", "section", "select", "summary", "table", "tbody", "td", "template", "textarea",
		"tfoot", "th", "thead", "title", "tr", "ul", "xmp":
		return true
	}
	return false
}
