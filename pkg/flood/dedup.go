package flood

import (
	"hash/maphash"
	"sync"
	"time"
)

// Dedup remembers keys for at least Window and at most twice that: two
// generations of maps rotated every Window, so forgetting is O(1) and needs
// no timer. The zero Window disables it.
type Dedup struct {
	Window time.Duration

	seed   maphash.Seed
	once   sync.Once
	shards [shards]dedupShard
}

type dedupShard struct {
	mu       sync.Mutex
	cur, old map[uint64]struct{}
	rotated  time.Time
}

// Key hashes the parts of an event's identity (Call-ID, CSeq, From tag)
// into the key Done and Record take. The parts are hashed, not joined, so
// it allocates nothing; two keys that collide in 64 bits would count as
// one, which at the number of events in a window is far rarer than a lost
// datagram. A key whose first part is empty is 0: no identity, never a
// duplicate.
func (d *Dedup) Key(parts ...string) uint64 {
	if d.Window <= 0 || len(parts) == 0 || parts[0] == "" {
		return 0
	}
	d.once.Do(func() { d.seed = maphash.MakeSeed() })
	var h maphash.Hash
	h.SetSeed(d.seed)
	for _, p := range parts {
		h.WriteString(p)
		h.WriteByte(0) // ("ab","c") and ("a","bc") differ
	}
	if k := h.Sum64(); k != 0 {
		return k
	}
	return 1
}

// Done reports whether key was recorded within the window: the event it
// names was applied already, and a second copy must only be acknowledged.
func (d *Dedup) Done(now time.Time, key uint64) bool {
	if key == 0 {
		return false
	}
	s := d.shard(now, key)
	defer s.mu.Unlock()
	if _, ok := s.cur[key]; ok {
		return true
	}
	_, ok := s.old[key]
	return ok
}

// Record remembers key at now. Record an event once it is applied, never
// before: a copy that arrives while the first is still being applied must
// wait for its outcome (the caller's business), and a first copy that was
// refused must not make its resend look like a duplicate.
func (d *Dedup) Record(now time.Time, key uint64) {
	if key == 0 {
		return
	}
	s := d.shard(now, key)
	s.cur[key] = struct{}{}
	s.mu.Unlock()
}

// shard returns key's shard locked, its generations rotated to now.
func (d *Dedup) shard(now time.Time, key uint64) *dedupShard {
	s := &d.shards[key%shards]
	s.mu.Lock()
	if s.cur == nil {
		s.cur, s.old, s.rotated = make(map[uint64]struct{}), make(map[uint64]struct{}), now
	}
	if age := now.Sub(s.rotated); age >= d.Window {
		if age >= 2*d.Window {
			clear(s.old)
			clear(s.cur)
		} else {
			s.old, s.cur = s.cur, s.old
			clear(s.cur)
		}
		s.rotated = now
	}
	return s
}
