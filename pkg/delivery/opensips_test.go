package delivery_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/delivery"
	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/opensips"
	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

// These tests send through the real MI client to the fake OpenSIPS over
// loopback UDP.

func startFake(t testing.TB, opts opensipstest.Options) *opensipstest.Server {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	f, err := opensipstest.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func openMI(t testing.TB, addr string, timeout time.Duration) *opensips.MIClient {
	t.Helper()
	c := &opensips.MIClient{Addr: addr, Logger: testLogger(t), Timeout: timeout}
	if err := c.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// deliveredTo returns the bodies the fake received for user, in order.
func deliveredTo(f *opensipstest.Server, user string) []string {
	var out []string
	for _, d := range f.Deliveries() {
		if strings.HasPrefix(d.RURI, "sip:"+user+"@") {
			out = append(out, d.Body)
		}
	}
	return out
}

// TestDeadMembersDoNotHoldLive is the room of the 2026-11-29 measurement:
// 21 members, 10 of them registered where nothing answers (each MESSAGE to
// them ends 408 after fr_timeout), one member posting 100 lines/s. With the
// cap on transactions alive in OpenSIPS set low (64) and fr_timeout longer
// than the run, every live delivery must leave, in order, while all the
// dead members' transactions are still pending in OpenSIPS: dead members
// hold one transaction each (a room's lines go to a member in order, one
// at a time, through the proxy) and nobody waits for them.
// (A window held until each transaction's end would stall after 3 lines.)
func TestDeadMembersDoNotHoldLive(t *testing.T) {
	fake := startFake(t, opensipstest.Options{FrTimeout: 60 * time.Second})
	live, dead := users("m", 11)[1:], users("d", 10)
	for _, d := range dead {
		fake.SetNoAnswer("sip:" + d + "@127.0.0.1")
	}
	mi := openMI(t, fake.MISocket(), 90*time.Second)
	res := newResults()
	s := open(t, &delivery.Scheduler{
		Endpoints:   []delivery.Endpoint{{Name: "opensips", Sender: mi}},
		Outstanding: 64, MemberInflight: 4,
	})
	recipients := append(slices.Clone(live), dead...)
	const lines = 200
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for i := range lines {
		<-tick.C
		err := s.Submit(delivery.Batch{Notices: notices("chat-1", recipients, fmt.Sprintf("%03d", i)), Done: res.done})
		if err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
	}
	sentAtEnd := 0
	for _, u := range live {
		sentAtEnd += len(deliveredTo(fake, u))
	}
	waitFor(t, "every live delivery", func() bool { return res.count(delivery.Delivered) == lines*len(live) })
	if n := res.total(); n != lines*len(live) {
		t.Fatalf("%d results: something other than the live deliveries ended", n)
	}
	for _, u := range live {
		// Order on the wire (replies come back in any order).
		got := deliveredTo(fake, u)
		if len(got) != lines || len(res.delivered(u)) != lines {
			t.Fatalf("%s: the fake got %d requests, %d delivered", u, len(got), len(res.delivered(u)))
		}
		for i, b := range got {
			if b != fmt.Sprintf("%03d", i) {
				t.Fatalf("%s: out of order at %d: %v", u, i, got)
			}
		}
	}
	// Through the proxy a room's lines go to a member one at a time (in
	// order), so a member who never answers holds one transaction.
	for _, d := range dead {
		if n := len(deliveredTo(fake, d)); n != 1 {
			t.Fatalf("%s: %d requests to a member who never answers, want 1 (one room, in order)", d, n)
		}
	}
	st := s.Stats()
	if st.InFlight != 10 || st.Unreachable != 0 || st.Endpoints[0].InFlight != 10 {
		t.Fatalf("stats %+v: the dead members' 10 transactions should be pending", st)
	}
	t.Logf("live deliveries written before the last line was submitted: %d of %d", sentAtEnd, lines*len(live))
}

// TestKeptAndFlushedThroughOpenSIPS: a member whose phone is gone is marked
// unreachable by the 408s, their lines are kept (the oldest dropped beyond
// MemberQueue), and when they register again (Reachable) they get the
// missed count, then the kept lines in order.
func TestKeptAndFlushedThroughOpenSIPS(t *testing.T) {
	fake := startFake(t, opensipstest.Options{FrTimeout: 100 * time.Millisecond})
	fake.SetNoAnswer("sip:zed@127.0.0.1")
	mi := openMI(t, fake.MISocket(), 5*time.Second)
	res := newResults()
	s := open(t, &delivery.Scheduler{
		Endpoints: []delivery.Endpoint{{Sender: mi}}, MemberQueue: 5, MemberInflight: 4,
		MissedNotice: func(room, member imc.URI, n int) imc.Notice {
			return imc.Notice{From: room, To: member, Body: fmt.Sprintf("you missed %d lines", n), ContentType: "text/plain"}
		},
	})
	for i := range 10 {
		if err := s.Submit(delivery.Batch{Notices: notices("chat-1", []string{"alice", "zed"}, fmt.Sprint(i)), Done: res.done}); err != nil {
			t.Fatal(err)
		}
	}
	status := func() delivery.MemberStatus { return s.MemberStatus(uri("chat-1"), []imc.URI{uri("zed")})[0] }
	waitFor(t, "zed unreachable with 5 kept, alice's 10 delivered", func() bool {
		st := status()
		return !st.Reachable && st.InFlight == 0 && st.Kept == 5 && len(res.delivered("alice")) == 10
	})
	if st := status(); st.Dropped != 5 || res.count(delivery.Dropped) != 5 || len(res.delivered("alice")) != 10 {
		t.Fatalf("status %+v, %d dropped, alice got %v", st, res.count(delivery.Dropped), res.delivered("alice"))
	}
	// One room's lines go to a member one at a time through the proxy
	// (its workers could swap two in flight together).
	if n := len(deliveredTo(fake, "zed")); n != 1 {
		t.Fatalf("%d requests to zed before the first 408, want 1", n)
	}
	fake.ClearRules()
	s.Reachable(uri("zed"))
	waitFor(t, "the kept lines", func() bool { return len(res.delivered("zed")) == 5 })
	got := deliveredTo(fake, "zed")[1:]
	want := []string{"you missed 5 lines", "5", "6", "7", "8", "9"}
	if !slices.Equal(got, want) {
		t.Fatalf("zed received %v, want %v", got, want)
	}
	held := 0
	for _, r := range res.all {
		if r.Kind == delivery.Delivered && r.Held {
			held++
		}
	}
	if held != 5 || res.total() != 20 {
		t.Fatalf("%d held then delivered, %d results", held, res.total())
	}
}

// TestTwoOpenSIPS spreads requests over two OpenSIPS; when one stops, the
// other takes everything, nothing is lost, and the first is probed back.
func TestTwoOpenSIPS(t *testing.T) {
	f1 := startFake(t, opensipstest.Options{})
	f2 := startFake(t, opensipstest.Options{})
	res := newResults()
	s := open(t, &delivery.Scheduler{Endpoints: []delivery.Endpoint{
		{Name: "one", Sender: openMI(t, f1.MISocket(), 2*time.Second)},
		{Name: "two", Sender: openMI(t, f2.MISocket(), 2*time.Second)},
	}})
	submit := func(body string, n int) {
		t.Helper()
		if err := s.Submit(delivery.Batch{Notices: notices("chat-1", users("m", n), body), Done: res.done}); err != nil {
			t.Fatal(err)
		}
	}
	submit("a", 200)
	waitFor(t, "200 delivered", func() bool { return res.count(delivery.Delivered) == 200 })
	if n1, n2 := len(f1.Deliveries()), len(f2.Deliveries()); n1 < 20 || n2 < 20 || n1+n2 != 200 {
		t.Fatalf("spread %d / %d", n1, n2)
	}
	f2.Down()
	for i := range 20 {
		submit(fmt.Sprint("b", i), 20)
		time.Sleep(5 * time.Millisecond)
	}
	waitFor(t, "600 delivered", func() bool { return res.count(delivery.Delivered) == 600 })
	if st := s.Stats(); st.Endpoints[1].Up {
		t.Fatalf("endpoint two up while down: %+v", st.Endpoints)
	}
	if err := f2.Up(); err != nil {
		t.Fatal(err)
	}
	before := len(f2.Deliveries())
	waitFor(t, "endpoint two probed back", func() bool {
		submit("c", 5)
		time.Sleep(20 * time.Millisecond)
		return s.Stats().Endpoints[1].Up && len(f2.Deliveries()) > before
	})
	if res.count(delivery.Lost) != 0 || res.count(delivery.Failed) != 0 {
		t.Fatalf("lost %d failed %d", res.count(delivery.Lost), res.count(delivery.Failed))
	}
}
