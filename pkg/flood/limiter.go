package flood

import (
	"hash/maphash"
	"sync"
	"time"
)

const shards = 64

// Limiter is a token bucket per key: Burst requests at once, then Rate per
// second. The zero Rate disables it (every request allowed).
type Limiter struct {
	Rate  float64
	Burst int

	seed   maphash.Seed
	once   sync.Once
	shards [shards]limiterShard
}

type limiterShard struct {
	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	tokens  float64
	last    time.Time
	limited bool // refused since the last allowed request
}

// Decision is what Allow says about one request.
type Decision uint8

// Decisions.
const (
	// Allowed: go ahead.
	Allowed Decision = iota
	// FirstRefusal: refused, and the first refusal since the sender was last
	// allowed: tell the sender once.
	FirstRefusal
	// Refused: refused again; the sender was told already.
	Refused
)

// Allow takes one token from key's bucket at time now. key is only read:
// looking a sender up allocates nothing; only a new sender's bucket does.
func (l *Limiter) Allow(key []byte, now time.Time) Decision {
	if l.Rate <= 0 {
		return Allowed
	}
	l.once.Do(func() { l.seed = maphash.MakeSeed() })
	s := &l.shards[maphash.Bytes(l.seed, key)%shards]
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.buckets == nil {
		s.buckets = make(map[string]*bucket)
		s.swept = now
	}
	s.sweep(now, l.idle())
	b := s.buckets[string(key)]
	if b == nil {
		b = &bucket{tokens: float64(l.burst()), last: now}
		s.buckets[string(key)] = b
	}
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens += dt * l.Rate
		if max := float64(l.burst()); b.tokens > max {
			b.tokens = max
		}
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		b.limited = false
		return Allowed
	}
	if b.limited {
		return Refused
	}
	b.limited = true
	return FirstRefusal
}

func (l *Limiter) burst() int {
	if l.Burst < 1 {
		return 1
	}
	return l.Burst
}

// idle is how long a bucket takes to fill up again: after that it is the
// same as no bucket, and can be forgotten.
func (l *Limiter) idle() time.Duration {
	return time.Duration(float64(l.burst())/l.Rate*float64(time.Second)) + time.Second
}

// sweep drops full buckets, at most once per idle period, so memory follows
// the number of senders active recently rather than ever.
func (s *limiterShard) sweep(now time.Time, idle time.Duration) {
	if now.Sub(s.swept) < idle {
		return
	}
	s.swept = now
	for k, b := range s.buckets {
		if now.Sub(b.last) > idle {
			delete(s.buckets, k)
		}
	}
}

// Len returns the number of senders tracked, for tests and metrics.
func (l *Limiter) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.buckets)
		s.mu.Unlock()
	}
	return n
}
