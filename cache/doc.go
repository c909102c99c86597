// Package cache wraps ristretto for edgeseg's in-memory caches: one cache per
// purpose (assignments, rendered blocks, origin pages, user agents), each
// sized from config, with its hits, misses, cost and evictions exported as
// metrics.
//
// ristretto admits entries probabilistically and applies Set asynchronously:
// a Get right after a Set may miss. Callers treat every miss as "compute it
// again", never as an error; only tests call Wait.
package cache
