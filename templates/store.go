package templates

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/fsnotify/fsnotify"
	"github.com/rs/zerolog"

	"github.com/edgeseg/edgeseg/cache"
	"github.com/edgeseg/edgeseg/config"
	"github.com/edgeseg/edgeseg/segments"
	"github.com/edgeseg/edgeseg/templates/inject"
)

// Store serves the current Set and renders blocks through the block cache.
// Reload swaps in a fully parsed Set; readers never lock. It is safe for
// concurrent use.
type Store struct {
	dir      string
	set      atomic.Pointer[Set]
	blocks   *cache.Checked[Rendered]
	keys     cache.Hasher // seeded per process: keys hold request values
	log      *zerolog.Logger
	mu       sync.Mutex // serializes reloads
	reloads  *metrics.Counter
	failures *metrics.Counter
	errors   *metrics.Counter
	bufs     sync.Pool
	// renderTime bounds the wait for a render (MaxRenderTime), giveUp the
	// render (MaxRenderRun); tests shorten them.
	renderTime, giveUp time.Duration
	// OnReload, when set, is called after every reload with its problems.
	OnReload func(Problems)
}

// NewStore loads dir. Problems that are errors are returned with the Store,
// which serves every block that did load.
func NewStore(dir string, blockCache config.CacheSize, set *metrics.Set, log *zerolog.Logger) (*Store, Problems, error) {
	c, err := cache.NewChecked[Rendered]("blocks", blockCache, set)
	if err != nil {
		return nil, nil, err
	}
	keys, err := cache.NewHasher()
	if err != nil {
		return nil, nil, err
	}
	if set == nil {
		set = metrics.NewSet()
	}
	if log == nil {
		l := zerolog.Nop()
		log = &l
	}
	s := &Store{
		dir: dir, blocks: c, keys: keys, log: log,
		reloads:  set.GetOrCreateCounter("edgeseg_template_reloads_total"),
		failures: set.GetOrCreateCounter("edgeseg_template_reload_problems_total"),
		errors:   set.GetOrCreateCounter("edgeseg_template_errors_total"),

		renderTime: MaxRenderTime,
		giveUp:     MaxRenderRun,
	}
	st, ps := Load(dir, nil)
	s.set.Store(st)
	return s, ps, nil
}

// Set returns the current snapshot.
func (s *Store) Set() *Set { return s.set.Load() }

// Reload parses the directory again and swaps the new Set in. Files that
// fail keep their previous good version; their problems are returned and
// logged.
func (s *Store) Reload() Problems {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ps := Load(s.dir, s.set.Load())
	s.set.Store(st)
	s.blocks.Clear()
	s.reloads.Inc()
	for _, p := range ps {
		if p.Warning {
			s.log.Warn().Str("file", p.File).Int("line", p.Line).Msg(p.Msg)
		} else {
			s.failures.Inc()
			s.log.Error().Str("file", p.File).Int("line", p.Line).Msg("template problem; previous version keeps serving: " + p.Msg)
		}
	}
	s.log.Info().Int("blocks", st.Len()).Msg("templates reloaded")
	if s.OnReload != nil {
		s.OnReload(ps)
	}
	return ps
}

// Render returns b rendered for seg and env, from the block cache when the
// same inputs were rendered before. The returned bytes are shared: callers
// must not modify them. A render error is counted and returned; the caller
// keeps the slot's default content.
func (s *Store) Render(b *Block, seg *segments.Segment, env *segments.Env) (Rendered, error) {
	var key cache.Key128
	if b.static {
		// The same bytes for every visitor of seg: kept on the block itself.
		if r := b.rendered.Load(); r != nil && r.seg == seg {
			if r.err != nil {
				s.errors.Inc()
			}
			return r.out, r.err
		}
	} else {
		bp, _ := s.bufs.Get().(*[]byte)
		if bp == nil {
			bp = new([]byte)
		}
		*bp = b.AppendKey((*bp)[:0], seg, env)
		key = s.keys.Sum(*bp)
		s.bufs.Put(bp)
		if r, ok := s.blocks.Get(key); ok {
			return r, nil
		}
	}
	out, shape, err := s.exec(b, seg, env)
	if err != nil {
		s.errors.Inc()
		// A wait cut short says nothing of the block (see exec): only
		// its own failures are kept.
		if b.static && !errors.Is(err, ErrTooSlow) {
			b.rendered.Store(&staticRender{seg: seg, err: err})
		}
		return Rendered{}, err
	}
	r := Rendered{HTML: []byte(out), Shape: shape}
	if b.static {
		b.rendered.Store(&staticRender{seg: seg, out: r})
	} else {
		s.blocks.Set(key, r, int64(len(r.HTML)+64))
	}
	return r, nil
}

// Rendered is a block's HTML for one visitor, with its Shape: which slot
// elements browsers keep it in (inject.Misfit).
type Rendered struct {
	HTML  []byte
	Shape inject.Shape
}

// MaxRenderTime bounds the wait for a block's render: blocks render in
// microseconds, and a visitor does not wait longer than this for one.
const MaxRenderTime = 250 * time.Millisecond

// MaxRenderRun bounds a render itself: a block whose render runs this long
// is broken (an {{#each}} in an {{#each}} over a long list), not slowed by
// a busy host, and is not rendered again until the templates are
// reloaded. Blocks rendered where no visitor waits (when they load, in
// validate) get this long too.
const MaxRenderRun = 5 * time.Second

// exec renders b, waiting at most s.renderTime: past that the visitor gets
// the slot's default. A block whose render runs past s.giveUp is not
// rendered again (its error stands) until the templates are reloaded, so
// it costs a few renders (one per CPU, see Block.ExecWithin), not one per
// visitor.
func (s *Store) exec(b *Block, seg *segments.Segment, env *segments.Env) (string, inject.Shape, error) {
	if err := b.tooSlow.Load(); err != nil {
		return "", 0, *err
	}
	return b.execWithin(seg, env, s.renderTime, s.giveUp, func(err error) {
		s.log.Error().Err(err).Msg("block too slow to render")
	})
}

// BlockCache exposes the block cache (for tests and metrics).
func (s *Store) BlockCache() *cache.Checked[Rendered] { return s.blocks }

// watchQuiet is how long the template directory must be still before a
// change is reloaded; watchMaxDelay bounds the wait while it is not (a
// sync tool copying a large tree, a process writing into the directory
// without pause): the first change of a burst is served within it.
const (
	watchQuiet    = 150 * time.Millisecond
	watchMaxDelay = time.Second
)

// Watch reloads the Set when files under the directory change, until ctx
// is done. Bursts of events (an editor saving, a ConfigMap swap) are
// folded into one reload after a short quiet period, or watchMaxDelay
// after the burst began, whichever comes first.
func (s *Store) Watch(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	addTree := func() {
		_ = filepath.WalkDir(s.dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				_ = w.Add(p)
			}
			return nil
		})
	}
	addTree()
	go func() {
		defer w.Close()
		var timer *time.Timer
		var burst time.Time // the first unreloaded change's; zero when none
		fire := make(chan struct{}, 1)
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if ev.Op&fsnotify.Create != 0 {
					addTree() // new slot folders (and ConfigMap ..data swaps)
				}
				now := time.Now()
				if burst.IsZero() {
					burst = now
				}
				wait := max(min(watchQuiet, watchMaxDelay-now.Sub(burst)), 0)
				if timer == nil {
					timer = time.AfterFunc(wait, func() {
						select {
						case fire <- struct{}{}:
						default:
						}
					})
				} else {
					timer.Reset(wait)
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				s.log.Warn().Err(err).Msg("template watch")
			case <-fire:
				burst = time.Time{}
				s.Reload()
			}
		}
	}()
	return nil
}
