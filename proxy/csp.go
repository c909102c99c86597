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

// scriptPolicies is what the Content-Security-Policies a page is served
// with let an inline <script> do, such as the data layer edgeseg adds:
// every enforced policy must allow it, and a script carries one nonce.
// Nonces are copied: a scriptPolicies outlives the header it read.
type scriptPolicies struct {
	blocked bool
	// noConnect: a policy keeps the page from connecting to its own
	// origin (connect-src, else default-src), which a beacon does.
	noConnect bool
	// nonce is the nonce the enforced policies name, report the first a
	// report-only policy names; empty for none (a nonce never is). Their
	// buffers are kept from visit to visit.
	nonce, report []byte
}

// readHeaders reads the response's Content-Security-Policy and
// Content-Security-Policy-Report-Only headers, every policy of which
// (several in a header, separated by commas) a browser applies.
func (sp *scriptPolicies) readHeaders(rh *fasthttp.ResponseHeader) {
	sp.blocked, sp.noConnect, sp.nonce, sp.report = false, false, sp.nonce[:0], sp.report[:0]
	for _, v := range rh.PeekAll("Content-Security-Policy") {
		for rest := v; len(rest) > 0; {
			var policy []byte
			policy, rest, _ = bytes.Cut(rest, []byte{','})
			sp.enforce(policy)
		}
	}
	for _, v := range rh.PeekAll("Content-Security-Policy-Report-Only") {
		for rest := v; len(rest) > 0 && len(sp.report) == 0; {
			var policy []byte
			policy, rest, _ = bytes.Cut(rest, []byte{','})
			if rule, n := inlineScriptRule(policy); rule == scriptsNonce {
				sp.report = append(sp.report, n...)
			}
		}
	}
}

// enforce adds one enforced policy: of a header, or of a page's <meta
// http-equiv> (whose content is one policy, commas and all).
func (sp *scriptPolicies) enforce(policy []byte) {
	sp.noConnect = sp.noConnect || !connectsSelf(policy)
	switch rule, n := inlineScriptRule(policy); rule {
	case scriptsBlocked:
		sp.blocked = true
	case scriptsNonce:
		switch {
		case len(sp.nonce) == 0:
			sp.nonce = append(sp.nonce, n...)
		case !bytes.Equal(sp.nonce, n):
			sp.blocked = true // a script carries one nonce
		}
	}
}

// inlineScript reports whether the policies let the data layer's inline
// script run (ok false: an error in the console, a report to the site's
// report-uri, and no data layer anyway), and the nonce it must carry, if
// any. With no enforced nonce, a report-only policy's is taken, which
// keeps the script out of its reports.
func (sp *scriptPolicies) inlineScript() (nonce []byte, ok bool) {
	switch {
	case sp.blocked:
		return nil, false
	case len(sp.nonce) > 0:
		return sp.nonce, true
	case len(sp.report) > 0:
		return sp.report, true
	}
	return nil, true
}

// inlineScriptRule reads one policy for an inline <script> element: by its
// script-src-elem directive, else script-src, else default-src (CSP 3's
// fallback for script elements); the first of a name counts, as in
// browsers. 'unsafe-inline' is ignored beside a nonce, a hash or
// 'strict-dynamic'.
func inlineScriptRule(policy []byte) (scriptRule, []byte) {
	list, ok := sourceList(policy, "script-src-elem", "script-src", "default-src")
	if !ok {
		return scriptsFree, nil
	}
	var nonce []byte
	inline, strict := false, false
	for src, srcs := nextField(list); len(src) > 0; src, srcs = nextField(srcs) {
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

// connectsSelf reads one policy for a page's requests to its own origin
// (navigator.sendBeacon, fetch): by its connect-src directive, else
// default-src. Its own origin is let by 'self', by '*', or by the scheme
// sources http: and https: (edgeseg may not know the host the page is
// served as, so a host source is not taken for it).
func connectsSelf(policy []byte) bool {
	list, ok := sourceList(policy, "connect-src", "default-src")
	if !ok {
		return true
	}
	for src, srcs := nextField(list); len(src) > 0; src, srcs = nextField(srcs) {
		if bytes.EqualFold(src, []byte("'self'")) || string(src) == "*" ||
			bytes.EqualFold(src, []byte("https:")) || bytes.EqualFold(src, []byte("http:")) {
			return true
		}
	}
	return false
}

// sourceList returns the source list of the directive of policy that a
// browser reads for names, which fall back one to the next in order (CSP
// 3's fallback): that of the first of names the policy has, the first
// directive of a name counting, as in browsers. ok is false when it has
// none of them.
func sourceList(policy []byte, names ...string) (list []byte, ok bool) {
	best := len(names)
	for rest := policy; len(rest) > 0 && best > 0; {
		var d []byte
		d, rest, _ = bytes.Cut(rest, []byte{';'})
		name, srcs := nextField(d)
		for i := range best {
			if bytes.EqualFold(name, []byte(names[i])) {
				best, list = i, srcs
				break
			}
		}
	}
	return list, best < len(names)
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
