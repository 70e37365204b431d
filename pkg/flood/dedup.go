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
	cur, old map[string]struct{}
	rotated  time.Time
}

// Seen records key at now and reports whether it was recorded already
// within the window. An empty key is never a duplicate.
func (d *Dedup) Seen(key string, now time.Time) bool {
	if d.Window <= 0 || key == "" {
		return false
	}
	d.once.Do(func() { d.seed = maphash.MakeSeed() })
	s := &d.shards[maphash.String(d.seed, key)%shards]
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		s.cur, s.old, s.rotated = make(map[string]struct{}), make(map[string]struct{}), now
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
