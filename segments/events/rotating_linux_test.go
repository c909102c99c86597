//go:build linux

package events

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestRotatingAfterAFullDisk: a write the disk takes only part of leaves a
// torn line, and the next write starts on a line of its own, so the event
// after the lost one is kept. The file size limit (RLIMIT_FSIZE) makes the
// kernel take part of a write, as a full disk does; it is set in a child
// process, so the rest of the tests keep theirs.
func TestRotatingAfterAFullDisk(t *testing.T) {
	dir := os.Getenv("EDGESEG_TEST_FSIZE_DIR")
	if dir == "" {
		dir = t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^TestRotatingAfterAFullDisk$", "-test.v")
		cmd.Env = append(os.Environ(), "EDGESEG_TEST_FSIZE_DIR="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestRotatingAfterAFullDisk") {
			t.Fatalf("child: %v\n%s", err, out)
		}
		return
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "ev.jsonl")
	r, err := OpenRotating(path, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	line := func(n string) []byte {
		return []byte(`{"type":"exposure","visitor":"` + n + `","pad":"` + strings.Repeat("x", 40) + "\"}\n")
	}
	one, two, three := line("one"), line("two"), line("three")
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: uint64(len(one) + 20), Max: lim.Max}); err != nil {
		t.Skipf("cannot limit the file size: %v", err)
	}
	if _, err := r.Write(one); err != nil {
		t.Fatal(err)
	}
	n, err := r.Write(two)
	if err == nil || n == 0 || n >= len(two) {
		t.Fatalf("the limit did not cut the write: %d bytes, %v", n, err)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Write(three); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	if len(lines) != 3 || lines[0]+"\n" != string(one) || lines[2]+"\n" != string(three) {
		t.Fatalf("want the first line, a torn one and the third:\n%s", raw)
	}
	var e map[string]any
	if err := json.Unmarshal([]byte(lines[2]), &e); err != nil || e["visitor"] != "three" {
		t.Fatalf("the event after the torn line: %v %v", e, err)
	}
}

// TestRotatingRetriesAFailedRotation: a rotation that cannot open the new
// file fails that write; the next write opens it again once it can,
// instead of failing on the closed file forever.
func TestRotatingRetriesAFailedRotation(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "events")
	path := filepath.Join(dir, "ev.jsonl")
	r, err := OpenRotating(path, 100, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	line := []byte(strings.Repeat("x", 59) + "\n")
	if _, err := r.Write(line); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(dir) // the new file cannot be made
	for i := 0; i < 3; i++ {
		if _, err := r.Write(line); err == nil || !strings.Contains(err.Error(), path) {
			t.Fatalf("write %d with the directory gone: %v", i, err)
		}
	}
	os.MkdirAll(dir, 0o755)
	if _, err := r.Write([]byte("back\n")); err != nil {
		t.Fatalf("write once the directory is back: %v", err)
	}
	if raw, _ := os.ReadFile(path); string(raw) != "back\n" {
		t.Fatalf("file after recovery: %q", raw)
	}
}
