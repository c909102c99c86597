package cache

import (
	"math/bits"
	"sync/atomic"
)

// Doorkeeper lets into a cache only what is asked for again: a value made
// for a key seen once is not kept, one made for a key seen recently
// before is. It is for caches of work done on whole pages, keyed by a hash
// of the page (slot plans, pages decoded and encoded): a page that differs
// on every request (a CSRF token, a timestamp) would otherwise fill them
// with entries never used again, each costing a copy, memory and, once
// full, an eviction. A page served again is kept on its second request.
//
// It remembers one key per slot of a fixed table, by the key's high half:
// 8 bytes a slot, no lock. Two keys sharing a slot only delay each other's
// admission; two first requests at once only delay it to the third.
type Doorkeeper struct{ seen []atomic.Uint64 }

// NewDoorkeeper returns a Doorkeeper with at least slots slots (a power of
// two, at least 1024).
func NewDoorkeeper(slots int) *Doorkeeper {
	n := 1 << bits.Len(uint(max(slots, 1024)-1))
	return &Doorkeeper{seen: make([]atomic.Uint64, n)}
}

// Again reports whether k was seen recently, and remembers it.
func (d *Doorkeeper) Again(k Key128) bool {
	s := &d.seen[k.Hi&uint64(len(d.seen)-1)]
	if s.Load() == k.Lo {
		return true
	}
	s.Store(k.Lo)
	return false
}
