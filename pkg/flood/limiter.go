package flood

import (
	"hash/maphash"
	"sync"
	"time"
)

const shards = 64

// Limiter keeps two token buckets per key (sender). Events: Burst at once,
// then Rate per second; each event Allow admits takes one. Fan-out: what
// the admitted events made imcd send, FanoutBurst deliveries at once, then
// FanoutRate per second. The number is known only once an event is
// handled: Spend checks and takes it then, in one step, and may leave the
// bucket in debt by what that one event costs; the sender's next events
// are refused until it has refilled, so one line into a 1,000-member room
// costs as much as 1,000 lines into a room of two. Allow's check of the
// credit is only a pre-filter: events queued before the budget ran out
// pass it, and Spend stops them, so a burst sends at most FanoutBurst plus
// one event's fan-out (less one) before the refill.
//
// A zero Rate leaves events uncounted, a zero FanoutRate deliveries; with
// both zero every request is allowed.
type Limiter struct {
	Rate        float64
	Burst       int
	FanoutRate  float64
	FanoutBurst int

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
	tokens  float64 // events
	credit  float64 // deliveries; negative when in debt
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

// Allow admits one event from key at time now when both of its buckets
// allow it: an event token left, and fan-out credit for at least one
// delivery (no debt). It takes the event token. key is only read: looking
// a sender up allocates nothing; only a new sender's bucket does.
func (l *Limiter) Allow(key []byte, now time.Time) Decision {
	if !l.on() {
		return Allowed
	}
	s, b := l.bucket(key, now)
	defer s.mu.Unlock()
	if (l.Rate <= 0 || b.tokens >= 1) && (l.FanoutRate <= 0 || b.credit >= 1) {
		if l.Rate > 0 {
			b.tokens--
		}
		b.limited = false
		return Allowed
	}
	return b.refuse()
}

// Spend admits an event of key that makes imcd send deliveries, at time
// now, when the sender has fan-out credit for at least one delivery (no
// debt), and takes them all from it, going into debt if need be. The
// check and the charge are one step, so events handled one after another
// each see what the previous ones cost. Refusals are reported as Allow
// reports them, sharing its "told once" state. Like Allow, it allocates
// only for a sender it does not know.
func (l *Limiter) Spend(key []byte, deliveries int, now time.Time) Decision {
	if l.FanoutRate <= 0 || deliveries <= 0 {
		return Allowed
	}
	s, b := l.bucket(key, now)
	defer s.mu.Unlock()
	if b.credit < 1 {
		return b.refuse()
	}
	b.credit -= float64(deliveries)
	return Allowed
}

// Check reports, without taking anything, whether key has fan-out credit
// (is not in debt) at time now: for an event whose cost is charged later,
// when it is known (a command's notices, once its changes are saved).
func (l *Limiter) Check(key []byte, now time.Time) Decision {
	if l.FanoutRate <= 0 {
		return Allowed
	}
	s, b := l.bucket(key, now)
	defer s.mu.Unlock()
	if b.credit < 1 {
		return b.refuse()
	}
	return Allowed
}

// refuse records a refusal: the first since the sender was last allowed,
// or another one.
func (b *bucket) refuse() Decision {
	if b.limited {
		return Refused
	}
	b.limited = true
	return FirstRefusal
}

// Charge takes deliveries from key's fan-out credit at time now, going into
// debt if need be; the next Allow refuses until the debt is paid back at
// FanoutRate. It never blocks on anything but the shard's lock and, like
// Allow, allocates only for a sender it does not know (one forgotten since
// its event was allowed).
func (l *Limiter) Charge(key []byte, deliveries int, now time.Time) {
	if l.FanoutRate <= 0 || deliveries <= 0 {
		return
	}
	s, b := l.bucket(key, now)
	b.credit -= float64(deliveries)
	s.mu.Unlock()
}

// on reports whether the Limiter counts anything.
func (l *Limiter) on() bool { return l.Rate > 0 || l.FanoutRate > 0 }

// bucket returns key's bucket refilled up to now, creating it full, with
// its shard locked: the caller unlocks.
func (l *Limiter) bucket(key []byte, now time.Time) (*limiterShard, *bucket) {
	l.once.Do(func() { l.seed = maphash.MakeSeed() })
	s := &l.shards[maphash.Bytes(l.seed, key)%shards]
	s.mu.Lock()
	if s.buckets == nil {
		s.buckets = make(map[string]*bucket)
		s.swept = now
	}
	l.sweep(s, now)
	b := s.buckets[string(key)]
	if b == nil {
		b = &bucket{tokens: float64(l.burst()), credit: float64(l.fanoutBurst()), last: now}
		s.buckets[string(key)] = b
	}
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = min(b.tokens+dt*l.Rate, float64(l.burst()))
		b.credit = min(b.credit+dt*l.FanoutRate, float64(l.fanoutBurst()))
		b.last = now
	}
	return s, b
}

func (l *Limiter) burst() int {
	if l.Burst < 1 {
		return 1
	}
	return l.Burst
}

func (l *Limiter) fanoutBurst() int {
	if l.FanoutBurst < 1 {
		return 1
	}
	return l.FanoutBurst
}

// idle is how long an unused bucket takes to fill up again from empty:
// the sweeps run that often.
func (l *Limiter) idle() time.Duration {
	d := 0.0
	if l.Rate > 0 {
		d = float64(l.burst()) / l.Rate
	}
	if l.FanoutRate > 0 {
		d = max(d, float64(l.fanoutBurst())/l.FanoutRate)
	}
	return time.Duration(d*float64(time.Second)) + time.Second
}

// sweep drops the buckets that are full again, at most once per idle
// period, so memory follows the number of senders active recently rather
// than ever. A full bucket is the same as no bucket; one still in debt is
// kept until it is paid back.
func (l *Limiter) sweep(s *limiterShard, now time.Time) {
	if now.Sub(s.swept) < l.idle() {
		return
	}
	s.swept = now
	for k, b := range s.buckets {
		dt := now.Sub(b.last).Seconds()
		if b.tokens+dt*l.Rate >= float64(l.burst()) && b.credit+dt*l.FanoutRate >= float64(l.fanoutBurst()) {
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
