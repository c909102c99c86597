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

// Event is one exposure or conversion. Type says which.
type Event struct {
	Type    string    `json:"type"` // exposure | conversion
	Time    time.Time `json:"time"`
	Visitor string    `json:"visitor"`
	// exposure
	Segment string  `json:"segment,omitempty"`
	Slot    string  `json:"slot,omitempty"`
	Variant Variant `json:"variant,omitempty"`
	Path    string  `json:"path,omitempty"`
	Version string  `json:"version,omitempty"`
	// conversion
	Event    string   `json:"event,omitempty"`
	Value    string   `json:"value,omitempty"`
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
}

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
	l := &Logger{
		q:       make(chan Event, max(o.QueueSize, 1)),
		done:    make(chan struct{}),
		dropped: o.Metrics.GetOrCreateCounter("edgeseg_events_dropped_total"),
		written: o.Metrics.GetOrCreateCounter("edgeseg_events_written_total"),
		failed:  o.Metrics.GetOrCreateCounter("edgeseg_events_write_errors_total"),
		log:     o.Log,
	}
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
	l := &Logger{q: make(chan Event, max(queue, 1)), w: w, done: make(chan struct{}), log: &nop,
		dropped: set.GetOrCreateCounter("edgeseg_events_dropped_total"),
		written: set.GetOrCreateCounter("edgeseg_events_written_total"),
		failed:  set.GetOrCreateCounter("edgeseg_events_write_errors_total")}
	go l.run()
	return l
}

// Emit queues e. It never blocks: a full queue drops e and counts it.
func (l *Logger) Emit(e Event) {
	if l == nil {
		return
	}
	select {
	case l.q <- e:
	default:
		l.dropped.Inc()
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

// failingWriter counts and logs write failures of the sink (a full disk,
// a closed pipe): the events are lost, requests are not affected.
type failingWriter struct {
	w      io.Writer
	failed *metrics.Counter
	log    *zerolog.Logger
	last   time.Time
}

func (f *failingWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err != nil {
		f.failed.Inc()
		if time.Since(f.last) > 10*time.Second { // do not flood the log
			f.last = time.Now()
			f.log.Error().Err(err).Msg("events: sink write failed; events are being lost")
		}
	}
	return n, err
}

func (l *Logger) run() {
	defer close(l.done)
	zl := zerolog.New(&failingWriter{w: l.w, failed: l.failed, log: l.log})
	for e := range l.q {
		ev := zl.Log().Str("type", e.Type).Time("time", e.Time).Str("visitor", e.Visitor)
		if e.Type == "exposure" {
			ev = ev.Str("segment", e.Segment).Str("slot", e.Slot).Str("variant", string(e.Variant)).Str("path", e.Path)
			if e.Version != "" {
				ev = ev.Str("version", e.Version)
			}
		} else {
			ev = ev.Str("event", e.Event).Strs("segments", e.Segments).Strs("holdouts", e.Holdouts)
			if e.Value != "" {
				ev = ev.Str("value", e.Value)
			}
		}
		ev.Send()
		l.written.Inc()
	}
}

// Close drains the queue and closes the sink.
func (l *Logger) Close() error {
	if l == nil {
		return nil
	}
	l.once.Do(func() { close(l.q) })
	<-l.done
	if l.closer != nil {
		return l.closer.Close()
	}
	return nil
}

// Rotating is a file that rotates to NAME.1, NAME.2, … past a size.
type Rotating struct {
	mu      sync.Mutex
	path    string
	f       *os.File
	size    int64
	max     int64
	backups int
}

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
	if r.max > 0 && r.size+int64(len(p)) > r.max && r.size > 0 {
		if err := r.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	return n, err
}

func (r *Rotating) rotate() error {
	if err := r.f.Close(); err != nil {
		return err
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
	r.f, r.size = f, 0
	return nil
}

// Close closes the file.
func (r *Rotating) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.f.Close()
}
