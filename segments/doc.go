// Package segments decides which audience segments a visitor belongs to.
//
// Each segment's rule is an expression (github.com/expr-lang/expr) over Env,
// the typed signal set: context signals (device, daypart, referrer, utm.*,
// country, ...), the visitor's behavior (visitor.visits, visitor.stage, ...)
// and helper functions (views(category, days), events(name, days),
// days_since(event), claim(name), cookie(name), header(name), query(name)).
// Rules compile once at load and are type-checked against Env: an unknown
// name or a type error is a load error naming the segment, the rule and the
// column. Rules cannot call arbitrary code; regular expressions (matches)
// are RE2.
//
// Assignment evaluates every enabled rule, keeps the matching segments in
// priority order and buckets each into its holdout by a hash of the visitor
// id and the segment name, so a visitor's bucket is the same on every
// replica. Results are cached by a hash of exactly the values the rules
// read, so a visitor whose signals change gets a fresh evaluation.
//
// An Engine is immutable after New and safe for concurrent use; reloads
// build a new one.
package segments
