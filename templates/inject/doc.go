// Package inject replaces the inner HTML of slot elements in an HTML
// document, touching nothing else.
//
// A slot is any element with a data-edgeseg-slot="NAME" attribute (any
// quoting, any case). For each slot the caller's Lookup decides: a Block
// replaces the element's inner HTML and adds data-edgeseg-segment="SEG" to
// its start tag; no block keeps the origin's content. Everything outside
// replaced slots is copied byte for byte, including malformed markup.
//
// The scanner is a small HTML tokenizer, not a parser: it knows enough to
// skip comments, doctype/CDATA/processing instructions, and the contents of
// raw-text elements (script, style, textarea, title, xmp, iframe, noembed,
// noframes, noscript, plaintext), so that markup-like text inside them is
// never taken for a slot, and it counts nested elements of the slot's own
// tag name to find the slot's end. A <template>'s content is a fragment of
// its own: a slot in it is not filled, unless the template is a
// declarative shadow root, which browsers show. Input may arrive in chunks
// split anywhere: an incomplete token is carried over to the next Write.
// A slot whose end tag never arrives is left as the origin sent it.
//
// Tokenizing is the costly part, and most pages are read again and again:
// a Plan (Scan) says where a document's slots are, for Apply to fill them
// in the same bytes without tokenizing (ApplySplice: without copying them
// either, as a Splice of the document's bytes and those made for it); a
// Reference gives its Plan to a
// document that differs from it only inside quoted attribute values or
// the text of raw text elements, a script's or a style's (PlanFor), and a Rewriter that follows one (Follow) does that as the
// bytes arrive, handing over to the tokenizer where they differ otherwise.
//
// Blocks are UTF-8; Options.Charset (from PageCharset) writes them in the
// document's own encoding, so a windows-1252 or Shift_JIS page does not
// get UTF-8 bytes it would show as mojibake.
package inject
