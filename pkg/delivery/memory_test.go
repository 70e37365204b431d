package delivery

import (
	"fmt"
	"testing"
	"time"
)

// shmModel is an OpenSIPS's shared memory as far as imcd's transactions go:
// a base the rest of OpenSIPS uses, and per bytes for each transaction
// alive.
type shmModel struct {
	total, base, per int64
}

func (m shmModel) read(alive int) Memory {
	return Memory{Total: m.total, Used: m.base + int64(alive)*m.per}
}

// TestMemoryCap: left to the memory, the cap grows from what is free in the
// share at each reading, learns a transaction's size, and imcd never fills
// more than its share of a small OpenSIPS (-m 32), whatever the rate; it
// keeps delivering as transactions end.
func TestMemoryCap(t *testing.T) {
	for _, per := range []int64{6 << 10, 40 << 10} { // the contact path; a large body through the proxy
		t.Run(fmt.Sprintf("%dKB", per>>10), func(t *testing.T) {
			m := shmModel{total: 32 << 20, base: 4 << 20, per: per}
			h := newHarness(t, 1, func(s *Scheduler) {
				s.ShmShare, s.WaitTime = 0.7, 2*time.Second
				s.RateMax, s.RateMin, s.MemberInflight = 5000, 5000, 1000
			})
			if got := h.e.eps[0].limit; got != DefaultOutstanding {
				t.Fatalf("cap %d before the first reading, want %d", got, DefaultOutstanding)
			}
			h.e.memory(0, m.read(0), h.e.eps[0].alive(h.now), h.now) // at start, nothing alive
			share := int64(0.7 * float64(m.total))
			for i := range 200 {
				h.mustSubmit(fmt.Sprint("room", i%40), users("m", 100), fmt.Sprint(i))
			}
			peak := 0
			for range 300 { // 3 s: well past the wait timer
				h.advance(10 * time.Millisecond)
				h.replyAll(func(pick) Outcome { return ok200 })
				alive := h.e.eps[0].alive(h.now)
				peak = max(peak, alive)
				if used := m.read(alive).Used; used > share {
					t.Fatalf("%d transactions alive use %d MB, more than the share %d MB", alive, used>>20, share>>20)
				}
				if h.now.Sub(t0)%(250*time.Millisecond) == 0 {
					h.e.memory(0, m.read(alive), h.e.eps[0].alive(h.now), h.now)
				}
			}
			fits := int((share - m.base) / m.per)
			if peak < fits*8/10 {
				t.Fatalf("peak %d transactions alive, the share fits %d: the cap does not use it", peak, fits)
			}
			if st := h.e.eps[0].shm.per; st < min(per, shmMinPer) || st < per*9/10 {
				t.Fatalf("learnt %d bytes a transaction, they take %d", st, per)
			}
			// Each takes its place for the 2 s of the wait timer: in 3 s,
			// at least what fits is delivered.
			if h.count(Delivered) < fits {
				t.Fatalf("%d delivered in 3 s, want at least %d", h.count(Delivered), fits)
			}
		})
	}
}

// TestMemoryCapOthers: memory OpenSIPS fills for something else leaves imcd
// less room, down to a trickle (minLimit) when the share is past; a cap set
// by hand is never exceeded whatever the memory says.
func TestMemoryCapOthers(t *testing.T) {
	h := newHarness(t, 1, func(s *Scheduler) { s.ShmShare = 0.5 })
	m := Memory{Total: 100 << 20}
	// Nothing of imcd's alive: the size of a transaction is not known yet,
	// and the cap grows by at most shmGrowth.
	if lim, over := h.e.memory(0, m, h.e.eps[0].alive(h.now), h.now); lim != min(shmGrowth, 50<<20/shmUnknownPer) || over {
		t.Fatalf("empty: cap %d (over %v), want %d", lim, over, min(shmGrowth, 50<<20/shmUnknownPer))
	}
	m.Used = 45 << 20
	if lim, _ := h.e.memory(0, m, h.e.eps[0].alive(h.now), h.now); lim != 5<<20/shmUnknownPer {
		t.Fatalf("45 MB used by others: cap %d, want %d", lim, 5<<20/shmUnknownPer)
	}
	m.Used = 60 << 20
	if lim, over := h.e.memory(0, m, h.e.eps[0].alive(h.now), h.now); lim != minLimit || !over {
		t.Fatalf("past the share: cap %d (over %v), want %d", lim, over, minLimit)
	}

	h = newHarness(t, 1, func(s *Scheduler) { s.ShmShare, s.Outstanding = 0.5, 100 })
	if h.e.eps[0].limit != 100 {
		t.Fatalf("cap %d before any reading, set to 100", h.e.eps[0].limit)
	}
	if lim, _ := h.e.memory(0, Memory{Total: 1 << 30}, h.e.eps[0].alive(h.now), h.now); lim != 100 {
		t.Fatalf("cap %d with 1 GB free, set to 100", lim)
	}
	h = newHarness(t, 1, nil) // not watched: a reading changes nothing
	if lim, _ := h.e.memory(0, Memory{Total: 1 << 30}, h.e.eps[0].alive(h.now), h.now); lim != DefaultOutstanding {
		t.Fatalf("cap %d with the memory not watched, want %d", lim, DefaultOutstanding)
	}
}
