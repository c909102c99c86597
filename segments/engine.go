package segments

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/agnivade/levenshtein"
	"github.com/cespare/xxhash/v2"
	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"

	"github.com/edgeseg/edgeseg/config"
)

// MaxSegments is how many enabled segments an engine holds.
const MaxSegments = 64

// Segment is one compiled segment.
type Segment struct {
	Name     string
	Priority int
	Rule     string
	Holdout  float64
	Data     map[string]any
	// Index is the segment's position in config's segments list.
	Index int
	// Fingerprint changes when anything a template can read of the
	// segment (name, priority, data) changes, so renders cached for one
	// config are not served for another.
	Fingerprint uint64
	program     *vm.Program
	reads       []string // what the rule reads, for explain and the cache key
}

// Reads lists the signals and helper calls the rule reads ("device",
// "utm.campaign", `views("sale", 7)`).
func (s *Segment) Reads() []string { return s.reads }

// Engine holds compiled segments. It is immutable and safe for concurrent use.
type Engine struct {
	segs      []*Segment // by priority, then config order
	keyParts  []keyPart
	cacheable bool
	vms       sync.Pool
	// Warnings are load-time findings that are not errors (too many
	// segments, rules that look equivalent or never match on a sample).
	Warnings []string
}

// Segments returns the enabled segments in priority order.
func (e *Engine) Segments() []*Segment { return e.segs }

// Lookup returns the segment named name, or nil.
func (e *Engine) Lookup(name string) *Segment {
	for _, s := range e.segs {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// New compiles cfg's segments. Errors are config.Problems naming
// segments[i].rule with the column of the problem.
func New(cfg *config.Config) (*Engine, error) {
	e := &Engine{cacheable: true}
	var ps config.Problems
	reads := map[string]keyPart{}
	for i, sc := range cfg.Segments {
		if !sc.IsEnabled() {
			continue
		}
		key := fmt.Sprintf("segments[%d].rule", i)
		prog, err := Compile(sc.Rule)
		if err != nil {
			ps = append(ps, cfg.Problemf(key, "segment %q: %v", sc.Name, err))
			continue
		}
		s := &Segment{Name: sc.Name, Priority: sc.Priority, Rule: sc.Rule, Holdout: sc.Holdout, Data: sc.Data, Index: i, program: prog}
		s.Fingerprint = fingerprint(s)
		parts, ok := analyze(prog.Node())
		if !ok {
			e.cacheable = false
		}
		for _, p := range parts {
			s.reads = append(s.reads, p.name)
			reads[p.name] = p
		}
		e.segs = append(e.segs, s)
	}
	if len(e.segs) > MaxSegments {
		ps = append(ps, cfg.Problemf("segments", "%d enabled segments: at most %d are supported", len(e.segs), MaxSegments))
	}
	if len(ps) > 0 {
		return nil, ps
	}
	sort.SliceStable(e.segs, func(i, j int) bool { return e.segs[i].Priority > e.segs[j].Priority })
	names := make([]string, 0, len(reads))
	for n := range reads {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		e.keyParts = append(e.keyParts, reads[n])
	}
	e.Warnings = e.lint()
	return e, nil
}

// RuleError is a rule that does not compile, with its position.
type RuleError struct {
	Line, Column int
	Msg          string
}

// Error says what is wrong and at which column.
func (e *RuleError) Error() string {
	return fmt.Sprintf("%s at column %d", e.Msg, e.Column)
}

// Compile type-checks one rule against Env. The rule must be boolean.
func Compile(rule string) (*vm.Program, error) {
	prog, err := expr.Compile(rule,
		expr.Env(ruleEnv{}),
		expr.AsBool(),
		expr.Patch(renameFunctions{}),
		expr.MaxNodes(2000),
	)
	if err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			msg := fe.Message
			if name, ok := strings.CutPrefix(msg, "unknown name "); ok {
				if s := suggest(name); s != "" {
					msg += fmt.Sprintf(": did you mean %q?", s)
				}
			}
			return nil, &RuleError{Line: fe.Line, Column: fe.Column + 1, Msg: msg}
		}
		return nil, err
	}
	if id := findHidden(prog.Node()); id != nil {
		line, col := position(rule, id.Location().From)
		return nil, &RuleError{Line: line, Column: col, Msg: "unknown name " + id.Value}
	}
	return prog, nil
}

// hidden are names the rule environment answers to that rules are not
// given: the environment itself ($env, and Env, through which rules run)
// and Env's methods other than the documented helpers. A rule reading the
// visitor through one of them would read values the assignment cache is
// not keyed on, and be given another visitor's assignment.
var hidden = func() map[string]bool {
	m := map[string]bool{"$env": true, "Env": true}
	helpers := map[string]bool{}
	for _, f := range functions {
		helpers[f] = true
	}
	t := reflect.TypeFor[*Env]()
	for i := range t.NumMethod() {
		if n := t.Method(i).Name; !helpers[n] {
			m[n] = true
		}
	}
	return m
}()

// findHidden returns the first identifier of the rule that is hidden.
func findHidden(root ast.Node) *ast.IdentifierNode {
	var v hiddenFinder
	ast.Walk(&root, &v)
	return v.found
}

type hiddenFinder struct{ found *ast.IdentifierNode }

func (v *hiddenFinder) Visit(node *ast.Node) {
	if id, ok := (*node).(*ast.IdentifierNode); ok && v.found == nil && hidden[id.Value] {
		v.found = id
	}
}

// position is the 1-based line and column of byte offset off in src.
func position(src string, off int) (line, col int) {
	off = min(max(off, 0), len(src))
	line = 1 + strings.Count(src[:off], "\n")
	return line, off - strings.LastIndexByte(src[:off], '\n')
}

// ruleEnv is what rules run against: Env's fields and methods, promoted
// through the pointer. expr resolves the fields and methods of a struct
// when it compiles a rule (a field by its index, a helper to a typed call);
// given *Env, a pointer, it looked each one up by name, through
// reflection, every time a rule ran. A struct of one pointer goes into an
// interface without being copied or allocated.
type ruleEnv struct{ *Env }

// renameFunctions lets rules call Env's methods by their rule names
// (views → Views), so the helpers read the request's own state.
type renameFunctions struct{}

func (renameFunctions) Visit(node *ast.Node) {
	if c, ok := (*node).(*ast.CallNode); ok {
		if id, ok := c.Callee.(*ast.IdentifierNode); ok {
			if m, ok := functions[id.Value]; ok {
				id.Value = m
			}
		}
	}
}

// known lists every name a rule may use, for suggestions.
var known = []string{"device", "browser", "os", "bot", "hour", "weekday", "weekend", "daypart", "referrer",
	"referrer_host", "utm", "country", "region", "language", "path", "visitor",
	"views", "events", "days_since", "claim", "cookie", "header", "query"}

func suggest(name string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := levenshtein.ComputeDistance(name, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// Member is a segment a visitor matched.
type Member struct {
	Segment *Segment
	// Holdout: the visitor is in the segment's control group and sees the
	// default content.
	Holdout bool
}

// Eval evaluates every rule for env and returns the bit set of matches, and
// how many rules failed at runtime (treated as not matched).
func (e *Engine) Eval(env *Env) (matched uint64, failed int) {
	m, _ := e.vms.Get().(*vm.VM)
	if m == nil {
		m = &vm.VM{}
	}
	defer e.vms.Put(m)
	for i, s := range e.segs {
		ok, err := runRule(m, s.program, env)
		if err != nil {
			failed++
			continue
		}
		if ok {
			matched |= 1 << uint(i)
		}
	}
	return matched, failed
}

// runRule runs one program; a panic inside it is an error, not a crash.
func runRule(m *vm.VM, p *vm.Program, env *Env) (ok bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("rule panicked: %v", r)
		}
	}()
	out, err := m.Run(p, ruleEnv{env})
	if err != nil {
		return false, err
	}
	b, _ := out.(bool)
	return b, nil
}

// Members expands matched into members in priority order, bucketing each
// into its holdout by visitorID (no holdout when visitorID is empty).
func (e *Engine) Members(dst []Member, matched uint64, visitorID string) []Member {
	for i, s := range e.segs {
		if matched&(1<<uint(i)) == 0 {
			continue
		}
		dst = append(dst, Member{Segment: s, Holdout: visitorID != "" && s.Holdout > 0 && Bucket(visitorID, s.Name) < s.Holdout})
	}
	return dst
}

// Bucket maps a visitor and a segment to a number in [0, 1), the same on
// every replica and stable across restarts.
func Bucket(visitorID, segment string) float64 {
	h := xxhash.New()
	_, _ = h.WriteString(visitorID)
	_, _ = h.WriteString("\x00")
	_, _ = h.WriteString(segment)
	return float64(h.Sum64()>>11) / float64(1<<53)
}

// AppendKey appends the cache key of env to buf: exactly the values the
// rules read, each named and length-delimited, so two different sets of
// values never give the same bytes (callers hash them, see cache.Hasher).
// ok is false when the rules cannot be keyed (a helper called with a
// non-constant argument), and the caller must evaluate every time.
func (e *Engine) AppendKey(env *Env, buf []byte) (_ []byte, ok bool) {
	if !e.cacheable {
		return buf, false
	}
	for _, p := range e.keyParts {
		buf = append(buf, p.name...)
		buf = append(buf, 0)
		buf = p.read(env, buf)
	}
	return buf, true
}

// keyPart appends the canonical value of one thing a rule reads.
type keyPart struct {
	name string
	read func(*Env, []byte) []byte
}

func str(f func(*Env) string) func(*Env, []byte) []byte {
	return func(e *Env, b []byte) []byte { return AppendString(b, f(e)) }
}

// AppendString appends s to a cache key, prefixed by its length: values
// come from requests and may hold any byte, separators included.
func AppendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}
func num(f func(*Env) int) func(*Env, []byte) []byte {
	return func(e *Env, b []byte) []byte { return binary.AppendVarint(b, int64(f(e))) }
}
func flag(f func(*Env) bool) func(*Env, []byte) []byte {
	return func(e *Env, b []byte) []byte {
		if f(e) {
			return append(b, 1)
		}
		return append(b, 0)
	}
}

// readers maps every readable field path to its key part.
var readers = map[string]func(*Env, []byte) []byte{
	"device": str(func(e *Env) string { return e.Device }), "browser": str(func(e *Env) string { return e.Browser }),
	"os": str(func(e *Env) string { return e.OS }), "bot": flag(func(e *Env) bool { return e.Bot }),
	"hour": num(func(e *Env) int { return e.Hour }), "weekday": str(func(e *Env) string { return e.Weekday }),
	"weekend": flag(func(e *Env) bool { return e.Weekend }), "daypart": str(func(e *Env) string { return e.Daypart }),
	"referrer": str(func(e *Env) string { return e.Referrer }), "referrer_host": str(func(e *Env) string { return e.ReferrerHost }),
	"country": str(func(e *Env) string { return e.Country }), "region": str(func(e *Env) string { return e.Region }),
	"language": str(func(e *Env) string { return e.Language }), "path": str(func(e *Env) string { return e.Path }),
	"utm.source": str(func(e *Env) string { return e.UTM.Source }), "utm.medium": str(func(e *Env) string { return e.UTM.Medium }),
	"utm.campaign": str(func(e *Env) string { return e.UTM.Campaign }), "utm.term": str(func(e *Env) string { return e.UTM.Term }),
	"utm.content":     str(func(e *Env) string { return e.UTM.Content }),
	"visitor.consent": flag(func(e *Env) bool { return e.Visitor.Consent }), "visitor.new": flag(func(e *Env) bool { return e.Visitor.New }),
	"visitor.visits": num(func(e *Env) int { return e.Visitor.Visits }), "visitor.pageviews": num(func(e *Env) int { return e.Visitor.PageViews }),
	"visitor.score": num(func(e *Env) int { return e.Visitor.Score }), "visitor.stage": str(func(e *Env) string { return e.Visitor.Stage }),
	"visitor.days_since_last_visit": num(func(e *Env) int { return e.Visitor.DaysSinceLastVisit }),
	"visitor.top_category":          str(func(e *Env) string { return e.Visitor.TopCategory }),
	"visitor.purchases":             num(func(e *Env) int { return e.Visitor.Purchases }),
}

// analyze lists what a compiled rule reads. ok is false when something it
// reads cannot be keyed.
func analyze(root ast.Node) ([]keyPart, bool) {
	a := &analyzer{seen: map[string]bool{}, ok: true, ids: map[string]int{}, bases: map[string]int{}}
	ast.Walk(&root, a)
	for _, st := range []string{"utm", "visitor"} {
		if a.ids[st] > a.bases[st] { // used as a whole somewhere
			names := make([]string, 0)
			for k := range readers {
				if strings.HasPrefix(k, st+".") {
					names = append(names, k)
				}
			}
			sort.Strings(names)
			for _, k := range names {
				a.add(k, readers[k])
			}
		}
	}
	return a.parts, a.ok
}

// analyzer visits every node of a rule once (ast.Walk order).
type analyzer struct {
	parts []keyPart
	seen  map[string]bool
	ok    bool
	ids   map[string]int // identifier occurrences
	bases map[string]int // occurrences as the base of a member access
}

func (a *analyzer) add(name string, read func(*Env, []byte) []byte) {
	if !a.seen[name] {
		a.seen[name] = true
		a.parts = append(a.parts, keyPart{name, read})
	}
}

func (a *analyzer) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.IdentifierNode:
		a.ids[n.Value]++
		if r, ok := readers[n.Value]; ok {
			a.add(n.Value, r)
		}
	case *ast.MemberNode:
		id, ok := n.Node.(*ast.IdentifierNode)
		if !ok {
			return
		}
		a.bases[id.Value]++
		p, ok := n.Property.(*ast.StringNode)
		if !ok {
			a.ok = false // computed property: cannot key
			return
		}
		if r, ok := readers[id.Value+"."+p.Value]; ok {
			a.add(id.Value+"."+p.Value, r)
		}
	case *ast.CallNode:
		id, ok := n.Callee.(*ast.IdentifierNode)
		if !ok {
			return
		}
		for rule, method := range functions {
			if id.Value != method {
				continue
			}
			args := make([]any, len(n.Arguments))
			var sb strings.Builder
			sb.WriteString(rule + "(")
			for i, arg := range n.Arguments {
				if i > 0 {
					sb.WriteString(", ")
				}
				switch v := arg.(type) {
				case *ast.StringNode:
					args[i] = v.Value
					sb.WriteString(strconv.Quote(v.Value))
				case *ast.IntegerNode:
					args[i] = v.Value
					sb.WriteString(strconv.Itoa(v.Value))
				default:
					a.ok = false // computed argument: cannot key
					return
				}
			}
			sb.WriteString(")")
			a.add(sb.String(), callReader(method, args))
			return
		}
	}
}

// callReader returns a key part that calls a helper with constant args.
func callReader(method string, args []any) func(*Env, []byte) []byte {
	s := func(i int) string { v, _ := args[i].(string); return v }
	n := func(i int) int { v, _ := args[i].(int); return v }
	switch method {
	case "Views":
		return num(func(e *Env) int { return e.Views(s(0), n(1)) })
	case "Events":
		return num(func(e *Env) int { return e.Events(s(0), n(1)) })
	case "DaysSince":
		return num(func(e *Env) int { return e.DaysSince(s(0)) })
	case "Claim":
		return str(func(e *Env) string { return e.Claim(s(0)) })
	case "Cookie":
		return str(func(e *Env) string { return e.Cookie(s(0)) })
	case "Header":
		return str(func(e *Env) string { return e.Header(s(0)) })
	}
	return str(func(e *Env) string { return e.Query(s(0)) })
}

// CompileValue compiles an expression that reads one value (a field path
// or a helper call such as views("sale", 7)) and returns a function that
// formats its value for env. For explain output.
func CompileValue(read string) (func(*Env) string, error) {
	prog, err := expr.Compile(read, expr.Env(ruleEnv{}), expr.Patch(renameFunctions{}))
	if err != nil {
		return nil, err
	}
	return func(env *Env) string {
		out, err := expr.Run(prog, ruleEnv{env})
		if err != nil {
			return "error: " + err.Error()
		}
		return fmt.Sprint(out)
	}, nil
}

// fingerprint hashes what templates can read of s. encoding/json writes
// map keys sorted, so equal data hashes equal.
func fingerprint(s *Segment) uint64 {
	data, err := json.Marshal(s.Data)
	if err != nil { // data from YAML always marshals; be safe anyway
		data = fmt.Appendf(nil, "%v", s.Data)
	}
	return xxhash.Sum64(fmt.Appendf(nil, "%s\x00%d\x00%s", s.Name, s.Priority, data))
}
