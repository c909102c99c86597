package config

import (
	"fmt"
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

// Problemf returns a Problem for key, located in c's file when c was loaded
// from one. Other packages use it to report errors in the keys they compile
// (rules, patterns, templates) at the right line.
func (c *Config) Problemf(key, format string, args ...any) Problem {
	return Problem{File: c.file, Line: c.lines[key], Key: key, Msg: fmt.Sprintf(format, args...)}
}
