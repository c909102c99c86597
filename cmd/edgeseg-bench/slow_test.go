package main

import (
	"strings"
	"testing"
	"time"
)

func TestPrintSlowGroupsByWindow(t *testing.T) {
	ms := time.Millisecond
	slow := [][]slowRequest{
		{{at: 1210 * ms, took: 30 * ms}, {at: 1290 * ms, took: 12 * ms}},
		{{at: 1250 * ms, took: 47 * ms}, {at: 7020 * ms, took: 6 * ms}},
	}
	var b strings.Builder
	printSlow(&b, slow, 5*ms)
	want := `requests slower than 5ms, by 100ms of the run:
     1.2s      3  slowest 47ms
     7.0s      1  slowest 6ms
`
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
}
