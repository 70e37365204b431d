package flood

import (
	"fmt"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func TestLimiter(t *testing.T) {
	l := &Limiter{Rate: 2, Burst: 3}
	f := func(at time.Duration, key string, want Decision) {
		t.Helper()
		if got := l.Allow([]byte(key), t0.Add(at)); got != want {
			t.Fatalf("at %s %s: %d, want %d", at, key, got, want)
		}
	}
	f(0, "alice", Allowed)
	f(0, "alice", Allowed)
	f(0, "alice", Allowed)
	f(0, "alice", FirstRefusal) // burst used up: told once
	f(0, "alice", Refused)
	f(100*time.Millisecond, "alice", Refused)
	f(0, "bob", Allowed)                      // others are not affected
	f(500*time.Millisecond, "alice", Allowed) // 2/s refills one token in 0.5s
	f(500*time.Millisecond, "alice", FirstRefusal)
	f(10*time.Second, "alice", Allowed)
	f(10*time.Second, "alice", Allowed)
	f(10*time.Second, "alice", Allowed)
	f(10*time.Second, "alice", FirstRefusal) // refill is capped at the burst
}

func TestLimiterDisabled(t *testing.T) {
	var l Limiter
	for i := 0; i < 1000; i++ {
		if l.Allow([]byte("x"), t0) != Allowed {
			t.Fatal("a zero Limiter refused")
		}
	}
}

// TestLimiterForgets: memory follows recent senders only.
func TestLimiterForgets(t *testing.T) {
	l := &Limiter{Rate: 10, Burst: 10}
	for i := 0; i < 10000; i++ {
		l.Allow(fmt.Appendf(nil, "u%d", i), t0)
	}
	if l.Len() != 10000 {
		t.Fatalf("Len %d", l.Len())
	}
	for i := 0; i < shards*16; i++ { // enough to touch every shard
		l.Allow(fmt.Appendf(nil, "late%d", i), t0.Add(time.Minute))
	}
	if n := l.Len(); n > shards*16 {
		t.Fatalf("%d buckets kept after every sender went idle", n)
	}
}

func TestDedup(t *testing.T) {
	d := &Dedup{Window: 10 * time.Second}
	f := func(at time.Duration, key string, want bool) {
		t.Helper()
		if got := d.Seen(t0.Add(at), key); got != want {
			t.Fatalf("at %s %q: %v, want %v", at, key, got, want)
		}
	}
	f(0, "a 1", false)
	f(time.Second, "a 1", true)
	f(time.Second, "a 2", false)
	f(time.Second, "", false)
	f(time.Second, "", false)
	f(9*time.Second, "a 1", true)
	f(15*time.Second, "a 1", true) // still within two generations
	f(15*time.Second, "b", false)
	f(40*time.Second, "a 1", false) // long gone
	f(41*time.Second, "b", false)
}

func BenchmarkLimiterAllow(b *testing.B) {
	l := &Limiter{Rate: 1e9, Burst: 1e9}
	key := []byte("alice@example.com")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		l.Allow(key, t0.Add(time.Duration(i)))
		i++
	}
}

func BenchmarkDedupSeen(b *testing.B) {
	d := &Dedup{Window: time.Hour}
	b.ReportAllocs()
	for b.Loop() {
		d.Seen(t0, "a71df86e33a753ba@lab", "1", "5a979869")
	}
}
