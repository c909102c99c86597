package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// serveUpgrade relays a WebSocket (or any Upgrade) request: it dials the
// origin, sends the prepared request and reads the head of its answer (101
// or an error), then hijacks the visitor's connection, sends it that head
// as it came (with the request id in it), and copies bytes both ways until
// either side closes or the connection sits idle for
// server.upgrade_idle_timeout. The answer's status is the request's in the
// access log and metrics.
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
	// The whole request goes out before the answer is read: a body, if it
	// has one, is part of it (the switch comes after the request, RFC 9110
	// 7.8).
	_ = oc.SetWriteDeadline(time.Now().Add(h.originWrite))
	bw := bufio.NewWriter(oc)
	err = req.Write(bw)
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
	sent := time.Now()
	_ = oc.SetReadDeadline(sent.Add(h.upgradeWait))
	br := bufio.NewReaderSize(oc, 4096)
	head, last, status, err := readAnswerHead(br, maxUpgradeHead)
	x.originTime = time.Since(sent)
	h.metrics.originLatency.Update(x.originTime.Seconds())
	if err != nil {
		_ = oc.Close()
		code, cause := originFailure(err)
		if errors.Is(err, errUpgradeAnswer) {
			code, cause = fasthttp.StatusBadGateway, "bad upgrade answer"
		}
		x.cause = cause
		h.metrics.originError(cause)
		h.log.Warn().Err(err).Str("cause", cause).Msg("upgrade: no answer from the origin")
		h.plainError(ctx, code, originErrorText(code))
		return
	}
	_ = oc.SetReadDeadline(time.Time{})
	if x.requestID != "" {
		head = withHeader(head, last, h.requestIDs.header, x.requestID)
	}
	// What came after the head (a first message) goes with it.
	rest, _ := br.Peek(br.Buffered())
	head = append(head, rest...)
	x.cause = "upgrade"
	ctx.Response.SetStatusCode(status) // for the access line; nothing of it is written
	idle := h.upgradeIdle
	log := h.log
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(cc net.Conn) {
		_ = cc.SetWriteDeadline(time.Now().Add(idle))
		if _, err := cc.Write(head); err != nil {
			_ = oc.Close()
			log.Debug().Err(err).Msg("upgrade: the visitor went before the answer")
			return
		}
		if err := relay(cc, oc, idle); err != nil {
			log.Debug().Err(err).Msg("upgrade relay ended")
		}
	})
}

// maxUpgradeHead bounds the head of the origin's answer to an upgrade (and
// of 1xx answers before it).
const maxUpgradeHead = 64 << 10

// errUpgradeAnswer: what the origin sent in answer to an upgrade does not
// begin as an HTTP/1 answer, or its head is past maxUpgradeHead.
var errUpgradeAnswer = errors.New("the origin's answer to an upgrade is not an HTTP/1 answer head")

// readAnswerHead reads from br the head of an answer, to its blank line, as
// it came (lines ending in CRLF or a bare LF; interim 1xx heads before it
// included): last is where its final head begins, status that head's.
func readAnswerHead(br *bufio.Reader, max int) (head []byte, last, status int, err error) {
	lineStart := 0
	for {
		piece, err := br.ReadSlice('\n')
		if len(head)+len(piece) > max {
			return nil, 0, 0, fmt.Errorf("%w: over %d bytes", errUpgradeAnswer, max)
		}
		head = append(head, piece...)
		if err == bufio.ErrBufferFull {
			continue // a line longer than br's buffer: its next piece
		}
		if err != nil {
			return nil, 0, 0, err
		}
		line := head[lineStart:]
		lineStart = len(head)
		if len(line) > 2 || line[0] != '\n' && line[0] != '\r' {
			if status == 0 { // the status line
				if status = statusOf(line); status == 0 {
					return nil, 0, 0, fmt.Errorf("%w: %q", errUpgradeAnswer, line[:min(len(line), 40)])
				}
			}
			continue
		}
		switch {
		case status == 0:
			head, lineStart = head[:last], last // a blank line before the status line
		case status < 200 && status != fasthttp.StatusSwitchingProtocols:
			last, status = len(head), 0 // an interim answer: another head follows
		default:
			return head, last, status, nil
		}
	}
}

// statusOf returns the status code of an HTTP/1 status line, or 0.
func statusOf(line []byte) int {
	const prefix = "HTTP/1."
	if len(line) < len(prefix)+5 || string(line[:len(prefix)]) != prefix || !isDigit(line[len(prefix)]) || line[len(prefix)+1] != ' ' {
		return 0
	}
	code := line[len(prefix)+2:]
	if len(code) < 3 || len(code) > 3 && code[3] != ' ' && code[3] != '\r' && code[3] != '\n' {
		return 0
	}
	n := 0
	for _, c := range code[:3] {
		if !isDigit(c) {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	if n < 100 {
		return 0
	}
	return n
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// withHeader adds "name: value" to the head beginning at last in head,
// after its status line, unless it has the header already (an origin that
// sends the request id back).
func withHeader(head []byte, last int, name, value string) []byte {
	at := last + bytes.IndexByte(head[last:], '\n') + 1
	for l := head[at:]; len(l) > 0; {
		line, more, _ := bytes.Cut(l, []byte{'\n'})
		if k, _, ok := bytes.Cut(line, []byte{':'}); ok && strings.EqualFold(string(k), name) {
			return head
		}
		l = more
	}
	out := make([]byte, 0, len(head)+len(name)+len(value)+4)
	out = append(out, head[:at]...)
	out = append(out, name...)
	out = append(out, ": "...)
	out = append(out, value...)
	out = append(out, "\r\n"...)
	return append(out, head[at:]...)
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
