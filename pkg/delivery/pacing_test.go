package delivery

import (
	"fmt"
	"math"
	"testing"
	"time"
)

// TestPacingBucket writes a large backlog at a fixed rate and checks, at
// every step, that the requests written never exceed the burst plus the
// rate times the time elapsed, and that the rate is used.
func TestPacingBucket(t *testing.T) {
	f := func(rate float64, burst int, step time.Duration) {
		t.Helper()
		h := newHarness(t, 1, func(s *Scheduler) {
			s.RateMax, s.RateMin, s.Burst = rate, rate, burst
			s.QueueLimit, s.RoomLimit, s.MemberInflight = 100000, 100000, 1000
		})
		for i := range 50 {
			h.mustSubmit(fmt.Sprintf("room%d", i%5), users("u", 100), fmt.Sprint(i))
		}
		const span = 3 * time.Second
		for el := time.Duration(0); el < span; el += step {
			h.advance(step)
			h.replyAll(func(pick) Outcome { return ok200 })
			if allowed := float64(burst) + rate*(el+step).Seconds(); float64(len(h.sent)) > allowed+1e-9 {
				t.Fatalf("rate %v burst %d: %d written after %v, bucket allows %.1f", rate, burst, len(h.sent), el+step, allowed)
			}
		}
		if want := rate * span.Seconds(); float64(len(h.sent)) < 0.95*want {
			t.Fatalf("rate %v: only %d written in %v (want ~%.0f)", rate, len(h.sent), span, want)
		}
	}
	f(1000, 32, time.Millisecond)
	f(1000, 32, 7*time.Millisecond)
	f(200, 8, 3*time.Millisecond)
	f(1500, 16, 10*time.Millisecond)
}

// TestAIMD checks each rule: lost and overloaded halve the rate, late 2xx
// cut it by a fifth, prompt replies with work waiting add the step, and
// the rate stays within its floor and ceiling.
func TestAIMD(t *testing.T) {
	newH := func(t *testing.T) *harness {
		return newHarness(t, 1, func(s *Scheduler) {
			s.RateMax, s.RateMin, s.RateStart, s.RateStep = 1000, 50, 400, 20
			s.Burst, s.MemberInflight = 4, 1000
			s.AdjustEvery, s.LateAfter = 100*time.Millisecond, 30*time.Millisecond
		})
	}
	rate := func(h *harness) float64 { return h.e.eps[0].pacer.rate }
	// One interval: write what the bucket allows (work is left waiting),
	// answer everything in flight with o after delay (one request with a
	// 200 when o is a loss: OpenSIPS is up but drops some), and close the
	// interval, which writes again what the bucket saved up meanwhile.
	interval := func(h *harness, delay time.Duration, o Outcome) {
		h.mustSubmit("room", users("m", 4), "x")
		h.mustSubmit("room", users("m", 4), "y")
		h.advance(time.Millisecond)
		h.now = h.now.Add(delay)
		first := true
		h.replyAll(func(pick) Outcome {
			if first && o.Lost() {
				first = false
				return ok200
			}
			return o
		})
		h.advance(100*time.Millisecond - time.Millisecond - delay)
	}
	// halves checks that an interval answered with o halves the rate.
	halves := func(name string, o Outcome, after string) {
		t.Run(name, func(t *testing.T) {
			h := newH(t)
			interval(h, time.Millisecond, ok200)
			r0 := rate(h)
			interval(h, time.Millisecond, o)
			if rate(h) != r0/2 {
				t.Fatalf("rate %v after %s, want %v", rate(h), after, r0/2)
			}
		})
	}

	t.Run("increase while OpenSIPS keeps up", func(t *testing.T) {
		h := newH(t)
		interval(h, time.Millisecond, ok200)
		r0 := rate(h)
		interval(h, time.Millisecond, ok200)
		if rate(h) != r0*slowStartGrowth {
			t.Fatalf("rate %v after a prompt interval with work waiting, want %v: by a quarter until the first cut", rate(h), r0*slowStartGrowth)
		}
		for range 200 {
			interval(h, time.Millisecond, ok200)
		}
		if rate(h) != 1000 {
			t.Fatalf("rate %v, want the ceiling 1000", rate(h))
		}
	})
	t.Run("by step after the first cut", func(t *testing.T) {
		h := newH(t)
		interval(h, time.Millisecond, ok200)
		interval(h, time.Millisecond, lost)
		r0 := rate(h)
		interval(h, time.Millisecond, ok200)
		if rate(h) != r0+20 {
			t.Fatalf("rate %v after a prompt interval following a cut, want %v", rate(h), r0+20)
		}
	})
	t.Run("no increase without demand", func(t *testing.T) {
		h := newH(t)
		for range 5 {
			h.mustSubmit("room", users("m", 1), "x")
			h.advance(time.Millisecond)
			h.replyAll(func(pick) Outcome { return ok200 })
			h.advance(99 * time.Millisecond)
		}
		if rate(h) != 400 {
			t.Fatalf("rate %v grew while the bucket was never empty", rate(h))
		}
	})
	halves("lost halves", lost, "a loss")
	t.Run("once per cut", func(t *testing.T) {
		// Signs from requests written before a cut do not cut again: they
		// tell of the congestion already acted on.
		var p pacer
		p.init(t0, 400, 50, 1000, 20, 4, 100*time.Millisecond, 30*time.Millisecond)
		at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
		p.lostOne(at(10))
		p.lostOne(at(20))
		if r, why := p.adjust(at(100)); r != 200 || why != "lost" {
			t.Fatalf("%v %q", r, why)
		}
		p.lostOne(at(50))
		p.overloaded(at(60))
		p.reply(at(70), time.Second, true)
		p.reply(at(71), time.Second, true)
		p.reply(at(72), time.Second, true)
		if r, why := p.adjust(at(200)); r != 200 || why != "" {
			t.Fatalf("%v %q: cut again for requests written before the cut", r, why)
		}
		p.lostOne(at(150))
		if r, _ := p.adjust(at(300)); r != 100 {
			t.Fatalf("%v: a later loss did not cut", r)
		}
	})
	halves("overloaded halves", overload, "a 500 from OpenSIPS")
	t.Run("late replies cut by a fifth", func(t *testing.T) {
		h := newH(t)
		// Learn each member's baseline (1 ms), then every 2xx comes 40 ms
		// later than that.
		interval(h, time.Millisecond, ok200)
		interval(h, time.Millisecond, ok200)
		r0 := rate(h)
		interval(h, 41*time.Millisecond, ok200)
		if math.Abs(rate(h)-r0*0.8) > 1e-9 {
			t.Fatalf("rate %v after late replies, want %v", rate(h), r0*0.8)
		}
		// 20 ms late is below LateAfter: no cut (and growth resumes).
		r1 := rate(h)
		interval(h, 21*time.Millisecond, ok200)
		if rate(h) < r1 {
			t.Fatalf("rate %v: cut for replies within LateAfter", rate(h))
		}
	})
	t.Run("floor", func(t *testing.T) {
		h := newH(t)
		for range 30 {
			interval(h, time.Millisecond, lost)
		}
		if rate(h) != 50 {
			t.Fatalf("rate %v, want the floor 50", rate(h))
		}
	})
}

// TestOutstandingCap never answers, then answers everything: imcd never has
// more transactions alive in OpenSIPS (in flight, or on wait for WaitTime
// after the reply) than the cap.
func TestOutstandingCap(t *testing.T) {
	const limit = 40
	h := newHarness(t, 1, func(s *Scheduler) {
		s.Outstanding, s.WaitTime = limit, 2*time.Second
		s.RateMax, s.RateMin, s.MemberInflight = 5000, 5000, 100
	})
	for i := range 20 {
		h.mustSubmit("room", users("m", 20), fmt.Sprint(i))
	}
	check := func() {
		t.Helper()
		if alive := h.e.eps[0].alive(h.now); alive > limit {
			t.Fatalf("%d transactions alive, cap %d", alive, limit)
		}
	}
	for range 100 {
		h.advance(10 * time.Millisecond)
		check()
	}
	if len(h.sent) != limit {
		t.Fatalf("%d written without replies, want the cap %d", len(h.sent), limit)
	}
	// Answered, they stay alive in OpenSIPS for WaitTime: nothing more yet.
	h.replyAll(func(pick) Outcome { return ok200 })
	h.advance(time.Second)
	check()
	if len(h.sent) != limit {
		t.Fatalf("%d written while the answered ones are on wait", len(h.sent))
	}
	for range 500 {
		h.advance(10 * time.Millisecond)
		h.replyAll(func(pick) Outcome { return ok200 })
		check()
	}
	// Throughput is the cap per WaitTime.
	if len(h.sent) < 3*limit || len(h.sent) > 5*limit {
		t.Fatalf("%d written in 6 s with cap %d and wait 2 s", len(h.sent), limit)
	}
}
