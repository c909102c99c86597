package templates

import (
	"slices"
	"strings"
)

// htmlContext follows a template's static HTML, as a browser's tokenizer
// would, to tell where in the markup each {{ }} writes: in text, in an
// attribute's value (which one, quoted or not, at its start or not),
// between attributes, in a script or a style. Escaping for HTML is right
// for text and quoted values only; a visitor's text elsewhere is refused
// (see contextProblem).
//
// It reads the template's content in source order, both branches of an
// {{#if}} one after the other: a block whose branches leave the markup in
// different states (one opening a tag the other does not) may be judged by
// the wrong one.
type htmlContext struct {
	state   htmlState
	tag     []byte // the tag being read, or the raw-text element open
	attr    []byte // the attribute being read
	valLen  int    // bytes of the attribute's value read so far
	quote   byte   // its quote, 0 unquoted
	closing bool   // the tag being read is an end tag
	rawEnd  []byte // "</script" and the like: what ends the raw text
}

type htmlState int

const (
	stText        htmlState = iota
	stTagOpen               // after "<"
	stTagName               // in the tag's name
	stBeforeAttr            // between attributes
	stAttrName              // in an attribute's name
	stAfterAttr             // after an attribute's name
	stBeforeValue           // after "="
	stValue                 // in an attribute's value
	stRawText               // in <script>, <style>, <textarea>, <title>, ...
	stComment               // in <!-- -->
	stBogus                 // in <! ...>, <? ...>, </ ...> read as a comment
)

// feed reads s, static template content.
func (h *htmlContext) feed(s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch h.state {
		case stText:
			if c == '<' {
				h.state = stTagOpen
			}
		case stTagOpen:
			switch {
			case isLetter(c):
				h.state, h.tag, h.closing = stTagName, append(h.tag[:0], lower(c)), false
			case c == '/' && i+1 < len(s) && isLetter(s[i+1]):
				h.state, h.tag, h.closing = stTagName, h.tag[:0], true
			case c == '!' && strings.HasPrefix(s[i+1:], "--"):
				i += 2
				switch rest := s[i+1:]; {
				case strings.HasPrefix(rest, ">"): // <!-->, empty
					h.state = stText
					i++
				case strings.HasPrefix(rest, "->"): // <!--->, empty
					h.state = stText
					i += 2
				default:
					h.state = stComment
				}
			case c == '!' || c == '?' || c == '/':
				h.state = stBogus
			case c == '<':
			default:
				h.state = stText
			}
		case stTagName:
			switch {
			case isSpace(c) || c == '/':
				h.state = stBeforeAttr
			case c == '>':
				h.endTag()
			default:
				h.tag = append(h.tag, lower(c))
			}
		case stBeforeAttr, stAfterAttr:
			switch {
			case isSpace(c) || c == '/':
			case c == '>':
				h.endTag()
			case c == '=' && h.state == stAfterAttr:
				h.state = stBeforeValue
			default:
				h.state, h.attr = stAttrName, append(h.attr[:0], lower(c))
			}
		case stAttrName:
			switch {
			case isSpace(c):
				h.state = stAfterAttr
			case c == '/':
				h.state = stBeforeAttr
			case c == '=':
				h.state = stBeforeValue
			case c == '>':
				h.endTag()
			default:
				h.attr = append(h.attr, lower(c))
			}
		case stBeforeValue:
			switch {
			case isSpace(c):
			case c == '"' || c == '\'':
				h.state, h.quote, h.valLen = stValue, c, 0
			case c == '>':
				h.endTag()
			default:
				h.state, h.quote, h.valLen = stValue, 0, 1
			}
		case stValue:
			switch {
			case h.quote != 0 && c == h.quote:
				h.state = stBeforeAttr
			case h.quote == 0 && isSpace(c):
				h.state = stBeforeAttr
			case h.quote == 0 && c == '>':
				h.endTag()
			default:
				h.valLen++
			}
		case stRawText:
			if end := i + len(h.rawEnd); c == '<' && end <= len(s) && strings.EqualFold(s[i:end], string(h.rawEnd)) &&
				(end == len(s) || isSpace(s[end]) || s[end] == '/' || s[end] == '>') {
				h.state, h.tag, h.closing = stTagName, append(h.tag[:0], h.rawEnd[2:]...), true
				i += len(h.rawEnd) - 1
			}
		case stComment:
			switch {
			case strings.HasPrefix(s[i:], "-->"):
				h.state = stText
				i += 2
			case strings.HasPrefix(s[i:], "--!>"):
				h.state = stText
				i += 3
			}
		case stBogus:
			if c == '>' {
				h.state = stText
			}
		}
	}
}

// endTag is the ">" of a tag: text follows, or raw text.
func (h *htmlContext) endTag() {
	h.state = stText
	if h.closing {
		return
	}
	switch string(h.tag) {
	case "script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "noscript", "plaintext":
		h.state = stRawText
		h.rawEnd = append(append(h.rawEnd[:0], "</"...), h.tag...)
	}
}

// contextProblem says why a visitor's text written here by a {{ }} whose
// encoding helper is enc ("" for raymond's own HTML escaping; url,
// urlQuery, js or json) is unsafe, or "" when it is not.
func (h *htmlContext) contextProblem(enc string) string {
	switch h.state {
	case stText, stComment, stBogus:
		return ""
	case stRawText:
		switch string(h.tag) {
		case "script":
			if enc == "js" || enc == "json" {
				return ""
			}
			return "in a <script> (it could be code there): write it with {{js x}} (a string) or {{json x}}"
		case "textarea", "title":
			if enc == "" || enc == "url" || enc == "urlQuery" {
				return ""
			}
		}
		return "in a <" + string(h.tag) + ">, where text is not escaped as HTML"
	case stBeforeValue:
		if enc == "urlQuery" {
			return "" // percent-encoded: no space, quote or > is left
		}
		return "in an unquoted attribute value (a space in it starts another attribute): quote the value"
	case stValue:
		if h.quote == 0 && enc != "urlQuery" {
			return "in an unquoted attribute value (a space in it starts another attribute): quote the value"
		}
		name := string(h.attr)
		switch {
		case strings.HasPrefix(name, "on"):
			return "in the " + name + " attribute, which is code"
		case name == "style":
			return "in a style attribute"
		case name == "srcdoc":
			return "in an srcdoc attribute, which is read as a page"
		case enc == "js" || enc == "json":
			return "in an attribute, where the quotes {{" + enc + "}} writes end the value"
		case h.valLen == 0 && urlAttr(name) && enc == "":
			return "at the start of the " + name + " attribute (it could be a javascript: URL): write it with {{url x}}"
		}
		return ""
	}
	return "inside a tag, where it could add attributes"
}

// clone is h, for a partial to go on from.
func (h htmlContext) clone() htmlContext {
	h.tag, h.attr, h.rawEnd = slices.Clone(h.tag), slices.Clone(h.attr), slices.Clone(h.rawEnd)
	return h
}

// wrote notes a {{ }} written where the markup is: an attribute's value
// is no longer at its start.
func (h *htmlContext) wrote() {
	switch h.state {
	case stValue:
		h.valLen++
	case stBeforeValue:
		h.state, h.quote, h.valLen = stValue, 0, 1
	}
}

// urlAttr reports the attributes that hold a URL a browser follows.
func urlAttr(name string) bool {
	switch name {
	case "href", "src", "action", "formaction", "srcset", "poster", "cite", "background", "ping", "data",
		"xlink:href", "manifest", "codebase", "icon", "longdesc", "usemap", "lowsrc", "dynsrc", "imagesrcset":
		return true
	}
	return false
}

func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isSpace(c byte) bool  { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' }
func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
