package proxy

import (
	"bufio"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkHeaderChecks is the header work every request pays beside
// forwarding: the request's names checked, the proxy-only headers a
// visitor may not send dropped, and the response's names checked.
func BenchmarkHeaderChecks(b *testing.B) {
	var ctx fasthttp.RequestCtx
	raw := "GET /page-5k.html?utm_campaign=promo HTTP/1.1\r\nHost: shop.test\r\n" +
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36\r\n" +
		"Accept: text/html,application/xhtml+xml\r\nAccept-Language: en-US,en;q=0.9\r\nAccept-Encoding: gzip, br\r\n" +
		"Sec-Fetch-Dest: document\r\nSec-Fetch-Mode: navigate\r\nUpgrade-Insecure-Requests: 1\r\n" +
		"Cookie: _ga=GA1.2.3; edgeseg=eyJhbGciOiJIUzI1NiJ9.eyJpZCI6IngifQ.c2ln\r\n\r\n"
	if err := ctx.Request.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		b.Fatal(err)
	}
	var resp fasthttp.ResponseHeader
	for _, kv := range [][2]string{{"Content-Type", "text/html"}, {"Cache-Control", "max-age=60"}, {"ETag", `"x"`},
		{"Last-Modified", "Sun, 01 Mar 2026 12:00:00 GMT"}, {"Vary", "Accept-Encoding"}, {"X-Frame-Options", "DENY"}} {
		resp.Set(kv[0], kv[1])
	}
	var req fasthttp.Request
	b.ReportAllocs()
	for b.Loop() {
		head := scanRequestHead(ctx.Request.Header.RawHeaders())
		if head.badName {
			b.Fatal("valid names refused")
		}
		ctx.Request.Header.CopyTo(&req.Header)
		if head.proxyOnly {
			b.Fatal("a visitor's ordinary request has proxy headers")
		}
		dropInvalidHeaderNames(&resp)
		resp.SetProtocol(nil)
	}
}
