package proxy

import (
	"io"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
)

// Personalizer runs the personalization steps of the request path. A nil
// *Personalizer personalizes nothing, and every method is safe on nil.
type Personalizer struct{}

// Visit is one request's personalization state, from the steps before the
// origin to the response.
type Visit struct{}

func (p *Personalizer) begin(ctx *fasthttp.RequestCtx, now time.Time) *Visit { return nil }
func (p *Personalizer) end(v *Visit)                                         {}
func (p *Personalizer) wantsBody(v *Visit, ctx *fasthttp.RequestCtx, resp *fasthttp.Response) bool {
	return false
}
func (p *Personalizer) personalize(ctx *fasthttp.RequestCtx, v *Visit, html, dst []byte) ([]byte, bool) {
	return dst, false
}
func (p *Personalizer) commit(ctx *fasthttp.RequestCtx, v *Visit, personalized bool) {}
func (p *Personalizer) writeMetrics(w io.Writer)                                     {}
func (p *Personalizer) serveReserved(ctx *fasthttp.RequestCtx, h *Handler) bool      { return false }
func (v *Visit) logFields(e *zerolog.Event) *zerolog.Event                           { return e }
