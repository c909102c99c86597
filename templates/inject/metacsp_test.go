package inject

import (
	"bytes"
	"html"
	"math/rand/v2"
	"strings"
	"testing"
)

// echoPolicy makes a head snippet that names the <meta> policies it was
// given, and none when one of them says "block".
type echoPolicy struct{}

func (echoPolicy) HeadSnippet(policies [][]byte) []byte {
	if bytes.Contains(bytes.Join(policies, nil), []byte("block")) {
		return nil
	}
	return []byte(`<s p="` + string(bytes.Join(policies, []byte("|"))) + `">`)
}

// TestMetaPolicies: a page whose head declares a Content-Security-Policy
// in a <meta> gets the head snippet its MetaPolicy makes for it, as
// browsers read such tags: in the head only (not after </head>, in a
// template, in a <noscript>), http-equiv in any case but not trimmed, a
// content attribute needed, character references decoded, the first of
// an attribute written twice. Whole (Slots), by a Plan, in chunks, and
// following a Reference of the page and of one with another nonce.
func TestMetaPolicies(t *testing.T) {
	const body = `<body><div data-edgeseg-slot="hero">x</div></body>`
	meta := func(equiv, content string) string {
		return `<meta http-equiv="` + equiv + `" content="` + content + `">`
	}
	for _, tc := range []struct{ head, want string }{
		{`<title>t</title>`, `<s>`},
		{meta("Content-Security-Policy", "script-src 'nonce-a'"), `<s p="script-src 'nonce-a'">`},
		{`<META HTTP-EQUIV="content-security-POLICY" CONTENT="default-src 'self'"/>`, `<s p="default-src 'self'">`},
		{`<meta content=x http-equiv=content-security-policy>`, `<s p="x">`},
		{meta("Content-Security-Policy", "script-src &#39;nonce-a&#39;"), `<s p="script-src 'nonce-a'">`},
		{meta("Content-Security-Policy", "a") + `<link rel=icon href=x>` + meta("content-security-policy", "b"), `<s p="a|b">`},
		{meta("Content-Security-Policy", ""), `<s p="">`},
		{meta("Content-Security-Policy", "block"), ``},
		{meta("Content-Security-Policy-Report-Only", "block"), `<s>`},
		{meta(" Content-Security-Policy", "block"), `<s>`},
		{`<meta http-equiv="Content-Security-Policy">`, `<s>`},
		{`<meta http-equiv="refresh" http-equiv="Content-Security-Policy" content="block">`, `<s>`},
		{`<meta http-equiv="Content-Security-Policy" content="a" content="block">`, `<s p="a">`},
		{`<meta name="csp" content="http-equiv Content-Security-Policy block">`, `<s>`},
		{`<template>` + meta("Content-Security-Policy", "block") + `</template>`, `<s>`},
		{`<noscript>` + meta("Content-Security-Policy", "block") + `</noscript>`, `<s>`},
		{`<script>"` + meta("Content-Security-Policy", "block") + `"</script>`, `<s>`},
		{`<!--` + meta("Content-Security-Policy", "block") + `-->`, `<s>`},
		{`<svg>` + meta("Content-Security-Policy", "a"), `<s p="a">`}, // <meta> breaks out of SVG
	} {
		for _, after := range []string{"", meta("Content-Security-Policy", "block")} {
			page := []byte(`<!doctype html><html><head>` + tc.head + `</head>` + after + body)
			filled, _ := Slots(nil, []byte(body), someLookup, nil)
			want := []byte(`<!doctype html><html><head>` + tc.head + tc.want + `</head>` + after + string(filled))
			opts := &Options{HeadSnippet: []byte(`<s>`), MetaPolicy: echoPolicy{}}
			if got, _ := Slots(nil, page, someLookup, opts); !bytes.Equal(got, want) {
				t.Errorf("Slots(%s):\n got %s\nwant %s", page, got, want)
				continue
			}
			plan := Scan(page)
			if got, _ := plan.Apply(nil, page, someLookup, opts); !bytes.Equal(got, want) {
				t.Errorf("Apply(%s):\n got %s\nwant %s", page, got, want)
			}
			if n := len(plan.MetaPolicies()); n != strings.Count(tc.want, "|")+min(1, strings.Count(tc.want, " p=")) && tc.want != "" {
				t.Errorf("%s: the Plan has %d policies: %q", page, n, plan.MetaPolicies())
			}
			for chunk := 1; chunk <= len(page); chunk += 1 + chunk/8 {
				var out bytes.Buffer
				r := NewRewriter(&out, someLookup, opts)
				for rest := page; len(rest) > 0; rest = rest[min(chunk, len(rest)):] {
					r.Write(rest[:min(chunk, len(rest))])
				}
				r.Close()
				if !bytes.Equal(out.Bytes(), want) {
					t.Fatalf("Rewriter(%s) in %d-byte chunks:\n got %s\nwant %s", page, chunk, out.Bytes(), want)
				}
			}
			// Followed: the page itself, and one whose <meta> nonce differs
			// from the Reference's (a nonce made per response).
			other := bytes.ReplaceAll(page, []byte("nonce-a"), []byte("nonce-b"))
			for _, ref := range []*Reference{ScanReference(page), ScanReference(other)} {
				for chunk := 1; chunk <= len(page); chunk += 1 + chunk/4 {
					followOnce(t, ref, page, someLookup, opts, rand.New(rand.NewPCG(uint64(chunk), 2)))
				}
				if p := ref.PlanFor(page); p != nil {
					if got, _ := p.Apply(nil, page, someLookup, opts); !bytes.Equal(got, want) {
						t.Errorf("a Reference's Plan for %s:\n got %s\nwant %s", page, got, want)
					}
				}
			}
		}
	}
}

// FuzzMetaPolicy: any <meta> tag is read without a panic, and a policy is
// found only where the tag names one.
func FuzzMetaPolicy(f *testing.F) {
	f.Add([]byte(`<meta http-equiv="Content-Security-Policy" content="script-src 'nonce-a'">`))
	f.Add([]byte(`<meta http-equiv=content-security-policy content='a&amp;b'>`))
	f.Add([]byte(`<meta http-equiv="refresh" content="0">`))
	f.Add([]byte(`<meta http-equiv`))
	f.Add([]byte(`<meta http-equiv="content&#45;security-policy" content=x>`))
	f.Fuzz(func(t *testing.T, tag []byte) {
		if got, want := hasDashed(tag, "http", "equiv"), containsFold(tag, "http-equiv"); got != want {
			t.Fatalf("hasDashed(%q, http, equiv) = %v", tag, got)
		}
		// Attribute values are read with their character references
		// decoded, http-equiv's too.
		if p, ok := metaPolicy(tag); ok && (!containsFold([]byte(html.UnescapeString(string(tag))), "content-security-policy") || p == nil) {
			t.Fatalf("%q: policy %q", tag, p)
		}
	})
}

// recordPolicy records the <meta> policies it is shown and places nothing.
type recordPolicy struct{ seen *[]string }

func (r recordPolicy) HeadSnippet(policies [][]byte) []byte {
	*r.seen = append(*r.seen, string(bytes.Join(policies, []byte("|"))))
	return nil
}

// TestReadHead: with Options.ReadHead and no snippet, a Rewriter reads the
// head for its <meta> policies, shows them to MetaPolicy once, and writes
// the document as it would without: in chunks, and following a Reference
// (of the page, and of one with another nonce).
func TestReadHead(t *testing.T) {
	const head = `<meta http-equiv="Content-Security-Policy" content="script-src 'nonce-a'"><title>t</title>`
	page := []byte(`<!doctype html><html><head>` + head + `</head><body><div data-edgeseg-slot="hero">x</div></body></html>`)
	want, _ := Slots(nil, page, someLookup, nil)
	other := bytes.ReplaceAll(page, []byte("nonce-a"), []byte("nonce-b"))
	for _, ref := range []*Reference{nil, ScanReference(page), ScanReference(other)} {
		for chunk := 1; chunk <= len(page); chunk += 1 + chunk/4 {
			var seen []string
			var out bytes.Buffer
			r := NewRewriter(&out, someLookup, &Options{ReadHead: true, MetaPolicy: recordPolicy{&seen}})
			if ref != nil && !r.Follow(ref) {
				t.Fatal("cannot follow")
			}
			for rest := page; len(rest) > 0; rest = rest[min(chunk, len(rest)):] {
				r.Write(rest[:min(chunk, len(rest))])
			}
			r.Close()
			if !bytes.Equal(out.Bytes(), want) {
				t.Fatalf("in %d-byte chunks (following %v):\n got %s\nwant %s", chunk, ref != nil, out.Bytes(), want)
			}
			if len(seen) != 1 || seen[0] != "script-src 'nonce-a'" {
				t.Fatalf("in %d-byte chunks (following %v): MetaPolicy shown %q", chunk, ref != nil, seen)
			}
		}
	}
	// Without ReadHead nor a snippet, the head is not read for them.
	var seen []string
	Slots(nil, page, someLookup, &Options{MetaPolicy: recordPolicy{&seen}})
	if len(seen) != 0 {
		t.Errorf("MetaPolicy shown %q without ReadHead", seen)
	}
}
