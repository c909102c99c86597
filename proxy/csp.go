package proxy

import (
	"bytes"

	"github.com/valyala/fasthttp"
)

// scriptRule is what one Content-Security-Policy lets an inline <script>
// do, such as the data layer edgeseg adds.
type scriptRule uint8

const (
	scriptsFree    scriptRule = iota // no directive for scripts, or 'unsafe-inline' honoured
	scriptsNonce                     // runs with the nonce the policy names
	scriptsBlocked                   // never: scripts from URLs only, hashes, 'none'
)

// inlineScriptNonce reads the page's Content-Security-Policy headers, every
// policy of which a browser enforces, for the data layer's inline script:
// ok is false when a policy would block it (an error in the console, a
// report to the site's report-uri, and no data layer anyway), and nonce is
// the nonce it must carry, if any. With no enforced nonce, a report-only
// policy's is taken, which keeps the script out of its reports.
func inlineScriptNonce(rh *fasthttp.ResponseHeader) (nonce []byte, ok bool) {
	for _, v := range rh.PeekAll("Content-Security-Policy") {
		for rest := v; len(rest) > 0; {
			var policy []byte
			policy, rest, _ = bytes.Cut(rest, []byte{','})
			switch rule, n := inlineScriptRule(policy); rule {
			case scriptsBlocked:
				return nil, false
			case scriptsNonce:
				if nonce != nil && !bytes.Equal(nonce, n) {
					return nil, false // a script carries one nonce
				}
				nonce = n
			}
		}
	}
	if nonce != nil {
		return nonce, true
	}
	for _, v := range rh.PeekAll("Content-Security-Policy-Report-Only") {
		for rest := v; len(rest) > 0; {
			var policy []byte
			policy, rest, _ = bytes.Cut(rest, []byte{','})
			if rule, n := inlineScriptRule(policy); rule == scriptsNonce {
				return n, true
			}
		}
	}
	return nil, true
}

// inlineScriptRule reads one policy for an inline <script> element: by its
// script-src-elem directive, else script-src, else default-src (CSP 3's
// fallback for script elements); the first of a name counts, as in
// browsers. 'unsafe-inline' is ignored beside a nonce, a hash or
// 'strict-dynamic'.
func inlineScriptRule(policy []byte) (scriptRule, []byte) {
	var found [3][]byte // source lists of script-src-elem, script-src, default-src
	var seen [3]bool
	for rest := policy; len(rest) > 0; {
		var d []byte
		d, rest, _ = bytes.Cut(rest, []byte{';'})
		name, srcs := nextField(d)
		for i, dir := range [...]string{"script-src-elem", "script-src", "default-src"} {
			if !seen[i] && bytes.EqualFold(name, []byte(dir)) {
				seen[i], found[i] = true, srcs
			}
		}
	}
	i := 0
	for i < len(seen) && !seen[i] {
		i++
	}
	if i == len(seen) {
		return scriptsFree, nil
	}
	var nonce []byte
	inline, strict := false, false
	for src, srcs := nextField(found[i]); len(src) > 0; src, srcs = nextField(srcs) {
		switch {
		case hasPrefixFold(src, "'nonce-") && bytes.HasSuffix(src, []byte("'")) && len(src) > len("'nonce-'"):
			if nonce == nil {
				nonce = src[len("'nonce-") : len(src)-1]
			}
		case hasPrefixFold(src, "'sha256-"), hasPrefixFold(src, "'sha384-"), hasPrefixFold(src, "'sha512-"),
			bytes.EqualFold(src, []byte("'strict-dynamic'")):
			strict = true
		case bytes.EqualFold(src, []byte("'unsafe-inline'")):
			inline = true
		}
	}
	switch {
	case nonce != nil && isNonce(nonce):
		return scriptsNonce, nonce
	case inline && nonce == nil && !strict:
		return scriptsFree, nil
	}
	return scriptsBlocked, nil
}

// nextField returns the first of b's fields separated by ASCII white
// space, and what follows it.
func nextField(b []byte) (field, rest []byte) {
	space := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r' }
	i := 0
	for i < len(b) && space(b[i]) {
		i++
	}
	j := i
	for j < len(b) && !space(b[j]) {
		j++
	}
	return b[i:j], b[j:]
}

// hasPrefixFold reports whether b begins with prefix, in any case.
func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && bytes.EqualFold(b[:len(prefix)], []byte(prefix))
}

// isNonce reports a nonce as CSP writes one (base64 or base64url), and so
// safe to write in a quoted attribute.
func isNonce(n []byte) bool {
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
