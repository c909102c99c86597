package proxy

import (
	"bytes"
	"iter"
	"net"
	"slices"
	"strings"

	"github.com/valyala/fasthttp"
)

// hopHeaders are the hop-by-hop headers of RFC 9110 §7.6.1 (and the
// non-standard ones proxies have always stripped). They describe one
// connection and must not be forwarded. Transfer-Encoding and Content-Length
// are framing that fasthttp rewrites itself.
var hopHeaders = [][]byte{
	[]byte("Connection"),
	[]byte("Proxy-Connection"),
	[]byte("Keep-Alive"),
	[]byte("Proxy-Authenticate"),
	[]byte("Proxy-Authorization"),
	[]byte("Te"),
	[]byte("Trailer"),
	[]byte("Transfer-Encoding"),
	[]byte("Upgrade"),
}

// headerDeleter is the part of fasthttp's request and response headers that
// hop-by-hop stripping needs.
type headerDeleter interface {
	Peek(key string) []byte
	DelBytes(key []byte)
}

// stripHopHeaders removes the headers named in Connection, then the
// hop-by-hop headers. It must run before edgeseg adds headers of its own, so
// a client's "Connection: X-Forwarded-For" cannot delete what edgeseg set
// (golang/go#50580). scratch is reused to hold the Connection value.
func stripHopHeaders(h headerDeleter, scratch []byte) []byte {
	scratch = append(scratch[:0], h.Peek("Connection")...)
	rest := scratch // consumed below; scratch keeps the buffer for reuse
	// Each name costs a pass over the headers: a request naming more is
	// refused (checkRequest), a response's names past the bound are let be.
	for n := 0; len(rest) > 0 && n < maxConnectionNames; n++ {
		var name []byte
		if i := bytes.IndexByte(rest, ','); i >= 0 {
			name, rest = rest[:i], rest[i+1:]
		} else {
			name, rest = rest, nil
		}
		name = bytes.TrimSpace(name)
		if len(name) > 0 && !isFramingHeader(name) {
			h.DelBytes(name)
		}
	}
	for _, k := range hopHeaders {
		h.DelBytes(k)
	}
	return scratch[:0]
}

// maxConnectionNames bounds the header names a Connection header may list
// (clients send one or two: "keep-alive", "Upgrade", "TE"). Removing each
// is a pass over all the headers: a 32 KiB request head naming 1,500 of
// its 1,500 headers cost 3.5 ms of CPU, sixteen times a page's.
const maxConnectionNames = 32

// isFramingHeader reports whether name is a header fasthttp manages itself;
// a Connection header naming it must not make the message unframed.
func isFramingHeader(name []byte) bool {
	return bytes.EqualFold(name, []byte("Content-Length")) || bytes.EqualFold(name, []byte("Host"))
}

// tokenBytes marks the bytes an RFC 9110 token is made of: what a header
// name may hold.
var tokenBytes = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range []byte("!#$%&'*+-.^_`|~") {
		t[c] = true
	}
	return t
}()

// validHeaderName reports whether name is a token, as a header name must be.
// fasthttp accepts names with a space inside ("X A: b") and would forward
// them; a line that parsers read differently is refused or dropped instead.
func validHeaderName(name []byte) bool {
	if len(name) == 0 {
		return false
	}
	for _, c := range name {
		if !tokenBytes[c] {
			return false
		}
	}
	return true
}

// rawHeaderLines yields the lines of a raw header block, without their
// line ends.
func rawHeaderLines(raw []byte) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for len(raw) > 0 {
			line := raw
			if i := bytes.IndexByte(raw, '\n'); i >= 0 {
				line, raw = raw[:i], raw[i+1:]
			} else {
				raw = nil
			}
			if !yield(bytes.TrimSuffix(line, []byte("\r"))) {
				return
			}
		}
	}
}

// requestHead is what one walk over a request's raw header lines finds,
// for the checks every request goes through.
type requestHead struct {
	badName       bool // a line whose name is not a token (or without a colon)
	contentLength bool // a Content-Length line
	proxyOnly     bool // one of proxyOnlyHeaders
	hops          int  // edgeseg's entries in CDN-Loop: proxies of it it has passed
	connNames     int  // header names listed in Connection
}

// scanRequestHead walks a raw header block once. Continuation lines
// (obs-fold) have no name: fasthttp joins them to the line before.
func scanRequestHead(raw []byte) (f requestHead) {
	for line := range rawHeaderLines(raw) {
		if len(line) == 0 || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		c := bytes.IndexByte(line, ':')
		if c <= 0 || !validHeaderName(line[:c]) {
			f.badName = true
			continue
		}
		// Content-Length begins with C, each proxy-only header with F, T
		// or X; what browsers send mostly does not.
		switch name := line[:c]; name[0] | 0x20 {
		case 'c':
			f.contentLength = f.contentLength || bytes.EqualFold(name, []byte("Content-Length"))
			if bytes.EqualFold(name, []byte(cdnLoop)) {
				f.hops += loopEntries(line[c+1:])
			} else if bytes.EqualFold(name, []byte("Connection")) {
				f.connNames += bytes.Count(line[c+1:], []byte(",")) + 1
			}
		case 'f', 't', 'x':
			f.proxyOnly = f.proxyOnly || isProxyOnlyHeader(name)
		}
	}
	return f
}

// dropInvalidHeaderNames removes from an origin's response the headers whose
// names are not tokens: a browser would reject the response, or read the line
// differently from the origin's intent.
func dropInvalidHeaderNames(h *fasthttp.ResponseHeader) {
	var bad [][]byte
	for k := range h.All() {
		if !validHeaderName(k) {
			bad = append(bad, bytes.Clone(k))
		}
	}
	for _, k := range bad {
		h.DelBytes(k)
	}
}

// netSet is a set of networks: trusted proxies, metrics readers.
type netSet []*net.IPNet

func (t netSet) contains(ip net.IP) bool {
	for _, n := range t {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// proxyOnlyHeaders are what proxies tell an origin about a request, beyond
// X-Forwarded-For/-Proto/-Host, and the URL overrides some frameworks take
// from them (X-Original-URL: a page served for another path, and kept for
// it by any cache). Only a trusted peer may send them on; from anyone else
// they are dropped, so a visitor cannot forge where they come from or have
// another page served under this one's URL.
var proxyOnlyHeaders = []string{
	"Forwarded", "X-Real-IP", "X-Client-IP", "True-Client-IP",
	"X-Forwarded-Port", "X-Forwarded-Scheme", "X-Forwarded-Ssl", "X-Forwarded-Server", "X-Forwarded-Prefix",
	"X-Original-URL", "X-Rewrite-URL",
}

// isProxyOnlyHeader reports whether name is one of proxyOnlyHeaders.
func isProxyOnlyHeader(name []byte) bool {
	for _, k := range proxyOnlyHeaders {
		if len(name) == len(k) && bytes.EqualFold(name, []byte(k)) {
			return true
		}
	}
	return false
}

// setForwarded sets X-Forwarded-For, -Proto and -Host on the outgoing
// request. From a trusted peer the incoming chain is kept and extended;
// from anyone else it is replaced, so a visitor cannot forge their address,
// and the other proxy headers (proxyOnly: the request has some) are dropped.
func (h *Handler) setForwarded(ctx *fasthttp.RequestCtx, req *fasthttp.Request, peerTrusted, proxyOnly bool) {
	if !peerTrusted && proxyOnly {
		for _, k := range proxyOnlyHeaders {
			req.Header.Del(k)
		}
	}
	peer := ctx.RemoteIP().String()
	xff := req.Header.Peek("X-Forwarded-For")
	if !peerTrusted && len(xff) > 0 {
		h.warnUntrustedForwarder(ctx.RemoteIP())
	}
	if peerTrusted && len(xff) > 0 {
		v := make([]byte, 0, len(xff)+2+len(peer))
		v = append(append(append(v, xff...), ", "...), peer...)
		req.Header.SetBytesV("X-Forwarded-For", v)
	} else {
		req.Header.Set("X-Forwarded-For", peer)
	}
	if !peerTrusted || len(req.Header.Peek("X-Forwarded-Proto")) == 0 {
		if ctx.IsTLS() {
			req.Header.Set("X-Forwarded-Proto", "https")
		} else {
			req.Header.Set("X-Forwarded-Proto", "http")
		}
	}
	if !peerTrusted || len(req.Header.Peek("X-Forwarded-Host")) == 0 {
		req.Header.SetBytesV("X-Forwarded-Host", ctx.Host())
	}
	if h.via {
		addVia(&req.Header)
	}
}

// warnUntrustedForwarder says, once, that a request came through a proxy
// edgeseg was not told to trust: one from a private address (a load
// balancer, most likely, not a visitor) with X-Forwarded-For. Its
// X-Forwarded-* and the geo header are then not believed: visitors' own
// addresses, https (Secure cookies) and countries are lost, a common
// setup mistake that shows nowhere else.
func (h *Handler) warnUntrustedForwarder(ip net.IP) {
	if (ip.IsPrivate() || ip.IsLoopback()) && h.warnedForwarder.CompareAndSwap(false, true) {
		h.log.Warn().Str("peer", ip.String()).
			Msg("a request came through a proxy at this address with X-Forwarded-For, but server.trusted_proxies does not name it: its X-Forwarded-* and the geo header are ignored (the visitor's address, https, country); add your load balancer's addresses to server.trusted_proxies")
	}
}

// headerAdder is what addVia needs of a request or response header.
type headerAdder interface {
	Peek(key string) []byte
	Set(key, value string)
}

func addVia(h headerAdder) {
	if v := h.Peek("Via"); len(v) > 0 {
		h.Set("Via", string(v)+", 1.1 edgeseg")
		return
	}
	h.Set("Via", "1.1 edgeseg")
}

// filterAcceptEncoding rewrites the request's Accept-Encoding to the codings
// edgeseg can decode (gzip, br, deflate), so whatever the origin sends can be
// rewritten; codings the client did not ask for are never added. The
// original value is returned for choosing the client's encoding later.
func filterAcceptEncoding(h *fasthttp.RequestHeader, out []byte) []byte {
	in := h.Peek("Accept-Encoding")
	if len(in) == 0 {
		return out[:0]
	}
	out = out[:0]
	rest := in
	for len(rest) > 0 {
		var part []byte
		if i := bytes.IndexByte(rest, ','); i >= 0 {
			part, rest = rest[:i], rest[i+1:]
		} else {
			part, rest = rest, nil
		}
		part = bytes.TrimSpace(part)
		name := part
		if i := bytes.IndexByte(part, ';'); i >= 0 {
			name = bytes.TrimSpace(part[:i])
		}
		if codingSupported(name) {
			if len(out) > 0 {
				out = append(out, ", "...)
			}
			out = append(out, part...)
		}
	}
	if len(out) == 0 {
		h.Del("Accept-Encoding")
	} else {
		h.SetBytesV("Accept-Encoding", out)
	}
	return out
}

// mayBeRewritten reports whether the answer to a request may be a page
// edgeseg rewrites: a navigation or a prefetch of one (isNavigation), a
// page in a frame (isFramed) or one a script fetches (scriptPage). The
// browser names every other destination (script, style, image, font, …)
// in Sec-Fetch-Dest; such a request keeps the codings it accepts (zstd
// for a script, say), since its answer is passed as sent.
func mayBeRewritten(h *fasthttp.RequestHeader) bool {
	switch string(h.Peek("Sec-Fetch-Dest")) {
	case "", "document", "empty", "iframe", "frame":
		return true
	}
	return false
}

func codingSupported(name []byte) bool {
	return bytes.EqualFold(name, []byte("gzip")) || bytes.EqualFold(name, []byte("br")) ||
		bytes.EqualFold(name, []byte("deflate")) || bytes.EqualFold(name, []byte("identity"))
}

// originPrefixes are the URL prefixes ("http://host", "https://host") under
// which the origin knows itself when edgeseg sends it a Host other than the
// visitor's (origin.host_header): redirects it makes to them would take the
// visitor past edgeseg.
func originPrefixes(hosts ...string) [][]byte {
	var out [][]byte
	for _, h := range hosts {
		if h == "" {
			continue
		}
		h = strings.ToLower(h)
		out = append(out, []byte("http://"+h), []byte("https://"+h))
	}
	return out
}

// relocate makes Location and Content-Location values that point at the
// origin's own host relative ("/path?query"), so the visitor's browser
// resolves them against the host it asked (visitorHost), edgeseg's. Other
// values (other hosts, relative ones, the visitor's own host, where a
// redirect may be changing the scheme) are left alone.
func (h *Handler) relocate(hdr *fasthttp.ResponseHeader, visitorHost []byte) {
	for _, name := range [...]string{fasthttp.HeaderLocation, fasthttp.HeaderContentLocation} {
		v := hdr.Peek(name)
		if len(v) == 0 {
			continue
		}
		for _, p := range h.originAt {
			if len(v) < len(p) || !bytes.EqualFold(v[:len(p)], p) {
				continue
			}
			rest := v[len(p):]
			if len(rest) > 0 && rest[0] != '/' && rest[0] != '?' && rest[0] != '#' {
				continue // another host: "https://shop.example.evil" or a port
			}
			if host := p[bytes.IndexByte(p, '/')+2:]; bytes.EqualFold(host, visitorHost) {
				break
			}
			rel := make([]byte, 0, len(rest)+1)
			if len(rest) == 0 || rest[0] != '/' {
				rel = append(rel, '/')
			}
			hdr.SetBytesV(name, append(rel, rest...))
			break
		}
	}
}

// hostOnlyCookies drops the Domain attribute of the origin's Set-Cookie
// values whose Domain the visitor's host is not within: a browser would
// refuse such a cookie (the origin, told another Host, named its own
// domain), while without a Domain it is kept for the visitor's host, as
// the site meant. Other cookies are left exactly as they are.
func hostOnlyCookies(hdr *fasthttp.ResponseHeader, visitorHost []byte) {
	host := visitorHost
	if h, _, err := net.SplitHostPort(string(visitorHost)); err == nil {
		host = []byte(h)
	}
	var fixed [][]byte
	changed := false
	for _, v := range hdr.Cookies() {
		nv := withoutForeignDomain(v, host)
		changed = changed || nv != nil
		if nv == nil {
			nv = append([]byte(nil), v...)
		}
		fixed = append(fixed, nv)
	}
	if !changed {
		return
	}
	hdr.DelAllCookies()
	for _, v := range fixed {
		hdr.AddBytesV(fasthttp.HeaderSetCookie, v)
	}
}

// withoutForeignDomain returns the Set-Cookie value v without its Domain
// attribute when host is not within that domain, or nil when v is fine.
func withoutForeignDomain(v, host []byte) []byte {
	rest := v
	for off := 0; len(rest) > 0; {
		attr, next, _ := bytes.Cut(rest, []byte(";"))
		name, val, _ := bytes.Cut(attr, []byte("="))
		if off > 0 && bytes.EqualFold(bytes.TrimSpace(name), []byte("domain")) {
			d := bytes.TrimPrefix(bytes.TrimSpace(val), []byte("."))
			if len(d) == 0 || bytes.EqualFold(host, d) ||
				len(host) > len(d) && host[len(host)-len(d)-1] == '.' && bytes.EqualFold(host[len(host)-len(d):], d) {
				return nil
			}
			end := off + len(attr)
			if len(next) < len(rest)-len(attr) { // a ';' followed
				end++
			}
			out := append([]byte(nil), v[:off]...)
			out = bytes.TrimRight(out, "; ")
			if tail := bytes.TrimLeft(v[end:], " "); len(tail) > 0 {
				out = append(append(out, "; "...), tail...)
			}
			return out
		}
		off += len(attr) + 1
		rest = next
		if off > len(v) {
			break
		}
	}
	return nil
}

// cdnLoop is the header (RFC 8586) in which each proxy of a request names
// itself, so that one that sees its own name knows the request came back
// to it: an origin.url that leads to edgeseg (the site's public name, once
// it points at edgeseg) would otherwise send every request round until
// connections run out.
const cdnLoop = "CDN-Loop"

// loopPseudonym is edgeseg's name in CDN-Loop.
const loopPseudonym = "edgeseg"

// maxHops is how many edgeseg proxies a request may have passed before
// the one it reaches answers 508 Loop Detected: two layers of edgeseg, one
// in front of the other, are allowed.
const maxHops = 2

// loopEntries counts edgeseg's entries in a CDN-Loop value: comma-separated
// pseudonyms, each perhaps with ;parameters.
func loopEntries(v []byte) int {
	n := 0
	for entry := range bytes.SplitSeq(v, []byte(",")) {
		name, _, _ := bytes.Cut(entry, []byte(";"))
		if bytes.EqualFold(bytes.TrimSpace(name), []byte(loopPseudonym)) {
			n++
		}
	}
	return n
}

// dropCookies takes the cookies named in names out of h's Cookie headers
// and leaves every other cookie as the visitor sent it. fasthttp's cookie
// API would re-encode them all, unquoting quoted values and dropping
// values holding a quote or backslash (which sites do set), so the lines
// are cut here and put back as raw header lines. A request without one of
// the names is not touched. scratch is reused and returned.
func dropCookies(h *fasthttp.RequestHeader, names []string, scratch []byte) []byte {
	lines := h.PeekAll(fasthttp.HeaderCookie)
	if !slices.ContainsFunc(lines, func(l []byte) bool { return hasCookieNamed(l, names) }) {
		return scratch
	}
	out := scratch[:0]
	var endsBuf [8]int
	ends := endsBuf[:0] // where each kept line ends in out
	for _, l := range lines {
		start := len(out)
		for pair := range cookiePairs(l) {
			if cookieNameIn(pair, names) {
				continue
			}
			if len(out) > start {
				out = append(out, ';', ' ')
			}
			out = append(out, pair...)
		}
		if len(out) > start {
			ends = append(ends, len(out))
		}
	}
	h.Del(fasthttp.HeaderCookie)
	// Added as plain header lines: with special headers on, fasthttp
	// would parse (and so re-encode) them.
	h.DisableSpecialHeader()
	start := 0
	for _, end := range ends {
		h.AddBytesV(fasthttp.HeaderCookie, out[start:end])
		start = end
	}
	h.EnableSpecialHeader()
	return out[:0]
}

// cookiePairs yields the name=value pairs of a Cookie header line, without
// the blanks around them; empty ones are skipped.
func cookiePairs(l []byte) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for rest := l; len(rest) > 0; {
			var pair []byte
			if i := bytes.IndexByte(rest, ';'); i >= 0 {
				pair, rest = rest[:i], rest[i+1:]
			} else {
				pair, rest = rest, nil
			}
			if pair = bytes.Trim(pair, " \t"); len(pair) > 0 && !yield(pair) {
				return
			}
		}
	}
}

// hasCookieNamed reports whether the Cookie header line l holds a cookie
// with one of names.
func hasCookieNamed(l []byte, names []string) bool {
	if !slices.ContainsFunc(names, func(n string) bool { return n != "" && bytes.Contains(l, []byte(n)) }) {
		return false
	}
	for pair := range cookiePairs(l) {
		if cookieNameIn(pair, names) {
			return true
		}
	}
	return false
}

// cookieNameIn reports whether the name of a Cookie header's name=value
// pair is one of names (exactly: cookie names are case-sensitive).
func cookieNameIn(pair []byte, names []string) bool {
	name, _, ok := bytes.Cut(pair, []byte{'='})
	if !ok {
		return false // a bare value: browsers give it the empty name
	}
	name = bytes.TrimRight(name, " \t")
	return slices.ContainsFunc(names, func(n string) bool { return n != "" && string(name) == n })
}
