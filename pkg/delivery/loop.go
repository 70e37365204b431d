package delivery

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/imcd-sip/imcd/pkg/logkey"
)

// run is the scheduler's goroutine: under the lock it applies the timers
// and picks what to write; without it, it writes through the Senders and
// calls Done, OnGhost and the Observer.
func (s *Scheduler) run() {
	defer s.wg.Done()
	timer := s.clock.NewTimer(time.Hour)
	defer timer.Stop()
	nextStats := s.clock.Now()
	for {
		for i := range s.Endpoints {
			s.Endpoints[i].Sender.Poll()
		}
		now := s.clock.Now()
		s.mu.Lock()
		s.e.tick(now)
		s.picks = s.e.pick(now, s.picks[:0])
		s.reps, s.e.reports = s.e.reports, s.reps[:0]
		s.ghosts, s.e.ghosts = s.e.ghosts, s.ghosts[:0]
		s.asks, s.e.asks = s.e.asks, s.asks[:0]
		s.marks, s.e.marks = s.e.marks, s.marks[:0]
		statsDue := !now.Before(nextStats)
		if statsDue {
			s.e.stats(now, &s.stats)
			nextStats = now.Add(time.Second)
		}
		wait := s.e.nextWake(now)
		busy := len(s.picks) > 0 || len(s.reps) > 0
		if busy {
			s.wakeAt = now // it goes round again at once
		} else {
			s.wakeAt = now.Add(wait)
		}
		s.mu.Unlock()

		s.write(s.picks)
		s.deliver(s.reps)
		clear(s.reps)
		s.reps = s.reps[:0]
		for _, g := range s.ghosts {
			s.callback("OnGhost", func() {
				if s.OnGhost != nil {
					s.OnGhost(g.member, g.since)
				}
			})
		}
		clear(s.ghosts)
		s.catchUps()
		if statsDue {
			s.callback("Observer.Gauges", func() { s.obs.Gauges(&s.stats) })
		}
		if busy {
			select {
			case <-s.stop:
				return
			default:
				continue
			}
		}
		timer.Reset(wait)
		select {
		case <-s.stop:
			return
		case <-s.wake:
		case <-timer.C():
		}
	}
}

// write sends the picked requests, one Flush per endpoint used; a refusal
// by the Sender goes back to the engine.
func (s *Scheduler) write(picks []pick) {
	if len(picks) == 0 {
		return
	}
	var used [64]bool // endpoints to Flush (more than 64 are flushed all)
	for i := range picks {
		if ep := picks[i].ep; ep < len(used) {
			used[ep] = true
		}
		p := &picks[i]
		if p.missed > 0 {
			s.callback("MissedNotice", func() { p.n = s.MissedNotice(p.n.From, p.n.To, int(p.missed)) })
		}
		if err := s.Endpoints[p.ep].Sender.Send(&p.n, p.tag, s.onSent); err != nil {
			s.mu.Lock()
			s.e.sendFailed(p.tag, err, s.clock.Now())
			s.mu.Unlock()
		}
	}
	clear(picks)
	for i := range s.Endpoints {
		if i >= len(used) || used[i] {
			s.Endpoints[i].Sender.Flush()
		}
	}
}

// catchUps hands the marks and the catch-up requests the engine made to
// OnMarks and FillCatchUp (which may call CatchUp at once).
func (s *Scheduler) catchUps() {
	if len(s.marks) > 0 && s.OnMarks != nil {
		s.callback("OnMarks", func() { s.OnMarks(s.marks) })
	}
	for i := range s.asks {
		s.callback("FillCatchUp", func() { s.FillCatchUp(s.asks[i]) })
	}
	clear(s.marks)
	s.marks = s.marks[:0]
	clear(s.asks)
	s.asks = s.asks[:0]
}

// deliver hands results to their Done and the Observer, and the news of
// notices kept to their Kept.
func (s *Scheduler) deliver(reps []report) {
	for i := range reps {
		r := &reps[i]
		if r.kept != nil {
			s.callback("Kept", func() { r.kept(r.n, r.keep) })
			continue
		}
		s.callback("Observer.Finished", func() { s.obs.Finished(r.r) })
		if r.done != nil {
			s.callback("Done", func() { r.done(r.n, r.r) })
		}
	}
}

// callback runs a caller's function, turning a panic into a log record so
// that one bad callback never stops deliveries.
func (s *Scheduler) callback(what string, f func()) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic in a delivery callback", logkey.Callback, what, logkey.Panic, fmt.Sprint(r))
		}
	}()
	f()
}

// tick applies the timers: pacing adjustments, the sweep of unreachable
// members, and forgetting idle state.
func (e *engine) tick(now time.Time) {
	for i := range e.eps {
		ep := &e.eps[i]
		old := ep.pacer.rate
		rate, why := ep.pacer.adjust(now)
		if why != "" && e.log.Enabled(context.Background(), slog.LevelDebug) {
			e.log.Debug("pacing rate changed", logkey.Endpoint, ep.name, logkey.Reason, why, logkey.Rate, int(rate), logkey.OldRate, int(old))
		}
	}
	if !now.Before(e.nextSweep) {
		e.sweep(now)
		e.nextSweep = now.Add(sweepEvery)
	}
	if !now.Before(e.nextIdle) {
		e.evictIdle(now)
		e.nextIdle = now.Add(idleEvery)
	}
}

// reportWithin bounds how long a result waits to be reported (Done, the
// Observer) when nothing else wakes the loop.
const reportWithin = 10 * time.Millisecond

// nextWake returns how long the loop may sleep unless woken: until the
// next token when work waits for one, and no longer than an AIMD interval
// while anything is held, or a second otherwise.
func (e *engine) nextWake(now time.Time) time.Duration {
	d := time.Second
	if e.live > 0 {
		d = e.s.adjustEvery
	}
	if len(e.reports) > 0 {
		d = min(d, reportWithin)
	}
	if e.hasWork() {
		for i := range e.eps {
			ep := &e.eps[i]
			switch {
			case ep.up && ep.alive(now) < ep.limit:
				d = min(d, max(ep.pacer.wait(now), e.s.quantum))
			case !ep.up && !ep.probing:
				d = min(d, ep.probeAt.Sub(now))
			}
		}
	}
	if len(e.unreach) > 0 {
		d = min(d, e.nextSweep.Sub(now))
	}
	return d
}
