package profile

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/edgeseg/edgeseg/config"
)

// Mapper maps a request (method and path) to a behavior event by the
// patterns in config. It is immutable and safe for concurrent use.
type Mapper struct {
	rules []mapRule
}

type mapRule struct {
	method     string // "" for any
	segs       []patSeg
	rest       bool // trailing "/*"
	event      string
	conversion bool
	category   string
	index      int
}

type patSeg struct {
	lit     string
	capture string // capture name, when not a literal
}

// Match is a request mapped to an event.
type Match struct {
	Event      string
	Category   string
	Product    string
	Value      string
	Conversion bool
	// Rule is the index of the behavior.events entry that matched.
	Rule int
}

// PatternError is a pattern that does not compile, with the column (1-based)
// where the problem is.
type PatternError struct {
	Pattern string
	Column  int
	Msg     string
}

// Error says what is wrong, where, in which pattern.
func (e *PatternError) Error() string {
	return fmt.Sprintf("%s at column %d of %q", e.Msg, e.Column, e.Pattern)
}

// NewMapper compiles cfg's event mappings. Errors name the entry's key
// (behavior.events[i].match) through Problems.
func NewMapper(cfg *config.Config) (*Mapper, error) {
	m := &Mapper{}
	var ps config.Problems
	for i, e := range cfg.Behavior.Events {
		r, err := compilePattern(e.Match)
		if err != nil {
			ps = append(ps, cfg.Problemf(fmt.Sprintf("behavior.events[%d].match", i), "%v", err))
			continue
		}
		r.event, r.conversion, r.category, r.index = e.Event, e.Conversion, e.Category, i
		m.rules = append(m.rules, r)
	}
	if len(ps) > 0 {
		return nil, ps
	}
	return m, nil
}

// compilePattern parses "METHOD /path/{capture}/*".
func compilePattern(p string) (mapRule, error) {
	var r mapRule
	fail := func(col int, format string, args ...any) (mapRule, error) {
		return mapRule{}, &PatternError{Pattern: p, Column: col, Msg: fmt.Sprintf(format, args...)}
	}
	method, path, ok := strings.Cut(strings.TrimSpace(p), " ")
	if !ok {
		return fail(1, "want \"METHOD /path\", e.g. 'GET /product/{category}/{id}'")
	}
	path = strings.TrimSpace(path)
	col := strings.Index(p, path) + 1
	switch {
	case method == "*":
	case method == "" || strings.ToUpper(method) != method || strings.ContainsAny(method, "/{}"):
		return fail(1, "method must be upper case (GET, POST, ...) or *, got %q", method)
	default:
		r.method = method
	}
	if !strings.HasPrefix(path, "/") {
		return fail(col, "path must start with /")
	}
	if strings.ContainsAny(path, "?#") {
		return fail(col+strings.IndexAny(path, "?#"), "query strings are not matched; drop %q", path[strings.IndexAny(path, "?#"):])
	}
	parts := strings.Split(path[1:], "/")
	pos := col + 1
	seen := map[string]bool{}
	for i, part := range parts {
		switch {
		case part == "*":
			if i != len(parts)-1 {
				return fail(pos, "* must be the last segment")
			}
			r.rest = true
		case strings.HasPrefix(part, "{"):
			if !strings.HasSuffix(part, "}") || len(part) < 3 {
				return fail(pos, "unclosed or empty capture %q", part)
			}
			name := part[1 : len(part)-1]
			for j, c := range name {
				if !(c == '_' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
					return fail(pos+1+j, "capture names are lower case letters, digits and _")
				}
			}
			if seen[name] {
				return fail(pos, "capture {%s} used twice", name)
			}
			seen[name] = true
			r.segs = append(r.segs, patSeg{capture: name})
		case strings.ContainsAny(part, "{}*"):
			return fail(pos+strings.IndexAny(part, "{}*"), "a segment is a literal, a {capture} or a trailing *")
		default:
			if part == "" && i != len(parts)-1 {
				return fail(pos, "empty path segment")
			}
			r.segs = append(r.segs, patSeg{lit: part})
		}
		pos += len(part) + 1
	}
	return r, nil
}

// Lookup returns the event for method and path (as the request has them;
// path is the decoded path). ok is false when no pattern matches.
func (m *Mapper) Lookup(method, path []byte) (Match, bool) {
	if m == nil {
		return Match{}, false
	}
	for i := range m.rules {
		r := &m.rules[i]
		if r.method != "" && string(method) != r.method {
			continue
		}
		var mt Match
		if !r.match(path, &mt) {
			continue
		}
		mt.Event, mt.Conversion, mt.Rule = r.event, r.conversion, r.index
		if mt.Category == "" {
			mt.Category = r.category
		}
		return mt, true
	}
	return Match{}, false
}

func (r *mapRule) match(path []byte, mt *Match) bool {
	if len(path) == 0 || path[0] != '/' {
		return false
	}
	rest := path[1:]
	for i, s := range r.segs {
		var seg []byte
		if j := bytes.IndexByte(rest, '/'); j >= 0 {
			seg, rest = rest[:j], rest[j+1:]
		} else {
			seg, rest = rest, nil
			if i != len(r.segs)-1 {
				return false
			}
			// mark consumed fully
			rest = nil
			if s.capture == "" {
				if string(seg) != s.lit {
					return false
				}
			} else if !capture(s.capture, seg, mt) {
				return false
			}
			return true
		}
		if s.capture == "" {
			if string(seg) != s.lit {
				return false
			}
		} else if !capture(s.capture, seg, mt) {
			return false
		}
	}
	// All segments consumed, more path left.
	if r.rest {
		return true
	}
	// A trailing slash matches the same resource.
	return len(rest) == 0 && len(r.segs) > 0 && bytes.HasSuffix(path, []byte("/"))
}

func capture(name string, seg []byte, mt *Match) bool {
	if len(seg) == 0 {
		return false
	}
	v := clean(seg, 64)
	switch name {
	case "category":
		mt.Category = strings.ToLower(v)
	case "id", "product":
		mt.Product = v
	case "value":
		mt.Value = v
	}
	return true
}

// clean copies v as valid UTF-8 of at most n bytes.
func clean(v []byte, n int) string {
	if len(v) > n {
		v = v[:n]
	}
	s := string(v)
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "")
	}
	return s
}
