package batch

import (
	"slices"
	"testing"
)

// TestNext: a batch is what is ready, at most max of it; a close ends the
// batch it cuts short, and the next call says the channel is done.
func TestNext(t *testing.T) {
	in := make(chan int, 10)
	for i := range 5 {
		in <- i
	}
	var buf []int
	buf, ok := Next(in, buf, 3)
	if !ok || !slices.Equal(buf, []int{0, 1, 2}) {
		t.Fatalf("first batch %v %v, want [0 1 2] (max 3)", buf, ok)
	}
	buf, ok = Next(in, buf, 3)
	if !ok || !slices.Equal(buf, []int{3, 4}) {
		t.Fatalf("second batch %v %v, want what was ready: [3 4]", buf, ok)
	}
	in <- 5
	close(in)
	if buf, ok = Next(in, buf, 3); !ok || !slices.Equal(buf, []int{5}) {
		t.Fatalf("batch before the close %v %v, want [5]", buf, ok)
	}
	if buf, ok = Next(in, buf, 3); ok || len(buf) != 0 {
		t.Fatalf("after the close %v %v, want nothing and false", buf, ok)
	}
}
