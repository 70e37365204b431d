package delivery

import (
	"fmt"
	"testing"
	"time"
)

// TestMemberWindow: a member who answers may have more and more notices
// in flight (one more per delivery, up to windowGrowth × member_inflight),
// so that a busy room is not held to member_inflight per round trip; one
// who never answers ties up member_inflight; a member who goes away
// starts again from member_inflight.
func TestMemberWindow(t *testing.T) {
	h := fast(t, func(s *Scheduler) { s.MemberInflight, s.Burst = 4, 1000 })
	inFlightTo := func(user string) int {
		n := 0
		for _, p := range h.inflight() {
			if p.n.To.User == user {
				n++
			}
		}
		return n
	}
	for i := range 1000 {
		h.mustSubmit("room", []string{"live", "dead"}, fmt.Sprint(i))
	}
	h.advance(time.Millisecond)
	if inFlightTo("live") != 4 || inFlightTo("dead") != 4 {
		t.Fatalf("at first: %d to live, %d to dead, want member_inflight, 4", inFlightTo("live"), inFlightTo("dead"))
	}
	// live answers everything in flight, round after round.
	for range 8 {
		h.replyAll(func(p pick) Outcome {
			if p.n.To.User == "live" {
				return ok200
			}
			return Outcome{}
		})
		h.advance(time.Millisecond)
	}
	if n := inFlightTo("live"); n != windowGrowth*4 {
		t.Fatalf("%d in flight to a member who answers, want %d", n, windowGrowth*4)
	}
	if n := inFlightTo("dead"); n != 4 {
		t.Fatalf("%d in flight to a member who never answers, want 4", n)
	}
	// live goes away: its window starts again at member_inflight.
	h.replyAll(func(p pick) Outcome {
		if p.n.To.User == "live" {
			return st408
		}
		return Outcome{}
	})
	h.e.reachable(uri("live"), h.now)
	h.advance(time.Millisecond)
	if n := inFlightTo("live"); n != 4 {
		t.Fatalf("%d in flight after live came back, want 4", n)
	}
}
