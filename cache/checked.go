package cache

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"

	"github.com/VictoriaMetrics/metrics"
	"github.com/zeebo/xxh3"

	"github.com/edgeseg/edgeseg/config"
)

// Key128 is a 128-bit cache key from a Hasher.
type Key128 struct{ Lo, Hi uint64 }

// Hasher turns the canonical bytes of a cache key (the values a rule or a
// template reads) into a Key128 with XXH3 seeded at random per process.
// The values come from requests, so without a secret seed a visitor could
// craft values whose key collides with other visitors' and have their
// cached results served to them.
type Hasher struct{ seed uint64 }

// NewHasher returns a Hasher with a fresh random seed.
func NewHasher() (Hasher, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Hasher{}, fmt.Errorf("cache: hash seed: %w", err)
	}
	return Hasher{seed: binary.LittleEndian.Uint64(b[:])}, nil
}

// Sum hashes b.
func (h Hasher) Sum(b []byte) Key128 {
	k := xxh3.Hash128Seed(b, h.seed)
	return Key128{Lo: k.Lo, Hi: k.Hi}
}

// Checked is a Cache keyed by Key128: the low half is the key ristretto
// sees, the high half is kept with the value and compared on every Get, so
// two keys sharing a low half miss rather than answer for each other.
type Checked[V any] struct {
	c *Cache[uint64, checked[V]]
}

type checked[V any] struct {
	hi uint64
	v  V
}

// NewChecked builds a Checked cache; see New.
func NewChecked[V any](name string, cfg config.CacheSize, set *metrics.Set) (*Checked[V], error) {
	c, err := New[uint64, checked[V]](name, cfg, set)
	if err != nil {
		return nil, err
	}
	return &Checked[V]{c: c}, nil
}

// Get returns the value for k, if cached.
func (c *Checked[V]) Get(k Key128) (V, bool) {
	e, ok := c.c.Get(k.Lo)
	if !ok || e.hi != k.Hi {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Set offers v for k at cost bytes; it may be dropped.
func (c *Checked[V]) Set(k Key128, v V, cost int64) {
	c.c.Set(k.Lo, checked[V]{hi: k.Hi, v: v}, cost)
}

// Clear drops every entry.
func (c *Checked[V]) Clear() { c.c.Clear() }

// Wait blocks until pending Sets are applied. For tests.
func (c *Checked[V]) Wait() { c.c.Wait() }

// HitRatio returns hits/(hits+misses) since start.
func (c *Checked[V]) HitRatio() float64 { return c.c.HitRatio() }

// Cost returns the cost of what the cache holds.
func (c *Checked[V]) Cost() int64 { return c.c.Cost() }

// Close stops the cache's goroutines.
func (c *Checked[V]) Close() { c.c.Close() }
