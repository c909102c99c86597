package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestExitCodes: help, asked for at the top or of a command, exits 0 and
// prints usage without an error line; a mistake exits non-zero and says
// what it was.
func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		says string // in stderr
	}{
		{[]string{"help"}, 0, "edgeseg serve"},
		{[]string{"-h"}, 0, "edgeseg serve"},
		{[]string{"serve", "-h"}, 0, "-config"},
		{[]string{"validate", "--help"}, 0, "-config"},
		{[]string{"report", "-h"}, 0, "-events"},
		{[]string{"demo", "-h"}, 0, "-listen"},
		{[]string{"version"}, 0, "edgeseg (devel) (commit "},
		{[]string{"--version"}, 0, ", go1."},
		{[]string{"bogus"}, 1, `edgeseg: unknown command "bogus"`},
		{[]string{"serve", "--bogus"}, 1, "edgeseg: flag provided but not defined: -bogus"},
		{[]string{"serve"}, 1, "edgeseg: --config FILE is required"},
		// Every problem of the config at once, its rules' too.
		{[]string{"serve", "--config", "testdata/bad-all-kinds.yaml"}, 1, "edgeseg: config: 3 problems:\n" +
			"  testdata/bad-all-kinds.yaml:3: origin.url: scheme must be http or https (or unix: for a socket file), got \"ftp\"\n" +
			"  testdata/bad-all-kinds.yaml:4: origin.dial_timout: unknown key: did you mean \"dial_timeout\"?\n" +
			"  testdata/bad-all-kinds.yaml:7: segments[0].rule: segment \"deals\": unknown name devise: did you mean \"device\"?"},
	} {
		var out, errOut bytes.Buffer
		m := NewMain()
		m.Stdout, m.Stderr, m.Environ = &out, &errOut, nil
		code := run(context.Background(), m, tc.args)
		all := out.String() + errOut.String()
		if code != tc.code || !strings.Contains(all, tc.says) {
			t.Errorf("%q: exit %d, want %d with %q in:\n%s", tc.args, code, tc.code, tc.says, all)
		}
		if tc.code == 0 && strings.Contains(errOut.String(), "edgeseg: ") {
			t.Errorf("%q: help printed as an error:\n%s", tc.args, errOut.String())
		}
	}
}
