package profile

import (
	"bytes"
	"errors"
	"strconv"
	"testing"
	"time"
)

func noteCodec(t testing.TB, sign string) *Codec {
	t.Helper()
	c, err := NewCodec(map[string][]byte{
		"old": []byte("old-secret-0123456789abcdef0123456789"),
		"new": []byte("new-secret-0123456789abcdef0123456789"),
	}, sign, 24*time.Hour, 1200)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestNotes: a note opens to its body for its purpose, within its age,
// signed by any configured key; altered, of another purpose, expired,
// from the future or of an unknown key, it does not; and no note opens
// as a profile cookie, nor a cookie as a note.
func TestNotes(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	c := noteCodec(t, "new")
	body := []byte(`{"u":"/category/sale?x=1"}`)
	note := c.AppendNote(nil, "seen", body, now)
	if got, err := c.OpenNote(note, "seen", now.Add(5*time.Minute), 10*time.Minute); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("OpenNote = %q, %v", got, err)
	}
	// Signed by a key still configured but no longer signing.
	old := noteCodec(t, "old").AppendNote(nil, "seen", body, now)
	if _, err := c.OpenNote(old, "seen", now, time.Minute); err != nil {
		t.Errorf("a note of the old key: %v", err)
	}
	other, _ := NewCodec(map[string][]byte{"new": []byte("another-secret-0123456789abcdef012345")}, "new", time.Hour, 1200)
	flip := func(i int) []byte {
		b := bytes.Clone(note)
		b[i] ^= 1
		return b
	}
	for name, tc := range map[string]struct {
		note    []byte
		purpose string
		at      time.Time
		want    error
	}{
		"another purpose":   {note, "event", now, ErrNoteInvalid},
		"expired":           {note, "seen", now.Add(11 * time.Minute), ErrNoteExpired},
		"from the future":   {note, "seen", now.Add(-2 * time.Minute), ErrNoteExpired},
		"clocks apart":      {note, "seen", now.Add(-30 * time.Second), nil},
		"another secret":    {other.AppendNote(nil, "seen", body, now), "seen", now, ErrNoteInvalid},
		"key id altered":    {flip(0), "seen", now, ErrNoteInvalid},
		"time altered":      {flip(5), "seen", now, ErrNoteInvalid},
		"body altered":      {flip(len(note) - 50), "seen", now, ErrNoteInvalid},
		"MAC altered":       {flip(len(note) - 3), "seen", now, ErrNoteInvalid},
		"empty":             {nil, "seen", now, ErrNoteInvalid},
		"no dots":           {[]byte("abc"), "seen", now, ErrNoteInvalid},
		"a profile cookie":  {mustEncode(t, c, now), "seen", now, ErrNoteInvalid},
		"truncated":         {note[:len(note)-1], "seen", now, ErrNoteInvalid},
		"extra dot in body": {append(append([]byte{}, note[:4]...), append([]byte("."), note[4:]...)...), "seen", now, ErrNoteInvalid},
	} {
		if _, err := c.OpenNote(tc.note, tc.purpose, tc.at, 10*time.Minute); !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", name, err, tc.want)
		}
	}
	if _, st, _ := c.Decode(note, now); st == OK {
		t.Error("a note decodes as a profile cookie")
	}
	// A key id may hold any byte; the note, written into pages, holds
	// only base64url, digits and dots.
	odd, err := NewCodec(map[string][]byte{`k.1"</script>`: []byte("odd-secret-0123456789abcdef0123456789")}, `k.1"</script>`, time.Hour, 1200)
	if err != nil {
		t.Fatal(err)
	}
	on := odd.AppendNote(nil, "seen", body, now)
	if !base64URL(bytes.ReplaceAll(on, []byte("."), nil)) || bytes.Count(on, []byte(".")) != 3 {
		t.Errorf("a note of key id %q reads %q", `k.1"</script>`, on)
	}
	if got, err := odd.OpenNote(on, "seen", now, time.Minute); err != nil || !bytes.Equal(got, body) {
		t.Errorf("a note of an odd key id: %q, %v", got, err)
	}
}

func mustEncode(t *testing.T, c *Codec, now time.Time) []byte {
	t.Helper()
	s, err := c.Encode(NewFresh(now), now)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(s)
}

// FuzzOpenNote: any bytes are refused or opened without a panic, and only
// notes this codec signed open.
func FuzzOpenNote(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	c := noteCodec(f, "new")
	f.Add(c.AppendNote(nil, "seen", []byte(`{"u":"/"}`), now))
	f.Add([]byte("bmV3.1800000000.e30.AAAA"))
	f.Add([]byte("..."))
	f.Fuzz(func(t *testing.T, note []byte) {
		body, err := c.OpenNote(note, "seen", now, time.Hour)
		if err != nil {
			return
		}
		// It verified: it is the note this codec makes of that body, at
		// that time (no other bytes carry its MAC).
		parts := bytes.SplitN(note, []byte{'.'}, 3)
		issued, _ := strconv.ParseInt(string(parts[1]), 10, 64)
		if again := c.AppendNote(nil, "seen", body, time.Unix(issued, 0)); !bytes.Equal(again, note) {
			t.Fatalf("%q opened, but the codec writes it %q", note, again)
		}
	})
}
