// Package templates loads, validates, hot-reloads and renders the editors'
// Handlebars blocks (github.com/aymerick/raymond).
//
// The template directory holds one folder per slot, one SEGMENT.hbs per
// segment that has a block for that slot, an optional SEGMENT.yaml with data
// for the block, and _partials/NAME.hbs usable as {{> NAME}}:
//
//	templates/
//	  hero/deal-seekers.hbs
//	  hero/deal-seekers.yaml
//	  _partials/price.hbs
//
// A block renders with: segment (name, priority, data), signals (device,
// daypart, referrer, utm, country, ...), visitor (visits, stage,
// top_categories, ...) and data (the yaml). Output is HTML-escaped unless the
// editor writes {{{ }}}. Helpers are registered per template, so nothing is
// global and nothing can be registered twice.
//
// A Set is an immutable, fully parsed snapshot; a Store swaps Sets
// atomically on reload, so no request sees a half-loaded directory. A file
// that fails to parse is reported with its path and line and the previous
// good version of it keeps serving.
package templates
