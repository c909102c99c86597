package events

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
)

// Variant is what a visitor saw in a slot.
type Variant string

const (
	Block   Variant = "block"   // the segment's block
	Holdout Variant = "holdout" // the default, because the visitor is in the segment's holdout
	Default Variant = "default" // the default: no segment had a block, or it failed
)

// Event is one exposure, conversion or visit. Type says which.
type Event struct {
	Type    string    `json:"type"` // exposure | conversion | visit
	Time    time.Time `json:"time"`
	Visitor string    `json:"visitor"`
	// exposure
	Segment string  `json:"segment,omitempty"`
	Slot    string  `json:"slot,omitempty"`
	Variant Variant `json:"variant,omitempty"`
	Path    string  `json:"path,omitempty"`
	Version string  `json:"version,omitempty"`
	// conversion
	Event string `json:"event,omitempty"`
	Value string `json:"value,omitempty"`
	// conversion and visit: the segments the visitor is in, and those of
	// them whose holdout they are in
	Segments []string `json:"segments,omitempty"`
	Holdouts []string `json:"holdouts,omitempty"`
}

// Logger queues events and writes them on its own goroutine. The zero
// value is not usable; a nil *Logger drops everything silently.
type Logger struct {
	q       chan Event
	w       io.Writer
	closer  io.Closer
	done    chan struct{}
	dropped *metrics.Counter
	written *metrics.Counter
	failed  *metrics.Counter
	log     *zerolog.Logger
	once    sync.Once
	// batchBytes bounds one write to the sink: a file's rotation happens
	// between writes, so a write is kept well below the rotation size.
	batchBytes  int
	lastFailure time.Time // of the last failure logged
	// The writer runs every flushInterval, or when kicked: once kickAt
	// events are queued, and on Close.
	kick   chan struct{}
	kickAt int
}

// flushInterval is how long an event waits at most, when few come, before
// it is written.
const flushInterval = 100 * time.Millisecond

// maxBatchBytes is the most one write to the sink carries (and one more
// event).
const maxBatchBytes = 64 << 10

// Options configure a Logger.
type Options struct {
	// Sink is "stdout", "stderr", or a file path.
	Sink         string
	MaxFileBytes int64
	MaxBackups   int
	QueueSize    int
	Metrics      *metrics.Set
	Log          *zerolog.Logger
}

// New opens the sink and starts the writer. An unwritable sink is an
// error here, at start-up.
func New(o Options) (*Logger, error) {
	if o.Metrics == nil {
		o.Metrics = metrics.NewSet()
	}
	if o.Log == nil {
		l := zerolog.Nop()
		o.Log = &l
	}
	l := newLogger(o.QueueSize, o.Metrics, o.Log)
	switch o.Sink {
	case "stdout":
		l.w = os.Stdout
	case "stderr":
		l.w = os.Stderr
	case "", "off":
		return nil, errors.New("events: sink is off")
	default:
		f, err := OpenRotating(o.Sink, o.MaxFileBytes, o.MaxBackups)
		if err != nil {
			return nil, fmt.Errorf("events: sink %s: %w", o.Sink, err)
		}
		l.w, l.closer = f, f
		if o.MaxFileBytes > 0 {
			l.batchBytes = int(min(maxBatchBytes, o.MaxFileBytes/4))
		}
	}
	go l.run()
	return l, nil
}

// NewWriter returns a Logger writing to w (for tests and embedding).
func NewWriter(w io.Writer, queue int, set *metrics.Set) *Logger {
	if set == nil {
		set = metrics.NewSet()
	}
	nop := zerolog.Nop()
	l := newLogger(queue, set, &nop)
	l.w = w
	go l.run()
	return l
}

func newLogger(queue int, set *metrics.Set, log *zerolog.Logger) *Logger {
	queue = max(queue, 1)
	return &Logger{
		q:          make(chan Event, queue),
		kick:       make(chan struct{}, 1),
		kickAt:     max(queue/4, 1),
		done:       make(chan struct{}),
		dropped:    set.GetOrCreateCounter("edgeseg_events_dropped_total"),
		written:    set.GetOrCreateCounter("edgeseg_events_written_total"),
		failed:     set.GetOrCreateCounter("edgeseg_events_write_errors_total"),
		log:        log,
		batchBytes: maxBatchBytes,
	}
}

// Emit queues e. It never blocks: a full queue drops e and counts it.
// The writer is woken only when the queue is a quarter full: waking it
// for every event cost more than writing the event.
func (l *Logger) Emit(e Event) {
	if l == nil {
		return
	}
	select {
	case l.q <- e:
		if len(l.q) >= l.kickAt {
			l.wake()
		}
	default:
		l.dropped.Inc()
	}
}

func (l *Logger) wake() {
	select {
	case l.kick <- struct{}{}:
	default: // already woken
	}
}

// Failed returns how many events the sink failed to take.
func (l *Logger) Failed() uint64 {
	if l == nil {
		return 0
	}
	return l.failed.Get()
}

// Dropped returns how many events were dropped.
func (l *Logger) Dropped() uint64 {
	if l == nil {
		return 0
	}
	return l.dropped.Get()
}

// lines collects what zerolog writes, one line per event, so that the
// events queued together reach the sink in one write: with a write of its
// own each (and a wake-up of the writer for each), an event cost ~5 µs of
// CPU, three of them per personalized page view.
type lines struct {
	buf []byte
	n   int // events in buf
}

func (b *lines) Write(p []byte) (int, error) {
	b.buf = append(b.buf, p...)
	b.n++
	return len(p), nil
}

func (l *Logger) run() {
	defer close(l.done)
	var b lines
	zl := zerolog.New(&b)
	tick := time.NewTicker(flushInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-l.kick:
		}
		if !l.drain(zl, &b) {
			return
		}
	}
}

// drain writes everything queued, in writes of up to batchBytes. It
// returns false once the queue is closed and empty.
func (l *Logger) drain(zl zerolog.Logger, b *lines) bool {
	defer l.flush(b)
	for {
		select {
		case e, ok := <-l.q:
			if !ok {
				return false
			}
			encode(zl, e)
			if len(b.buf) >= l.batchBytes {
				l.flush(b)
			}
		default:
			return true
		}
	}
}

func encode(zl zerolog.Logger, e Event) {
	ev := zl.Log().Str("type", e.Type).Time("time", e.Time).Str("visitor", e.Visitor)
	if e.Type == "exposure" {
		ev = ev.Str("segment", e.Segment).Str("slot", e.Slot).Str("variant", string(e.Variant)).Str("path", e.Path)
		if e.Version != "" {
			ev = ev.Str("version", e.Version)
		}
	} else {
		if e.Type == "conversion" {
			ev = ev.Str("event", e.Event)
		}
		ev = ev.Strs("segments", e.Segments).Strs("holdouts", e.Holdouts)
		if e.Value != "" {
			ev = ev.Str("value", e.Value)
		}
	}
	ev.Send()
}

// flush writes the collected lines to the sink. A failed write (a full
// disk, a closed pipe) loses its events, counted and logged; requests are
// not affected.
func (l *Logger) flush(b *lines) {
	if b.n == 0 {
		return
	}
	if _, err := l.w.Write(b.buf); err != nil {
		l.failed.Add(b.n)
		if time.Since(l.lastFailure) > 10*time.Second { // do not flood the log
			l.lastFailure = time.Now()
			l.log.Error().Err(err).Int("events", b.n).Msg("events: sink write failed; events are being lost")
		}
	} else {
		l.written.Add(b.n)
	}
	b.buf, b.n = b.buf[:0], 0
}

// Close drains the queue and closes the sink.
func (l *Logger) Close() error {
	if l == nil {
		return nil
	}
	l.once.Do(func() {
		close(l.q)
		l.wake()
	})
	<-l.done
	if l.closer != nil {
		return l.closer.Close()
	}
	return nil
}

// Rotating is a file that rotates to NAME.1, NAME.2, … past a size.
//
// A write the disk takes only part of (it filled up) leaves a torn last
// line; the next write that succeeds starts on a line of its own, so only
// the torn event is unreadable, not the one after it too. A rotation that
// could not open the new file is tried again on the next write.
//
// The file may also be rotated by another program (logrotate): at most
// once a second, a write first looks whether the path still names the file
// being written, and opens it anew when it was moved or removed (else the
// events would go on into the moved file, which the rotation may compress
// and remove); a file truncated in place (copytruncate) is written on from
// its new end.
type Rotating struct {
	mu      sync.Mutex
	path    string
	f       *os.File // nil after a failed rotation
	size    int64
	max     int64
	backups int
	torn    bool      // the last write ended mid-line
	looked  time.Time // when the path was last looked at
}

// lookEvery is how often a write looks whether the file was rotated by
// another program.
const lookEvery = time.Second

// OpenRotating opens (appends to) path.
func OpenRotating(path string, maxBytes int64, backups int) (*Rotating, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Rotating{path: path, f: f, size: st.Size(), max: maxBytes, backups: backups}, nil
}

// Write writes p, rotating first if it would pass the size bound.
func (r *Rotating) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); r.f != nil && now.Sub(r.looked) >= lookEvery {
		r.looked = now
		r.followPath()
	}
	if r.f == nil || r.max > 0 && r.size+int64(len(p)) > r.max && r.size > 0 {
		if err := r.rotate(); err != nil {
			return 0, fmt.Errorf("events: %s: %w", r.path, err)
		}
	}
	if r.torn {
		n, err := r.f.Write([]byte{'\n'})
		r.size += int64(n)
		if err != nil {
			return 0, err
		}
		r.torn = false
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	r.torn = n > 0 && n < len(p) && p[n-1] != '\n'
	return n, err
}

// followPath opens the path anew when it no longer names the file being
// written (moved or removed by another program), and takes the size of a
// file truncated in place.
func (r *Rotating) followPath() {
	cur, err := r.f.Stat()
	if err != nil {
		return
	}
	if st, err := os.Stat(r.path); err == nil && os.SameFile(cur, st) {
		if st.Size() < r.size {
			r.size, r.torn = st.Size(), false // truncated: written on from its new end
		}
		return
	}
	f, err := os.OpenFile(r.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return // written on where it is; tried again at the next look
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return
	}
	_ = r.f.Close()
	r.f, r.size, r.torn = f, st.Size(), false
}

// rotate moves the file aside (or, without backups, removes it) and opens
// a new one. After a failed rotation (r.f nil) it opens the file again,
// appending, unless it has reached the size bound.
func (r *Rotating) rotate() error {
	if r.f == nil {
		f, err := os.OpenFile(r.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err // the backups stay where they are
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return err
		}
		if r.max <= 0 || st.Size() < r.max {
			r.f, r.size = f, st.Size()
			return nil
		}
		f.Close() // full: rotate it
	} else {
		err := r.f.Close()
		r.f = nil
		if err != nil {
			return err
		}
	}
	if r.backups > 0 {
		for i := r.backups - 1; i >= 1; i-- {
			_ = os.Rename(fmt.Sprintf("%s.%d", r.path, i), fmt.Sprintf("%s.%d", r.path, i+1))
		}
		_ = os.Rename(r.path, r.path+".1")
	} else {
		_ = os.Remove(r.path)
	}
	f, err := os.OpenFile(r.path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	r.f, r.size, r.torn = f, 0, false
	return nil
}

// Close closes the file.
func (r *Rotating) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}
