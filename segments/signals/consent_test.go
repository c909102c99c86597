package signals

import (
	"net/url"
	"testing"
)

// FuzzPercentDecode: what url.PathUnescape decodes, percentDecode decodes
// alike; anything else is kept, never longer than it came.
func FuzzPercentDecode(f *testing.F) {
	for _, s := range []string{"groups=C0001%3A1%2CC0004%3A0", "%", "%4", "%zz%41", "a+b%20c", "%E2%82%AC"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := percentDecode(nil, []byte(s))
		if len(got) > len(s) {
			t.Fatalf("%q decoded to a longer %q", s, got)
		}
		if want, err := url.PathUnescape(s); err == nil && string(got) != want {
			t.Fatalf("%q: got %q, want %q", s, got, want)
		}
	})
}
