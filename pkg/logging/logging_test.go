package logging

import (
	"testing"
	"time"
)

func TestLimit(t *testing.T) {
	l := Limit{Interval: time.Second}
	t0 := time.Unix(1000, 0)
	f := func(at time.Duration, wantOK bool, wantSuppressed int64) {
		t.Helper()
		if ok, n := l.Allow(t0.Add(at)); ok != wantOK || n != wantSuppressed {
			t.Fatalf("Allow(+%v) = %v, %d; want %v, %d", at, ok, n, wantOK, wantSuppressed)
		}
	}
	f(0, true, 0)
	f(10*time.Millisecond, false, 0)
	f(999*time.Millisecond, false, 0)
	f(time.Second, true, 2)
	f(2*time.Second, true, 0)
}
