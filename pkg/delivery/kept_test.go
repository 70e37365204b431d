package delivery

import (
	"slices"
	"testing"
	"time"
)

// keptBodies lists the bodies Kept was told of for member to, in order.
func (h *harness) keptBodies(to string) []string {
	var out []string
	for _, k := range h.kept {
		if k.to == to {
			out = append(out, k.body)
		}
	}
	return out
}

// resultOf returns the result of the notice body to member to.
func (h *harness) resultOf(t *testing.T, to, body string) Result {
	t.Helper()
	for _, r := range h.results {
		if r.to == to && r.body == body {
			return r.r
		}
	}
	t.Fatalf("no result for %q to %s; results %+v", body, to, h.results)
	return Result{}
}

// TestKeptOnceThenDelivered: a notice whose MESSAGE ends unreachable is
// reported kept once, with that answer and the moment it would be
// dropped; its failed probes say nothing more; once the member is back it
// is delivered, Held and Kept.
func TestKeptOnceThenDelivered(t *testing.T) {
	h := fast(t, func(s *Scheduler) {
		s.MemberQueueAge, s.UnreachableRetry, s.UnreachableRetryMax = time.Hour, time.Second, time.Second
	})
	submitted := h.now
	h.mustSubmit("room", []string{"eve", "a"}, "invite")
	h.step(st480) // eve
	if len(h.kept) != 1 || h.kept[0].to != "eve" || h.kept[0].k.Outcome != st480 || !h.kept[0].k.Until.Equal(submitted.Add(time.Hour)) {
		t.Fatalf("kept %+v, want one for eve with the 480, until an hour after Submit", h.kept)
	}
	h.step(ok200) // a
	for range 3 { // probes of the kept notice, unanswered by eve
		for _, p := range h.advance(2 * time.Second) {
			h.reply(p, st408)
		}
	}
	if n := len(h.sentTo("eve")); n < 3 {
		t.Fatalf("%d requests to eve: the kept notice was not probed", n)
	}
	if len(h.kept) != 1 {
		t.Fatalf("kept told %d times: %+v", len(h.kept), h.kept)
	}
	h.e.reachable(uri("eve"), h.now)
	h.advance(time.Millisecond)
	h.answer(nil)
	if r := h.resultOf(t, "eve", "invite"); r.Kind != Delivered || !r.Held || !r.Kept {
		t.Fatalf("eve's result %+v, want Delivered, Held and Kept", r)
	}
	if r := h.resultOf(t, "a", "invite"); r.Held || r.Kept {
		t.Fatalf("a's result %+v: never kept", r)
	}
}

// TestKeptWithoutWriting: for a member known to be unreachable a notice is
// kept as it is submitted (no answer: the zero Outcome), and one queued
// when they went away is kept then, with the answer that showed it.
func TestKeptWithoutWriting(t *testing.T) {
	h := fast(t, func(s *Scheduler) { s.UnreachableRetry, s.UnreachableRetryMax = time.Hour, time.Hour })
	h.mustSubmit("room", []string{"eve"}, "0")
	h.mustSubmit("room", []string{"eve"}, "1") // waits behind 0: one in flight per flow
	h.step(st404)
	if got := h.keptBodies("eve"); !slices.Equal(got, []string{"1", "0"}) {
		t.Fatalf("kept %v, want the queued one (as the member went away) then the failed one", got)
	}
	for _, k := range h.kept {
		if k.k.Outcome != st404 {
			t.Fatalf("kept %+v: want the 404 that showed eve away", k)
		}
	}
	at := h.now
	h.mustSubmit("room", []string{"eve"}, "2")
	h.collect()
	if got := h.keptBodies("eve"); len(got) != 3 || got[2] != "2" || h.kept[2].k.Outcome != (Outcome{}) ||
		!h.kept[2].k.Until.Equal(at.Add(DefaultMemberQueueAge)) {
		t.Fatalf("kept %+v, want 2 kept at Submit with no answer", h.kept)
	}
	if n := len(h.sentTo("eve")); n != 1 {
		t.Fatalf("%d requests to eve", n)
	}
}

// TestKeptThenDropped: a notice kept too long is dropped; its Kept came
// first, and its Result says it was kept. A batch without Kept is told
// nothing.
func TestKeptThenDropped(t *testing.T) {
	h := fast(t, func(s *Scheduler) {
		s.MemberQueueAge, s.UnreachableRetry, s.UnreachableRetryMax = time.Minute, time.Hour, time.Hour
	})
	h.mustSubmit("room", []string{"eve"}, "invite")
	h.step(st480)
	if err := h.e.admit(Batch{Notices: notices("room", []string{"eve"}, "quiet"), Done: h.done}, h.now); err != nil {
		t.Fatal(err)
	}
	h.advance(2 * time.Minute)
	if got := h.keptBodies("eve"); !slices.Equal(got, []string{"invite"}) {
		t.Fatalf("kept %v, want only the notice of the batch with Kept", got)
	}
	if h.kept[0].before != 0 {
		t.Fatalf("Kept came after %d results", h.kept[0].before)
	}
	if r := h.resultOf(t, "eve", "invite"); r.Kind != Dropped || !r.Kept {
		t.Fatalf("result %+v, want Dropped and Kept", r)
	}
	if r := h.resultOf(t, "eve", "quiet"); r.Kind != Dropped || r.Kept || !r.Held {
		t.Fatalf("result %+v, want Dropped and Held, not Kept", r)
	}
}

// TestStaleUnreachableNotKept: a 408 to a request written before the
// member came back is stale news: the notice is written again, not kept,
// and Kept is not told.
func TestStaleUnreachableNotKept(t *testing.T) {
	h := fast(t, func(s *Scheduler) { s.MemberInflight, s.Burst = 2, 10 })
	h.mustSubmit("room", []string{"d"}, "0")
	h.mustSubmit("room", []string{"d"}, "1")
	got := h.advance(time.Millisecond)
	if len(got) != 2 {
		t.Fatalf("%d written", len(got))
	}
	h.reply(got[0], st408) // d away: 1 is in flight, not kept
	h.now = h.now.Add(time.Second)
	h.e.reachable(uri("d"), h.now)
	h.reply(got[1], st408) // stale
	if got := h.keptBodies("d"); !slices.Equal(got, []string{"0"}) {
		t.Fatalf("kept %v, want only 0", got)
	}
	h.advance(time.Millisecond)
	h.answer(nil)
	if r := h.resultOf(t, "d", "1"); r.Kind != Delivered || r.Kept {
		t.Fatalf("result of 1 %+v", r)
	}
}
