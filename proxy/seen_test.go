package proxy

import (
	"strings"
	"testing"
)

func TestRefererOrigin(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"https://www.google.com/search?q=shoes", "https://www.google.com"},
		{"https://www.google.com", "https://www.google.com"},
		{"http://shop.example:8080/a/b#c", "http://shop.example:8080"},
		{"https://user:pw@mail.example/inbox", "https://mail.example"},
		{"https://news.example?x=1", "https://news.example"},
		{"android-app://com.google.android.gm/", "android-app://com.google.android.gm"},
		{"/relative/path", ""},
		{"", ""},
		{"https://" + strings.Repeat("a", 300) + "/", ""},
		{strings.Repeat("s", 40) + "://host/", ""},
	} {
		if got := string(refererOrigin([]byte(c.in))); got != c.want {
			t.Errorf("refererOrigin(%.40q) = %q, want %q", c.in, got, c.want)
		}
	}
}
