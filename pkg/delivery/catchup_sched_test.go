package delivery_test

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/delivery"
	"github.com/imcd-sip/imcd/pkg/imc"
)

// catchUpRecorder collects what the scheduler asks and reports.
type catchUpRecorder struct {
	mu    sync.Mutex
	asks  []delivery.CatchUpRequest
	marks []delivery.MarkChange
}

func (c *catchUpRecorder) fill(r delivery.CatchUpRequest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.asks = append(c.asks, r)
}

func (c *catchUpRecorder) onMarks(ms []delivery.MarkChange) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.marks = append(c.marks, ms...)
}

func (c *catchUpRecorder) get() ([]delivery.CatchUpRequest, []delivery.MarkChange) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.asks), slices.Clone(c.marks)
}

func seqNotices(room string, to []string, body string, seq int64) []imc.Notice {
	ns := notices(room, to, body)
	for i := range ns {
		ns[i].Seq = seq
	}
	return ns
}

// TestSchedulerCatchUp drives catch-up through the scheduler's goroutine
// and its callbacks, on the fake clock: a mark restored with Away holds
// the member's notices; on Reachable the scheduler asks FillCatchUp and
// writes nothing to the member until CatchUp answers; the answer goes
// first, then the kept line; OnMarks settles the mark. A failed catch-up
// falls back to MissedNotice. A mark reported as a member goes away
// reaches OnMarks, at Close at the latest.
func TestSchedulerCatchUp(t *testing.T) {
	clock := newFakeClock()
	var away atomic.Bool
	snd := newFakeSender(func(n *imc.Notice) (delivery.Outcome, bool) {
		if n.To.User == "d" && away.Load() {
			return st408, true
		}
		return ok200, true
	})
	rec := &catchUpRecorder{}
	s := open(t, &delivery.Scheduler{
		Endpoints: []delivery.Endpoint{{Sender: snd}}, Clock: clock, UnreachableRetry: time.Hour, MemberQueue: 1,
		FillCatchUp: rec.fill, OnMarks: rec.onMarks,
		MissedNotice: missedNotice,
	})
	s.Away([]delivery.Mark{{Room: uri("room"), Member: uri("d"), Seq: 4}})
	if err := s.Submit(delivery.Batch{Notices: seqNotices("room", []string{"a", "d"}, "L7", 7)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a's line", func() bool { return len(snd.sentTo("a")) == 1 })
	if got := snd.sentTo("d"); len(got) != 0 {
		t.Fatalf("written to d, away since before the restart: %v", got)
	}
	s.Reachable(uri("d"))
	waitFor(t, "the catch-up request", func() bool { asks, _ := rec.get(); return len(asks) == 1 })
	asks, _ := rec.get()
	if r := asks[0]; r.Room != uri("room") || r.Member != uri("d") || r.After != 4 || r.Before != 7 {
		t.Fatalf("request %+v", r)
	}
	clock.Advance(time.Second)
	time.Sleep(20 * time.Millisecond)
	if got := snd.sentTo("d"); len(got) != 0 {
		t.Fatalf("written to d before the catch-up came: %v", got)
	}
	s.CatchUp(delivery.CatchUpReply{Room: asks[0].Room, Member: asks[0].Member, Token: asks[0].Token, UpTo: 6,
		Notices: seqNotices("room", []string{"d"}, "C5-6", 6)})
	waitFor(t, "the catch-up, then the kept line", func() bool { return slices.Equal(snd.sentTo("d"), []string{"C5-6", "L7"}) })
	waitFor(t, "the mark settled", func() bool {
		_, marks := rec.get()
		return slices.Equal(marks, []delivery.MarkChange{{Mark: delivery.Mark{Room: uri("room"), Member: uri("d"), Seq: 4}}})
	})

	// Away again, lines dropped: the catch-up fails, "missed" instead.
	away.Store(true)
	for seq := int64(8); seq <= 10; seq++ {
		if err := s.Submit(delivery.Batch{Notices: seqNotices("room", []string{"d"}, "L", seq)}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "two dropped", func() bool { return s.MemberStatus(uri("room"), []imc.URI{uri("d")})[0].Dropped == 2 })
	away.Store(false)
	s.Reachable(uri("d"))
	waitFor(t, "the second request", func() bool { asks, _ := rec.get(); return len(asks) == 2 })
	asks, marks := rec.get()
	if r := asks[1]; r.After != 7 || r.Before != 10 {
		t.Fatalf("request %+v, want after 7 (the last line delivered), before 10", r)
	}
	if want := (delivery.MarkChange{Mark: delivery.Mark{Room: uri("room"), Member: uri("d"), Seq: 7}, Away: true}); marks[len(marks)-1] != want {
		t.Fatalf("marks %+v, want the last %+v", marks, want)
	}
	s.CatchUp(delivery.CatchUpReply{Room: asks[1].Room, Member: asks[1].Member, Token: asks[1].Token, Err: errors.New("no database")})
	waitFor(t, "the fallback", func() bool {
		got := snd.sentTo("d")
		return len(got) > 2 && slices.Equal(got[len(got)-2:], []string{"missed", "L"})
	})

	// Away at the end: the mark reaches OnMarks by Close.
	away.Store(true)
	if err := s.Submit(delivery.Batch{Notices: seqNotices("room", []string{"d"}, "L", 11)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "d away", func() bool { return !s.MemberStatus(uri("room"), []imc.URI{uri("d")})[0].Reachable })
	s.Close()
	_, marks = rec.get()
	if want := (delivery.MarkChange{Mark: delivery.Mark{Room: uri("room"), Member: uri("d"), Seq: 10}, Away: true}); marks[len(marks)-1] != want {
		t.Fatalf("marks %+v, want the last %+v", marks, want)
	}
}
