package main

import (
	"io"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// lineWriter is where the access log writes. The lines of many requests go
// out in one write, every logFlushInterval or once logFlushBytes are
// waiting, instead of a system call on each request's path: to a file that
// cost ~2 µs a line, half of it saved in all and nearly all of it on the
// request's path (BenchmarkAccessLine), more to a pipe; and a log pipe
// nobody read stalled every request. A sink that does not keep up costs
// lines, counted, never requests: past maxWaiting bytes, lines are dropped.
// zerolog writes each line whole, so a write never splits one.
type lineWriter struct {
	w          io.Writer
	maxWaiting int
	dropped    *metrics.Counter

	mu  sync.Mutex
	buf []byte // lines waiting

	spare []byte // the buffer last written, for reuse (run's own)
	kick  chan struct{}
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

const (
	logFlushInterval = 100 * time.Millisecond
	logFlushBytes    = 64 << 10
	maxWaitingLog    = 4 << 20
	maxKeptLogBuffer = 1 << 20 // a larger buffer, grown by a burst, is let go
)

// newLineWriter starts writing to w; Close writes what is left and stops.
func newLineWriter(w io.Writer, dropped *metrics.Counter) *lineWriter {
	l := &lineWriter{w: w, maxWaiting: maxWaitingLog, dropped: dropped,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go l.run()
	return l
}

// Write queues p, one line. It never blocks on the sink.
func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	if len(l.buf)+len(p) > l.maxWaiting {
		l.mu.Unlock()
		l.dropped.Inc()
		return len(p), nil
	}
	l.buf = append(l.buf, p...)
	full := len(l.buf) >= logFlushBytes
	l.mu.Unlock()
	if full {
		select {
		case l.kick <- struct{}{}:
		default: // already woken
		}
	}
	return len(p), nil
}

func (l *lineWriter) run() {
	defer close(l.done)
	t := time.NewTicker(logFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-l.kick:
		case <-l.stop:
			l.flush()
			return
		}
		l.flush()
	}
}

// flush writes the lines waiting. A sink that fails (stderr closed) has
// nowhere to say so; the lines are lost.
func (l *lineWriter) flush() {
	l.mu.Lock()
	b := l.buf
	l.buf = l.spare[:0]
	l.mu.Unlock()
	if len(b) > 0 {
		_, _ = l.w.Write(b)
	}
	if cap(b) > maxKeptLogBuffer {
		b = nil
	}
	l.spare = b[:0]
}

// Close writes the lines waiting and stops the writer.
func (l *lineWriter) Close() error {
	l.once.Do(func() { close(l.stop) })
	<-l.done
	return nil
}
