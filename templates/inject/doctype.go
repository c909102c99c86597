package inject

import "bytes"

// docMode is how browsers build a document, as its start tells. A page
// with no doctype, or with one of the old ones, is built in quirks mode.
// Of what the scanner follows, quirks mode changes one thing: a <table>
// start tag leaves an open <p> open (the paragraph goes on after the
// table), where in standards mode it closes it.
type docMode uint8

const (
	modeUnknown   docMode = iota // nothing yet but whitespace, comments and a BOM
	modeStandards                // no-quirks and limited-quirks mode alike
	modeQuirks
)

// maxDoctype bounds how much of an unfinished doctype is held, across
// chunks, to read it whole. Past it the page is taken to be in quirks
// mode, which costs a block a slot it would fit, never the reverse.
const maxDoctype = 1 << 10

// doctypePrefix is how a doctype token starts, in any case.
const doctypePrefix = "<!doctype"

// isDoctype reports whether rest, at a "<!", starts a doctype; partial
// reports that rest is too short to tell.
func isDoctype(rest []byte) (doctype, partial bool) {
	if len(rest) < len(doctypePrefix) {
		return false, equalFoldASCII(rest, []byte(doctypePrefix[:len(rest)]))
	}
	return equalFoldASCII(rest[:len(doctypePrefix)], []byte(doctypePrefix)), false
}

// doctypeMode returns the mode a doctype token puts a document in, as
// HTML's "initial" insertion mode decides it: tok is the whole token,
// "<!DOCTYPE" to the first '>'. Malformed doctypes (no name, an
// identifier without quotes or cut off by the '>') are quirks, as the
// tokenizer's force-quirks flag makes them.
func doctypeMode(tok []byte) docMode {
	if len(tok) <= len(doctypePrefix) || tok[len(tok)-1] != '>' {
		return modeQuirks // the document ended inside it
	}
	d := tok[len(doctypePrefix) : len(tok)-1] // holds no '>'
	d = trimSpaceLeft(d)
	n := 0
	for n < len(d) && !isSpace(d[n]) {
		n++
	}
	name := d[:n]
	if n == 0 {
		return modeQuirks // "<!DOCTYPE>"
	}
	d = trimSpaceLeft(d[n:])
	var public, system []byte
	hasPublic, hasSystem := false, false
	if len(d) > 0 {
		if len(d) < 6 {
			return modeQuirks // neither PUBLIC nor SYSTEM follows the name
		}
		var ok bool
		switch kw := d[:6]; {
		case equalFoldASCII(kw, []byte("public")):
			if public, d, ok = quotedID(d[6:]); !ok {
				return modeQuirks
			}
			hasPublic = true
			// Anything after the system identifier is an error the
			// tokenizer passes over without forcing quirks.
			if d = trimSpaceLeft(d); len(d) > 0 {
				if system, _, ok = quotedID(d); !ok {
					return modeQuirks
				}
				hasSystem = true
			}
		case equalFoldASCII(kw, []byte("system")):
			if system, _, ok = quotedID(d[6:]); !ok {
				return modeQuirks
			}
			hasSystem = true
		default:
			return modeQuirks
		}
	}
	switch {
	case !equalFoldASCII(name, []byte("html")):
		return modeQuirks
	case hasSystem && equalFoldASCII(system, []byte("http://www.ibm.com/data/dtd/v11/ibmxhtml1-transitional.dtd")):
		return modeQuirks
	case !hasPublic:
		return modeStandards
	case equalFoldASCII(public, []byte("-//W3O//DTD W3 HTML Strict 3.0//EN//")),
		equalFoldASCII(public, []byte("-/W3C/DTD HTML 4.0 Transitional/EN")),
		equalFoldASCII(public, []byte("HTML")):
		return modeQuirks
	case !hasSystem && (hasPrefixFold(public, "-//W3C//DTD HTML 4.01 Frameset//") ||
		hasPrefixFold(public, "-//W3C//DTD HTML 4.01 Transitional//")):
		return modeQuirks
	}
	for _, p := range quirkyPublicIDs {
		if hasPrefixFold(public, p) {
			return modeQuirks
		}
	}
	return modeStandards
}

// quotedID reads a doctype's identifier from d, after its PUBLIC or SYSTEM
// keyword (or after the public identifier): whitespace, then a value in
// single or double quotes. It returns the value and what follows; ok is
// false where the tokenizer forces quirks: no quotes, or no closing one
// before the doctype's '>'.
func quotedID(d []byte) (id, rest []byte, ok bool) {
	d = trimSpaceLeft(d)
	if len(d) == 0 || d[0] != '"' && d[0] != '\'' {
		return nil, nil, false
	}
	j := bytes.IndexByte(d[1:], d[0])
	if j < 0 {
		return nil, nil, false
	}
	return d[1 : 1+j], d[2+j:], true
}

func trimSpaceLeft(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	return b
}

func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && equalFoldASCII(b[:len(prefix)], []byte(prefix))
}

// quirkyPublicIDs are the public identifier prefixes that put a document
// in quirks mode (HTML, "the initial insertion mode").
var quirkyPublicIDs = []string{
	"+//Silmaril//dtd html Pro v0r11 19970101//",
	"-//AS//DTD HTML 3.0 asWedit + extensions//",
	"-//AdvaSoft Ltd//DTD HTML 3.0 asWedit + extensions//",
	"-//IETF//DTD HTML 2.0 Level 1//",
	"-//IETF//DTD HTML 2.0 Level 2//",
	"-//IETF//DTD HTML 2.0 Strict Level 1//",
	"-//IETF//DTD HTML 2.0 Strict Level 2//",
	"-//IETF//DTD HTML 2.0 Strict//",
	"-//IETF//DTD HTML 2.0//",
	"-//IETF//DTD HTML 2.1E//",
	"-//IETF//DTD HTML 3.0//",
	"-//IETF//DTD HTML 3.2 Final//",
	"-//IETF//DTD HTML 3.2//",
	"-//IETF//DTD HTML 3//",
	"-//IETF//DTD HTML Level 0//",
	"-//IETF//DTD HTML Level 1//",
	"-//IETF//DTD HTML Level 2//",
	"-//IETF//DTD HTML Level 3//",
	"-//IETF//DTD HTML Strict Level 0//",
	"-//IETF//DTD HTML Strict Level 1//",
	"-//IETF//DTD HTML Strict Level 2//",
	"-//IETF//DTD HTML Strict Level 3//",
	"-//IETF//DTD HTML Strict//",
	"-//IETF//DTD HTML//",
	"-//Metrius//DTD Metrius Presentational//",
	"-//Microsoft//DTD Internet Explorer 2.0 HTML Strict//",
	"-//Microsoft//DTD Internet Explorer 2.0 HTML//",
	"-//Microsoft//DTD Internet Explorer 2.0 Tables//",
	"-//Microsoft//DTD Internet Explorer 3.0 HTML Strict//",
	"-//Microsoft//DTD Internet Explorer 3.0 HTML//",
	"-//Microsoft//DTD Internet Explorer 3.0 Tables//",
	"-//Netscape Comm. Corp.//DTD HTML//",
	"-//Netscape Comm. Corp.//DTD Strict HTML//",
	"-//O'Reilly and Associates//DTD HTML 2.0//",
	"-//O'Reilly and Associates//DTD HTML Extended 1.0//",
	"-//O'Reilly and Associates//DTD HTML Extended Relaxed 1.0//",
	"-//SQ//DTD HTML 2.0 HoTMetaL + extensions//",
	"-//SoftQuad Software//DTD HoTMetaL PRO 6.0::19990601::extensions to HTML 4.0//",
	"-//SoftQuad//DTD HoTMetaL PRO 4.0::19971010::extensions to HTML 4.0//",
	"-//Spyglass//DTD HTML 2.0 Extended//",
	"-//Sun Microsystems Corp.//DTD HotJava HTML//",
	"-//Sun Microsystems Corp.//DTD HotJava Strict HTML//",
	"-//W3C//DTD HTML 3 1995-03-24//",
	"-//W3C//DTD HTML 3.2 Draft//",
	"-//W3C//DTD HTML 3.2 Final//",
	"-//W3C//DTD HTML 3.2//",
	"-//W3C//DTD HTML 3.2S Draft//",
	"-//W3C//DTD HTML 4.0 Frameset//",
	"-//W3C//DTD HTML 4.0 Transitional//",
	"-//W3C//DTD HTML Experimental 19960712//",
	"-//W3C//DTD HTML Experimental 970421//",
	"-//W3C//DTD W3 HTML//",
	"-//W3O//DTD W3 HTML 3.0//",
	"-//WebTechs//DTD Mozilla HTML 2.0//",
	"-//WebTechs//DTD Mozilla HTML//",
}
