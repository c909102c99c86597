package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// sinkRecorder keeps what it is written, one entry per write; while gate
// is open (not closed), writes wait for it.
type sinkRecorder struct {
	gate   chan struct{}
	mu     sync.Mutex
	writes [][]byte
}

func (s *sinkRecorder) Write(p []byte) (int, error) {
	<-s.gate
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes = append(s.writes, append([]byte(nil), p...))
	return len(p), nil
}

func (s *sinkRecorder) all() (lines []string, writes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.writes {
		if len(w) > 0 && w[len(w)-1] != '\n' {
			lines = append(lines, "SPLIT:"+string(w))
		}
		for _, l := range bytes.SplitAfter(w, []byte("\n")) {
			if len(l) > 0 {
				lines = append(lines, string(l))
			}
		}
	}
	return lines, len(s.writes)
}

// TestLineWriterBatches: lines written by many requests at once reach the
// sink whole, each once, in few writes; a line is written within the flush
// interval, without waiting for Close.
func TestLineWriterBatches(t *testing.T) {
	sink := &sinkRecorder{gate: make(chan struct{})}
	close(sink.gate)
	lw := newLineWriter(sink, metrics.NewSet().NewCounter("dropped"))
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				fmt.Fprintf(lw, "{\"g\":%d,\"i\":%d}\n", g, i)
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for lines, _ := sink.all(); len(lines) < 4000 && time.Now().Before(deadline); lines, _ = sink.all() {
		time.Sleep(5 * time.Millisecond)
	}
	lines, writes := sink.all()
	if len(lines) != 4000 {
		t.Fatalf("%d lines written before Close, want 4000", len(lines))
	}
	seen := map[string]bool{}
	for _, l := range lines {
		if seen[l] || !bytes.HasPrefix([]byte(l), []byte(`{"g":`)) {
			t.Fatalf("line %q split or repeated", l)
		}
		seen[l] = true
	}
	if writes > 100 {
		t.Errorf("4000 lines in %d writes", writes)
	}
	lw.Close()
}

// TestLineWriterDropsWhenTheSinkStalls: with the sink stuck, Write still
// returns at once; past maxWaiting bytes lines are dropped and counted,
// and what was kept is written once the sink moves again.
func TestLineWriterDropsWhenTheSinkStalls(t *testing.T) {
	sink := &sinkRecorder{gate: make(chan struct{})}
	dropped := metrics.NewSet().NewCounter("dropped")
	lw := newLineWriter(sink, dropped)
	lw.maxWaiting = 1000
	line := []byte(fmt.Sprintf("%099d\n", 0)) // 100 bytes
	start := time.Now()
	for i := 0; i < 200; i++ {
		lw.Write(line)
		if i == 0 {
			time.Sleep(3 * logFlushInterval) // the writer takes the first line and sticks in the sink
		}
	}
	if d := time.Since(start); d > 3*logFlushInterval+time.Second {
		t.Fatalf("Write waited for a stuck sink: %v", d)
	}
	close(sink.gate)
	lw.Close()
	lines, _ := sink.all()
	if dropped.Get() == 0 || uint64(len(lines))+dropped.Get() != 200 || len(lines) < 10 {
		t.Fatalf("%d lines written, %d dropped, of 200", len(lines), dropped.Get())
	}
}

// BenchmarkAccessLine is what writing one access line costs the request
// that writes it: straight to a file (a system call each) and through a
// lineWriter in front of the same file.
func BenchmarkAccessLine(b *testing.B) {
	line := []byte(`{"level":"info","method":"GET","path":"/page-5k.html","status":200,"duration":0.465134,"origin":0.312594,"personalized":true,"remote":"127.0.0.1","segments":"deal-seekers","consent":true,"time":"2026-11-29T07:18:02Z","message":"request"}` + "\n")
	open := func(b *testing.B) *os.File {
		f, err := os.Create(filepath.Join(b.TempDir(), "access.log"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { f.Close() })
		return f
	}
	b.Run("direct", func(b *testing.B) {
		f := open(b)
		b.ReportAllocs()
		for b.Loop() {
			f.Write(line)
		}
	})
	b.Run("batched", func(b *testing.B) {
		dropped := metrics.NewSet().NewCounter("dropped")
		lw := newLineWriter(open(b), dropped)
		b.ReportAllocs()
		for b.Loop() {
			lw.Write(line)
		}
		lw.Close()
		b.ReportMetric(float64(dropped.Get())/float64(b.N), "dropped/op")
	})
}
