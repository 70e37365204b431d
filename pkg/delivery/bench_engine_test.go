package delivery

import (
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
)

// BenchmarkEngine measures the engine alone (no goroutine, no lock): admit
// a 10-member line, pick its requests, complete them. Per delivery.
func BenchmarkEngine(b *testing.B) { benchEngine(b, false) }

// BenchmarkEngineCatchUp is BenchmarkEngine with catch-up on (FillCatchUp
// set) and lines that carry their history number: what the marks cost.
func BenchmarkEngineCatchUp(b *testing.B) { benchEngine(b, true) }

func benchEngine(b *testing.B, catchUp bool) {
	h := newHarness(&testing.T{}, 1, func(s *Scheduler) {
		s.RateMax, s.RateMin, s.Burst, s.Outstanding = 1e9, 1e9, maxPicks, 1<<20
		if catchUp {
			s.FillCatchUp = func(CatchUpRequest) {}
		}
	})
	batch := Batch{Notices: notices("room", users("m", 10), "hello"), Done: func(imc.Notice, Result) {}}
	picks := make([]pick, 0, maxPicks)
	var seq int64
	step := func() {
		if catchUp {
			seq++
			for i := range batch.Notices {
				batch.Notices[i].Seq = seq
			}
		}
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
