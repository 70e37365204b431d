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

// Seen records the key made of parts at now and reports whether it was
// recorded already within the window. The parts are hashed, not joined, so
// a lookup allocates nothing; two keys that collide in 64 bits would count
// as one, which at the number of events in a window is far rarer than a
// lost datagram. A key whose first part is empty is never a duplicate.
func (d *Dedup) Seen(now time.Time, parts ...string) bool {
	if d.Window <= 0 || len(parts) == 0 || parts[0] == "" {
		return false
	}
	d.once.Do(func() { d.seed = maphash.MakeSeed() })
	var h maphash.Hash
	h.SetSeed(d.seed)
	for _, p := range parts {
		h.WriteString(p)
		h.WriteByte(0) // ("ab","c") and ("a","bc") differ
	}
	key := h.Sum64()
	s := &d.shards[key%shards]
	s.mu.Lock()
	defer s.mu.Unlock()
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
	if _, ok := s.cur[key]; ok {
		return true
	}
	if _, ok := s.old[key]; ok {
		return true
	}
	s.cur[key] = struct{}{}
	return false
}
