package templates

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/aymerick/raymond"
	"github.com/aymerick/raymond/ast"
	"github.com/aymerick/raymond/parser"
	"github.com/cespare/xxhash/v2"
	"go.yaml.in/yaml/v3"

	"github.com/edgeseg/edgeseg/segments"
)

// Problem is one thing wrong in the template directory, located by file
// and line.
type Problem struct {
	File string
	Line int
	Msg  string
	// Warning problems do not stop a load (an unknown field renders empty).
	Warning bool
}

// Error formats the problem as file:line: message.
func (p Problem) Error() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
	}
	return fmt.Sprintf("%s: %s", p.File, p.Msg)
}

// Problems is every problem found in one load.
type Problems []Problem

// Error lists every problem, one per line.
func (ps Problems) Error() string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.Error()
	}
	return "templates: " + strings.Join(s, "\n  ")
}

// Errors returns the problems that are not warnings.
func (ps Problems) Errors() Problems {
	var out Problems
	for _, p := range ps {
		if !p.Warning {
			out = append(out, p)
		}
	}
	return out
}

// Block is one parsed template: the block for one segment in one slot.
type Block struct {
	Slot, Segment string
	File          string
	tpl           *raymond.Template
	data          map[string]any
	// Version identifies the template's source, partials and data.
	Version uint64
	reads   []string // context paths it reads, for the block cache key
	dynamic bool     // reads paths that cannot be listed: key on everything
	static  bool     // reads nothing of the visitor: one output per segment
	// Source is kept to carry a good version over a failed reload.
	source string
	// rendered is the output of a block that reads nothing of the visitor,
	// for the segment it was last rendered for.
	rendered atomic.Pointer[staticRender]
	// tooSlow is why b is not rendered any more: a render took longer
	// than a block's may.
	tooSlow atomic.Pointer[error]
	// renders holds a token per render running: a block that renders
	// slowly occupies a few CPUs, not one per visitor who asked for it.
	renders chan struct{}
	// failures counts failed renders not yet reported; reported is when
	// one last was (Unix ns): see Failed.
	failures, reported atomic.Int64
	// loops: the block has an {{#each}} or calls a partial, the only ways
	// its render can take more than time in proportion to its own size
	// and data (an {{#each}} in an {{#each}}, partials calling partials
	// twice over). Only such renders are run apart and timed; the others
	// run in the caller.
	loops bool
	// segData are the fields of segment.data the block writes and does
	// not test for first (SegmentDataProblems).
	segData []usedPath
}

// staticRender is a block's output for one segment (compared by pointer:
// a config reload makes new segments, so nothing outlives its config), or
// why it has none: the same for every visitor, so not worth trying again.
type staticRender struct {
	seg *segments.Segment
	out Rendered
	err error
}

// ReportEvery is how often a block's failed renders are reported (logged)
// at most: a block that fails for every visitor fails once per request.
const ReportEvery = time.Minute

// Failed notes a failed render of b at now, and reports whether to say so:
// at most once per ReportEvery, with how many renders failed since it was
// last said (this one included).
func (b *Block) Failed(now time.Time) (failures int64, report bool) {
	b.failures.Add(1)
	last := b.reported.Load()
	if last != 0 && now.UnixNano()-last < int64(ReportEvery) {
		return 0, false
	}
	if !b.reported.CompareAndSwap(last, now.UnixNano()) {
		return 0, false
	}
	return b.failures.Swap(0), true
}

// readsNothingOfVisitor reports a block whose output depends only on its
// segment and its own data.
func (b *Block) readsNothingOfVisitor() bool {
	if b.dynamic {
		return false
	}
	for _, r := range b.reads {
		if strings.HasPrefix(r, "signals.") || strings.HasPrefix(r, "visitor.") {
			return false
		}
	}
	return true
}

// Set is one loaded template directory. It is immutable.
type Set struct {
	Dir    string
	blocks map[string]*Block // "slot\x00segment"
	slots  map[string]bool
	segs   map[string]bool
	// Partials lists the partial names available.
	Partials []string
}

// Lookup returns the block for segment in slot, or nil.
func (s *Set) Lookup(slot, segment string) *Block {
	if s == nil {
		return nil
	}
	return s.blocks[slot+"\x00"+segment]
}

// LookupBytes is Lookup for a slot name in bytes, without allocating.
func (s *Set) LookupBytes(slot []byte, segment string) *Block {
	if s == nil || len(slot) > 128 {
		return nil
	}
	var buf [200]byte
	k := append(append(append(buf[:0], slot...), 0), segment...)
	return s.blocks[string(k)]
}

// HasSlot reports whether any block exists for slot.
func (s *Set) HasSlot(slot string) bool { return s != nil && s.slots[slot] }

// NearestSlot returns the slot with blocks that slot (a page's marker) is
// most likely a misspelling of, or "" when none is near enough to suggest.
func (s *Set) NearestSlot(slot string) string {
	if s == nil {
		return ""
	}
	return nearest(slot, maps.Keys(s.slots))
}

// SegmentDataProblems warns of each field of segment.data a block writes
// (and does not test with {{#if}} or {{#unless}} first) that its
// segment's data in the config does not have: the block would show it
// empty ("with code <strong></strong>"). lookup gives a segment by name;
// blocks of segments it does not know are left out.
func (s *Set) SegmentDataProblems(lookup func(name string) *segments.Segment) Problems {
	var ps Problems
	for _, b := range s.Blocks() {
		seg := lookup(b.Segment)
		if seg == nil {
			continue
		}
		for _, u := range b.segData {
			if hasField(seg.Data, strings.TrimPrefix(u.path, "segment.data.")) {
				continue
			}
			line, where := u.line, ""
			if u.partial != "" {
				line, where = 0, fmt.Sprintf(" (in _partials/%s.hbs, line %d)", u.partial, u.line)
			}
			msg := fmt.Sprintf("%s%s: segment %q has no such data in the config: it renders empty", u.path, where, b.Segment)
			if near := nearest(u.path, fieldsOf("segment.data", seg.Data)); near != "" {
				msg += fmt.Sprintf(": did you mean %q?", near)
			} else {
				msg += " (add it under the segment's data:, or test it with {{#if}})"
			}
			ps = append(ps, Problem{File: b.File, Line: line, Msg: msg, Warning: true})
		}
	}
	return ps
}

// Blocks returns every block, sorted by slot then segment.
func (s *Set) Blocks() []*Block {
	if s == nil {
		return nil
	}
	out := make([]*Block, 0, len(s.blocks))
	for _, b := range s.blocks {
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Slot != out[j].Slot {
			return out[i].Slot < out[j].Slot
		}
		return out[i].Segment < out[j].Segment
	})
	return out
}

// Len returns the number of blocks.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.blocks)
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// Load parses every template under dir. prev, when not nil, supplies the
// last good version of a file that now fails to parse. The Set is returned
// with every good block even when there are problems.
func Load(dir string, prev *Set) (*Set, Problems) {
	set := &Set{Dir: dir, blocks: map[string]*Block{}, slots: map[string]bool{}, segs: map[string]bool{}}
	var ps Problems
	info, err := os.Stat(dir)
	if err != nil || !info.IsDir() {
		if err == nil {
			err = errors.New("not a directory")
		}
		return set, Problems{{File: dir, Msg: fmt.Sprintf("template directory: %v", err)}}
	}

	// partials first: blocks need them.
	partials := map[string]*raymond.Template{}
	partialSrc := map[string]string{}
	partialProgs := map[string]*ast.Program{}
	pfiles, _ := filepath.Glob(filepath.Join(dir, "_partials", "*.hbs"))
	for _, f := range pfiles {
		name := strings.TrimSuffix(filepath.Base(f), ".hbs")
		src, err := readSource(f)
		if err != nil {
			ps = append(ps, readProblem(f, err))
			continue
		}
		tpl, err := raymond.Parse(src)
		if err != nil {
			ps = append(ps, parseProblem(f, err))
			continue
		}
		prog, err := parser.Parse(src)
		if err != nil {
			ps = append(ps, parseProblem(f, err))
			continue
		}
		partials[name] = tpl
		partialProgs[name] = prog
		partialSrc[name] = src
		set.Partials = append(set.Partials, name)
	}
	sort.Strings(set.Partials)
	var partialHash uint64
	for _, n := range set.Partials {
		partialHash ^= xxhash.Sum64String(n + "\x00" + partialSrc[n])
	}

	entries, err := os.ReadDir(dir)
	if err != nil {
		return set, append(ps, Problem{File: dir, Msg: err.Error()})
	}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), "_") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		slot := e.Name()
		if !nameRE.MatchString(slot) {
			ps = append(ps, Problem{File: filepath.Join(dir, slot), Msg: "slot folder names are lower case letters, digits, - and _", Warning: true})
			continue
		}
		files, stray := slotFiles(filepath.Join(dir, slot))
		ps = append(ps, stray...)
		for _, f := range files {
			seg := strings.TrimSuffix(filepath.Base(f), ".hbs")
			b, perr := loadBlock(f, slot, seg, partials, partialProgs, partialHash)
			if len(perr) > 0 {
				ps = append(ps, perr...)
			}
			if b == nil {
				if old := prev.Lookup(slot, seg); old != nil {
					b = old // the last good version keeps serving
				} else {
					continue
				}
			}
			set.blocks[slot+"\x00"+seg] = b
			set.slots[slot] = true
			set.segs[seg] = true
		}
	}
	return set, ps
}

// slotFiles lists a slot folder's block files (*.hbs, in name order), and
// warns of the files that look like a block or its data but are never
// read: a block saved as deal-seekers.html or deal-seekers.HBS, or its
// data as deal-seekers.yml, would otherwise never show, and nothing would
// say why. Other files (a README, notes, editors' backups) are passed
// over, as are hidden files and folders.
func slotFiles(slotDir string) (blocks []string, ps Problems) {
	entries, err := os.ReadDir(slotDir)
	if err != nil {
		return nil, Problems{{File: slotDir, Msg: err.Error()}}
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, ".hbs") {
			blocks = append(blocks, filepath.Join(slotDir, name))
		}
		if e.IsDir() || strings.HasPrefix(name, ".") {
			continue
		}
		ext := filepath.Ext(name)
		stem := strings.TrimSuffix(name, ext)
		f := filepath.Join(slotDir, name)
		switch {
		case ext == ".hbs":
			// read, and its name checked, as a block
		case ext == ".yaml":
			if _, err := os.Stat(filepath.Join(slotDir, stem+".hbs")); err != nil {
				ps = append(ps, Problem{File: f, Msg: fmt.Sprintf("data for a block %s.hbs that is not there: it is not read", stem), Warning: true})
			}
		case blockLike[strings.ToLower(ext)]:
			ps = append(ps, Problem{File: f, Msg: fmt.Sprintf("not read: a slot's blocks are SEGMENT.hbs (%s.hbs)", strings.ToLower(stem)), Warning: true})
		case strings.EqualFold(ext, ".yml") || strings.EqualFold(ext, ".yaml"):
			ps = append(ps, Problem{File: f, Msg: fmt.Sprintf("not read: a block's data file is SEGMENT.yaml (%s.yaml)", strings.ToLower(stem)), Warning: true})
		}
	}
	return blocks, ps
}

// blockLike are the extensions, in lower case, of files an editor may
// have meant as a block.
var blockLike = map[string]bool{".hbs": true, ".handlebars": true, ".html": true, ".htm": true, ".mustache": true, ".tpl": true, ".tmpl": true}

// Templates and their data files are read up to these sizes; a larger one
// (a file dropped in by mistake, a log) is a problem, not read whole. A
// block may render up to maxRenderedBytes (an {{#each}} in an {{#each}}
// over a long list renders far more): it goes into every page it fills.
const (
	maxTemplateBytes = 256 << 10
	maxDataBytes     = 1 << 20
	maxRenderedBytes = 1 << 20
)

// readSource reads a template. A UTF-8 byte order mark (Windows editors
// save one) is dropped: it would go into every page as an invisible
// character. Text in another encoding is refused: it would show as
// replacement characters on the site's pages.
func readSource(path string) (string, error) {
	raw, err := readUpTo(path, maxTemplateBytes)
	if err != nil {
		return "", err
	}
	raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))
	for i := 0; i < len(raw); {
		r, n := utf8.DecodeRune(raw[i:])
		if r == utf8.RuneError && n == 1 {
			start := bytes.LastIndexByte(raw[:i], '\n') + 1
			return "", &notUTF8{line: 1 + bytes.Count(raw[:i], []byte("\n")), col: 1 + utf8.RuneCount(raw[start:i])}
		}
		i += n
	}
	return string(raw), nil
}

// notUTF8 is a template file that is not UTF-8 text, and where.
type notUTF8 struct{ line, col int }

func (e *notUTF8) Error() string {
	return fmt.Sprintf("column %d: not UTF-8 text; save the file as UTF-8", e.col)
}

// readProblem is the Problem of a template file that could not be read.
func readProblem(file string, err error) Problem {
	p := Problem{File: file, Msg: err.Error()}
	if e, ok := err.(*notUTF8); ok {
		p.Line = e.line
	}
	return p
}

// readUpTo reads the file at path, or fails if it is larger than limit
// bytes, without reading more than that.
func readUpTo(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(raw)) > limit {
		return nil, fmt.Errorf("larger than %dKiB: not read", limit>>10)
	}
	return raw, nil
}

var lineRE = regexp.MustCompile(`(?i)line (\d+)`)

func parseProblem(file string, err error) Problem {
	msg := err.Error()
	p := Problem{File: file, Msg: strings.TrimPrefix(msg, "Parse error on ")}
	if rest, ok := strings.CutPrefix(msg, "Parse error on line "); ok {
		n, after, _ := strings.Cut(rest, ":\n")
		p.Line, _ = strconv.Atoi(n)
		p.Msg = syntaxMessage(after)
	} else if m := lineRE.FindStringSubmatch(msg); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
	}
	return p
}

// tokenRE and nodeRE read the parser's dumps of a token, Kind{"value"},
// and of a node, what it names.
var (
	tokenRE = regexp.MustCompile(`^(\w+)(?:\{"(.*)"\})?$`)
	nodeRE  = regexp.MustCompile(`Original:'([^']*)'`)
)

// syntaxMessage turns the Handlebars parser's message, which spans lines
// and dumps its tokens and nodes, into one line an editor can act on.
func syntaxMessage(msg string) string {
	first, rest, _ := strings.Cut(msg, "\n")
	token := func(dump string) string {
		m := tokenRE.FindStringSubmatch(dump)
		switch {
		case m == nil:
			return dump
		case m[1] == "EOF":
			return "the end of the file"
		case m[2] != "":
			return strconv.Quote(m[2])
		}
		return m[1]
	}
	switch {
	case first == "Lexer error":
		why, _ := strings.CutPrefix(rest, "Token: Error")
		why = strings.Trim(why, `{}"`)
		switch why {
		case "Unclosed expression":
			return "a {{ is never closed by }}"
		case "Unclosed comment":
			return "a comment {{!-- is never closed by --}}"
		case "Unclosed raw block":
			return "a raw block {{{{x}}}} is never closed by {{{{/x}}}}"
		}
		return strings.ToLower(why[:min(1, len(why))]) + why[min(1, len(why)):]
	case strings.HasSuffix(first, "got: 'EOF'") && strings.HasPrefix(first, "Expecting OpenEndBlock"):
		return "a block ({{#if}}, {{#each}}, …) is never closed: its {{/…}} is missing"
	case strings.Contains(first, " doesn't match "):
		open, closed, _ := strings.Cut(first, " doesn't match ")
		return fmt.Sprintf("{{#%s}} is closed by {{/%s}}", open, closed)
	case strings.HasPrefix(first, "Expecting "):
		want, got, ok := strings.Cut(strings.TrimPrefix(first, "Expecting "), ", got: ")
		if !ok {
			return first
		}
		names := map[string]string{"ID": "a name", "OpenEndBlock": "{{/…}}", "Close": "}}", "CloseBlockParams": "|",
			"CloseSexpr": ")", "CloseUnescaped": "}}}", "CloseRawBlock": "}}}}", "Equals": "="}
		if n, ok := names[want]; ok {
			want = n
		}
		return fmt.Sprintf("expected %s, found %s", want, token(strings.Trim(got, "'")))
	}
	// Other messages: their first line; the rest dumps parser internals.
	if node, ok := strings.CutPrefix(rest, "Node: "); ok && !strings.Contains(first, ":") {
		if m := nodeRE.FindStringSubmatch(node); m != nil {
			return first + ": " + m[1]
		}
	}
	if tok, ok := strings.CutPrefix(rest, "Token: "); ok {
		return first + ": " + token(tok)
	}
	return first
}

// loadBlock parses one block file with its optional yaml data. It returns
// nil when the block cannot be used.
func loadBlock(f, slot, seg string, partials map[string]*raymond.Template, partialProgs map[string]*ast.Program, partialHash uint64) (*Block, Problems) {
	var ps Problems
	if !nameRE.MatchString(seg) {
		return nil, Problems{{File: f, Msg: "block file names are SEGMENT.hbs, lower case letters, digits and dashes", Warning: true}}
	}
	src, err := readSource(f)
	if err != nil {
		return nil, Problems{readProblem(f, err)}
	}
	tpl, err := raymond.Parse(src)
	if err != nil {
		return nil, Problems{parseProblem(f, err)}
	}
	prog, err := parser.Parse(src)
	if err != nil {
		return nil, Problems{parseProblem(f, err)}
	}
	b := &Block{Slot: slot, Segment: seg, File: f, tpl: tpl, source: src, renders: make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))}
	tpl.RegisterHelpers(helpers())
	for name, p := range partials {
		tpl.RegisterPartialTemplate(name, p)
	}
	var dataSrc []byte
	yf := strings.TrimSuffix(f, ".hbs") + ".yaml"
	if raw, err := readUpTo(yf, maxDataBytes); err == nil {
		dataSrc = raw
		if err := yaml.Unmarshal(raw, &b.data); err != nil {
			return nil, Problems{{File: yf, Line: yamlLine(err), Msg: err.Error()}}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, Problems{{File: yf, Msg: err.Error()}}
	}
	b.Version = xxhash.Sum64String(src) ^ partialHash*31 ^ xxhash.Sum64(dataSrc)*17

	a := analyzeTemplate(prog)
	if a.dynamicPartial > 0 {
		return nil, Problems{{File: f, Line: a.dynamicPartial, Msg: "partial names must be written out ({{> name}}): a computed name cannot be checked for recursion"}}
	}
	if cycle, line := a.addPartials(partialProgs); cycle != nil {
		return nil, Problems{{File: f, Line: line, Msg: fmt.Sprintf("partials call themselves (%s): recursive partials are not supported", strings.Join(cycle, " → "))}}
	}
	b.reads, b.dynamic = a.reads, a.dynamic
	for _, u := range a.segData {
		if !a.guarded[u.path] {
			b.segData = append(b.segData, u)
		}
	}
	b.loops = a.loops || len(a.partials) > 0
	b.static = b.readsNothingOfVisitor()
	for _, p := range a.partials {
		if _, ok := partials[p.name]; !ok {
			msg := fmt.Sprintf("partial %q not found in _partials/", p.name)
			if near := nearest(p.name, maps.Keys(partials)); near != "" {
				msg += fmt.Sprintf(": did you mean %q?", near)
			}
			ps = append(ps, Problem{File: f, Line: p.line, Msg: msg})
		}
	}
	for _, u := range a.unknown {
		if !knownPath(u.path, b.data) {
			msg := fmt.Sprintf("unknown field %q: it renders empty", u.path)
			if near := nearest(u.path, contextFields(b.data)); near != "" {
				msg += fmt.Sprintf(": did you mean %q?", near)
			} else {
				msg += " (context: segment, signals, visitor, data)"
			}
			ps = append(ps, Problem{File: f, Line: u.line, Msg: msg, Warning: true})
		}
	}
	for _, u := range a.unescaped {
		where := ""
		if u.partial != "" {
			where = fmt.Sprintf(" (in _partials/%s.hbs, line %d)", u.partial, u.line)
			u.line = 0
		}
		ps = append(ps, Problem{File: f, Line: u.line, Msg: fmt.Sprintf("{{{ }}} writes %s%s into the page as HTML, and a visitor chooses it (a link to your site can carry a script in it): write {{ }}, which escapes it", u.path, where)})
	}
	for _, u := range a.misplaced {
		where := ""
		if u.partial != "" {
			where = fmt.Sprintf(" (in _partials/%s.hbs, line %d)", u.partial, u.line)
			u.line = 0
		}
		ps = append(ps, Problem{File: f, Line: u.line, Msg: fmt.Sprintf("{{ }} writes %s%s, which a visitor chooses, %s", u.path, where, u.why)})
	}
	for _, h := range a.helpers {
		if _, ok := helpers()[h.name]; !ok && !builtinHelpers[h.name] {
			ps = append(ps, Problem{File: f, Line: h.line, Msg: fmt.Sprintf("unknown helper %q", h.name)})
		}
	}
	// In the order an editor reads the file.
	slices.SortStableFunc(ps, func(a, b Problem) int { return cmp.Compare(a.Line, b.Line) })
	if len(ps.Errors()) > 0 {
		return nil, ps
	}
	// A block that reads nothing but its data renders the same for every
	// visitor: it is rendered now, so one that fails (HTML that would break
	// the page, a helper's error) is a problem of the load, and a reload
	// keeps its previous version, rather than every visitor's render
	// failing.
	if readsOnlyData(a) {
		if _, _, err := b.ExecWithin(nil, &segments.Env{}, MaxRenderRun); err != nil {
			return nil, append(ps, Problem{File: f, Msg: strings.TrimPrefix(err.Error(), "templates: "+f+": ")})
		}
	}
	return b, ps
}

// readsOnlyData reports a template that reads nothing of the render
// context but its data.
func readsOnlyData(a *templateAnalysis) bool {
	if a.dynamic {
		return false
	}
	for _, r := range a.reads {
		if r != "data" && !strings.HasPrefix(r, "data.") {
			return false
		}
	}
	return true
}

var yamlLineRE = regexp.MustCompile(`line (\d+)`)

func yamlLine(err error) int {
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

// builtinHelpers are raymond's own block helpers.
var builtinHelpers = map[string]bool{"if": true, "unless": true, "each": true, "with": true, "log": true, "lookup": true, "equal": true}

var _ ast.Node

// HasSegment reports whether segment has a block for any slot.
func (s *Set) HasSegment(segment string) bool {
	if s == nil {
		return false
	}
	return s.segs[segment]
}
