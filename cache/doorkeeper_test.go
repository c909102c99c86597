package cache

import "testing"

func TestDoorkeeper(t *testing.T) {
	d := NewDoorkeeper(1000)
	if n := len(d.seen); n != 1024 {
		t.Fatalf("%d slots, want 1024", n)
	}
	if n := len(NewDoorkeeper(5000).seen); n != 8192 {
		t.Fatalf("%d slots for 5000, want 8192", n)
	}
	a, b := Key128{Lo: 1, Hi: 7}, Key128{Lo: 2, Hi: 7 + 1024} // the same slot
	c := Key128{Lo: 3, Hi: 8}
	for i, step := range []struct {
		k    Key128
		want bool
	}{
		{a, false}, // first seen
		{a, true},  // again
		{a, true},
		{c, false}, // another slot: a is still remembered
		{a, true},
		{b, false}, // same slot: takes it
		{a, false}, // forgotten, and takes it back
		{b, false},
		{b, true},
		{c, true},
	} {
		if got := d.Again(step.k); got != step.want {
			t.Errorf("step %d: Again(%v) = %v, want %v", i, step.k, got, step.want)
		}
	}
}
