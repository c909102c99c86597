package proxy

import (
	"bytes"
	"net"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/edgeseg/edgeseg/config"
)

// acmeChallenges is where ACME's HTTP-01 challenges are asked for.
const acmeChallenges = "/.well-known/acme-challenge/"

// NewRedirectServer builds the server for server.redirect_listen: plain
// HTTP that sends every visitor to the same URL in https (308, which keeps
// a form's POST a POST), but for ACME's HTTP-01 challenges, which go to
// the origin as any request does, so that a certificate renewed that way
// (certbot --webroot on the origin's host) goes on renewing once edgeseg
// holds port 80. httpsAddr is where edgeseg answers HTTPS: listen, or
// the address it was given for listen's :0; its port, unless 443, is the
// redirects'.
func NewRedirectServer(cfg *config.Config, httpsAddr string, h *Handler, log *zerolog.Logger) *fasthttp.Server {
	port := ""
	if _, p, err := net.SplitHostPort(httpsAddr); err == nil && p != "443" {
		port = ":" + p
	}
	return &fasthttp.Server{
		Handler:           func(ctx *fasthttp.RequestCtx) { h.serveRedirect(ctx, port) },
		Name:              cfg.Server.Name,
		ReadTimeout:       cfg.Server.ReadTimeout,
		WriteTimeout:      cfg.Server.WriteTimeout,
		IdleTimeout:       cfg.Server.IdleTimeout,
		ReadBufferSize:    int(cfg.Server.MaxHeaderBytes),
		Concurrency:       cfg.Server.MaxConnections,
		ReduceMemoryUsage: true,
		Logger:            fasthttpLogger{log},
	}
}

// serveRedirect answers a plain HTTP request with a redirect to the same
// URL over https, on port (":8443", or "" for 443).
func (h *Handler) serveRedirect(ctx *fasthttp.RequestCtx, port string) {
	if bytes.HasPrefix(ctx.Path(), []byte(acmeChallenges)) {
		h.ServeHTTP(ctx)
		return
	}
	host := hostOnly(ctx.Host())
	target := ctx.Request.Header.RequestURI()
	if len(target) == 0 || target[0] != '/' {
		target = ctx.URI().RequestURI() // absolute-form: its path and query
	}
	if !redirectable(host) || bytes.ContainsFunc(target, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		h.plainError(ctx, fasthttp.StatusBadRequest, "400 Bad Request: this port sends visitors to https://, and this request names no host to send them to")
		return
	}
	loc := make([]byte, 0, len("https://")+len(host)+len(port)+len(target))
	loc = append(append(append(append(loc, "https://"...), host...), port...), target...)
	ctx.Response.Header.SetBytesV(fasthttp.HeaderLocation, loc)
	ctx.Response.Header.SetContentType("text/plain; charset=utf-8")
	ctx.SetStatusCode(fasthttp.StatusPermanentRedirect)
	ctx.SetBodyString("308 Permanent Redirect: this site is served over https://\n")
}

// hostOnly returns a Host header's host, without its port.
func hostOnly(host []byte) []byte {
	if i := bytes.LastIndexByte(host, ':'); i >= 0 && !bytes.Contains(host[i:], []byte("]")) {
		return host[:i]
	}
	return host
}

// redirectable reports a host a Location may be built from: a name or an
// IPv4 address (letters, digits, dots, dashes), or an IPv6 one in
// brackets.
func redirectable(host []byte) bool {
	if len(host) == 0 || len(host) > 255 {
		return false
	}
	if host[0] == '[' {
		return host[len(host)-1] == ']' && net.ParseIP(string(host[1:len(host)-1])) != nil
	}
	for _, c := range host {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}
