package delivery

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
)

// Catch-up from the history: the engine asks for what an away member
// missed between their mark and the first line kept, holds the flow until
// the answer, and puts it in the placeholder's place.

// catchUpHarness is a fast harness whose room flows are caught up from the
// history (FillCatchUp set: the requests pile up in h.e.asks).
func catchUpHarness(t *testing.T, mutate func(*Scheduler)) *harness {
	return fast(t, func(s *Scheduler) {
		s.FillCatchUp = func(CatchUpRequest) {}
		s.MemberInflight, s.UnreachableRetry, s.Burst = 1, time.Hour, 1000
		if mutate != nil {
			mutate(s)
		}
	})
}

// line submits chat line seq of room ("L<seq>", Seq seq) to members.
func (h *harness) line(room string, to []string, seq int64) {
	h.t.Helper()
	ns := notices(room, to, "L"+strconv.FormatInt(seq, 10))
	for i := range ns {
		ns[i].Seq = seq
	}
	if err := h.e.admit(Batch{Notices: ns, Done: h.done}, h.now); err != nil {
		h.t.Fatal(err)
	}
}

// takeAsks returns the catch-up requests made so far.
func (h *harness) takeAsks() []CatchUpRequest {
	out := slices.Clone(h.e.asks)
	h.e.asks = h.e.asks[:0]
	return out
}

// takeMarks returns the mark changes reported so far, as "room/member
// seq away|back".
func (h *harness) takeMarks() []string {
	var out []string
	for _, c := range h.e.marks {
		s := fmt.Sprintf("%s/%s %d back", c.Room.User, c.Member.User, c.Seq)
		if c.Away {
			s = strings.TrimSuffix(s, "back") + "away"
		}
		out = append(out, s)
	}
	h.e.marks = h.e.marks[:0]
	return out
}

// fill answers r as a history holding lines 1..newest would: one notice
// per missed line, "C<seq>".
func (h *harness) fill(r CatchUpRequest, newest int64) {
	upTo := newest
	if r.Before > 0 {
		upTo = r.Before - 1
	}
	rep := CatchUpReply{Room: r.Room, Member: r.Member, Token: r.Token, UpTo: upTo}
	for seq := r.After + 1; seq <= upTo; seq++ {
		rep.Notices = append(rep.Notices, imc.Notice{From: r.Room, To: r.Member, Body: "C" + strconv.FormatInt(seq, 10),
			ContentType: "text/plain", Seq: seq})
	}
	h.e.catchUp(&rep, h.now)
}

// sentFrom returns the bodies sent to user from room, in order.
func (h *harness) sentFrom(room, user string) []string {
	var out []string
	for _, p := range h.sent {
		if p.n.To.User == user && p.n.From.User == room {
			out = append(out, p.n.Body)
		}
	}
	return out
}

// flush writes and delivers everything that can go now.
func (h *harness) flush() {
	for range 50 {
		if len(h.advance(time.Millisecond)) == 0 && len(h.out) == 0 {
			return
		}
		h.answer(nil)
	}
}

// TestCatchUpInPlaceOfPlaceholder: an away member's dropped lines come back
// from the history exactly between the last line delivered and the first
// kept; the flow is held until CatchUp answers; the mark is reported when
// the member goes away and settled once the catch-up is delivered.
func TestCatchUpInPlaceOfPlaceholder(t *testing.T) {
	h := catchUpHarness(t, func(s *Scheduler) { s.MemberQueue = 3 })
	both := []string{"a", "d"}
	h.line("room", both, 1)
	h.line("room", both, 2)
	h.flush()
	h.line("room", both, 3)
	h.advance(time.Millisecond)
	h.answer(map[string]Outcome{"d": st408})
	if got := h.takeMarks(); !slices.Equal(got, []string{"room/d 2 away"}) {
		t.Fatalf("marks %v, want d's last delivered line, 2", got)
	}
	for seq := int64(4); seq <= 10; seq++ {
		h.line("room", both, seq)
		h.flush()
	}
	if st := h.status("room", "d"); st.Kept != 3 || st.Dropped != 5 {
		t.Fatalf("d: %+v, want 3 kept (8-10), 5 dropped (3-7)", st)
	}
	h.e.reachable(uri("d"), h.now)
	asks := h.takeAsks()
	if len(asks) != 1 || asks[0].After != 2 || asks[0].Before != 8 || asks[0].Room != uri("room") || asks[0].Member != uri("d") {
		t.Fatalf("asks %+v, want lines after 2, before 8", asks)
	}
	// Held: nothing goes to d until the answer, not even a new line.
	h.line("room", both, 11)
	h.flush()
	if got := h.sentTo("d"); !slices.Equal(got, []string{"L1", "L2", "L3"}) {
		t.Fatalf("written to d while the catch-up is read: %v", got)
	}
	if len(h.takeAsks()) != 0 {
		t.Fatal("asked twice")
	}
	h.fill(asks[0], 11)
	h.flush()
	want := []string{"L1", "L2", "L3", "C3", "C4", "C5", "C6", "C7", "L8", "L9", "L10", "L11"}
	if got := h.sentTo("d"); !slices.Equal(got, want) {
		t.Fatalf("written to d: %v, want %v", got, want)
	}
	if got := h.takeMarks(); !slices.Equal(got, []string{"room/d 2 back"}) {
		t.Fatalf("marks %v, want d's settled", got)
	}
	catchUps, dropped := 0, 0
	for _, r := range h.results {
		switch {
		case r.r.CatchUp && r.r.Missed && r.r.Kind == Delivered:
			catchUps++
		case r.r.Kind == Dropped && !r.r.Missed:
			dropped++
		}
	}
	if catchUps != 5 || dropped != 5 {
		t.Fatalf("%d catch-up results, %d dropped; want 5, 5", catchUps, dropped)
	}
	if st := h.status("room", "d"); !st.Reachable || st.Kept != 0 || st.Dropped != 0 || h.e.live != 0 {
		t.Fatalf("after the catch-up: %+v, %d live", st, h.e.live)
	}
}

// TestCatchUpGuessedMark: a member the room has delivered nothing to yet
// goes away on the 408 of the line in flight; their mark, guessed as the
// line before the first one waiting, moves down before that line when it
// comes back, so that the catch-up gives it too.
func TestCatchUpGuessedMark(t *testing.T) {
	h := catchUpHarness(t, func(s *Scheduler) { s.MemberQueue = 1 })
	for seq := int64(1); seq <= 3; seq++ {
		h.line("room", []string{"d"}, seq)
	}
	h.advance(time.Millisecond) // L1 in flight
	h.answer(map[string]Outcome{"d": st408})
	if got := h.takeMarks(); !slices.Equal(got, []string{"room/d 1 away", "room/d 0 away"}) {
		t.Fatalf("marks %v, want 1 guessed, then 0 when L1 came back", got)
	}
	h.e.reachable(uri("d"), h.now)
	asks := h.takeAsks()
	if len(asks) != 1 || asks[0].After != 0 || asks[0].Before != 3 {
		t.Fatalf("asks %+v, want lines after 0, before 3", asks)
	}
	h.fill(asks[0], 3)
	h.flush()
	if got := h.sentTo("d"); !slices.Equal(got, []string{"L1", "C1", "C2", "L3"}) {
		t.Fatalf("written to d: %v", got)
	}
}

// TestCatchUpFallback: a failed query, or one that finds nothing, tells
// the member how many they missed instead; a reply to a request that no
// longer waits changes nothing.
func TestCatchUpFallback(t *testing.T) {
	f := func(reply func(h *harness, r CatchUpRequest), want ...string) {
		t.Helper()
		h := catchUpHarness(t, func(s *Scheduler) { s.MemberQueue = 1 })
		h.line("room", []string{"d"}, 1)
		h.step(st404)
		h.line("room", []string{"d"}, 2)
		h.line("room", []string{"d"}, 3)
		h.e.reachable(uri("d"), h.now)
		asks := h.takeAsks()
		if len(asks) != 1 || asks[0].After != 0 || asks[0].Before != 3 {
			t.Fatalf("asks %+v, want after 0 (the line before the first not delivered), before 3", asks)
		}
		reply(h, asks[0])
		h.flush()
		if got := h.sentTo("d"); !slices.Equal(got[1:], want) {
			t.Fatalf("written to d: %v, want L1 then %v", got, want)
		}
	}
	f(func(h *harness, r CatchUpRequest) {
		h.e.catchUp(&CatchUpReply{Room: r.Room, Member: r.Member, Token: r.Token, Err: errors.New("database away")}, h.now)
	}, "missed 2", "L3")
	f(func(h *harness, r CatchUpRequest) {
		h.e.catchUp(&CatchUpReply{Room: r.Room, Member: r.Member, Token: r.Token, UpTo: 2}, h.now)
	}, "missed 2", "L3")
	f(func(h *harness, r CatchUpRequest) {
		h.fill(CatchUpRequest{Room: r.Room, Member: r.Member, Token: r.Token + 1, After: 0, Before: 3}, 3) // stale
		h.fill(r, 3)
		h.fill(r, 3) // twice
	}, "C1", "C2", "L3")
	// Removed while its catch-up is read: the reply finds nothing to fill.
	h := catchUpHarness(t, nil)
	h.line("room", []string{"d"}, 1)
	h.step(st404)
	h.e.reachable(uri("d"), h.now)
	h.e.remove(uri("room"), uri("d"), h.now)
	if asks := h.takeAsks(); len(asks) != 0 {
		t.Fatalf("asked with nothing dropped: %+v", asks)
	}
	h = catchUpHarness(t, func(s *Scheduler) { s.MemberQueue = 1 })
	h.line("room", []string{"d"}, 1)
	h.step(st404)
	h.line("room", []string{"d"}, 2)
	h.e.reachable(uri("d"), h.now)
	asks := h.takeAsks()
	h.e.remove(uri("room"), uri("d"), h.now)
	h.fill(asks[0], 2)
	h.flush()
	if got := h.sentTo("d"); !slices.Equal(got, []string{"L1"}) || h.e.live != 0 || len(h.e.memberIdx) != 0 {
		t.Fatalf("after Remove and a late reply: written %v, %d live, %d members", got, h.e.live, len(h.e.memberIdx))
	}
}

// TestAwayAtStart: a mark restored at start makes the member away (nothing
// written to them); when they come back they are caught up from it, a
// line said meanwhile once only; a member with nothing to catch up has
// their mark settled. Without a sign of life, a probe brings the
// catch-up.
func TestAwayAtStart(t *testing.T) {
	h := catchUpHarness(t, nil)
	h.e.away(Mark{Room: uri("room"), Member: uri("d"), Seq: 3}, h.now)
	h.e.away(Mark{Room: uri("other"), Member: uri("d"), Seq: 9}, h.now)
	h.e.away(Mark{Room: uri("room"), Member: uri("e"), Seq: 5}, h.now)
	if st := h.status("room", "d"); st.Reachable {
		t.Fatal("d reachable after Away")
	}
	h.line("room", []string{"a", "d"}, 6)
	h.flush()
	if got := h.sentTo("d"); len(got) != 0 {
		t.Fatalf("written to an away member: %v", got)
	}
	if got := h.takeMarks(); len(got) != 0 {
		t.Fatalf("restored marks reported again: %v", got)
	}
	var st Stats
	h.e.stats(h.now, &st)
	if st.Queued != 0 || st.Kept != 1 || st.Unreachable != 2 {
		t.Fatalf("stats %+v: the placeholders of away members do not count as queued", st)
	}
	h.e.reachable(uri("d"), h.now)
	asks := h.takeAsks()
	slices.SortFunc(asks, func(a, b CatchUpRequest) int { return strings.Compare(a.Room.User, b.Room.User) })
	if len(asks) != 2 || asks[0].Room.User != "other" || asks[0].After != 9 || asks[0].Before != 0 ||
		asks[1].Room.User != "room" || asks[1].After != 3 || asks[1].Before != 6 {
		t.Fatalf("asks %+v", asks)
	}
	// "room": lines 4 and 5 from the history, then line 6, kept.
	// "other": up to the newest, line 10, said while the query ran: the
	// catch-up carries it, the line itself is not sent again.
	h.line("other", []string{"a", "d"}, 10)
	h.fill(asks[0], 10)
	h.fill(asks[1], 6)
	h.flush()
	if got := h.sentFrom("room", "d"); !slices.Equal(got, []string{"C4", "C5", "L6"}) {
		t.Fatalf("written to d from room: %v", got)
	}
	if got := h.sentFrom("other", "d"); !slices.Equal(got, []string{"C10"}) {
		t.Fatalf("written to d from other: %v", got)
	}
	if h.count(Dropped) != 1 {
		t.Fatalf("%d dropped, want line 10 to d, carried by the catch-up", h.count(Dropped))
	}
	got := h.takeMarks()
	slices.Sort(got)
	if !slices.Equal(got, []string{"other/d 9 back", "room/d 3 back"}) {
		t.Fatalf("marks %v", got)
	}
	// A mark with nothing after it is settled without a catch-up.
	h.e.away(Mark{Room: uri("room"), Member: uri("f"), Seq: 5}, h.now)
	h.line("room", []string{"f"}, 6)
	h.e.reachable(uri("f"), h.now)
	h.flush()
	if got, marks := h.sentTo("f"), h.takeMarks(); len(h.e.asks) != 0 || !slices.Equal(got, []string{"L6"}) || !slices.Equal(marks, []string{"room/f 5 back"}) {
		t.Fatalf("f: asks %v, written %v, marks %v", h.e.asks, got, marks)
	}

	// e never comes back by themselves: the probe is the catch-up.
	var probe []pick
	for range 3700 {
		if probe = h.advance(time.Second); len(probe) > 0 || len(h.e.asks) > 0 {
			break
		}
	}
	asks = h.takeAsks()
	if len(asks) != 1 || asks[0].Member != uri("e") || asks[0].After != 5 || asks[0].Before != 0 || len(probe) != 0 {
		t.Fatalf("after unreachable_retry: asks %+v, written %v", asks, probe)
	}
	h.fill(asks[0], 7)
	probe = h.advance(time.Millisecond)
	if len(probe) != 1 || probe[0].n.Body != "C6" {
		t.Fatalf("probe %v, want the first catch-up notice", probe)
	}
	h.reply(probe[0], ok200)
	h.flush()
	if got := h.sentTo("e"); !slices.Equal(got, []string{"C6", "C7"}) || !h.status("room", "e").Reachable {
		t.Fatalf("written to e: %v", got)
	}
	if got := h.takeMarks(); !slices.Equal(got, []string{"room/e 5 back"}) {
		t.Fatalf("marks %v", got)
	}
}

// TestCatchUpWithoutFill: without FillCatchUp, nothing changes: no marks,
// no requests, the "you missed N" notice; Away does nothing.
func TestCatchUpWithoutFill(t *testing.T) {
	h := fast(t, func(s *Scheduler) { s.MemberQueue, s.MemberInflight = 1, 1 })
	h.line("room", []string{"d"}, 1)
	h.step(st404)
	h.line("room", []string{"d"}, 2)
	h.line("room", []string{"d"}, 3)
	h.e.reachable(uri("d"), h.now)
	h.flush()
	if got := h.sentTo("d"); !slices.Equal(got, []string{"L1", "missed 2", "L3"}) || len(h.e.asks) != 0 || len(h.e.marks) != 0 {
		t.Fatalf("written %v, asks %v, marks %v", got, h.e.asks, h.e.marks)
	}
}

// TestCatchUpRandom: a member goes away and comes back at random (usrloc,
// probes), lines keep coming, catch-ups are answered late: in the end the
// member got every line exactly once, in order, from the flow or the
// history; every submitted notice ended in one result.
func TestCatchUpRandom(t *testing.T) {
	var fromHistory, dropped, fills int
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 7))
		h := catchUpHarness(t, func(s *Scheduler) {
			s.MemberQueue, s.Burst = 1+rng.IntN(6), 1000
			s.UnreachableRetry, s.UnreachableRetryMax = time.Second, 4*time.Second
		})
		// Replies cross here (a 408 after a later 200): a path that may
		// reorder, which keeps one request of the room in flight to d.
		h.e.inOrder = func(imc.URI) bool { return false }
		var seq int64
		away := false
		var pending []CatchUpRequest
		for round := range 600 {
			if round < 500 && rng.IntN(3) == 0 {
				seq++
				h.line("room", []string{"a", "d"}, seq)
			}
			if rng.IntN(40) == 0 {
				away = !away
				if !away && rng.IntN(2) == 0 {
					h.e.reachable(uri("d"), h.now)
				}
			}
			pending = append(pending, h.takeAsks()...)
			if len(pending) > 0 && rng.IntN(4) == 0 {
				fills++
				h.fill(pending[0], seq)
				pending = pending[1:]
			}
			h.advance(100 * time.Millisecond)
			for _, p := range h.inflight() {
				if rng.IntN(3) == 0 {
					continue // later
				}
				if away && p.n.To.User == "d" {
					h.reply(p, st408)
				} else {
					h.reply(p, ok200)
				}
			}
		}
		away = false
		h.e.reachable(uri("d"), h.now)
		for range 200 {
			pending = append(pending, h.takeAsks()...)
			for _, r := range pending {
				h.fill(r, seq)
			}
			pending = pending[:0]
			h.advance(100 * time.Millisecond)
			h.answer(nil)
		}
		var got []int64
		for _, r := range h.results {
			if r.r.Kind == Dropped && !r.r.Missed {
				dropped++
			}
			if r.to == "d" && r.r.Kind == Delivered && (r.r.CatchUp || !r.r.Missed) {
				if r.r.CatchUp {
					fromHistory++
				}
				n, _ := strconv.ParseInt(r.body[1:], 10, 64)
				got = append(got, n)
			}
		}
		for i, n := range got {
			if n != int64(i+1) {
				t.Fatalf("seed %d: d got %v (%d lines said)", seed, got, seq)
			}
		}
		if int64(len(got)) != seq {
			t.Fatalf("seed %d: d got %d of %d lines: %v", seed, len(got), seq, got)
		}
		submitted := 0
		for _, r := range h.results {
			if !r.r.Missed {
				submitted++
			}
		}
		if submitted != 2*int(seq) || h.e.live != 0 {
			t.Fatalf("seed %d: %d results for %d notices, %d live", seed, submitted, 2*seq, h.e.live)
		}
	}
	t.Logf("%d lines from the history, %d dropped, %d catch-ups answered during the runs", fromHistory, dropped, fills)
	if fromHistory == 0 || dropped == 0 || fills == 0 {
		t.Fatal("the runs did not exercise the catch-up")
	}
}

// TestRemoveKeepsOtherRooms: a member away in two rooms and removed from
// one is still away in the other, owed its catch-up; removed from both,
// they are forgotten, nothing left behind.
func TestRemoveKeepsOtherRooms(t *testing.T) {
	h := catchUpHarness(t, nil)
	h.e.away(Mark{Room: uri("one"), Member: uri("d"), Seq: 3}, h.now)
	h.e.away(Mark{Room: uri("two"), Member: uri("d"), Seq: 7}, h.now)
	h.e.remove(uri("one"), uri("d"), h.now)
	if st := h.status("two", "d"); st.Reachable {
		t.Fatal("removed from one room, d is no longer away in the other")
	}
	h.e.reachable(uri("d"), h.now)
	if asks := h.takeAsks(); len(asks) != 1 || asks[0].Room != uri("two") || asks[0].After != 7 {
		t.Fatalf("asks %+v", asks)
	}
	h.e.remove(uri("two"), uri("d"), h.now)
	if h.e.live != 0 || len(h.e.memberIdx) != 0 || len(h.e.flowIdx) != 0 || len(h.e.unreach) != 0 {
		t.Fatalf("after both removals: %d live, %d members, %d flows, %d unreachable", h.e.live, len(h.e.memberIdx), len(h.e.flowIdx), len(h.e.unreach))
	}
}
