// Package cache wraps ristretto for edgeseg's in-memory caches: one cache per
// purpose (segment assignments, rendered blocks, slot plans, origin pages),
// each sized from config, with its hits, misses, cost and evictions exported
// as metrics.
//
// Caches whose keys are built from request values or page bytes are Checked
// caches keyed by a Hasher: a 128-bit XXH3 with a per-process random seed, of
// which ristretto sees the low half and the entry keeps the high half to
// compare on every hit. Keys cannot be aimed at each other from outside,
// and a collision of the low halves is a miss.
//
// ristretto admits entries probabilistically and applies Set asynchronously:
// a Get right after a Set may miss. Callers treat every miss as "compute it
// again", never as an error; only tests call Wait.
package cache
