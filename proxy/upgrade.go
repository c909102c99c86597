package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// serveUpgrade relays a WebSocket (or any Upgrade) request: it dials the
// origin, sends the prepared request, then hijacks the visitor's connection
// and copies bytes both ways until either side closes or the connection
// sits idle for server.upgrade_idle_timeout. The origin's answer (101 or an
// error) reaches the visitor through the same copy.
func (h *Handler) serveUpgrade(ctx *fasthttp.RequestCtx, req *fasthttp.Request, x *exchange) {
	h.metrics.upgrades.Inc()
	oc, err := h.origin.open()
	if err != nil {
		status, cause := originFailure(err)
		x.cause = cause
		h.metrics.originError(cause)
		h.log.Warn().Err(err).Str("cause", cause).Msg("upgrade: origin dial failed")
		h.plainError(ctx, status, originErrorText(status))
		return
	}
	_ = oc.SetWriteDeadline(time.Now().Add(h.dialTimeout))
	bw := bufio.NewWriter(oc)
	err = req.Header.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		_ = oc.Close()
		x.cause = "upgrade write"
		h.plainError(ctx, fasthttp.StatusBadGateway, originErrorText(fasthttp.StatusBadGateway))
		return
	}
	_ = oc.SetWriteDeadline(time.Time{})
	x.cause = "upgrade"
	idle := h.upgradeIdle
	log := h.log
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(cc net.Conn) {
		if err := relay(cc, oc, idle); err != nil {
			log.Debug().Err(err).Msg("upgrade relay ended")
		}
	})
}

// relay copies a<->b until one side ends or both are idle for idle.
func relay(a, b net.Conn, idle time.Duration) error {
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	var once sync.Once
	var closed atomic.Bool
	closeBoth := func() {
		once.Do(func() {
			closed.Store(true)
			_ = a.Close()
			_ = b.Close()
			// A hijacked connection's Close is fasthttp's, once the relay
			// has returned: wake the read still waiting on it, or the
			// visitor would not learn the origin had gone until idle.
			_ = a.SetDeadline(time.Now())
			_ = b.SetDeadline(time.Now())
		})
	}
	// Each direction ends by closing both, before it reports: once both
	// have reported, fasthttp may take the hijacked connection back.
	pipe := func(dst, src net.Conn) error {
		buf := make([]byte, 32<<10)
		for {
			_ = src.SetReadDeadline(time.Now().Add(idle))
			if closed.Load() { // after the deadline: closeBoth's wins
				return nil
			}
			n, err := src.Read(buf)
			if n > 0 {
				last.Store(time.Now().UnixNano())
				_ = dst.SetWriteDeadline(time.Now().Add(idle))
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return werr
				}
			}
			if err != nil {
				if closed.Load() {
					return nil
				}
				if errors.Is(err, os.ErrDeadlineExceeded) && time.Since(time.Unix(0, last.Load())) < idle {
					continue // the other direction is busy: not idle
				}
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
		}
	}
	errc := make(chan error, 2)
	run := func(dst, src net.Conn) {
		err := pipe(dst, src)
		closeBoth()
		errc <- err
	}
	go run(b, a)
	go run(a, b)
	err := <-errc
	if err2 := <-errc; err == nil {
		err = err2
	}
	return err
}
