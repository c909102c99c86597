package inject

// contentCheck follows a slot's content as findSlotEnd reads it, for
// whether it is plainly well formed: each element closed by its own end
// tag, in order, and none of the elements whose start or end tags a
// browser reads with more than nesting (a <p>, an <li>, a table's parts, a
// form, a link in a link, SVG, a template, ...) where their reading could
// reach past the slot. Such content keeps to its slot, and the slow,
// complete check (contentMisfit) is skipped; anything else is irregular
// and gets it. It errs toward irregular: a false "regular" could let a
// block take part of the page with it, a false "irregular" costs a check.
type contentCheck struct {
	data      []byte
	open      [maxShapeDepth][2]int32 // the names (in data) of the elements open in the content, innermost last
	n         int
	irregular bool
	// From the slot's place: a <div> closes an open <p> around it; an <a>
	// a link; an <li> a list item.
	inP, inLink, inItem bool
}

func newContentCheck(data []byte, at *Place) contentCheck {
	el := string(at.Element)
	return contentCheck{
		data:      data,
		irregular: at.InForeign || at.InMath || slotHoldsParts(el) || at.InButton || at.InForm || at.InTerm,
		inP:       at.InParagraph || el == "p",
		inLink:    at.InLink || el == "a",
		inItem:    at.InListItem || el == "li",
	}
}

// slotHoldsParts reports slot elements whose content HTML arranges by
// more than nesting: a table's, a select's, a heading's (another heading
// closes it), a list's items.
func slotHoldsParts(el string) bool {
	switch el {
	case "table", "tbody", "thead", "tfoot", "tr", "td", "th", "caption", "colgroup", "select", "optgroup", "option",
		"datalist", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "dl", "dd", "dt", "li", "menu", "dir", "button", "form",
		"object", "applet", "marquee", "ruby", "rb", "rp", "rt", "rtc", "frameset", "head", "html", "body", "template":
		return true
	}
	return false
}

// start follows a start tag in HTML content: low is its name in lower
// case, or empty when too long to fold; the name is data[at:end].
func (c *contentCheck) start(low []byte, at, end int, selfClose bool) {
	if c.irregular {
		return
	}
	n := string(low)
	if n == "" && !customElement(c.data[at:end]) {
		c.irregular = true
		return
	}
	switch n {
	case "br", "img", "wbr", "source", "track", "area", "embed", "input", "col", "param", "keygen", "base", "link", "meta", "hr":
		// Void: nothing to close; <hr> closes a <p> as a <div> does.
		if n == "hr" && c.pOpen() {
			c.irregular = true
		}
		if n == "input" || n == "col" || n == "keygen" {
			c.irregular = true // an input closes a select; a col is a table's
		}
		return
	case "span", "b", "i", "em", "strong", "small", "s", "u", "mark", "abbr", "cite", "code", "q", "sub", "sup", "time",
		"var", "kbd", "samp", "dfn", "bdi", "bdo", "data", "big", "tt", "ins", "del", "picture", "label", "strike", "font",
		"output", "meter", "progress", "canvas", "video", "audio", "map", "slot":
		// Phrasing: nested only. (A formatting element misnested shows
		// in its end tag.)
	case "a":
		if c.inLink || c.has("a") {
			c.irregular = true
		}
	case "div", "p", "section", "article", "aside", "header", "footer", "nav", "main", "blockquote", "figure",
		"figcaption", "address", "details", "summary", "center", "hgroup", "search", "dialog", "pre", "listing", "ul", "ol":
		// A <p> closer: fine unless a paragraph is open around it.
		if c.pOpen() {
			c.irregular = true
		}
	case "h1", "h2", "h3", "h4", "h5", "h6":
		// A <p> closer too, and one closes another open heading.
		if c.pOpen() || c.has("h1") || c.has("h2") || c.has("h3") || c.has("h4") || c.has("h5") || c.has("h6") {
			c.irregular = true
		}
	case "li":
		// Only as a list's child: elsewhere it closes an open item.
		if c.n == 0 || !c.is(c.n-1, "ul") && !c.is(c.n-1, "ol") {
			c.irregular = true
		}
	case "":
		// A custom element too long to fold: parsed as a <span> is.
	default:
		if !customElement(low) {
			c.irregular = true // a table's parts, forms, headings, SVG, templates, ...
		}
	}
	if selfClose || c.irregular {
		c.irregular = true // "/>" closes nothing in HTML: the element stays open
		return
	}
	if c.n == len(c.open) {
		c.irregular = true
		return
	}
	c.open[c.n] = [2]int32{int32(at), int32(end)}
	c.n++
}

// end follows an end tag in HTML content, named data[at:end]; it must
// close the innermost open element.
func (c *contentCheck) end(at, end int) {
	if c.irregular {
		return
	}
	if c.n == 0 || !equalFoldASCII(c.data[c.open[c.n-1][0]:c.open[c.n-1][1]], c.data[at:end]) {
		c.irregular = true
		return
	}
	c.n--
}

// done reports, at the slot's end tag, whether the content was regular:
// every element it opened is closed.
func (c *contentCheck) done() bool { return !c.irregular && c.n == 0 }

func (c *contentCheck) pOpen() bool { return c.inP || c.has("p") }

func (c *contentCheck) has(name string) bool {
	for i := range c.n {
		if c.is(i, name) {
			return true
		}
	}
	return false
}

// is reports whether the i-th open element is named name (lower case).
func (c *contentCheck) is(i int, name string) bool {
	return equalFoldASCII(c.data[c.open[i][0]:c.open[i][1]], []byte(name))
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
