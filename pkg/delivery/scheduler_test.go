package delivery_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/delivery"
	"github.com/imcd-sip/imcd/pkg/imc"
)

func TestSchedulerLifecycle(t *testing.T) {
	ctx := context.Background()
	if err := (&delivery.Scheduler{}).Open(ctx); !errors.Is(err, delivery.ErrNoEndpoint) {
		t.Fatalf("no endpoint: %v", err)
	}
	if err := (&delivery.Scheduler{Endpoints: []delivery.Endpoint{{Name: "x"}}}).Open(ctx); !errors.Is(err, delivery.ErrNoEndpoint) {
		t.Fatalf("endpoint without Sender: %v", err)
	}
	silent := newFakeSender(func(n *imc.Notice) (delivery.Outcome, bool) { return ok200, n.To.User == "ok" })
	s := &delivery.Scheduler{Endpoints: []delivery.Endpoint{{Name: "mi", Sender: silent}}}
	res := newResults()
	if err := s.Submit(delivery.Batch{Notices: notices("room", []string{"a"}, "x")}); !errors.Is(err, delivery.ErrClosed) {
		t.Fatalf("Submit before Open: %v", err)
	}
	open(t, s)
	if err := s.Open(ctx); !errors.Is(err, delivery.ErrClosed) {
		t.Fatalf("second Open: %v", err)
	}
	if err := s.Submit(delivery.Batch{Notices: notices("room", []string{"a", "b", "ok"}, "x"), Done: res.done}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "three requests", func() bool { return silent.count() == 3 })
	waitFor(t, "one result", func() bool { return res.total() == 1 })
	if err := s.Drain(ctxTimeout(t, 50*time.Millisecond)); err == nil {
		t.Fatal("Drain returned with two requests in flight")
	}
	s.Close()
	s.Close()
	if res.count(delivery.Aborted) != 2 || res.count(delivery.Delivered) != 1 {
		t.Fatalf("after Close: %+v", res.all)
	}
	// Late outcomes are ignored.
	silent.answer(func(imc.Notice) bool { return true }, ok200)
	if res.total() != 3 {
		t.Fatalf("%d results after late outcomes", res.total())
	}
	if err := s.Submit(delivery.Batch{Notices: notices("room", []string{"a"}, "x")}); !errors.Is(err, delivery.ErrClosed) {
		t.Fatalf("Submit after Close: %v", err)
	}
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestSchedulerResults: every notice's Done is called once, on the loop;
// the Observer counts results, sheds and gauges; a panicking Done does not
// stop the scheduler.
func TestSchedulerResults(t *testing.T) {
	snd := newFakeSender(func(n *imc.Notice) (delivery.Outcome, bool) {
		if n.To.User == "away" {
			return st408, true
		}
		return ok200, true
	})
	obs := newObserver()
	s := open(t, &delivery.Scheduler{Endpoints: []delivery.Endpoint{{Sender: snd}}, Observer: obs, QueueLimit: 50})
	res := newResults()
	panicky := func(n imc.Notice, r delivery.Result) {
		res.done(n, r)
		if n.Body == "boom" {
			panic("done exploded")
		}
	}
	for _, body := range []string{"one", "boom", "two"} {
		if err := s.Submit(delivery.Batch{Notices: notices("room", []string{"a", "b", "away"}, body), Done: panicky}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "six delivered", func() bool { return res.count(delivery.Delivered) == 6 })
	for _, u := range []string{"a", "b"} {
		if got := snd.sentTo(u); !slices.Equal(got, []string{"one", "boom", "two"}) || len(res.delivered(u)) != 3 {
			t.Fatalf("%s: written %v, delivered %v", u, got, res.delivered(u))
		}
	}
	st := s.MemberStatus(uri("room"), []imc.URI{uri("a"), uri("away")})
	if !st[0].Reachable || st[1].Reachable || st[1].Kept != 3 {
		t.Fatalf("member status %+v", st)
	}
	err := s.Submit(delivery.Batch{Notices: notices("room2", users("m", 60), "big")})
	if !errors.Is(err, delivery.ErrBusy) {
		t.Fatalf("batch over QueueLimit: %v", err)
	}
	waitFor(t, "gauges", func() bool {
		obs.mu.Lock()
		defer obs.mu.Unlock()
		return obs.gauges > 0 && obs.last.Kept == 3
	})
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if obs.shed != 60 || obs.finished["delivered"] != 6 || obs.last.Unreachable != 1 || len(obs.last.Endpoints) != 1 ||
		obs.last.Endpoints[0].Rate <= 0 || !obs.last.Endpoints[0].Up {
		t.Fatalf("observer %+v", obs)
	}
}

// TestSchedulerFakeClock: the probe of an unreachable member comes after
// UnreachableRetry of the scheduler's clock, without sleeping through it;
// OnGhost and Reachable work the same way.
func TestSchedulerFakeClock(t *testing.T) {
	clock := newFakeClock()
	var back atomic.Bool
	snd := newFakeSender(func(n *imc.Notice) (delivery.Outcome, bool) {
		if n.To.User == "d" && !back.Load() {
			return st408, true
		}
		return ok200, true
	})
	ghosts := make(chan imc.URI, 4)
	s := open(t, &delivery.Scheduler{
		Endpoints: []delivery.Endpoint{{Sender: snd}}, Clock: clock,
		UnreachableRetry: time.Minute, GhostAfter: 5 * time.Minute,
		OnGhost:      func(m imc.URI, since time.Time) { ghosts <- m },
		MissedNotice: missedNotice,
	})
	if err := s.Submit(delivery.Batch{Notices: notices("room", []string{"d"}, "kept")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first request", func() bool { return snd.count() == 1 })
	waitFor(t, "unreachable", func() bool { return !s.MemberStatus(uri("room"), []imc.URI{uri("d")})[0].Reachable })
	for range 59 {
		clock.Advance(time.Second)
	}
	time.Sleep(20 * time.Millisecond)
	if snd.count() != 1 {
		t.Fatalf("probe before UnreachableRetry: %v", snd.sentTo("d"))
	}
	clock.Advance(2 * time.Second)
	waitFor(t, "the probe", func() bool { return snd.count() == 2 })
	for range 5 {
		clock.Advance(time.Minute)
	}
	select {
	case m := <-ghosts:
		if m != uri("d") {
			t.Fatalf("ghost %v", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no ghost reported")
	}
	if gs := s.Unreachable(5 * time.Minute); len(gs) != 1 || gs[0].Member != uri("d") {
		t.Fatalf("Unreachable %+v", gs)
	}
	back.Store(true)
	s.Reachable(uri("d"))
	waitFor(t, "the kept notice", func() bool { return slices.Contains(snd.sentTo("d")[2:], "kept") })
	if st := s.Stats(); st.Unreachable != 0 || st.Kept != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestSchedulerCap: with nothing answered, exactly Outstanding requests are
// written; answers let more through, and the number held in OpenSIPS never
// exceeds the cap.
func TestSchedulerCap(t *testing.T) {
	snd := newFakeSender(func(*imc.Notice) (delivery.Outcome, bool) { return delivery.Outcome{}, false })
	res := newResults()
	s := open(t, &delivery.Scheduler{Endpoints: []delivery.Endpoint{{Sender: snd}}, Outstanding: 25})
	for i := range 10 {
		if err := s.Submit(delivery.Batch{Notices: notices("room", users("m", 10), fmt.Sprint(i)), Done: res.done}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "25 requests", func() bool { return snd.count() == 25 })
	time.Sleep(50 * time.Millisecond)
	if n := snd.count(); n != 25 {
		t.Fatalf("%d requests written, cap 25", n)
	}
	for res.count(delivery.Delivered) < 100 {
		snd.mu.Lock()
		held := len(snd.held)
		snd.mu.Unlock()
		if held > 25 {
			t.Fatalf("%d requests in flight, cap 25", held)
		}
		snd.answer(func(imc.Notice) bool { return true }, ok200)
		time.Sleep(time.Millisecond)
	}
	if st := s.Stats(); st.InFlight != 0 || st.Endpoints[0].Limit != 25 {
		t.Fatalf("stats %+v", st)
	}
}

// TestSchedulerKept: the scheduler's loop hands a batch's Kept the news
// that a notice is kept for its unreachable member, before its Result;
// once the member is back it is delivered, Kept.
func TestSchedulerKept(t *testing.T) {
	var mu sync.Mutex
	away := true
	var order []string
	snd := newFakeSender(func(n *imc.Notice) (delivery.Outcome, bool) {
		mu.Lock()
		defer mu.Unlock()
		if away && n.To.User == "eve" {
			return delivery.Outcome{Status: 480, Reason: "480 Temporarily Unavailable"}, true
		}
		return ok200, true
	})
	s := open(t, &delivery.Scheduler{Endpoints: []delivery.Endpoint{{Name: "a", Sender: snd}},
		MemberQueueAge: time.Hour, UnreachableRetry: time.Hour, UnreachableRetryMax: time.Hour})
	var kept delivery.Keep
	err := s.Submit(delivery.Batch{Notices: []imc.Notice{{From: uri("room"), To: uri("eve"), Body: "invite", ContentType: "text/plain"}},
		Kept: func(n imc.Notice, k delivery.Keep) {
			mu.Lock()
			defer mu.Unlock()
			order, kept = append(order, "kept "+n.Body), k
		},
		Done: func(n imc.Notice, r delivery.Result) {
			mu.Lock()
			defer mu.Unlock()
			order = append(order, fmt.Sprintf("%s %s held=%v kept=%v", r.Kind, n.Body, r.Held, r.Kept))
		}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "Kept", func() bool { mu.Lock(); defer mu.Unlock(); return len(order) == 1 })
	mu.Lock()
	if kept.Outcome.Status != 480 || time.Until(kept.Until) < 50*time.Minute {
		t.Errorf("kept %+v: want the 480, and an hour to wait", kept)
	}
	away = false
	mu.Unlock()
	s.Reachable(uri("eve"))
	waitFor(t, "the result", func() bool { mu.Lock(); defer mu.Unlock(); return len(order) == 2 })
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"kept invite", "delivered invite held=true kept=true"}; !slices.Equal(order, want) {
		t.Fatalf("%q, want %q", order, want)
	}
}

// memoryReader reports a node whose shared memory holds 4 MB of its own
// plus 8 KB for each request the sender holds, and counts its readings.
type memoryReader struct {
	snd   *fakeSender
	total int64
	mu    sync.Mutex
	reads int
}

func (m *memoryReader) SharedMemory(context.Context) (delivery.Memory, error) {
	m.snd.mu.Lock()
	held := int64(len(m.snd.held))
	m.snd.mu.Unlock()
	m.mu.Lock()
	m.reads++
	m.mu.Unlock()
	return delivery.Memory{Total: m.total, Used: 4<<20 + held*8<<10}, nil
}

func (m *memoryReader) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reads
}

// TestSchedulerMemory: an endpoint's Memory is read every ShmEvery and caps
// the transactions alive at what fits in the share: with nothing answered,
// the requests written stop where the node's memory reaches it, the cap
// shows in Stats, and answers let the rest through.
func TestSchedulerMemory(t *testing.T) {
	snd := newFakeSender(func(*imc.Notice) (delivery.Outcome, bool) { return delivery.Outcome{}, false })
	mem := &memoryReader{snd: snd, total: 32 << 20}
	res := newResults()
	s := open(t, &delivery.Scheduler{Endpoints: []delivery.Endpoint{{Sender: snd, Memory: mem}},
		ShmShare: 0.5, ShmEvery: 5 * time.Millisecond, RateMax: 1e5, RateMin: 1e5})
	waitFor(t, "the first reading", func() bool { return mem.count() > 0 })
	for i := range 40 {
		if err := s.Submit(delivery.Batch{Notices: notices(fmt.Sprint("room", i), users(fmt.Sprint("m", i, "-"), 100), "x"), Done: res.done}); err != nil {
			t.Fatal(err)
		}
	}
	// 16 MB of share, 4 of them OpenSIPS's own: 1,536 requests of 8 KB.
	const fits = (16<<20 - 4<<20) / (8 << 10)
	waitFor(t, "the cap to reach the share", func() bool {
		st := s.Stats().Endpoints[0]
		return st.Limit >= fits*9/10 && st.InFlight >= st.Limit
	})
	for range 5 { // more readings: the cap stays within the share
		n := mem.count()
		waitFor(t, "another reading", func() bool { return mem.count() > n })
	}
	// A reading may miss the requests being written at that moment, as
	// OpenSIPS's does those still in its socket buffer: a few more.
	st := s.Stats().Endpoints[0]
	if st.InFlight > fits*21/20 || st.Limit > fits*21/20 {
		t.Fatalf("%d in flight, cap %d: more than the %d that fit in the share", st.InFlight, st.Limit, fits)
	}
	if st.Shm.Total != 32<<20 {
		t.Fatalf("stats show %+v of shared memory", st.Shm)
	}
	for res.count(delivery.Delivered) < 4000 {
		snd.answer(func(imc.Notice) bool { return true }, ok200)
		time.Sleep(time.Millisecond)
	}
}
