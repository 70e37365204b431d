package delivery

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestShedWhole: at saturation a batch is refused whole, at once, with
// ErrBusy; nothing of it is queued. Below the limits nothing is refused.
func TestShedWhole(t *testing.T) {
	h := fast(t, func(s *Scheduler) { s.QueueLimit, s.RoomLimit = 100, 70 })
	if err := h.submit("r1", users("m", 60), "a", false); err != nil {
		t.Fatal(err)
	}
	err := h.submit("r2", users("m", 41), "b", false)
	if !isBusy(err) {
		t.Fatalf("over QueueLimit: %v", err)
	}
	if h.e.live != 60 {
		t.Fatalf("%d held after a refused batch, want 60", h.e.live)
	}
	if err := h.submit("r1", users("n", 11), "c", false); !isBusy(err) {
		t.Fatalf("over RoomLimit: %v", err)
	}
	if err := h.submit("r2", users("m", 40), "d", false); err != nil {
		t.Fatalf("another room within the limits: %v", err)
	}
	if err := h.submit("r3", nil, "e", false); err != nil {
		t.Fatalf("empty batch: %v", err)
	}
	// A room's first batch is taken even when larger than RoomLimit.
	h2 := fast(t, func(s *Scheduler) { s.QueueLimit, s.RoomLimit = 1000, 10 })
	if err := h2.submit("big", users("m", 500), "x", false); err != nil {
		t.Fatalf("a big room's line: %v", err)
	}
	h.e.abortAll(h.now)
	if err := h.submit("r4", users("m", 1), "f", false); !errors.Is(err, ErrClosed) {
		t.Fatalf("after abort: %v", err)
	}
}

// TestAccounting submits batches and answers with random outcomes (losses,
// refusals, away members coming back, an endpoint dropping out); every
// admitted notice ends in exactly one result, and none is lost below
// saturation unless OpenSIPS itself dropped it.
func TestAccounting(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	h := newHarness(t, 2, func(s *Scheduler) {
		s.RateMax, s.Burst, s.MemberInflight, s.MemberQueue = 5000, 64, 4, 20
		s.QueueLimit, s.RoomLimit = 1500, 400
		s.UnreachableRetry, s.UnreachableRetryMax = 2*time.Second, 8*time.Second
		s.MemberQueueAge = 30 * time.Second
	})
	outcomes := []Outcome{ok200, ok200, ok200, ok200, ok200, ok200, st403, st408, st480, lost, notSent, overload, err476}
	admitted, refused := 0, 0
	for round := range 3000 {
		if round < 2000 && round%4 == 0 {
			room := fmt.Sprintf("room%d", rng.IntN(8))
			to := users("m", 1+rng.IntN(30))
			if err := h.submit(room, to, fmt.Sprint(round), rng.IntN(10) == 0); err != nil {
				if !isBusy(err) {
					t.Fatal(err)
				}
				refused += len(to)
			} else {
				admitted += len(to)
			}
		}
		if round == 1000 {
			// A burst: batches until one is refused.
			for i := 0; ; i++ {
				to := users("m", 30)
				if err := h.submit(fmt.Sprintf("burst%d", i), to, "burst", false); err != nil {
					if !isBusy(err) {
						t.Fatal(err)
					}
					refused += len(to)
					break
				}
				admitted += len(to)
			}
		}
		if round%50 == 0 {
			h.e.reachable(uri(fmt.Sprintf("m%d", rng.IntN(30))), h.now)
		}
		h.advance(10 * time.Millisecond)
		for _, p := range h.inflight() {
			switch x := rng.IntN(10); {
			case x < 7:
				h.reply(p, outcomes[rng.IntN(len(outcomes))])
			case x < 8 && round > 2500:
				h.reply(p, ok200)
			default: // later
			}
		}
	}
	// Everything still held ends at Close.
	h.e.abortAll(h.now)
	h.collect()
	kinds, n := map[Kind]int{}, 0
	for _, r := range h.results {
		if !r.r.Missed { // the scheduler's own "you missed N" notices
			kinds[r.r.Kind]++
			n++
		}
	}
	if n != admitted {
		t.Fatalf("%d results for %d admitted notices (refused %d)", n, admitted, refused)
	}
	t.Logf("admitted %d refused %d results %v", admitted, refused, kinds)
	if kinds[Delivered] == 0 || kinds[Dropped] == 0 || kinds[Failed] == 0 || refused == 0 {
		t.Fatalf("results %v: the mix did not exercise every path", kinds)
	}
	if h.e.live != 0 || h.e.inflight != 0 {
		t.Fatalf("after Close: %d live, %d in flight", h.e.live, h.e.inflight)
	}
}

// TestEndpoints: requests spread over equivalent endpoints, least loaded
// first; one that cannot be reached is skipped and probed back.
func TestEndpoints(t *testing.T) {
	h := newHarness(t, 2, func(s *Scheduler) {
		s.RateMax, s.RateMin, s.Burst, s.MemberInflight = 1000, 1000, 10, 100
	})
	h.mustSubmit("room", users("m", 10), "a")
	got := h.advance(time.Millisecond)
	per := map[int]int{}
	for _, p := range got {
		per[p.ep]++
	}
	if per[0] != 5 || per[1] != 5 {
		t.Fatalf("spread %v, want 5 and 5", per)
	}
	h.answer(nil)
	// Endpoint 1 stops listening: its requests come back not sent and go
	// to endpoint 0.
	h.mustSubmit("room", users("m", 10), "b")
	got = h.advance(time.Millisecond)
	for _, p := range got {
		if p.ep == 1 {
			h.reply(p, notSent)
		} else {
			h.reply(p, ok200)
		}
	}
	if h.e.eps[1].up {
		t.Fatal("endpoint 1 still up")
	}
	for range 5 {
		for _, p := range h.advance(10 * time.Millisecond) {
			if p.ep == 1 {
				t.Fatalf("request %q to a down endpoint before its probe", p.n.Body)
			}
			h.reply(p, ok200)
		}
	}
	if len(h.sent) != 25 || h.count(Delivered) != 20 {
		t.Fatalf("%d requests written (want 10 + 10 + the 5 not sent again); %d delivered", len(h.sent), h.count(Delivered))
	}
	// After a second, one probe goes to endpoint 1; answered, it is up.
	h.mustSubmit("room", users("m", 10), "c")
	probed := false
	for range 150 {
		for _, p := range h.advance(10 * time.Millisecond) {
			if p.ep == 1 {
				probed = true
			}
			h.reply(p, ok200)
		}
		h.mustSubmit("room", users("m", 2), "d")
	}
	if !probed || !h.e.eps[1].up {
		t.Fatalf("probed %v, up %v", probed, h.e.eps[1].up)
	}
}
