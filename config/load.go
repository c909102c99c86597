package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Load reads the YAML file at path over Default(), applies EDGESEG_*
// environment overrides from environ (os.Environ() in production; nil for
// none) and validates the result. Every error names the file and, where it
// can, the line and key.
func Load(path string, environ []string) (*Config, error) {
	c, err := Check(path, environ)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Check reads path as Load does and finds every problem in it at once:
// unknown keys, values of the wrong type, overrides from the environment
// and what Validate refuses, as Problems in the order of the file's lines.
// Unlike Load, with Problems it also returns the config as read (a refused
// value left at its default), so that a checker can go on to the rules and
// templates the config names. It returns a nil Config only when the file
// cannot be read or is not YAML.
func Check(path string, environ []string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, ps, err := parse(path, raw)
	switch {
	case err != nil:
		return nil, err
	case c == nil:
		return nil, ps
	}
	more := func(err error) error {
		var later Problems
		if !errors.As(err, &later) {
			return err
		}
		ps = ps.Merge(later)
		return nil
	}
	if err := c.ApplyEnv(environ); err != nil {
		if err := more(err); err != nil {
			return nil, err
		}
	}
	c.resolvePaths()
	if err := c.Validate(); err != nil {
		if err := more(err); err != nil {
			return nil, err
		}
	}
	if len(ps) > 0 {
		ps.Sort()
		return c, ps
	}
	return c, nil
}

var unknownFieldRE = regexp.MustCompile(`^line (\d+): field (\S+) not found in type \S+$`)
var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// Parse decodes raw YAML (read from file, used in messages) over Default()
// without validating it. Unknown keys are errors.
func Parse(file string, raw []byte) (*Config, error) {
	c, ps, err := parse(file, raw)
	switch {
	case err != nil:
		return nil, err
	case len(ps) > 0:
		return nil, ps
	}
	return c, nil
}

// parse is Parse, returning with the problems of keys it could not decode
// the config as decoded without them; err is for input that is not YAML
// (or not a mapping of keys).
func parse(file string, raw []byte) (*Config, Problems, error) {
	c := Default()
	c.file = file
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
			line, _ := strconv.Atoi(m[1])
			msg = m[2]
			if tab := tabIndented(raw, line); tab > 0 {
				line = tab
				if !strings.Contains(msg, "tab") {
					msg += ": this line is indented with a tab; YAML indents with spaces"
				}
			}
			return nil, nil, fmt.Errorf("config: %s:%d: %s", file, line, msg)
		}
		return nil, nil, fmt.Errorf("config: %s: %s", file, msg)
	}
	c.lines = map[string]int{}
	if len(root.Content) > 0 {
		collectLines(root.Content[0], "", c.lines)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			var ps Problems
			for _, e := range te.Errors {
				if m := unknownFieldRE.FindStringSubmatch(e); m != nil {
					line, _ := strconv.Atoi(m[1])
					key := keyAtLine(c.lines, line, m[2], m[2])
					ps = append(ps, Problem{File: file, Line: line, Key: key, Msg: unknownKeyMessage(key)})
					continue
				}
				if m := yamlLineRE.FindStringSubmatch(e); m != nil {
					line, _ := strconv.Atoi(m[1])
					key := keyAtLine(c.lines, line, "", "")
					msg, collection := typeMessage(m[2])
					if collection && key != "" {
						// A list or mapping where a value belongs: the
						// decoder names its first item's line; the key
						// holding it is the one to fix.
						if i := strings.LastIndexAny(key, ".["); i > 0 {
							key = key[:i]
							line = c.lines[key]
						}
					}
					ps = append(ps, Problem{File: file, Line: line, Key: key, Msg: msg})
					continue
				}
				ps = append(ps, Problem{File: file, Msg: e})
			}
			return c, ps, nil
		}
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
			line, _ := strconv.Atoi(m[1])
			return nil, Problems{{File: file, Line: line, Key: keyAtLine(c.lines, line, "", ""), Msg: m[2]}}, nil
		}
		return nil, nil, fmt.Errorf("config: %s: %s", file, msg)
	}
	return c, nil, nil
}

// tabIndented returns the line (1-based), line or the one after it (where
// the YAML parser finds a tab it names the line before), that is indented
// with a tab, which YAML does not allow; 0 when neither is.
func tabIndented(raw []byte, line int) int {
	lines := bytes.Split(raw, []byte("\n"))
	for n := line; n >= 1 && n <= len(lines) && n <= line+1; n++ {
		l := lines[n-1]
		if bytes.IndexByte(l[:len(l)-len(bytes.TrimLeft(l, " \t"))], '\t') >= 0 {
			return n
		}
	}
	return 0
}

var typeErrorRE = regexp.MustCompile("^cannot unmarshal !!(\\w+) (?:`(.*)` )?into (.+)$")

// typeMessage says what a value of the wrong type should have been, in
// place of the YAML decoder's "cannot unmarshal !!int `120` into
// time.Duration"; collection says the value was a list or a mapping.
func typeMessage(msg string) (_ string, collection bool) {
	m := typeErrorRE.FindStringSubmatch(msg)
	if m == nil {
		return msg, false
	}
	got, collection := m[2], m[2] == ""
	if collection {
		got = map[string]string{"map": "a mapping", "seq": "a list"}[m[1]]
		if got == "" {
			got = "this value"
		}
	} else {
		got = strconv.Quote(got)
	}
	want, isSlice := m[3], strings.HasPrefix(m[3], "[]")
	switch {
	case want == "time.Duration":
		return got + " is not a duration: give it a unit, such as 500ms, 30s, 5m or 1h", collection
	case strings.HasPrefix(want, "int") || strings.HasPrefix(want, "uint"):
		return got + " is not a whole number", collection
	case strings.HasPrefix(want, "float"):
		return got + " is not a number", collection
	case want == "bool":
		return got + " is not true or false", collection
	case want == "string" && !collection:
		return got + " is not a string: quote it", collection
	case want == "string":
		return got + " is not a string", collection
	case isSlice:
		return got + " is not a list: write [a, b] or one item per line after a dash", collection
	case strings.HasPrefix(want, "map[") || strings.HasPrefix(want, "config."):
		return got + " is not a mapping of keys to values", collection
	}
	return msg, collection
}

// keyAtLine finds the deepest key path written at line (unknown keys are
// recorded too, since lines come from the raw YAML): the deepest whose
// last part is name, when name is given (a flow mapping puts several keys
// on one line), else the deepest of all; fallback when none.
func keyAtLine(lines map[string]int, line int, name, fallback string) string {
	best, named := "", ""
	for k, l := range lines {
		if l != line {
			continue
		}
		if len(k) > len(best) {
			best = k
		}
		if name != "" && (k == name || strings.HasSuffix(k, "."+name)) && len(k) > len(named) {
			named = k
		}
	}
	switch {
	case named != "":
		return named
	case best != "":
		return best
	}
	return fallback
}

// collectLines records the line of every key under n, by dotted path with
// [i] for sequence items.
func collectLines(n *yaml.Node, prefix string, out map[string]int) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			path := k.Value
			if prefix != "" {
				path = prefix + "." + k.Value
			}
			out[path] = k.Line
			collectLines(v, path, out)
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			path := fmt.Sprintf("%s[%d]", prefix, i)
			out[path] = item.Line
			collectLines(item, path, out)
		}
	case yaml.DocumentNode:
		for _, c := range n.Content {
			collectLines(c, prefix, out)
		}
	}
}

// resolvePaths makes relative paths in the config relative to the config
// file's directory, so a config works from any working directory.
func (c *Config) resolvePaths() {
	if c.file == "" {
		return
	}
	base := filepath.Dir(c.file)
	rel := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	rel(&c.Templates.Dir)
	rel(&c.Server.TLSCertFile)
	rel(&c.Server.TLSKeyFile)
	rel(&c.Origin.CAFile)
	rel(&c.Origin.ClientCertFile)
	rel(&c.Origin.ClientKeyFile)
	if socket, ok := UnixSocket(c.Origin.URL); ok && socket != "" {
		rel(&socket)
		c.Origin.URL = "unix:" + socket
	}
	for i := range c.Identity.Keys {
		rel(&c.Identity.Keys[i].PublicKeyFile)
	}
	if s := c.Events.Sink; s != "stdout" && s != "stderr" && s != "off" && s != "" {
		rel(&c.Events.Sink)
	}
}

// ApplyEnv overrides scalar keys from environment variables named
// EDGESEG_ plus the key path in upper case with dots as underscores:
// origin.url ← EDGESEG_ORIGIN_URL, server.max_header_bytes ←
// EDGESEG_SERVER_MAX_HEADER_BYTES. Lists of strings take comma-separated
// values. Lists of structs (segments, keys) cannot be set this way.
func (c *Config) ApplyEnv(environ []string) error {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "EDGESEG_") {
			env[k] = v
		}
	}
	if len(env) == 0 {
		return nil
	}
	var ps Problems
	used := map[string]bool{}
	walkLeaves(reflect.ValueOf(c).Elem(), "", func(key string, v reflect.Value) {
		name := "EDGESEG_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
		s, ok := env[name]
		if !ok {
			return
		}
		used[name] = true
		if err := setFromString(v, s); err != nil {
			ps = append(ps, Problem{File: "environment", Key: name, Msg: err.Error()})
			return
		}
		if c.env == nil {
			c.env = map[string]string{}
		}
		c.env[key] = name
	})
	for name := range env {
		if !used[name] && !knownNonConfigEnv(name) {
			ps = append(ps, Problem{File: "environment", Key: name, Msg: "no such config key"})
		}
	}
	if len(ps) > 0 {
		return ps
	}
	return nil
}

// knownNonConfigEnv lists EDGESEG_ variables that are not config keys.
func knownNonConfigEnv(name string) bool {
	return name == "EDGESEG_CONFIG"
}

var durationType = reflect.TypeOf(time.Duration(0))
var byteSizeType = reflect.TypeOf(ByteSize(0))

func walkLeaves(v reflect.Value, prefix string, f func(string, reflect.Value)) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		tag := strings.Split(sf.Tag.Get("yaml"), ",")
		name := tag[0]
		fv := v.Field(i)
		if len(tag) > 1 && tag[1] == "inline" {
			walkLeaves(fv, prefix, f)
			continue
		}
		key := name
		if prefix != "" {
			key = prefix + "." + name
		}
		switch {
		case fv.Kind() == reflect.Struct:
			walkLeaves(fv, key, f)
		case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() != reflect.String:
			// lists of structs are not settable from the environment
		case fv.Kind() == reflect.Map, fv.Kind() == reflect.Pointer:
		default:
			f(key, fv)
		}
	}
}

func setFromString(v reflect.Value, s string) error {
	switch {
	case v.Type() == durationType:
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("invalid duration %q: want e.g. 30s, 5m, 1h", s)
		}
		v.SetInt(int64(d))
	case v.Type() == byteSizeType:
		b, err := ParseByteSize(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(b))
	case v.Kind() == reflect.String:
		v.SetString(s)
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("invalid boolean %q: want true or false", s)
		}
		v.SetBool(b)
	case v.Kind() == reflect.Int:
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("invalid integer %q", s)
		}
		v.SetInt(int64(n))
	case v.Kind() == reflect.Float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("invalid number %q", s)
		}
		v.SetFloat(f)
	case v.Kind() == reflect.Slice:
		var parts []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		v.Set(reflect.ValueOf(parts))
	default:
		return fmt.Errorf("cannot be set from the environment")
	}
	return nil
}
