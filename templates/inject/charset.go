package inject

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/charset"
	"golang.org/x/text/encoding"
	"golang.org/x/text/transform"
)

// Templates are written and rendered in UTF-8, but pages are not always
// UTF-8: legacy sites still serve windows-1252, Shift_JIS, EUC-KR, GBK...
// UTF-8 bytes inserted into such a page show as mojibake ("CafÃ©"). A
// Charset says how a block must be written for one page, decided the way a
// browser decides the page's encoding.

// charsetKind is what a page's encoding means for inserted HTML.
type charsetKind uint8

const (
	// undeclared: no byte order mark, no charset in Content-Type, no
	// <meta> declaration (or an unknown label). The browser guesses, so
	// non-ASCII characters are written as character references, which
	// read the same in every ASCII-compatible encoding.
	undeclared charsetKind = iota
	utf8Page
	// legacy: a declared encoding other than UTF-8; blocks are encoded
	// into it, characters it lacks written as character references.
	legacy
	// unsupported: UTF-16 (by BOM or Content-Type), where ASCII markup is
	// not ASCII bytes. Such pages are not personalized.
	unsupported
)

// Charset is the character encoding of a page, as far as inserting HTML
// into it goes. The zero value is an undeclared encoding.
type Charset struct {
	kind charsetKind
	name string
	enc  encoding.Encoding
}

// UTF8 is the Charset of a UTF-8 page.
var UTF8 = Charset{kind: utf8Page, name: "utf-8"}

// Name is the encoding's WHATWG name ("utf-8", "windows-1252",
// "shift_jis"), or "" when the page does not declare one.
func (c Charset) Name() string { return c.name }

// Supported reports whether blocks can be inserted into the page: false
// for UTF-16 pages, which are left as the origin sent them.
func (c Charset) Supported() bool { return c.kind != unsupported }

// PageCharset decides a page's encoding as HTML specifies a browser does:
// a byte order mark, else the charset parameter of contentType, else the
// <meta> declaration the plan found in the page's first 1024 bytes.
func PageCharset(contentType []byte, plan *Plan) Charset {
	if plan != nil && plan.bom {
		return plan.declared
	}
	if c, ok := headerCharset(contentType); ok {
		return c
	}
	if plan != nil {
		return plan.declared
	}
	return Charset{}
}

// headerCharset is the encoding Content-Type's charset names, if it names
// one this package knows.
func headerCharset(contentType []byte) (Charset, bool) {
	label := contentTypeCharset(contentType)
	switch {
	case len(label) == 0:
		return Charset{}, false
	case isUTF8Label(label):
		return UTF8, true // the common case, without a lookup
	}
	c := charsetOf(string(label), true)
	return c, c.name != ""
}

// declaredCharset is what a page's own bytes say of its encoding: a byte
// order mark (bom true) or a <meta> declaration.
func declaredCharset(page []byte) (c Charset, bom bool) {
	if label := byteOrderMark(page); label != "" {
		return charsetOf(label, true), true
	}
	if label := metaCharset(page); label != "" {
		return charsetOf(label, false), false
	}
	return Charset{}, false
}

func isUTF8Label(label []byte) bool {
	return bytes.EqualFold(label, []byte("utf-8")) || bytes.EqualFold(label, []byte("utf8"))
}

// SniffCharset is PageCharset for a page that is still arriving: head is
// its first bytes, at least the first 1024 of them when the page is that
// long (where HTML allows a <meta> declaration to be).
func SniffCharset(contentType, head []byte) Charset {
	if label := byteOrderMark(head); label != "" {
		return charsetOf(label, true)
	}
	if c, ok := headerCharset(contentType); ok {
		return c // outranks any <meta>: no need to look
	}
	declared, _ := declaredCharset(head)
	return declared
}

// SniffCharset is the package's SniffCharset for a page that may begin as
// the Reference does (the next page at its path): when head's first 1024
// bytes, all a <meta> declaration may be in, are the Reference's, the
// encoding is the one found in them when it was scanned, and they are not
// read again (a prescan allocates ~20 times). r may be nil.
func (r *Reference) SniffCharset(contentType, head []byte) Charset {
	if r != nil && len(head) >= prescanLimit && len(r.page) >= prescanLimit &&
		bytes.Equal(head[:prescanLimit], r.page[:prescanLimit]) {
		return PageCharset(contentType, r.plan)
	}
	return SniffCharset(contentType, head)
}

// charsetOf resolves a label. A <meta> naming UTF-16 means UTF-8: the
// declaration could only be read because the bytes are ASCII-compatible.
func charsetOf(label string, transport bool) Charset {
	enc, name := charset.Lookup(label)
	switch {
	case enc == nil:
		return Charset{}
	case name == "utf-8":
		return UTF8
	case strings.HasPrefix(name, "utf-16"):
		if !transport {
			return UTF8
		}
		return Charset{kind: unsupported, name: name}
	case name == "replacement":
		// Labels of encodings browsers refuse to decode (ISO-2022-KR,
		// HZ...): the page shows as one replacement character anyway.
		return Charset{kind: unsupported, name: name}
	}
	return Charset{kind: legacy, name: name, enc: enc}
}

// contentTypeCharset returns the charset parameter of a Content-Type value,
// unquoted, or nil.
func contentTypeCharset(ct []byte) []byte {
	for {
		i := bytes.IndexByte(ct, ';')
		if i < 0 {
			return nil
		}
		ct = ct[i+1:]
		name, val, ok := bytes.Cut(ct, []byte("="))
		if !ok || !bytes.EqualFold(bytes.TrimSpace(name), []byte("charset")) {
			continue
		}
		if j := bytes.IndexByte(val, ';'); j >= 0 {
			val = val[:j]
		}
		val = bytes.TrimSpace(val)
		if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
			val = val[1 : len(val)-1]
		}
		return val
	}
}

// byteOrderMark returns the encoding a BOM at the start of page names.
func byteOrderMark(page []byte) string {
	switch {
	case bytes.HasPrefix(page, []byte{0xEF, 0xBB, 0xBF}):
		return "utf-8"
	case bytes.HasPrefix(page, []byte{0xFE, 0xFF}):
		return "utf-16be"
	case bytes.HasPrefix(page, []byte{0xFF, 0xFE}):
		return "utf-16le"
	}
	return ""
}

// prescanLimit is how far into a page a <meta> declaration counts.
const prescanLimit = 1024

// SniffBytes is how much of a page SniffCharset needs to see: the first
// 1024 bytes, or only a byte order mark's 3 when contentType names a known
// encoding (which then outranks any <meta>).
func SniffBytes(contentType []byte) int {
	if _, ok := headerCharset(contentType); ok {
		return 3
	}
	return prescanLimit
}

// metaCharset returns the label declared by the first <meta charset> or
// <meta http-equiv="Content-Type" content="...; charset=..."> among the
// first 1024 bytes of page, or "".
func metaCharset(page []byte) string {
	if len(page) > prescanLimit {
		page = page[:prescanLimit]
	}
	if !containsFold(page, "charset") {
		return "" // the common case for pages declared by header only
	}
	z := html.NewTokenizer(bytes.NewReader(page))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return ""
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			if string(name) != "meta" {
				continue
			}
			var declared, content string
			pragma, seen := false, map[string]bool{}
			for hasAttr {
				var k, v []byte
				k, v, hasAttr = z.TagAttr()
				if seen[string(k)] {
					continue // the first of a repeated attribute counts
				}
				seen[string(k)] = true
				switch string(k) {
				case "charset":
					declared = strings.TrimSpace(string(v))
				case "content":
					content = string(v)
				case "http-equiv":
					pragma = strings.EqualFold(strings.TrimSpace(string(v)), "content-type")
				}
			}
			if declared != "" {
				if enc, _ := charset.Lookup(declared); enc != nil {
					return declared
				}
				continue
			}
			if pragma {
				if label := charsetInContent(content); label != "" {
					if enc, _ := charset.Lookup(label); enc != nil {
						return label
					}
				}
			}
		}
	}
}

// charsetInContent extracts the encoding from a meta content attribute
// ("text/html; charset=Shift_JIS"), as HTML's algorithm for it does:
// the first "charset" followed by '=', the value quoted or up to a space
// or ';'.
func charsetInContent(s string) string {
	for {
		i := indexFold(s, "charset")
		if i < 0 {
			return ""
		}
		s = strings.TrimLeft(s[i+len("charset"):], " \t\n\f\r")
		if !strings.HasPrefix(s, "=") {
			continue
		}
		s = strings.TrimLeft(s[1:], " \t\n\f\r")
		if s == "" {
			return ""
		}
		if q := s[0]; q == '"' || q == '\'' {
			end := strings.IndexByte(s[1:], q)
			if end < 0 {
				return ""
			}
			return s[1 : 1+end]
		}
		end := strings.IndexAny(s, " \t\n\f\r;")
		if end < 0 {
			end = len(s)
		}
		return s[:end]
	}
}

func containsFold(b []byte, word string) bool {
	for i := 0; i+len(word) <= len(b); i++ {
		if bytes.EqualFold(b[i:i+len(word)], []byte(word)) {
			return true
		}
	}
	return false
}

func indexFold(s, word string) int {
	for i := 0; i+len(word) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(word)], word) {
			return i
		}
	}
	return -1
}

// AppendHTML appends block, UTF-8 HTML, to dst written for a page in c.
// ASCII is the same in every supported encoding and is appended as is.
func (c Charset) AppendHTML(dst, block []byte) []byte {
	if c.kind == utf8Page || isASCII(block) {
		return append(dst, block...)
	}
	if c.kind == legacy {
		enc := encoding.HTMLEscapeUnsupported(c.enc.NewEncoder())
		if out, _, err := transform.Append(enc, dst, block); err == nil {
			return out
		}
		// Invalid UTF-8 in the block: character references below turn
		// each bad byte into U+FFFD.
	}
	return appendCharRefs(dst, block)
}

// appendCharRefs appends s with every non-ASCII character written as a
// decimal character reference.
func appendCharRefs(dst, s []byte) []byte {
	for len(s) > 0 {
		if s[0] < utf8.RuneSelf {
			dst = append(dst, s[0])
			s = s[1:]
			continue
		}
		r, n := utf8.DecodeRune(s)
		dst = append(dst, "&#"...)
		dst = strconv.AppendInt(dst, int64(r), 10)
		dst = append(dst, ';')
		s = s[n:]
	}
	return dst
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
