package inject

import (
	"bytes"
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// CheckBlock reports whether a block's HTML keeps to its slot: set between
// the slot element's start and end tags, it must leave the page around them
// as the origin sent it. A browser reads a block as part of the page, so
// one that does not keep to its slot breaks the page, not just the slot: an
// end tag for an element the block did not open closes the slot (or an
// element around it) early; an element left open takes in the slot's end
// tag and the page after it; an unclosed comment, tag or <script> hides the
// rest of the page. The error names the first such thing, as the browser
// would meet it.
//
// Elements whose end tag HTML lets a page leave out (li, p, td, option, ...)
// may be left open where a browser closes them: at the end of the block
// (the slot's end tag closes them) or before an end tag that closes them
// too, so <ul><li>a<li>b</ul> keeps to its slot. Anything else must be
// closed, in the order it was opened.
func CheckBlock(b []byte) error {
	_, err := ReadBlock(b)
	return err
}

// ReadBlock checks b as CheckBlock does and returns its Shape, read in the
// same pass.
func ReadBlock(b []byte) (Shape, error) {
	shape := shapeReader{open: make([]element, 0, 16)}
	// The block is read as a browser reads it in the page: followed by the
	// slot's end tag, which its last bytes must leave as it is.
	in := make([]byte, 0, len(b)+len(slotEnd))
	in = append(append(in, b...), slotEnd...)
	z := html.NewTokenizer(bytes.NewReader(in))
	stack := make([]element, 0, 16)
	read := 0
	for {
		inForeign := foreignContext(stack)
		z.AllowCDATA(inForeign)
		tt := z.Next()
		if tt == html.ErrorToken {
			// The tokenizer drops a tag the input ends inside of.
			return 0, fmt.Errorf("the block ends inside the tag %s: it would take in the slot's end tag and the page after it", excerpt(b[min(read, len(b)):]))
		}
		at := read
		read += len(z.Raw())
		if read > len(b) {
			if tt == html.EndTagToken && at == len(b) && read == len(in) {
				break // the slot's end tag, as in the page
			}
			switch top := len(stack) - 1; {
			case tt == html.TextToken && top >= 0 && !stack[top].foreign && isRawText([]byte(stack[top].name)):
				return 0, fmt.Errorf("%s is never closed: it would hide the page after the slot", excerpt(startTag(b, stack[top])))
			case tt == html.CommentToken:
				return 0, fmt.Errorf("the comment %s is never closed: it would hide the page after the slot", excerpt(b[at:]))
			}
			return 0, fmt.Errorf("the block ends with %s, which would run into the slot's end tag", excerpt(b[at:]))
		}
		switch tt {
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			e := element{name: tagName(name), at: at}
			leaves := breaksOut(e.name, z, hasAttr)
			annotationHTML := e.name == "annotation-xml" && annotationOfHTML(e.name, z, hasAttr)
			var parent *element
			if len(stack) > 0 {
				parent = &stack[len(stack)-1]
			}
			shape.shape |= e.placeInSlots(parent, leaves, annotationHTML)
			if inForeign && leaves {
				// An HTML element in SVG or MathML: the browser closes
				// them up to the nearest HTML element and goes on in HTML.
				for len(stack) > 0 && stack[len(stack)-1].foreign && !stack[len(stack)-1].integration {
					stack = stack[:len(stack)-1]
				}
				shape.breakOut()
				inForeign = false
			}
			e.foreign = inForeign || e.name == "svg" || e.name == "math"
			if e.foreign {
				z.NextIsNotRawText() // an SVG <script> or <style> holds markup
				e.integration = holdsHTML(e.name, false) || holdsHTML(e.name, true) || annotationHTML
			}
			switch {
			case !inForeign:
				shape.start(e, !e.foreign && isVoid(name) || e.foreign && tt == html.SelfClosingTagToken)
			case tt != html.SelfClosingTagToken:
				shape.push(e)
			}
			if e.name == "plaintext" && !e.foreign {
				return 0, fmt.Errorf("%s turns the page after it into plain text", excerpt(b[at:read]))
			}
			// In HTML "/>" closes nothing: only void elements have no end.
			if (!e.foreign && isVoid(name)) || (e.foreign && tt == html.SelfClosingTagToken) {
				continue
			}
			stack = append(stack, e)
		case html.TextToken:
			shape.text(z.Raw())
			if top := len(stack) - 1; top >= 0 && !stack[top].foreign && isRawText([]byte(stack[top].name)) && bytes.IndexByte(z.Raw(), '<') >= 0 {
				// Text here, markup where SVG or MathML holds the
				// <script> or <textarea>: "<div>" there breaks out.
				for w, breaks := range slotBreaks {
					if stack[top].in[w] != nsHTML {
						shape.shape |= breaks
					}
				}
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			if n := string(name); n == "br" || n == "p" {
				// In SVG or MathML these end tags break out of them.
				var top *element
				if len(stack) > 0 {
					top = &stack[len(stack)-1]
				}
				for w, breaks := range slotBreaks {
					if top.foreignIn(w) {
						shape.shape |= breaks
					}
				}
			}
			if string(name) == "br" && !inForeign {
				continue // a browser reads </br> as <br>
			}
			shape.end(string(name))
			i := len(stack) - 1
			for i >= 0 && stack[i].name != string(name) {
				i--
			}
			if i < 0 {
				return 0, fmt.Errorf("%s closes an element the block did not open: the slot's or one around it", excerpt(b[at:read]))
			}
			for _, e := range stack[i+1:] {
				if !closedBy(e, stack[i]) {
					return 0, fmt.Errorf("%s is not closed before %s", excerpt(startTag(b, e)), excerpt(b[at:read]))
				}
			}
			stack = stack[:i]
		}
	}
	for _, e := range stack {
		if e.foreign || !(impliedEnd(e.name) || tablePart(e.name)) {
			tag := startTag(b, e)
			why := "the slot's end tag and the page after it would go inside it"
			if bytes.HasSuffix(tag, []byte("/>")) {
				why = `in HTML "/>" does not close an element; ` + why
			}
			return 0, fmt.Errorf("%s is never closed: %s", excerpt(tag), why)
		}
	}
	return shape.finish(), nil
}

// tagName is name as a string: for HTML's own names, the atom table's
// (no copy is made), so checking a block does not allocate per tag.
func tagName(name []byte) string {
	if a := atom.Lookup(name); a != 0 {
		return a.String()
	}
	return string(name)
}

// element is an element a block opened and has not closed.
type element struct {
	name string // lower case
	at   int    // where its start tag is in the block
	// foreign: an SVG or MathML element, where "/>" closes, CDATA is read
	// and <script> holds markup; integration: one of those that holds
	// HTML (<foreignObject>, MathML's <mi>, ...).
	foreign, integration bool
	// in and holds are where the element goes when the block fills an
	// SVG slot ([0]) or a MathML one ([1]) rather than an HTML one: the
	// namespace it is in there, and whether its content is HTML. There
	// the block's <span> is SVG's, unless it breaks out of the slot.
	in    [2]namespace
	holds [2]bool
}

// namespace is an element's: HTML, SVG or MathML.
type namespace uint8

const (
	nsHTML namespace = iota
	nsSVG
	nsMath
)

// slotBreaks are, by slot namespace as element.in has them, the Shape
// that says the block breaks out of such a slot.
var slotBreaks = [2]Shape{BreaksSVG, BreaksMath}

// placeInSlots works out e.in and e.holds, e being a start tag under
// parent (nil at the block's top level) that breaks out of SVG and MathML
// (leaves) or not; annotationHTML says e is an <annotation-xml> of HTML.
// It returns the Shape of the slots e breaks out of.
func (e *element) placeInSlots(parent *element, leaves, annotationHTML bool) Shape {
	var breaks Shape
	for w, slotNS := range [2]namespace{nsSVG, nsMath} {
		ns := slotNS // at the top level: in the slot's namespace
		if parent != nil {
			ns = parent.in[w]
		}
		switch {
		case parent.foreignIn(w) && leaves:
			breaks |= slotBreaks[w]
			ns = nsHTML
		case parent.foreignIn(w):
			// In the parent's namespace; an <svg> in MathML's
			// <annotation-xml> starts SVG.
			if ns == nsMath && parent != nil && parent.name == "annotation-xml" && e.name == "svg" {
				ns = nsSVG
			}
		case e.name == "svg":
			ns = nsSVG
		case e.name == "math":
			ns = nsMath
		default:
			ns = nsHTML
		}
		e.in[w] = ns
		switch ns {
		case nsSVG:
			e.holds[w] = holdsHTML(e.name, false)
		case nsMath:
			e.holds[w] = holdsHTML(e.name, true) || annotationHTML
		}
	}
	return breaks
}

// foreignIn reports whether what e holds is SVG or MathML when the block
// fills a slot of the namespace w stands for (element.in); e nil is the
// slot.
func (e *element) foreignIn(w int) bool {
	return e == nil || e.in[w] != nsHTML && !e.holds[w]
}

// foreignContext reports whether what comes next is read as SVG or MathML
// rather than HTML.
func foreignContext(stack []element) bool {
	if len(stack) == 0 {
		return false
	}
	top := stack[len(stack)-1]
	return top.foreign && !top.integration
}

// breaksOut reports the start tags that leave SVG and MathML for HTML.
func breaksOut(name string, z *html.Tokenizer, hasAttr bool) bool {
	if leavesForeign(name) {
		return true
	}
	switch name {
	case "font":
		for hasAttr {
			var k []byte
			k, _, hasAttr = z.TagAttr()
			if s := string(k); s == "color" || s == "face" || s == "size" {
				return true
			}
		}
	}
	return false
}

// leavesForeign reports the start tags (lower case) that always leave SVG
// and MathML for HTML; <font> does with some attributes (breaksOut).
func leavesForeign(name string) bool {
	switch name {
	case "b", "big", "blockquote", "body", "br", "center", "code", "dd", "div", "dl", "dt", "em", "embed",
		"h1", "h2", "h3", "h4", "h5", "h6", "head", "hr", "i", "img", "li", "listing", "menu", "meta", "nobr",
		"ol", "p", "pre", "ruby", "s", "small", "span", "strong", "strike", "sub", "sup", "table", "tt", "u", "ul", "var":
		return true
	}
	return false
}

// holdsHTML reports the SVG elements, or with math the MathML ones (lower
// case), whose content is always read as HTML; <annotation-xml> is with
// some encodings (annotationOfHTML).
func holdsHTML(name string, math bool) bool {
	if math {
		switch name {
		case "mi", "mo", "mn", "ms", "mtext":
			return true
		}
		return false
	}
	switch name {
	case "foreignobject", "desc", "title":
		return true
	}
	return false
}

// annotationOfHTML reports whether a MathML <annotation-xml> start tag,
// its attributes to be read from z, says its content is HTML (an encoding
// of text/html or application/xhtml+xml): it then holds HTML, as a
// <foreignObject> does (see holdsHTML).
func annotationOfHTML(_ string, z *html.Tokenizer, hasAttr bool) bool {
	for hasAttr {
		var k, v []byte
		k, v, hasAttr = z.TagAttr()
		if string(k) == "encoding" && (bytes.EqualFold(v, []byte("text/html")) || bytes.EqualFold(v, []byte("application/xhtml+xml"))) {
			return true
		}
	}
	return false
}

// slotEnd stands for the slot's end tag after a block.
const slotEnd = "</edgeseg-slot-end>"

// closedBy reports whether the end tag of target, an element opened
// before e, closes e too, in a browser: an end tag may close only elements
// HTML lets a page leave unclosed, and only those the browser closes for
// it (a </div> closes a <p> or <li>, a </table> its rows and cells, a
// </span> neither); in SVG and MathML, any.
func closedBy(e, target element) bool {
	if target.name == "template" && !target.foreign {
		// A template's content is a fragment of its own, which its end
		// tag closes whole, SVG included; its formatting elements do not
		// reach past it.
		return true
	}
	if target.foreign || e.foreign {
		return target.foreign && e.foreign
	}
	switch target.name {
	case "table", "tbody", "thead", "tfoot", "tr":
		return impliedEnd(e.name) || tablePart(e.name)
	case "address", "article", "aside", "blockquote", "button", "center", "details", "dialog", "dir", "div", "dl",
		"fieldset", "figcaption", "figure", "footer", "header", "hgroup", "listing", "main", "menu", "nav", "ol",
		"pre", "search", "section", "summary", "ul", "form", "p", "li", "dd", "dt", "h1", "h2", "h3", "h4", "h5", "h6",
		"applet", "marquee", "object", "select", "td", "th", "caption":
		return impliedEnd(e.name)
	}
	switch e.name {
	case "option", "optgroup", "rb", "rp", "rt", "rtc":
		return true
	}
	return false
}

// impliedEnd reports the elements a browser closes when the end tag of an
// element around them comes (HTML's "generate implied end tags").
func impliedEnd(name string) bool {
	switch name {
	case "dd", "dt", "li", "optgroup", "option", "p", "rb", "rp", "rt", "rtc":
		return true
	}
	return false
}

// tablePart reports the parts of a table a page may leave unclosed.
func tablePart(name string) bool {
	switch name {
	case "caption", "colgroup", "tbody", "thead", "tfoot", "tr", "td", "th":
		return true
	}
	return false
}

// startTag is e's start tag in b.
func startTag(b []byte, e element) []byte {
	tag := b[e.at:]
	if i := bytes.IndexByte(tag, '>'); i >= 0 {
		tag = tag[:i+1]
	}
	return tag
}

// excerpt is the start of b for an error message: as it is when it is
// printable text on one line, quoted otherwise.
func excerpt(b []byte) string {
	const most = 48
	more := ""
	if len(b) > most {
		b, more = b[:most], "..."
	}
	if !utf8.Valid(b) || bytes.ContainsFunc(b, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) {
		return strconv.Quote(string(b)) + more
	}
	return string(b) + more
}
