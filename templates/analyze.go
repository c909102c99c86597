package templates

import (
	"slices"
	"strings"

	"github.com/aymerick/raymond/ast"

	"github.com/edgeseg/edgeseg/segments"
)

type located struct {
	name string
	line int
}

type usedPath struct {
	path string
	line int
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
	// dynamicPartial is the line of a partial call whose name is computed
	// ({{> (expr)}}), or 0.
	dynamicPartial int
}

func analyzeTemplate(p *ast.Program) *templateAnalysis {
	a := &templateAnalysis{seen: map[string]bool{}}
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
			pa := analyzeTemplate(prog)
			if pa.dynamicPartial > 0 {
				// It may call anything, itself included.
				cycle = append(append([]string(nil), path...), c.name, "(a computed name)")
				return false
			}
			a.dynamic = a.dynamic || pa.dynamic
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
		if parts[0] != "data" && !contextPaths[full] && len(parts) > 1 {
			a.unknown = append(a.unknown, usedPath{full, p.Line})
		}
	default:
		a.unknown = append(a.unknown, usedPath{full, p.Line})
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
		var cur any = data
		for _, part := range strings.Split(rest, ".") {
			m, ok := cur.(map[string]any)
			if !ok {
				return false
			}
			if cur, ok = m[part]; !ok {
				return false
			}
		}
		return true
	}
	return false
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
	m.Expression.Accept(a)
	return nil
}

func (a *templateAnalysis) VisitBlock(b *ast.BlockStatement) interface{} {
	b.Expression.Accept(a)
	name := b.Expression.HelperName()
	scopes := name == "each" || name == "with"
	if scopes {
		a.scoped++
	}
	if b.Program != nil {
		b.Program.Accept(a)
	}
	if scopes {
		a.scoped--
	}
	if b.Inverse != nil {
		b.Inverse.Accept(a)
	}
	return nil
}

func (a *templateAnalysis) VisitPartial(p *ast.PartialStatement) interface{} {
	if pe, ok := p.Name.(*ast.PathExpression); ok {
		a.partials = append(a.partials, located{pe.Original, p.Line})
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

func (a *templateAnalysis) VisitContent(*ast.ContentStatement) interface{} { return nil }
func (a *templateAnalysis) VisitComment(*ast.CommentStatement) interface{} { return nil }

func (a *templateAnalysis) VisitExpression(e *ast.Expression) interface{} {
	pe, isPath := e.Path.(*ast.PathExpression)
	if len(e.Params) > 0 || e.Hash != nil {
		if isPath && len(pe.Parts) == 1 {
			a.helpers = append(a.helpers, located{pe.Parts[0], e.Line})
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
