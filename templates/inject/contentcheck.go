package inject

// contentCheck follows a slot's content as findSlotEnd reads it, for
// whether it is plainly well formed: each element closed by its own end
// tag, in order, tables built of their parts, SVG and MathML kept to
// themselves, and none of the elements whose start or end tags a browser
// reads with more than nesting (a <p> or a list item around, a link in a
// link, a select, a template, ...) where that reading could reach past
// the slot. Such content keeps to its slot, and the slow, complete check
// (contentMisfit) is skipped; anything else is irregular and gets it. It
// errs toward irregular: a false "regular" could let a block take part of
// the page with it, a false "irregular" costs a check.
type contentCheck struct {
	data []byte
	// open are the elements open in the content, innermost last: where
	// their names are in data, and 1 for an SVG or MathML element.
	open      [maxShapeDepth][3]int32
	n         int
	foreign   int // how many of them are SVG or MathML
	last      int // where the text since the last tag starts
	irregular bool
	// left: in an SVG or MathML slot, a tag of the content closed the
	// slot's element, or broke out of it (an HTML <b> in an SVG <text>):
	// browsers end the slot there, not at its end tag.
	left bool
	// From the slot's place: a <div> closes an open <p> around it; an <a>
	// a link, a <button> a button; a <form> in a form is dropped.
	inP, inLink, inButton, inForm bool
	// The slot element is a heading (another closes it), a list (an
	// item at the top is its), a <dl> (so is a term).
	inHeading, list, dl bool
}

func newContentCheck(data []byte, from int, at *Place) contentCheck {
	el := string(at.Element)
	return contentCheck{
		data:      data,
		last:      from,
		irregular: at.InForeign || at.InMath || slotHoldsParts(el),
		inP:       at.InParagraph || el == "p",
		inLink:    at.InLink || el == "a",
		inButton:  at.InButton || el == "button",
		inForm:    at.InForm || el == "form",
		inHeading: len(el) == 2 && el[0] == 'h' && el[1] >= '1' && el[1] <= '6',
		list:      el == "ul" || el == "ol" || el == "menu",
		dl:        el == "dl",
	}
}

// slotHoldsParts reports slot elements whose content HTML arranges by
// more than nesting, which the quick check does not follow: a table's
// parts (not a cell, whose content is flow), a select's, ruby's.
func slotHoldsParts(el string) bool {
	switch el {
	case "table", "tbody", "thead", "tfoot", "tr", "colgroup", "select", "optgroup", "option", "datalist", "dir",
		"object", "applet", "marquee", "ruby", "rb", "rp", "rt", "rtc", "frameset", "head", "html", "body", "template":
		return true
	}
	return false
}

// text looks at the text from the last tag to i: inside a table's parts
// (not a cell), anything but white space is moved out of the table.
func (c *contentCheck) text(i int) {
	if c.n > 0 && c.inTable() {
		for _, b := range c.data[c.last:i] {
			if b != ' ' && b != '\t' && b != '\n' && b != '\r' && b != '\f' {
				c.irregular = true
				return
			}
		}
	}
}

// inTable reports whether the innermost open element is a table or one of
// its parts that holds no content of its own.
func (c *contentCheck) inTable() bool {
	return c.isAny(c.n-1, "table", "tbody", "thead", "tfoot", "tr", "colgroup")
}

// tableParents is what a table part (low) may be in: the element its parent
// must be, or "" for one that is no part of a table.
func tableParents(low string) []string {
	switch low {
	case "caption", "colgroup", "thead", "tbody", "tfoot":
		return []string{"table"}
	case "col":
		return []string{"colgroup", "table"}
	case "tr":
		return []string{"table", "tbody", "thead", "tfoot"}
	case "td", "th":
		return []string{"tr"}
	}
	return nil
}

// start follows a start tag: low is its name in lower case, or empty when
// too long to fold; the name is data[at:end]. foreign: the tag is read as
// SVG or MathML.
func (c *contentCheck) start(low []byte, at, end int, selfClose, foreign bool) {
	if c.irregular {
		return
	}
	n := string(low)
	if foreign {
		switch n {
		case "script", "style":
			c.irregular = true // markup, in SVG: read as a block's check reads it
			return
		}
		if !selfClose {
			c.push(at, end, 1)
		}
		return
	}
	if c.foreign > 0 {
		// HTML inside SVG's <foreignObject> or MathML's <mi>, or a tag
		// that broke out of SVG: the complete check reads those.
		c.irregular = true
		return
	}
	if n == "" {
		if !customElement(c.data[at:end]) {
			c.irregular = true
			return
		}
	}
	if parents := tableParents(n); parents != nil {
		if c.n == 0 || !c.isAny(c.n-1, parents...) {
			c.irregular = true // outside its table: ignored, or closing what is open
			return
		}
		if n == "col" {
			return // void
		}
		c.push(at, end, 0)
		return
	}
	if c.n > 0 && c.inTable() {
		c.irregular = true // moved out of the table
		return
	}
	switch n {
	case "br", "img", "wbr", "source", "track", "area", "embed", "input", "param", "base", "link", "meta":
		return // void: nothing to close
	case "hr":
		if c.pOpen() {
			c.irregular = true // void, and it closes a <p> as a <div> does
		}
		return
	case "svg", "math":
		if !selfClose {
			c.push(at, end, 1)
		}
		return
	case "span", "b", "i", "em", "strong", "small", "s", "u", "mark", "abbr", "cite", "code", "q", "sub", "sup", "time",
		"var", "kbd", "samp", "dfn", "bdi", "bdo", "data", "big", "tt", "ins", "del", "picture", "label", "strike", "font",
		"output", "meter", "progress", "canvas", "video", "audio", "map", "slot", "legend", "object", "":
		// Phrasing (and custom elements): nested only. A formatting
		// element misnested shows in its end tag. (An <object> also ends
		// the scopes of what is opened in it: a <p> around it is out of
		// their reach, which pOpen does not know, so a <div> in it is
		// checked completely.)
	case "a":
		if c.inLink || c.has("a") {
			c.irregular = true
		}
	case "button":
		if c.inButton || c.has("button") {
			c.irregular = true
		}
	case "div", "p", "section", "article", "aside", "header", "footer", "nav", "main", "blockquote", "figure",
		"figcaption", "address", "details", "summary", "center", "hgroup", "search", "dialog", "pre", "listing",
		"ul", "ol", "dl", "fieldset", "table", "form", "menu":
		// A <p> closer: fine unless a paragraph is open around it (in
		// quirks mode a <table> does not close one; it is never open here).
		if c.pOpen() || n == "form" && (c.inForm || c.has("form")) {
			c.irregular = true
		}
	case "h1", "h2", "h3", "h4", "h5", "h6":
		// A <p> closer too, and one closes another open heading.
		if c.pOpen() || c.inHeading || c.has("h1", "h2", "h3", "h4", "h5", "h6") {
			c.irregular = true
		}
	case "li":
		// Only as a list's child: elsewhere it closes an open item.
		// It closes a <p> too.
		if c.n == 0 && !c.list || c.n > 0 && !c.isAny(c.n-1, "ul", "ol", "menu") || c.pOpen() {
			c.irregular = true
		}
	case "dd", "dt":
		if c.n == 0 && !c.dl || c.n > 0 && !c.isAny(c.n-1, "dl") || c.pOpen() {
			c.irregular = true
		}
	default:
		if !customElement(low) {
			c.irregular = true // forms' selects, templates, objects, ruby, ...
		}
	}
	if c.irregular {
		return
	}
	if selfClose {
		c.irregular = true // "/>" closes nothing in HTML: the element stays open
		return
	}
	c.push(at, end, 0)
}

// rawText follows the start tag of an element whose text findSlotEnd skips
// to its end tag (low, lower case), reading on at end: a script or style
// anywhere, a textarea, iframe or title outside a table's parts.
func (c *contentCheck) rawText(low []byte, end int) {
	if c.irregular {
		return
	}
	switch n := string(low); n {
	case "script", "style":
	case "textarea", "iframe", "title", "noscript", "noembed", "noframes", "xmp":
		// Text to the end tag, in place; but foster-parented out of a
		// table's parts, and an <xmp> closes a <p> as a <div> does.
		// (A <noscript> is text where scripts run, as browsers run them
		// and the complete check reads it.)
		if c.foreign > 0 || c.n > 0 && c.inTable() || n == "xmp" && c.pOpen() {
			c.irregular = true
		}
	default:
		c.irregular = true // read by the complete check
	}
	c.last = end
}

func (c *contentCheck) push(at, end int, foreign int32) {
	if c.n == len(c.open) {
		c.irregular = true
		return
	}
	c.open[c.n] = [3]int32{int32(at), int32(end), foreign}
	c.n++
	c.foreign += int(foreign)
}

// end follows an end tag, named data[at:end]; it must close the innermost
// open element.
func (c *contentCheck) end(at, end int) {
	if c.irregular {
		return
	}
	if c.n == 0 || !equalFoldASCII(c.data[c.open[c.n-1][0]:c.open[c.n-1][1]], c.data[at:end]) {
		c.irregular = true
		return
	}
	c.n--
	c.foreign -= int(c.open[c.n][2])
}

// done reports, at the slot's end tag, whether the content was regular:
// every element it opened is closed.
func (c *contentCheck) done() bool { return !c.irregular && c.n == 0 }

func (c *contentCheck) pOpen() bool { return c.inP || c.has("p") }

// has reports whether an HTML element named one of names is open.
func (c *contentCheck) has(names ...string) bool {
	for i := range c.n {
		if c.isAny(i, names...) {
			return true
		}
	}
	return false
}

// isAny reports whether the i-th open element is an HTML element named
// one of names (lower case).
func (c *contentCheck) isAny(i int, names ...string) bool {
	if c.open[i][2] != 0 {
		return false
	}
	for _, name := range names {
		if equalFoldASCII(c.data[c.open[i][0]:c.open[i][1]], []byte(name)) {
			return true
		}
	}
	return false
}

// customElement reports a custom element's name (it holds a '-'), which
// HTML parses as it does a <span>.
func customElement(name []byte) bool {
	for _, b := range name {
		if b == '-' {
			return true
		}
	}
	return false
}
