package templates

import (
	"iter"
	"slices"
	"strconv"
	"strings"

	"github.com/agnivade/levenshtein"
	"github.com/aymerick/raymond/ast"

	"github.com/edgeseg/edgeseg/segments"
)

type located struct {
	name string
	line int
	// For a partial call: what it hands the partial that a visitor
	// chose: hash arguments by name, or its whole context; and where in
	// the markup it is called.
	taint taint
	html  htmlContext
}

// taint is what a template is given that a visitor chose, beyond the
// fields visitorField names: a partial's arguments.
type taint struct {
	keys    map[string]bool // hash arguments ({{> p v=signals.path}})
	context bool            // the context itself ({{> p signals}}, or from inside an {{#each}} over such text)
}

type usedPath struct {
	path string
	line int
	// partial names the partial the path is read in (at line), "" for
	// the block itself.
	partial string
	// why, for a misplaced value: where it is written.
	why string
}

// templateAnalysis is what a template reads and calls, from its AST.
type templateAnalysis struct {
	reads    []string
	seen     map[string]bool
	dynamic  bool
	unknown  []usedPath // paths outside the known context, to warn about
	partials []located
	helpers  []located
	scoped   int // depth inside blocks that change the context (each, with)
	// scopes says, for each of those, whether its value is a visitor's
	// text (an {{#each visitor.top_categories}}).
	scopes []bool
	// unescaped are a visitor's values written with {{{ }}}, as HTML.
	unescaped []usedPath
	// given is what the caller of a partial handed it that a visitor chose.
	given taint
	// loops: there is an {{#each}}.
	loops bool
	// html follows the template's markup; misplaced are a visitor's values
	// written where escaping for HTML does not make them safe.
	html      htmlContext
	misplaced []usedPath
	// dynamicPartial is the line of a partial call whose name is computed
	// ({{> (expr)}}), or 0.
	dynamicPartial int
	// segData are the fields of segment.data the template writes, and
	// guarded those it tests with {{#if}} or {{#unless}}: a field it
	// tests may be missing on purpose.
	segData []usedPath
	guarded map[string]bool
}

func analyzeTemplate(p *ast.Program) *templateAnalysis {
	return analyzeWith(p, taint{}, htmlContext{})
}

// analyzeWith analyzes p as called with t (a partial given a visitor's
// text) where the markup is at h.
func analyzeWith(p *ast.Program, t taint, h htmlContext) *templateAnalysis {
	a := &templateAnalysis{seen: map[string]bool{}, given: t, html: h, guarded: map[string]bool{}}
	p.Accept(a)
	return a
}

// addPartials adds to a what the partials it calls read, and theirs in
// turn: a partial renders with the block's context, so what it reads of
// the visitor is part of the block's cache key. It returns the first call
// that would recurse: rendering it would never end (raymond does not stop
// it, and the stack overflow kills the process), so such blocks are refused.
func (a *templateAnalysis) addPartials(progs map[string]*ast.Program) (cycle []string, line int) {
	var walk func(calls []located, path []string) bool
	walk = func(calls []located, path []string) bool {
		for _, c := range calls {
			prog, ok := progs[c.name]
			if !ok {
				continue // reported as a missing partial
			}
			if slices.Contains(path, c.name) {
				cycle = append(append([]string(nil), path...), c.name)
				return false
			}
			pa := analyzeWith(prog, c.taint, c.html.clone())
			if pa.dynamicPartial > 0 {
				// It may call anything, itself included.
				cycle = append(append([]string(nil), path...), c.name, "(a computed name)")
				return false
			}
			a.dynamic = a.dynamic || pa.dynamic
			for _, u := range pa.unescaped {
				u.partial = c.name
				a.unescaped = append(a.unescaped, u)
			}
			for _, u := range pa.misplaced {
				u.partial = c.name
				a.misplaced = append(a.misplaced, u)
			}
			for _, u := range pa.segData {
				if !pa.guarded[u.path] {
					u.partial = c.name
					a.segData = append(a.segData, u)
				}
			}
			for _, r := range pa.reads {
				if !a.seen[r] {
					a.seen[r] = true
					a.reads = append(a.reads, r)
				}
			}
			if !walk(pa.partials, append(path, c.name)) {
				if len(path) == 0 {
					line = c.line
				}
				return false
			}
		}
		return true
	}
	walk(a.partials, nil)
	return cycle, line
}

func (a *templateAnalysis) path(p *ast.PathExpression) {
	if len(p.Parts) == 0 {
		return
	}
	parts, scoped := p.Parts, a.scoped > 0
	if p.Data {
		if !p.IsDataRoot() {
			return // @index, @key, @first, @last: the block's own
		}
		// @root.visitor.x reads the context from its top in any scope.
		parts, scoped = parts[1:], false
		if len(parts) == 0 {
			a.dynamic = true // the whole context
			return
		}
	}
	if scoped && p.Depth == 0 {
		return // relative to the block's own value, which is recorded
	}
	full := strings.Join(parts, ".")
	if full == "this" || full == "" {
		if !scoped {
			a.dynamic = true // the whole context
		}
		return
	}
	if !a.seen[full] {
		a.seen[full] = true
		a.reads = append(a.reads, full)
	}
	switch parts[0] {
	case "segment", "signals", "visitor", "data":
		if len(parts) == 1 && parts[0] != "data" && parts[0] != "segment" {
			a.dynamic = true
		}
		if !contextPaths[full] && len(parts) > 1 {
			a.unknown = append(a.unknown, usedPath{path: full, line: p.Line})
		}
	default:
		a.unknown = append(a.unknown, usedPath{path: full, line: p.Line})
	}
}

// contextPaths are the fields a block can read besides data.*: every
// value rules read (under signals. or visitor.), and what only blocks get.
var contextPaths = func() map[string]bool {
	m := map[string]bool{
		"segment.name": true, "segment.priority": true, "segment.data": true, "signals.utm": true,
		"visitor.top_categories": true, "visitor.products": true,
	}
	for _, p := range segments.Paths() {
		if strings.HasPrefix(p, "visitor.") {
			m[p] = true
		} else {
			m["signals."+p] = true
		}
	}
	return m
}()

// knownPath reports whether path exists in the render context, with data
// taken from the block's yaml.
func knownPath(path string, data map[string]any) bool {
	if contextPaths[path] {
		return true
	}
	if strings.HasPrefix(path, "segment.data.") {
		return true // per-segment data from config, checked at render
	}
	if rest, ok := strings.CutPrefix(path, "data."); ok {
		return hasField(data, rest)
	}
	return false
}

// hasField reports whether data has the field at path (dotted, as a
// template reads it).
func hasField(data map[string]any, path string) bool {
	var cur any = data
	for _, part := range strings.Split(path, ".") {
		switch v := cur.(type) {
		case map[string]any:
			var ok bool
			if cur, ok = v[part]; !ok {
				return false
			}
		case []any:
			// data.items.[0] or data.items.length
			if part == "length" {
				return true
			}
			i, err := strconv.Atoi(strings.Trim(part, "[]"))
			if err != nil || i < 0 || i >= len(v) {
				return false
			}
			cur = v[i]
		default:
			return false
		}
	}
	return true
}

// contextFields yields every field path a block can read: those of the
// render context, and those of its data (data.* from its yaml).
func contextFields(data map[string]any) iter.Seq[string] {
	return func(yield func(string) bool) {
		for p := range contextPaths {
			if !yield(p) {
				return
			}
		}
		for p := range fieldsOf("data", data) {
			if !yield(p) {
				return
			}
		}
	}
}

// fieldsOf yields the path of every field of data, and of the fields of
// the maps in it, each after prefix and a dot.
func fieldsOf(prefix string, data map[string]any) iter.Seq[string] {
	return func(yield func(string) bool) {
		var walk func(prefix string, m map[string]any) bool
		walk = func(prefix string, m map[string]any) bool {
			for k, v := range m {
				p := prefix + "." + k
				if !yield(p) {
					return false
				}
				if sub, ok := v.(map[string]any); ok && !walk(p, sub) {
					return false
				}
			}
			return true
		}
		walk(prefix, data)
	}
}

// nearest returns the candidate that name (a field path or a partial's
// name) is most likely a misspelling of, or "" when none is near enough to
// suggest: a typo or two in a short name, more in a long one, counted by
// the last part of a path, so that a long shared prefix does not make far
// names look near. Ties go to the candidate that sorts first, so the
// suggestion does not change from run to run.
func nearest(name string, candidates iter.Seq[string]) string {
	last := name[strings.LastIndexByte(name, '.')+1:]
	best, bestD := "", len(last)/3+2
	for c := range candidates {
		if d := levenshtein.ComputeDistance(name, c); d < bestD || d == bestD && best != "" && c < best {
			best, bestD = c, d
		}
	}
	return best
}

// The Visit methods implement raymond's ast.Visitor: each records what
// its node reads or calls and walks its children.

// VisitProgram walks a program's statements.
func (a *templateAnalysis) VisitProgram(p *ast.Program) interface{} {
	for _, s := range p.Body {
		s.Accept(a)
	}
	return nil
}

func (a *templateAnalysis) VisitMustache(m *ast.MustacheStatement) interface{} {
	if m.Unescaped {
		if path, ok := a.visitorText(m.Expression); ok {
			a.unescaped = append(a.unescaped, usedPath{path: path, line: m.Line})
		}
	} else if path, enc, ok := a.visitorValue(m.Expression); ok {
		if why := a.html.contextProblem(enc); why != "" {
			a.misplaced = append(a.misplaced, usedPath{path: path, line: m.Line, why: why})
		}
	}
	a.html.wrote()
	if a.scoped == 0 {
		a.writesSegmentData(m.Expression)
	}
	m.Expression.Accept(a)
	return nil
}

// writesSegmentData records the fields of segment.data e writes: its
// path, or those it hands a helper other than default (which has its own
// for a field that is missing).
func (a *templateAnalysis) writesSegmentData(e *ast.Expression) {
	nodes := []ast.Node{e.Path}
	if len(e.Params) > 0 {
		if e.HelperName() == "default" {
			return
		}
		nodes = e.Params
	}
	for _, n := range nodes {
		if full, ok := segmentDataPath(n); ok {
			a.segData = append(a.segData, usedPath{path: full, line: e.Line})
		}
	}
}

// segmentDataPath returns n's path when it names a field of
// segment.data from the top of the context.
func segmentDataPath(n ast.Node) (string, bool) {
	pe, ok := n.(*ast.PathExpression)
	if !ok || pe.Data || pe.Depth != 0 {
		return "", false
	}
	full := strings.Join(pe.Parts, ".")
	return full, strings.HasPrefix(full, "segment.data.")
}

// visitorValue reports whether e writes text a visitor chose: a field a
// visitor's request or links set (its path), or a helper given one. enc
// names the helper when it is one that encodes what it is given (url,
// urlQuery, js, json), whose output is safe as HTML.
func (a *templateAnalysis) visitorValue(e *ast.Expression) (path, enc string, ok bool) {
	if len(e.Params) == 0 && e.Hash == nil {
		if pe, ok := e.Path.(*ast.PathExpression); ok {
			path, ok := a.visitorPath(pe)
			return path, "", ok
		}
		return "", "", false
	}
	if name := e.HelperName(); encodes[name] {
		enc = name
	}
	params := e.Params
	if e.Hash != nil && enc == "" {
		for _, p := range e.Hash.Pairs {
			params = append(params[:len(params):len(params)], p.Val)
		}
	}
	for _, p := range params {
		if path, ok := a.visitorNode(p); ok {
			return path, enc, true
		}
	}
	return "", "", false
}

// visitorText reports whether e gives text a visitor chose as it is, not
// encoded, and the path it reads it from.
func (a *templateAnalysis) visitorText(e *ast.Expression) (string, bool) {
	path, enc, ok := a.visitorValue(e)
	return path, ok && enc == ""
}

// visitorNode reports whether n, an argument, is text a visitor chose.
func (a *templateAnalysis) visitorNode(n ast.Node) (string, bool) {
	switch n := n.(type) {
	case *ast.PathExpression:
		return a.visitorPath(n)
	case *ast.SubExpression:
		return a.visitorText(n.Expression)
	}
	return "", false
}

func (a *templateAnalysis) taints(n ast.Node) bool {
	_, ok := a.visitorNode(n)
	return ok
}

// encodes are the helpers whose output is safe as HTML whatever they are
// given: they encode it for where it goes.
var encodes = map[string]bool{"url": true, "urlQuery": true, "js": true, "json": true}

// visitorPath reports whether p reads text a visitor chose.
func (a *templateAnalysis) visitorPath(p *ast.PathExpression) (string, bool) {
	parts := p.Parts
	switch {
	case p.Data:
		if !p.IsDataRoot() {
			return "", false // @index, @key, @first, @last
		}
		parts = parts[1:]
	case p.Depth < len(a.scopes):
		// Relative to an {{#each}} or {{#with}}'s value.
		return p.Original, a.scopes[len(a.scopes)-1-p.Depth]
	}
	full := strings.Join(parts, ".")
	if a.given.context || (len(parts) > 0 && a.given.keys[parts[0]]) {
		return p.Original, true // what the partial's caller handed it
	}
	return p.Original, visitorField(full)
}

// visitorField reports the context fields (full paths) that hold text a
// visitor chose: what their request says (UTM parameters, the path, the
// referrer's host, headers), and the categories and products their links
// put in their profile; and the whole context, or all of signals or
// visitor, which hold those.
func visitorField(path string) bool {
	switch path {
	case "", "this", "signals", "visitor", "signals.path", "signals.referrer_host", "signals.utm", "signals.language",
		"signals.country", "signals.region", "signals.browser", "signals.os",
		"visitor.top_category", "visitor.top_categories", "visitor.products":
		return true
	}
	for _, p := range []string{"signals.utm.", "visitor.top_categories.", "visitor.products."} {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

func (a *templateAnalysis) VisitBlock(b *ast.BlockStatement) interface{} {
	b.Expression.Accept(a)
	name := b.Expression.HelperName()
	if (name == "if" || name == "unless") && len(b.Expression.Params) > 0 && a.scoped == 0 {
		if full, ok := segmentDataPath(b.Expression.Params[0]); ok {
			a.guarded[full] = true
		}
	}
	a.loops = a.loops || name == "each"
	scopes := name == "each" || name == "with"
	if scopes {
		a.scoped++
		tainted := false
		if len(b.Expression.Params) > 0 {
			if pe, ok := b.Expression.Params[0].(*ast.PathExpression); ok {
				_, tainted = a.visitorPath(pe)
			}
		}
		a.scopes = append(a.scopes, tainted)
	}
	if b.Program != nil {
		b.Program.Accept(a)
	}
	if scopes {
		a.scoped--
		a.scopes = a.scopes[:len(a.scopes)-1]
	}
	if b.Inverse != nil {
		b.Inverse.Accept(a)
	}
	return nil
}

func (a *templateAnalysis) VisitPartial(p *ast.PartialStatement) interface{} {
	if pe, ok := p.Name.(*ast.PathExpression); ok {
		call := located{name: pe.Original, line: p.Line, html: a.html.clone()}
		a.html.wrote()
		// The partial's context: the one here, or its first argument.
		call.taint.context = len(a.scopes) > 0 && a.scopes[len(a.scopes)-1] || a.given.context
		if len(p.Params) > 0 {
			call.taint.context = a.taints(p.Params[0])
		}
		if p.Hash != nil {
			for _, pair := range p.Hash.Pairs {
				if a.taints(pair.Val) {
					if call.taint.keys == nil {
						call.taint.keys = map[string]bool{}
					}
					call.taint.keys[pair.Key] = true
				}
			}
		}
		a.partials = append(a.partials, call)
	} else {
		a.dynamic = true
		a.dynamicPartial = p.Line
	}
	for _, prm := range p.Params {
		prm.Accept(a)
	}
	if p.Hash != nil {
		p.Hash.Accept(a)
	}
	return nil
}

func (a *templateAnalysis) VisitContent(c *ast.ContentStatement) interface{} {
	a.html.feed(c.Value)
	return nil
}
func (a *templateAnalysis) VisitComment(*ast.CommentStatement) interface{} { return nil }

func (a *templateAnalysis) VisitExpression(e *ast.Expression) interface{} {
	pe, isPath := e.Path.(*ast.PathExpression)
	if len(e.Params) > 0 || e.Hash != nil {
		if isPath && len(pe.Parts) == 1 {
			a.helpers = append(a.helpers, located{name: pe.Parts[0], line: e.Line})
		}
		for _, prm := range e.Params {
			prm.Accept(a)
		}
		if e.Hash != nil {
			e.Hash.Accept(a)
		}
		return nil
	}
	if isPath {
		if len(pe.Parts) == 1 && (helpers()[pe.Parts[0]] != nil || builtinHelpers[pe.Parts[0]]) {
			return nil
		}
		a.path(pe)
	}
	return nil
}

func (a *templateAnalysis) VisitSubExpression(s *ast.SubExpression) interface{} {
	s.Expression.Accept(a)
	return nil
}

func (a *templateAnalysis) VisitPath(p *ast.PathExpression) interface{} {
	a.path(p)
	return nil
}

func (a *templateAnalysis) VisitString(*ast.StringLiteral) interface{}   { return nil }
func (a *templateAnalysis) VisitBoolean(*ast.BooleanLiteral) interface{} { return nil }
func (a *templateAnalysis) VisitNumber(*ast.NumberLiteral) interface{}   { return nil }

func (a *templateAnalysis) VisitHash(h *ast.Hash) interface{} {
	for _, p := range h.Pairs {
		p.Accept(a)
	}
	return nil
}

func (a *templateAnalysis) VisitHashPair(p *ast.HashPair) interface{} {
	if p.Val != nil {
		p.Val.Accept(a)
	}
	return nil
}
