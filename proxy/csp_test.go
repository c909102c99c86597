package proxy

import (
	"bytes"
	"testing"

	"github.com/valyala/fasthttp"
)

// inlineScriptNonce reads rh's policies and then those of meta, with sp,
// for the data layer's script.
func inlineScriptNonce(sp *scriptPolicies, rh *fasthttp.ResponseHeader, meta ...string) ([]byte, bool) {
	sp.readHeaders(rh)
	for _, m := range meta {
		sp.enforce([]byte(m))
	}
	return sp.inlineScript()
}

// TestInlineScriptNonce: the data layer's script is let run, and with
// which nonce, as browsers read a page's Content-Security-Policy headers
// and <meta http-equiv> tags. One scriptPolicies reads them all, as a
// pooled visit does.
func TestInlineScriptNonce(t *testing.T) {
	var sp scriptPolicies
	for _, c := range []struct {
		name       string
		csp        []string // Content-Security-Policy headers
		reportOnly []string
		nonce      string
		ok         bool
		meta       []string // the page's <meta> policies
	}{
		{"no policy", nil, nil, "", true, nil},
		{"no script directive", []string{"img-src 'self'; frame-ancestors 'none'"}, nil, "", true, nil},
		{"nonce in script-src", []string{"default-src 'self'; script-src 'self' 'nonce-r4nd0m+/='"}, nil, "r4nd0m+/=", true, nil},
		{"nonce in default-src", []string{"default-src 'self' 'nonce-abc'"}, nil, "abc", true, nil},
		{"script-src over default-src", []string{"default-src 'nonce-abc'; script-src 'self'"}, nil, "", false, nil},
		{"script-src-elem over script-src", []string{"script-src 'self'; script-src-elem 'nonce-elem'"}, nil, "elem", true, nil},
		{"script-src-elem blocks", []string{"script-src 'unsafe-inline'; script-src-elem 'self'"}, nil, "", false, nil},
		{"unsafe-inline", []string{"script-src 'self' 'unsafe-inline'"}, nil, "", true, nil},
		{"unsafe-inline in any case", []string{"SCRIPT-SRC 'Unsafe-Inline'"}, nil, "", true, nil},
		{"unsafe-inline beside a hash", []string{"script-src 'unsafe-inline' 'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"}, nil, "", false, nil},
		{"unsafe-inline beside strict-dynamic", []string{"script-src 'unsafe-inline' 'strict-dynamic' https:"}, nil, "", false, nil},
		{"strict-dynamic with a nonce", []string{"script-src 'strict-dynamic' 'nonce-Zm9v' 'unsafe-inline' https:"}, nil, "Zm9v", true, nil},
		{"hashes only", []string{"script-src 'sha384-abc'"}, nil, "", false, nil},
		{"self only", []string{"script-src 'self' https://cdn.example"}, nil, "", false, nil},
		{"none", []string{"default-src 'none'"}, nil, "", false, nil},
		{"empty directive", []string{"script-src"}, nil, "", false, nil},
		{"first directive of a name counts", []string{"script-src 'unsafe-inline'; script-src 'self'"}, nil, "", true, nil},
		{"nonce with a quote", []string{`script-src 'nonce-a"b'`}, nil, "", false, nil},
		{"nonce without its quote", []string{"script-src 'nonce-abc"}, nil, "", false, nil},
		{"empty nonce", []string{"script-src 'nonce-'"}, nil, "", false, nil},
		{"two policies in a header", []string{"script-src 'unsafe-inline', script-src 'self'"}, nil, "", false, nil},
		{"two headers, one nonce", []string{"script-src 'nonce-abc'", "default-src 'self' 'nonce-abc'"}, nil, "abc", true, nil},
		{"two headers, two nonces", []string{"script-src 'nonce-abc'", "script-src 'nonce-xyz'"}, nil, "", false, nil},
		{"nonce and unsafe-inline policies", []string{"script-src 'unsafe-inline'", "script-src 'nonce-abc'"}, nil, "abc", true, nil},
		{"report-only does not block", nil, []string{"script-src 'self'"}, "", true, nil},
		{"report-only nonce", nil, []string{"script-src 'nonce-rep'"}, "rep", true, nil},
		{"enforced nonce first", []string{"script-src 'nonce-enf'"}, []string{"script-src 'nonce-rep'"}, "enf", true, nil},
		{"tabs and blanks", []string{" \tscript-src\t'nonce-t'  ;  "}, nil, "t", true, nil},
		{"meta nonce", nil, nil, "m", true, []string{"default-src 'self'; script-src 'nonce-m'"}},
		{"meta blocks", []string{"script-src 'nonce-abc'"}, nil, "", false, []string{"script-src 'self'"}},
		{"header and meta agree", []string{"script-src 'nonce-abc'"}, nil, "abc", true, []string{"script-src 'nonce-abc' 'strict-dynamic'"}},
		{"header and meta differ", []string{"script-src 'nonce-abc'"}, nil, "", false, []string{"script-src 'nonce-xyz'"}},
		{"meta over report-only", nil, []string{"script-src 'nonce-rep'"}, "m", true, []string{"script-src 'nonce-m'"}},
		{"meta unsafe-inline", nil, nil, "", true, []string{"script-src 'unsafe-inline'", "img-src *"}},
		{"a comma in a meta separates nothing", nil, nil, "", false, []string{"script-src 'unsafe-inline', script-src 'self'"}},
		{"no policy after a nonce", nil, nil, "", true, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			var rh fasthttp.ResponseHeader
			for _, v := range c.csp {
				rh.Add("Content-Security-Policy", v)
			}
			for _, v := range c.reportOnly {
				rh.Add("Content-Security-Policy-Report-Only", v)
			}
			nonce, ok := inlineScriptNonce(&sp, &rh, c.meta...)
			if string(nonce) != c.nonce || ok != c.ok {
				t.Errorf("got nonce %q ok %v, want %q %v", nonce, ok, c.nonce, c.ok)
			}
		})
	}
}

// FuzzInlineScriptNonce: any policy is read without a panic, and a nonce
// returned is one the header names, safe in a quoted attribute.
func FuzzInlineScriptNonce(f *testing.F) {
	for _, s := range []string{"script-src 'nonce-abc'", "default-src 'self'; script-src-elem 'nonce-x' 'strict-dynamic'", "script-src 'unsafe-inline', img-src *", "'nonce-'", ";,;"} {
		f.Add(s, "script-src 'nonce-r'")
	}
	f.Fuzz(func(t *testing.T, csp, reportOnly string) {
		var rh fasthttp.ResponseHeader
		rh.Set("Content-Security-Policy", csp)
		rh.Set("Content-Security-Policy-Report-Only", reportOnly)
		var sp scriptPolicies
		nonce, ok := inlineScriptNonce(&sp, &rh)
		if !ok && nonce != nil {
			t.Fatalf("blocked, with a nonce %q", nonce)
		}
		if nonce == nil {
			return
		}
		if !isNonce(nonce) || len(nonce) == 0 {
			t.Fatalf("nonce %q", nonce)
		}
		quoted := append(append([]byte("'nonce-"), nonce...), '\'')
		if !bytes.Contains(bytes.ToLower([]byte(csp+reportOnly)), bytes.ToLower(quoted)) {
			t.Fatalf("nonce %q is not in the headers", nonce)
		}
	})
}

// BenchmarkInlineScriptNonce reads a policy as large sites send them, for
// every page given the data layer.
func BenchmarkInlineScriptNonce(b *testing.B) {
	var rh fasthttp.ResponseHeader
	rh.Set("Content-Security-Policy", "default-src 'self'; script-src 'self' 'nonce-dGhpcyBpcyBhIG5vbmNl' 'strict-dynamic' https://www.googletagmanager.com https://cdn.example.com; "+
		"style-src 'self' 'unsafe-inline'; img-src * data:; connect-src 'self' https://api.example.com; frame-ancestors 'none'; report-uri /csp")
	var sp scriptPolicies
	b.ReportAllocs()
	for b.Loop() {
		if n, ok := inlineScriptNonce(&sp, &rh); !ok || len(n) == 0 {
			b.Fatal("no nonce")
		}
	}
}

// TestConnectsSelf: whether a policy lets a page's beacon reach its own
// origin, as browsers read connect-src, else default-src.
func TestConnectsSelf(t *testing.T) {
	for policy, want := range map[string]bool{
		"":                                  true,
		"script-src 'nonce-a'":              true,
		"default-src 'self'":                true,
		"default-src 'none'":                false,
		"default-src 'none'; connect-src *": true,
		"connect-src https://api.example.com; default-src 'self'": false,
		"connect-src 'SELF' https://api.example.com":              true,
		"connect-src https:":                     true,
		"connect-src":                            false,
		"connect-src 'none'; connect-src 'self'": false,
		"default-src https://cdn.example.com":    false,
	} {
		if got := connectsSelf([]byte(policy)); got != want {
			t.Errorf("%q: connectsSelf = %v, want %v", policy, got, want)
		}
	}
	var sp scriptPolicies
	var rh fasthttp.ResponseHeader
	rh.Set("Content-Security-Policy", "script-src 'nonce-a'; connect-src https://api.example.com")
	sp.readHeaders(&rh)
	if !sp.noConnect {
		t.Error("a header's connect-src without the page's origin not read")
	}
	rh.Set("Content-Security-Policy", "script-src 'nonce-a'")
	sp.readHeaders(&rh)
	if sp.noConnect {
		t.Error("noConnect kept from the policies read before")
	}
}
