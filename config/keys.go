package config

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/agnivade/levenshtein"
)

// unknownKeyMessage says what is wrong with the unknown key at path (a
// dotted path as collectLines writes it, "origin.ulr", "segments[2].rul"):
// the key it is nearest to, or else every key its parent takes.
func unknownKeyMessage(path string) string {
	parent, name := "", path
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		parent, name = path[:i], path[i+1:]
	}
	keys := keysUnder(reflect.TypeFor[Config](), parent)
	if len(keys) == 0 {
		return "unknown key"
	}
	if near := nearestKey(name, keys); near != "" {
		return fmt.Sprintf("unknown key: did you mean %q?", near)
	}
	where := parent
	if where == "" {
		where = "the top level"
	}
	return fmt.Sprintf("unknown key; %s takes: %s", where, strings.Join(keys, ", "))
}

// nearestKey returns the key in keys that name is most likely a misspelling
// of, or "" when none is near enough to suggest.
func nearestKey(name string, keys []string) string {
	best, bestD := "", len(name)/3+2 // a typo or two in a short key, more in a long one
	for _, k := range keys {
		if d := levenshtein.ComputeDistance(strings.ToLower(name), k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// keysUnder returns the YAML keys the mapping at path takes, in the order
// the struct declares them, or nil when path does not lead to a struct.
func keysUnder(t reflect.Type, path string) []string {
	var parts []string
	if path != "" {
		parts = strings.Split(path, ".")
	}
	for i := 0; i < len(parts); i++ {
		name, _, _ := strings.Cut(parts[i], "[") // segments[2] → segments
		f, ok := yamlField(t, name)
		if !ok {
			return nil
		}
		t = f.Type
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			t = t.Elem()
		}
		if t.Kind() == reflect.Map {
			i++ // the next part is one of the map's own keys
			t = t.Elem()
			for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
				t = t.Elem()
			}
		}
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var keys []string
	for _, f := range reflect.VisibleFields(t) {
		if name := yamlName(f); name != "" {
			keys = append(keys, name)
		}
	}
	return keys
}

// yamlName returns the key a struct field decodes from, or "" for a field
// the decoder does not fill by a key of its own (unexported, inlined, "-").
func yamlName(f reflect.StructField) string {
	if !f.IsExported() || f.Anonymous {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	switch name {
	case "-":
		return ""
	case "":
		return strings.ToLower(f.Name)
	}
	return name
}

// yamlField finds the field of struct t (or of a struct inlined into it)
// that the YAML key name decodes into.
func yamlField(t reflect.Type, name string) (reflect.StructField, bool) {
	if t.Kind() != reflect.Struct || name == "" {
		return reflect.StructField{}, false
	}
	for _, f := range reflect.VisibleFields(t) {
		if yamlName(f) == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}
