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
		for _, policy := range bytes.Split(v, []byte{','}) {
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
		for _, policy := range bytes.Split(v, []byte{','}) {
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
	var found [3][][]byte // sources of script-src-elem, script-src, default-src
	var seen [3]bool
	for _, d := range bytes.Split(policy, []byte{';'}) {
		f := bytes.Fields(d)
		if len(f) == 0 {
			continue
		}
		for i, name := range []string{"script-src-elem", "script-src", "default-src"} {
			if !seen[i] && bytes.EqualFold(f[0], []byte(name)) {
				seen[i], found[i] = true, f[1:]
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
	for _, src := range found[i] {
		lower := bytes.ToLower(src)
		switch {
		case bytes.HasPrefix(lower, []byte("'nonce-")) && bytes.HasSuffix(src, []byte("'")) && len(src) > len("'nonce-'"):
			if nonce == nil {
				nonce = src[len("'nonce-") : len(src)-1]
			}
		case bytes.HasPrefix(lower, []byte("'sha256-")), bytes.HasPrefix(lower, []byte("'sha384-")),
			bytes.HasPrefix(lower, []byte("'sha512-")), string(lower) == "'strict-dynamic'":
			strict = true
		case string(lower) == "'unsafe-inline'":
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
