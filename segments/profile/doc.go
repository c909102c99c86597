// Package profile keeps a visitor's behavior — visits, page views,
// per-category and per-event counts by day, recently viewed products,
// recency, an engagement score and a journey stage — and carries it in a
// signed first-party cookie (a compact HS256 JWT with a key id), so any
// replica can serve any visitor.
//
// The cookie holds no personal data: a random visitor id and counters. It is
// signed, not encrypted: visitors can read it. A cookie that does not verify
// for any reason is replaced by a fresh profile; Decode says why, so the
// caller can count it.
//
// Time is always passed in (no clock is read here), so windows and visit
// boundaries are testable across simulated days.
package profile
