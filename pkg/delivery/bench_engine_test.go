package delivery

import (
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
)

// BenchmarkEngine measures the engine alone (no goroutine, no lock): admit
// a 10-member line, pick its requests, complete them. Per delivery.
func BenchmarkEngine(b *testing.B) {
	h := newHarness(&testing.T{}, 1, func(s *Scheduler) {
		s.RateMax, s.RateMin, s.Burst, s.Outstanding, s.WaitTime = 1e9, 1e9, maxPicks, 1<<20, -1
	})
	batch := Batch{Notices: notices("room", users("m", 10), "hello"), Done: func(imc.Notice, Result) {}}
	picks := make([]pick, 0, maxPicks)
	step := func() {
		if err := h.e.admit(batch, h.now); err != nil {
			b.Fatal(err)
		}
		h.now = h.now.Add(time.Millisecond)
		picks = h.e.pick(h.now, picks[:0])
		for _, p := range picks {
			h.e.complete(p.tag, ok200, h.now)
		}
		h.e.reports = h.e.reports[:0]
	}
	for range 100 {
		step()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range (b.N + 9) / 10 {
		step()
	}
}
