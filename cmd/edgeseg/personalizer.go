package main

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/fsnotify/fsnotify"
	"github.com/rs/zerolog"

	"github.com/edgeseg/edgeseg/config"
	"github.com/edgeseg/edgeseg/proxy"
	"github.com/edgeseg/edgeseg/segments/events"
	"github.com/edgeseg/edgeseg/segments/profile"
	"github.com/edgeseg/edgeseg/templates"
)

// newPersonalizer wires the personalization packages from cfg, starts the
// template watcher and the reload-on-SIGHUP loop, and registers their
// cleanup with m.
func (m *Main) newPersonalizer(ctx context.Context, cfg *config.Config, log *zerolog.Logger, set *metrics.Set) (*proxy.Personalizer, error) {
	pl, err := proxy.NewPipeline(cfg, m.getenv)
	if err != nil {
		return nil, err
	}
	for _, w := range pl.Engine().Warnings {
		log.Warn().Msg("segments: " + w)
	}
	if pl.Ephemeral() {
		log.Warn().Msg("profile.keys is empty: profiles are signed with a random per-process key, so they reset on restart and differ between replicas")
	}
	m.warnPlaceholders(log, pl)
	store, ps, err := templates.NewStore(cfg.Templates.Dir, cfg.Cache.Blocks, set, log)
	if err != nil {
		return nil, err
	}
	logTemplateProblems(log, ps)
	var ev *events.Logger
	if cfg.Events.Sink != "off" {
		ev, err = events.New(events.Options{Sink: cfg.Events.Sink, MaxFileBytes: int64(cfg.Events.MaxFileBytes),
			MaxBackups: cfg.Events.MaxBackups, QueueSize: cfg.Events.QueueSize, Metrics: set, Log: log})
		if err != nil {
			return nil, err
		}
		m.onClose(ev.Close)
	}
	p, err := proxy.NewPersonalizer(proxy.PersonalizerOptions{Pipeline: pl, Templates: store, AssignCache: cfg.Cache.Assignment, PlanCache: cfg.Cache.Plans,
		Events: ev, Metrics: set, Log: log})
	if err != nil {
		return nil, err
	}
	// Blocks writing segment data the config does not give: at start,
	// after each reload of templates, and of the config (reloadLoop).
	logTemplateProblems(log, store.Set().SegmentDataProblems(pl.Engine().Lookup))
	store.OnReload = func(templates.Problems) {
		logTemplateProblems(log, store.Set().SegmentDataProblems(p.Pipeline().Engine().Lookup))
	}
	wctx, cancel := context.WithCancel(ctx)
	m.onClose(func() error { cancel(); return nil })
	if cfg.Templates.Watch {
		if err := store.Watch(wctx); err != nil {
			log.Warn().Err(err).Msg("cannot watch templates; reload with SIGHUP")
		}
	}
	// Watch before serving: an edit made just after start is not missed.
	var changes <-chan fsnotify.Event
	if cfg.File() != "" {
		if w, err := fsnotify.NewWatcher(); err != nil {
			log.Warn().Err(err).Msg("cannot watch the config file; reload with SIGHUP")
		} else if err := w.Add(filepath.Dir(cfg.File())); err != nil {
			// Watch the directory: editors and ConfigMaps replace files.
			w.Close()
			log.Warn().Err(err).Msg("cannot watch the config file; reload with SIGHUP")
		} else {
			m.onClose(w.Close)
			changes = w.Events
		}
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go m.reloadLoop(wctx, cfg, p, store, log, hup, changes)
	return p, nil
}

func logTemplateProblems(log *zerolog.Logger, ps templates.Problems) {
	for _, p := range ps {
		e := log.Error()
		if p.Warning {
			e = log.Warn()
		}
		e.Str("file", p.File).Int("line", p.Line).Msg("template: " + p.Msg)
	}
}

// reloadLoop reloads config and templates on SIGHUP, and config when its
// file changes. A config that fails to load keeps the previous one serving.
func (m *Main) reloadLoop(ctx context.Context, cfg *config.Config, p *proxy.Personalizer, store *templates.Store, log *zerolog.Logger,
	hup chan os.Signal, changes <-chan fsnotify.Event) {
	defer signal.Stop(hup)
	reload := func(why string) {
		next, err := m.loadConfig(cfg.File())
		if err == nil {
			var pl *proxy.Pipeline
			if pl, err = proxy.NewPipeline(next, m.getenv); err == nil {
				warnRestartOnly(log, cfg, next)
				m.warnPlaceholders(log, pl)
				if was := p.Pipeline().Personalizing(); was != next.Personalize {
					if next.Personalize {
						log.Warn().Msg("personalize: true: personalization is back on")
					} else {
						log.Warn().Msg("personalize: false: edgeseg runs as a plain reverse proxy until it is set true again")
					}
				}
				p.Swap(pl)
				for _, w := range pl.Engine().Warnings {
					log.Warn().Msg("segments: " + w)
				}
				logTemplateProblems(log, store.Set().SegmentDataProblems(pl.Engine().Lookup))
				log.Info().Str("trigger", why).Msg("config reloaded")
			}
		}
		if err != nil {
			log.Error().Err(err).Str("trigger", why).Msg("config reload failed; the previous config keeps serving")
		}
		if why == "SIGHUP" {
			store.Reload()
		}
	}
	var debounce <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			reload("SIGHUP")
		case ev := <-changes:
			if filepath.Clean(ev.Name) == filepath.Clean(cfg.File()) || filepath.Base(ev.Name) == "..data" {
				debounce = time.After(200 * time.Millisecond)
			}
		case <-debounce:
			reload("file change")
		}
	}
}

// warnPlaceholders says, at error level, which secrets are still the
// example config's published placeholders (not in the demo, which is
// meant to run with them).
func (m *Main) warnPlaceholders(log *zerolog.Logger, pl *proxy.Pipeline) {
	if m.demo {
		return
	}
	for _, k := range pl.PlaceholderSecrets() {
		log.Error().Str("key", k).Msg("this secret is a published placeholder (the example config's): anyone can sign profile cookies or preview tokens with it; give it a secret of your own (secret_env) before serving real visitors")
	}
}

// warnRestartOnly says which changed keys need a restart to apply.
func warnRestartOnly(log *zerolog.Logger, old, next *config.Config) {
	if old.Listen != next.Listen || old.Origin != next.Origin || !reflect.DeepEqual(old.Server, next.Server) ||
		old.Rewrite != next.Rewrite || old.Templates.Dir != next.Templates.Dir || old.Log != next.Log ||
		!cacheEqual(old.Cache, next.Cache) || !eventsEqual(old.Events, next.Events) {
		log.Warn().Msg("listen, server, origin, rewrite, cache, log, templates.dir and events changes apply after a restart; personalize, segments, behavior, signals, consent, profile and preview apply now")
	}
}

// eventsEqual compares what the event sink was opened with; the client
// events keys apply on reload.
func eventsEqual(a, b config.Events) bool {
	return a.Sink == b.Sink && a.MaxFileBytes == b.MaxFileBytes && a.MaxBackups == b.MaxBackups && a.QueueSize == b.QueueSize
}

func cacheEqual(a, b config.Cache) bool {
	return a.Assignment == b.Assignment && a.Blocks == b.Blocks && a.Plans == b.Plans && a.Codings == b.Codings && a.Origin.CacheSize == b.Origin.CacheSize
}

func profileSettings() profile.Settings {
	d := config.Default().Profile
	return profile.Settings{VisitGap: d.VisitGap, MaxCategories: d.MaxCategories, MaxProducts: d.MaxProducts,
		ConsiderationScore: d.ConsiderationScore, DecisionScore: d.DecisionScore}
}
