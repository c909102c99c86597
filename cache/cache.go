package cache

import (
	"fmt"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/dgraph-io/ristretto/v2"

	"github.com/edgeseg/edgeseg/config"
)

// Key is what a cache may be keyed by.
type Key interface {
	~uint64 | ~string
}

// Cache is a bounded, cost-aware cache of V by K. It is safe for concurrent use.
type Cache[K Key, V any] struct {
	name string
	c    *ristretto.Cache[K, V]
	ttl  time.Duration
}

// New builds a cache sized by cfg: counters 10x MaxItems, cost bound
// MaxBytes (callers pass each entry's cost in bytes). Its metrics are
// registered in set under edgeseg_cache_*{cache="name"}; set may be nil.
func New[K Key, V any](name string, cfg config.CacheSize, set *metrics.Set) (*Cache[K, V], error) {
	c, err := ristretto.NewCache(&ristretto.Config[K, V]{
		NumCounters:        int64(max(cfg.MaxItems, 100)) * 10,
		MaxCost:            int64(cfg.MaxBytes),
		BufferItems:        64,
		Metrics:            true,
		IgnoreInternalCost: true,
	})
	if err != nil {
		return nil, fmt.Errorf("cache %s: %w", name, err)
	}
	cc := &Cache[K, V]{name: name, c: c, ttl: cfg.TTL}
	if set != nil {
		m := c.Metrics
		label := fmt.Sprintf(`{cache=%q}`, name)
		set.GetOrCreateGauge("edgeseg_cache_hits_total"+label, func() float64 { return float64(m.Hits()) })
		set.GetOrCreateGauge("edgeseg_cache_misses_total"+label, func() float64 { return float64(m.Misses()) })
		set.GetOrCreateGauge("edgeseg_cache_cost_bytes"+label, func() float64 { return float64(m.CostAdded() - m.CostEvicted()) })
		set.GetOrCreateGauge("edgeseg_cache_evictions_total"+label, func() float64 { return float64(m.KeysEvicted()) })
		set.GetOrCreateGauge("edgeseg_cache_hit_ratio"+label, func() float64 { return m.Ratio() })
		set.GetOrCreateGauge("edgeseg_cache_max_bytes"+label, func() float64 { return float64(cfg.MaxBytes) })
	}
	return cc, nil
}

// Get returns the value for k, if cached.
func (c *Cache[K, V]) Get(k K) (V, bool) { return c.c.Get(k) }

// Set offers v for k at cost bytes; it may be dropped.
func (c *Cache[K, V]) Set(k K, v V, cost int64) {
	if c.ttl > 0 {
		c.c.SetWithTTL(k, v, cost, c.ttl)
		return
	}
	c.c.Set(k, v, cost)
}

// SetWithTTL offers v for k for ttl (0: the cache's own TTL).
func (c *Cache[K, V]) SetWithTTL(k K, v V, cost int64, ttl time.Duration) {
	if ttl <= 0 {
		c.Set(k, v, cost)
		return
	}
	c.c.SetWithTTL(k, v, cost, ttl)
}

// Del removes k.
func (c *Cache[K, V]) Del(k K) { c.c.Del(k) }

// Clear drops every entry (on reload).
func (c *Cache[K, V]) Clear() { c.c.Clear() }

// Wait blocks until pending Sets are applied. For tests.
func (c *Cache[K, V]) Wait() { c.c.Wait() }

// HitRatio returns hits/(hits+misses) since start.
func (c *Cache[K, V]) HitRatio() float64 { return c.c.Metrics.Ratio() }

// Cost returns the total cost of the entries held.
func (c *Cache[K, V]) Cost() int64 { return int64(c.c.Metrics.CostAdded() - c.c.Metrics.CostEvicted()) }

// Close stops the cache's goroutines.
func (c *Cache[K, V]) Close() { c.c.Close() }
