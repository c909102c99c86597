package config

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Problem is one thing wrong with a configuration.
type Problem struct {
	// File is the config file (or "environment"); empty for a Config built in code.
	File string
	// Line is the line of Key in File, or 0 when unknown.
	Line int
	// Key is the dotted key path, such as "origin.url" or "segments[2].rule".
	Key string
	// Msg says what is wrong and what is required.
	Msg string
}

// Error formats the problem as file:line: key: message.
func (p Problem) Error() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
		}
		b.WriteString(": ")
	}
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Problems is every problem found in one configuration. It is an error.
type Problems []Problem

// Error lists every problem, one per line.
func (ps Problems) Error() string {
	if len(ps) == 1 {
		return "config: " + ps[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "config: %d problems:", len(ps))
	for _, p := range ps {
		b.WriteString("\n  ")
		b.WriteString(p.Error())
	}
	return b.String()
}

// Merge appends the problems of more that ps does not explain already,
// and returns the result. Left out are one already there, and one about a
// key ps has a problem with, or a key inside it (but for a top-level
// section): a value refused for its type is left at its default, and a
// later check (Validate, a rule's compiling) may refuse that again.
func (ps Problems) Merge(more Problems) Problems {
	known := ps[:len(ps):len(ps)]
next:
	for _, p := range more {
		for _, k := range known {
			if p == k || k.Key != "" && (p.Key == k.Key || strings.ContainsAny(k.Key, ".[") &&
				(strings.HasPrefix(p.Key, k.Key+".") || strings.HasPrefix(p.Key, k.Key+"["))) {
				continue next
			}
		}
		ps = append(ps, p)
	}
	return ps
}

// Sort orders ps by line, those without one (set in code or by the
// environment) last, keeping the order of problems on the same line.
func (ps Problems) Sort() {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		return cmp.Compare(lineOrLast(a.Line), lineOrLast(b.Line))
	})
}

func lineOrLast(line int) int {
	if line <= 0 {
		return math.MaxInt
	}
	return line
}

// Problemf returns a Problem for key, located in c's file when c was loaded
// from one. Other packages use it to report errors in the keys they compile
// (rules, patterns, templates) at the right line.
//
// A key set by an EDGESEG_* variable (or inside one, an item of a list so
// set) is the environment's: the problem names the variable.
func (c *Config) Problemf(key, format string, args ...any) Problem {
	msg := fmt.Sprintf(format, args...)
	for k := key; k != ""; k = parentKey(k) {
		if name, ok := c.env[k]; ok {
			return Problem{File: "environment", Key: name + " (" + key + ")", Msg: msg}
		}
	}
	return Problem{File: c.file, Line: c.lines[key], Key: key, Msg: msg}
}

// parentKey is the key that holds key: "a.b" for "a.b[2]" and "a" for
// "a.b"; "" at the top.
func parentKey(key string) string {
	if i := strings.LastIndexAny(key, ".["); i > 0 {
		return key[:i]
	}
	return ""
}
