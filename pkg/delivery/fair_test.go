package delivery

import (
	"fmt"
	"testing"
	"time"
)

// fast is a harness whose pacing never holds anything back, so that the
// tests see the order the scheduler chooses.
func fast(t *testing.T, mutate func(*Scheduler)) *harness {
	return newHarness(t, 1, func(s *Scheduler) {
		s.RateMax, s.RateMin, s.Burst = 1e6, 1e6, 1
		s.QueueLimit, s.RoomLimit = 100000, 100000
		if mutate != nil {
			mutate(s)
		}
	})
}

// step writes exactly one request (the burst is 1) and answers it.
func (h *harness) step(o Outcome) pick {
	h.t.Helper()
	got := h.advance(time.Millisecond)
	if len(got) != 1 {
		h.t.Fatalf("%d requests written in a step, want 1", len(got))
	}
	h.reply(got[0], o)
	return got[0]
}

// TestFairAcrossRooms: a burst in one room delays another room's line by at
// most one pick per busy room.
func TestFairAcrossRooms(t *testing.T) {
	f := func(busyRooms, burst int) {
		t.Helper()
		h := fast(t, nil)
		for r := range busyRooms {
			for i := range burst {
				h.mustSubmit(fmt.Sprintf("busy%d", r), users("m", 50), fmt.Sprintf("line %d", i))
			}
		}
		for range 10 {
			h.step(ok200)
		}
		h.mustSubmit("quiet", []string{"q"}, "hello")
		for n := 1; ; n++ {
			if p := h.step(ok200); p.n.From.User == "quiet" {
				if n > busyRooms+1 {
					t.Fatalf("%d busy rooms: the quiet room's line left after %d picks", busyRooms, n)
				}
				return
			}
			if n > busyRooms*burst*50 {
				t.Fatal("the quiet room's line never left")
			}
		}
	}
	f(1, 20)
	f(3, 10)
	f(10, 2)
}

// TestFairShares: rooms with work get equal shares of the picks, however
// big their fan-out.
func TestFairShares(t *testing.T) {
	h := fast(t, nil)
	for i := range 20 {
		h.mustSubmit("big", users("b", 200), fmt.Sprint(i))
		h.mustSubmit("small", users("s", 2), fmt.Sprint(i))
	}
	n := map[string]int{}
	for range 60 {
		n[h.step(ok200).n.From.User]++
	}
	if n["big"] != 30 || n["small"] != 30 {
		t.Fatalf("shares %v, want 30 each", n)
	}
}

// TestUrgentFirst: a reply to a sender overtakes bulk fan-out already
// queued, and is itself fair across recipients.
func TestUrgentFirst(t *testing.T) {
	h := fast(t, nil)
	for i := range 5 {
		h.mustSubmit("room", users("m", 100), fmt.Sprint(i))
	}
	h.step(ok200)
	reply := notices("room", []string{"alice"}, "reply")
	reply[0].InReplyTo = "call-1@x"
	if err := h.e.admit(Batch{Notices: reply, Done: h.done}, h.now); err != nil {
		t.Fatal(err)
	}
	if err := h.submit("chat-manager", []string{"bob"}, "explicit", true); err != nil {
		t.Fatal(err)
	}
	got := []string{h.step(ok200).n.Body, h.step(ok200).n.Body}
	if got[0] != "reply" && got[1] != "reply" || got[0] != "explicit" && got[1] != "explicit" {
		t.Fatalf("first picks after the replies: %v", got)
	}
	if b := h.step(ok200).n.Body; b == "reply" || b == "explicit" {
		t.Fatalf("a reply was sent twice: %q", b)
	}
}

// TestMemberOrder: each member sees a room's notices in submission order,
// through windows, losses, retries and an unreachable spell.
func TestMemberOrder(t *testing.T) {
	h := fast(t, func(s *Scheduler) { s.MemberInflight, s.LostRetries = 3, 5 })
	members := users("m", 6)
	for i := range 40 {
		h.mustSubmit("room", members, fmt.Sprintf("%03d", i))
	}
	// m1 loses every 3rd request (retried), m2 goes away for a while.
	round, m1 := 0, 0
	for len(h.results) < 40*len(members) && round < 10000 {
		round++
		h.advance(time.Millisecond)
		for _, p := range h.inflight() {
			if p.n.To.User == "m1" {
				m1++
			}
			switch {
			case p.n.To.User == "m1" && m1%3 == 0:
				h.reply(p, lost)
			case p.n.To.User == "m2" && round < 50:
				h.reply(p, st480)
			default:
				h.reply(p, ok200)
			}
		}
		if round == 60 {
			h.e.reachable(uri("m2"), h.now)
		}
	}
	for _, m := range members {
		var got []string
		for _, r := range h.results {
			if r.to == m && r.r.Kind == Delivered {
				got = append(got, r.body)
			}
		}
		if len(got) != 40 {
			t.Fatalf("%s: %d delivered", m, len(got))
		}
		for i, b := range got {
			if b != fmt.Sprintf("%03d", i) {
				t.Fatalf("%s: delivered out of order: %v", m, got)
			}
		}
	}
	if h.count(Delivered) != 40*len(members) {
		t.Fatalf("results %d delivered of %d", h.count(Delivered), 40*len(members))
	}
}

// TestLostRetry: a lost request is written again (LostRetries times), but
// not once a later notice of the same room reached the member.
func TestLostRetry(t *testing.T) {
	h := fast(t, func(s *Scheduler) { s.LostRetries = 2; s.MemberInflight = 2 })
	h.mustSubmit("room", []string{"a"}, "one")
	for range 3 {
		// Another member's request is answered meanwhile: OpenSIPS is up,
		// it only dropped this one.
		h.mustSubmit("other", []string{"b"}, "filler")
		got := h.advance(time.Millisecond)
		got = append(got, h.advance(time.Millisecond)...)
		h.now = h.now.Add(time.Millisecond)
		for _, p := range got {
			if p.n.Body == "filler" {
				h.reply(p, ok200)
			}
		}
		for _, p := range got {
			if p.n.Body == "one" {
				h.reply(p, lost)
			}
		}
	}
	var one []result
	for _, r := range h.results {
		if r.body == "one" {
			one = append(one, r)
		}
	}
	if len(one) != 1 || one[0].r.Kind != Lost || one[0].r.Attempts != 3 || !h.e.eps[0].up {
		t.Fatalf("results %+v: want Lost after 3 attempts, endpoint up", one)
	}
	h.mustSubmit("room", []string{"a"}, "two")
	h.mustSubmit("room", []string{"a"}, "three")
	got := h.advance(time.Millisecond)
	if len(got) != 1 {
		t.Fatal(len(got))
	}
	got = append(got, h.advance(time.Millisecond)...)
	if len(got) != 2 || got[0].n.Body != "two" || got[1].n.Body != "three" {
		t.Fatalf("written %v", got)
	}
	h.reply(got[1], ok200)
	h.reply(got[0], lost)
	last := h.results[len(h.results)-1]
	if last.body != "two" || last.r.Kind != Lost || last.r.Attempts != 1 {
		t.Fatalf("%+v: a lost notice older than a delivered one must not be retried", last)
	}
}
