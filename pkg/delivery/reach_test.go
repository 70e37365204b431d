package delivery

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// answer replies to every request in flight: dead members per o, the rest
// with a 200.
func (h *harness) answer(dead map[string]Outcome) {
	h.replyAll(func(p pick) Outcome {
		if o, ok := dead[p.n.To.User]; ok {
			return o
		}
		return ok200
	})
}

// TestUnreachableKeepsAndFlushes: after a 408 nothing more is written to the
// member; their notices are kept in order (the failed one first), the
// oldest beyond MemberQueue dropped and counted; on Reachable the missed
// count leaves first, then what was kept, in order, held.
func TestUnreachableKeepsAndFlushes(t *testing.T) {
	h := fast(t, func(s *Scheduler) { s.MemberQueue, s.MemberInflight, s.Burst = 5, 2, 100 })
	members := []string{"a", "d"}
	dead := map[string]Outcome{"d": st408}
	h.mustSubmit("room", members, "00")
	h.mustSubmit("room", members, "01")
	h.advance(time.Millisecond)
	if got := h.sentTo("d"); !slices.Equal(got, []string{"00", "01"}) {
		t.Fatalf("written to d: %v", got)
	}
	h.answer(dead)
	st := h.status("room", "d")
	if st.Reachable || st.Since != h.now || st.Kept != 2 {
		t.Fatalf("status after 408: %+v", st)
	}
	for i := 2; i < 12; i++ {
		h.mustSubmit("room", members, fmt.Sprintf("%02d", i))
		h.advance(time.Millisecond)
		h.answer(dead)
	}
	if n := len(h.sentTo("d")); n != 2 {
		t.Fatalf("%d requests to an unreachable member", n)
	}
	if n := len(h.sentTo("a")); n != 12 {
		t.Fatalf("a got %d of 12", n)
	}
	st = h.status("room", "d")
	if st.Kept != 5 || st.Dropped != 7 || st.Reachable {
		t.Fatalf("status %+v: want 5 kept, 7 dropped", st)
	}
	if h.count(Dropped) != 7 {
		t.Fatalf("%d Dropped results", h.count(Dropped))
	}
	h.e.reachable(uri("d"), h.now)
	for range 10 {
		h.advance(time.Millisecond)
		h.answer(nil)
	}
	want := []string{"00", "01", "missed 7", "07", "08", "09", "10", "11"}
	if got := h.sentTo("d"); !slices.Equal(got, want) {
		t.Fatalf("written to d: %v, want %v", got, want)
	}
	held := 0
	for _, r := range h.results {
		if r.to == "d" && r.r.Kind == Delivered && r.r.Held && !r.r.Missed {
			held++
		}
	}
	if held != 5 {
		t.Fatalf("%d held-then-delivered results for d, want 5", held)
	}
	if st := h.status("room", "d"); !st.Reachable || st.Kept != 0 || st.Dropped != 0 {
		t.Fatalf("status after the flush: %+v", st)
	}
}

// TestProbeBackoff: with no sign of life, the oldest kept notice is tried
// after UnreachableRetry, then after doubling waits; a delivered probe
// brings the member back.
func TestProbeBackoff(t *testing.T) {
	h := fast(t, func(s *Scheduler) {
		s.UnreachableRetry, s.UnreachableRetryMax = 30*time.Second, 100*time.Second
		s.MemberInflight = 1
	})
	h.mustSubmit("room", []string{"d"}, "first")
	h.step(st480)
	h.mustSubmit("room", []string{"d"}, "second")
	var probes []time.Duration
	start := h.now
	for len(probes) < 4 {
		for _, p := range h.advance(500 * time.Millisecond) {
			if p.n.To.User != "d" || p.n.Body != "first" {
				t.Fatalf("probe %q, want the oldest kept notice", p.n.Body)
			}
			probes = append(probes, h.now.Sub(start).Round(time.Second))
			h.now = h.now.Add(time.Millisecond)
			h.reply(p, st408)
		}
		if h.now.Sub(start) > time.Hour {
			t.Fatal("no probes")
		}
	}
	want := []time.Duration{30 * time.Second, 90 * time.Second, 190 * time.Second, 290 * time.Second}
	if !slices.Equal(probes, want) {
		t.Fatalf("probes at %v, want %v", probes, want)
	}
	// The next probe is delivered: the member is back and the rest follows.
	for {
		got := h.advance(500 * time.Millisecond)
		if len(got) == 0 {
			continue
		}
		h.reply(got[0], ok200)
		break
	}
	h.advance(time.Millisecond)
	h.answer(nil)
	if got := h.sentTo("d"); !slices.Equal(got[len(got)-2:], []string{"first", "second"}) {
		t.Fatalf("written to d: %v", got)
	}
	if !h.status("room", "d").Reachable || h.count(Delivered) != 2 {
		t.Fatalf("status %+v, %d delivered", h.status("room", "d"), h.count(Delivered))
	}
}

// TestUnreachableOutcomes: which outcomes make a member unreachable.
func TestUnreachableOutcomes(t *testing.T) {
	f := func(o Outcome, unreachable bool, kind Kind) {
		t.Helper()
		h := fast(t, nil)
		h.mustSubmit("room", []string{"x"}, "hi")
		h.step(o)
		st := h.status("room", "x")
		if st.Reachable == unreachable {
			t.Fatalf("%s: reachable %v", o, st.Reachable)
		}
		if unreachable {
			if st.Kept != 1 || len(h.results) != 0 {
				t.Fatalf("%s: %+v, results %+v: the failed notice must be kept", o, st, h.results)
			}
			return
		}
		if len(h.results) != 1 || h.results[0].r.Kind != kind {
			t.Fatalf("%s: results %+v", o, h.results)
		}
	}
	f(st404, true, 0)
	f(st408, true, 0)
	f(st480, true, 0)
	f(err476, true, 0)
	f(st403, false, Failed)
	f(Outcome{Status: 486, Reason: "486 Busy Here"}, false, Failed)
	f(Outcome{Status: 202, Reason: "202 Accepted"}, false, Delivered)
}

// TestStaleUnreachable: a 408 for a request written before the member came
// back does not make them unreachable again.
func TestStaleUnreachable(t *testing.T) {
	h := fast(t, func(s *Scheduler) { s.MemberInflight, s.Burst = 3, 10 })
	for i := range 3 {
		h.mustSubmit("room", []string{"d"}, fmt.Sprint(i))
	}
	got := h.advance(time.Millisecond)
	if len(got) != 3 {
		t.Fatal(len(got))
	}
	h.reply(got[0], st408)
	h.now = h.now.Add(time.Second)
	h.e.reachable(uri("d"), h.now)
	h.reply(got[1], st408)
	h.reply(got[2], st408)
	if !h.status("room", "d").Reachable {
		t.Fatal("stale 408s made the member unreachable again")
	}
	h.advance(time.Millisecond)
	h.answer(nil)
	if got := h.sentTo("d"); !slices.Equal(got, []string{"0", "1", "2", "0", "1", "2"}) {
		t.Fatalf("written %v", got)
	}
}

// TestDeadMemberWindow: a member who never answers ties up MemberInflight
// requests, not more, while the others go on.
func TestDeadMemberWindow(t *testing.T) {
	h := fast(t, func(s *Scheduler) { s.MemberInflight, s.Burst = 3, 1000 })
	members := append(users("live", 5), "dead")
	for i := range 50 {
		h.mustSubmit("room", members, fmt.Sprint(i))
		h.advance(time.Millisecond)
		h.replyAll(func(p pick) Outcome {
			if p.n.To.User == "dead" {
				return Outcome{} // no answer yet: fr_timeout runs
			}
			return ok200
		})
	}
	if n := len(h.sentTo("dead")); n != 3 {
		t.Fatalf("%d requests to the silent member, window 3", n)
	}
	if n := h.count(Delivered); n != 250 {
		t.Fatalf("%d delivered to live members, want 250", n)
	}
}

// TestAgeAndGhost: kept notices older than MemberQueueAge are dropped; a
// member unreachable for GhostAfter is reported once.
func TestAgeAndGhost(t *testing.T) {
	h := fast(t, func(s *Scheduler) {
		s.MemberQueueAge, s.GhostAfter = time.Minute, 5*time.Minute
		s.UnreachableRetry = time.Hour
	})
	h.mustSubmit("room", []string{"d"}, "old")
	h.step(st408)
	h.now = h.now.Add(45 * time.Second)
	h.mustSubmit("room", []string{"d"}, "newer")
	h.advance(20 * time.Second)
	if st := h.status("room", "d"); st.Kept != 1 || st.Dropped != 1 || h.count(Dropped) != 1 {
		t.Fatalf("after 65 s: %+v, %d dropped", st, h.count(Dropped))
	}
	h.advance(time.Minute)
	if st := h.status("room", "d"); st.Kept != 0 || st.Dropped != 2 {
		t.Fatalf("after 125 s: %+v", st)
	}
	for range 10 {
		h.advance(time.Minute)
	}
	if len(h.e.ghosts) != 1 || h.e.ghosts[0].member != uri("d") || h.e.ghosts[0].since != t0.Add(time.Millisecond) {
		t.Fatalf("ghosts %+v", h.e.ghosts)
	}
	if gs := h.e.unreachableFor(5*time.Minute, h.now); len(gs) != 1 || gs[0].Dropped != 2 {
		t.Fatalf("unreachable list %+v", gs)
	}
	h.e.remove(uri("room"), uri("d"), h.now)
	if len(h.e.unreach) != 0 || len(h.e.memberIdx) != 0 {
		t.Fatalf("Remove left %d unreachable, %d members", len(h.e.unreach), len(h.e.memberIdx))
	}
}
