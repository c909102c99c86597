package inject

import (
	"bytes"

	"golang.org/x/net/html"
)

// MetaPolicy decides the head snippet (Options.HeadSnippet) of a document
// whose head declares a Content-Security-Policy of its own, in a
// <meta http-equiv="Content-Security-Policy">. Browsers enforce such a
// policy on what follows it, the snippet included, so a snippet made for
// the policies of the response's headers alone may be blocked.
type MetaPolicy interface {
	// HeadSnippet is given the content of each such <meta> before the
	// snippet's place, character references decoded, in document order,
	// and returns the snippet to place instead: nil for none.
	HeadSnippet(policies [][]byte) []byte
}

// MetaPolicies returns the Content-Security-Policy content of each
// <meta http-equiv> the Plan's document has in its head (before its first
// </head>, outside templates and foreign content), in document order.
// Their bytes are the Plan's: read-only.
func (p *Plan) MetaPolicies() [][]byte { return p.metaCSP }

// isMeta reports a <meta> tag, its name in any case.
func isMeta(data []byte, t *tag) bool {
	return t.nameEnd-t.nameAt == 4 && equalFoldASCII(data[t.nameAt:t.nameEnd], []byte("meta"))
}

// noteMeta notes the policy of the <meta> start tag tag, if it declares
// one: in the Plan it makes, or for the head snippet it places.
func (s *scanner) noteMeta(tag []byte) {
	policy, ok := metaPolicy(tag)
	if !ok {
		return
	}
	if s.plan != nil {
		s.plan.metaCSP = append(s.plan.metaCSP, policy)
		return
	}
	s.metaCSP = append(s.metaCSP, policy)
}

// headSnippet is the snippet to place at the first </head>
// (snippetFor). Reading what was already sent on (discard), MetaPolicy is
// not asked.
func (s *scanner) headSnippet() []byte {
	if s.discard {
		return s.head
	}
	return snippetFor(s.head, s.policy, s.metaCSP)
}

// snippetFor is the head snippet for a document: head, the options', or,
// after <meta> policies, the one policy makes for them.
func snippetFor(head []byte, policy MetaPolicy, metaCSP [][]byte) []byte {
	if len(metaCSP) > 0 && policy != nil {
		return policy.HeadSnippet(metaCSP)
	}
	return head
}

// metaPolicy reads a <meta> start tag as browsers do for a
// Content-Security-Policy: its http-equiv names one (in any case, nothing
// trimmed) and it has a content attribute, whose value, character
// references decoded, is the policy. Of an attribute written twice the
// first counts. Most <meta> tags name no http-equiv, or another, and are
// passed over without being tokenized.
func metaPolicy(tag []byte) ([]byte, bool) {
	if !hasDashed(tag, "http", "equiv") || !containsFold(tag, "policy") && bytes.IndexByte(tag, '&') < 0 {
		return nil, false // no http-equiv, or another (Content-Type, refresh...)
	}
	z := html.NewTokenizer(bytes.NewReader(tag))
	if tt := z.Next(); tt != html.StartTagToken && tt != html.SelfClosingTagToken {
		return nil, false
	}
	_, more := z.TagName()
	var equiv, content []byte
	var seenEquiv, seenContent bool
	for more {
		var k, v []byte
		k, v, more = z.TagAttr()
		switch string(k) {
		case "http-equiv":
			if !seenEquiv {
				equiv, seenEquiv = v, true
			}
		case "content":
			if !seenContent {
				content, seenContent = bytes.Clone(v), true
			}
		}
	}
	if !seenContent || !bytes.EqualFold(equiv, []byte("content-security-policy")) {
		return nil, false
	}
	if content == nil {
		content = []byte{}
	}
	return content, true
}
