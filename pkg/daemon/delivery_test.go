package daemon

import (
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imcd-sip/imcd/internal/imcdproc"
	"github.com/imcd-sip/imcd/pkg/config"
	"github.com/imcd-sip/imcd/pkg/opensips"
	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

// The wiring of pkg/delivery into the daemon: busy rooms, members who are
// away and come back, what they missed, ghosts, invitations at shutdown,
// and the accounting of every notice.

// eventually polls cond until it holds, failing after a generous deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// settled waits until the scheduler holds nothing, then checks that every
// notice it admitted ended in one counted result.
func settled(t *testing.T, d *Daemon) {
	t.Helper()
	eventually(t, "delivery to settle", func() bool {
		st := d.sched.Stats()
		return st.Queued+st.Kept+st.InFlight == 0
	})
	reg := d.metrics.Registry
	submitted := readCounterSum(reg, "opensips_imc_delivery_submitted_total", "", "")
	var ended float64
	for _, k := range []string{"delivered", "failed", "dropped", "lost", "aborted"} {
		ended += readCounterSum(reg, "opensips_imc_delivery_results_total", "kind", k)
	}
	if submitted == 0 || submitted != ended {
		t.Fatalf("%g notices submitted, %g ended", submitted, ended)
	}
}

// TestBusyRoomTellsSender: past delivery_room_queue, a line's fan-out is
// refused whole and its sender told the room is busy; what was admitted
// is delivered, what was refused is counted shed, nothing else.
func TestBusyRoomTellsSender(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	cfg := testConfig(t, f, t.TempDir())
	cfg.RateLimit = 0
	cfg.DeliveryRoomQueue = 6
	d := openDaemon(t, f, cfg)
	aliceAndBob(t, f)
	f.SetDelay(bob, 500*time.Millisecond) // bob's lines pile up
	const n = 30
	raiseLines(t, f, alice, n)
	eventually(t, "every line to bob or a busy notice to alice", func() bool {
		return len(f.BodiesTo(bob))+len(f.BodiesTo(alice)) == n
	})
	busy := f.BodiesTo(alice)
	if len(busy) == 0 {
		t.Fatal("no line was refused: the room queue was never full")
	}
	for _, b := range busy {
		if b != "Room "+room1+" is busy: your message was not sent; please send it again in a moment" {
			t.Fatalf("alice got %q", b)
		}
	}
	// What bob got is in order, with gaps where lines were refused.
	last := -1
	for _, b := range f.BodiesTo(bob) {
		i, err := strconv.Atoi(strings.TrimPrefix(b, "<alice@example.com>: line "))
		if err != nil || i <= last {
			t.Fatalf("bob got %q after line %d", b, last)
		}
		last = i
	}
	settled(t, d)
	if shed := readCounterSum(d.metrics.Registry, "opensips_imc_delivery_shed_total", "", ""); int(shed) != len(busy) {
		t.Fatalf("%g notices shed, %d lines refused", shed, len(busy))
	}
}

// TestAwayMemberComesBack: a member whose MESSAGEs end 404 is kept for;
// imc:member_status shows it; the oldest of what overflows member_queue
// is dropped; a usrloc registration brings them back, and they get the
// "you missed" notice, then what was kept, in order. use_domain off: an
// AOR without domain gets usrloc_domain.
func TestAwayMemberComesBack(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	cfg := testConfig(t, f, t.TempDir())
	cfg.History = config.HistoryOff // the "you missed" notice; with the history it is a catch-up (catchup_test.go)
	cfg.RateLimit = 0
	cfg.MemberQueue = 5
	cfg.UsrlocEvents = true
	cfg.UsrlocDomain = "example.com" // for AORs without one; the fake's have one
	d := openDaemon(t, f, cfg)
	for _, ev := range opensips.ReachabilityEventNames() {
		if err := f.WaitSubscribed(ctxTimeout(t, 5*time.Second), ev, d.Addrs().Events); err != nil {
			t.Fatal(err)
		}
	}
	aliceAndBob(t, f)
	f.SetStatus(bob, "404 Not Found")
	const n = 8
	raiseLines(t, f, alice, n)
	eventually(t, "bob kept for", func() bool { return d.sched.Stats().Kept == cfg.MemberQueue })
	status := miCall(t, d, `{"jsonrpc":"2.0","method":"imc:member_status","params":{"room":"`+room1+`"},"id":1}`)
	for _, want := range []string{`{"URI":"sip:alice@example.com","ROLE":"owner","STATE":"reachable","KEPT":0,`,
		`{"URI":"sip:bob@example.com","ROLE":"member","STATE":"unreachable","UNREACHABLE_FOR":`,
		`"KEPT":5,"DROPPED":3,"IN_FLIGHT":0}`, `"NO_MEMBERS":2,"NO_UNREACHABLE":1}`} {
		if !strings.Contains(status, want) {
			t.Fatalf("imc:member_status lacks %s:\n%s", want, status)
		}
	}
	if got := miCall(t, d, `{"jsonrpc":"2.0","method":"imc_list_members","params":{"room":"`+room1+`"},"id":2}`); got != `{"jsonrpc":"2.0","result":{"ROOM":"`+room1+`","MEMBERS":["`+alice+`","`+bob+`"],"NO_MEMBERS":2},"id":2}` {
		t.Fatalf("imc_list_members: %s", got)
	}

	f.ClearRules()
	f.Reset()
	if err := f.Register("bob@example.com", "sip:bob@192.0.2.2:5060", time.Hour); err != nil {
		t.Fatal(err)
	}
	eventually(t, "what was kept, delivered", func() bool { return len(f.BodiesTo(bob)) == 1+cfg.MemberQueue })
	want := []string{"*** you missed 3 messages in this room while you could not be reached"}
	for i := n - cfg.MemberQueue; i < n; i++ {
		want = append(want, "<alice@example.com>: line "+strconv.Itoa(i))
	}
	if got := f.BodiesTo(bob); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("bob got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	settled(t, d)
	if v := readCounterSum(d.metrics.Registry, "opensips_imc_delivery_results_total", "kind", "dropped"); v != 3 {
		t.Fatalf("%g dropped, want 3", v)
	}

	// use_domain off: the AOR is the user alone, and usrloc_domain is added.
	f.SetStatus(bob, "404 Not Found")
	raiseLines(t, f, alice, 1)
	eventually(t, "bob away again", func() bool { return d.sched.Stats().Kept == 1 })
	f.ClearRules()
	f.Reset()
	d.Usrloc(&opensips.UsrlocEvent{Name: opensips.EventULContactDelete, Table: "location", AOR: "bob"}) // not a registration
	time.Sleep(100 * time.Millisecond)
	if d.sched.Stats().Kept != 1 {
		t.Fatal("a contact deletion brought bob back")
	}
	d.Usrloc(&opensips.UsrlocEvent{Name: opensips.EventULAORInsert, Table: "location", AOR: "bob"})
	eventually(t, "the line kept, delivered", func() bool { return len(f.BodiesTo(bob)) == 1 })
}

// TestUsrlocWithoutDomain: without usrloc_domain an AOR that has no domain
// is ignored (logged): it never reaches the scheduler, which this daemon
// does not even have.
func TestUsrlocWithoutDomain(t *testing.T) {
	log := new(imcdproc.LogBuffer)
	d := New(config.Config{}, slog.New(slog.NewTextHandler(log, nil)))
	d.Usrloc(&opensips.UsrlocEvent{Name: opensips.EventULAORInsert, Table: "location", AOR: "bob"})
	d.Usrloc(&opensips.UsrlocEvent{Name: opensips.EventULContactInsert, Table: "location", AOR: "@"})
	if !strings.Contains(log.String(), "usrloc event without a usable AOR ignored") {
		t.Fatalf("the unusable AOR was not logged: %q", log.String())
	}
}

// TestOwnMessageBringsMemberBack: a member who sends a MESSAGE is
// reachable: what was kept for them leaves at once, without usrloc.
func TestOwnMessageBringsMemberBack(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	cfg := testConfig(t, f, t.TempDir())
	cfg.RateLimit = 0
	d := openDaemon(t, f, cfg)
	aliceAndBob(t, f)
	f.SetStatus(bob, "408 Request Timeout")
	raiseLines(t, f, alice, 3)
	eventually(t, "bob kept for", func() bool { return d.sched.Stats().Kept == 3 })
	f.ClearRules()
	f.Reset()
	if _, err := f.Raise(opensipstest.NewEvent(bob, room1, "I am back")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the kept lines", func() bool { return len(f.BodiesTo(bob)) == 3 })
	if got := strings.Join(f.BodiesTo(bob), "|"); got != "<alice@example.com>: line 0|<alice@example.com>: line 1|<alice@example.com>: line 2" {
		t.Fatalf("bob got %s", got)
	}
	settled(t, d)
}

// TestGhostRemoved: with ghost_policy remove, a member unreachable for
// ghost_after is removed from their rooms like an operator would, the room
// told; what was kept for them is dropped. An owner stays.
func TestGhostRemoved(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	cfg := testConfig(t, f, t.TempDir())
	cfg.RateLimit = 0
	cfg.GhostAfter = time.Second
	cfg.GhostPolicy = config.GhostRemove
	d := openDaemon(t, f, cfg)
	aliceAndBob(t, f)
	send(t, f, bob, manager, "#create chat-2", 1) // bob owns chat-2
	f.SetStatus(bob, "404 Not Found")
	f.Reset()
	raiseLines(t, f, alice, 2)
	eventually(t, "alice told bob was removed", func() bool {
		for _, b := range f.BodiesTo(alice) {
			if b == "*** <"+bob+"> has been removed" {
				return true
			}
		}
		return false
	})
	if got := miCall(t, d, `{"jsonrpc":"2.0","method":"imc_list_members","params":{"room":"`+room1+`"},"id":1}`); strings.Contains(got, "bob") {
		t.Fatalf("the ghost is still in the room: %s", got)
	}
	if got := miCall(t, d, `{"jsonrpc":"2.0","method":"imc_list_members","params":{"room":"sip:chat-2@example.com"},"id":2}`); !strings.Contains(got, "bob") {
		t.Fatalf("the ghost was removed from the room they own: %s", got)
	}
	// The lines kept for bob were dropped; the farewell waits for him.
	eventually(t, "only the farewell kept", func() bool { return d.sched.Stats().Kept == 1 })
	if v := readCounterSum(d.metrics.Registry, "opensips_imc_delivery_results_total", "kind", "dropped"); v != 2 {
		t.Fatalf("%g dropped, want bob's 2 lines", v)
	}
	f.ClearRules()
	f.Reset()
	if _, err := f.Raise(opensipstest.NewEvent(bob, "sip:chat-2@example.com", "back")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the farewell", func() bool {
		return strings.Join(f.BodiesTo(bob), "|") == "You have been removed from this room"
	})
	settled(t, d)
}

// TestUnsentInvitationWithdrawnAtShutdown: an invitation kept for an
// invitee who cannot be reached never reached them: imcd's stop withdraws
// it from the database, so it does not outlive the process.
func TestUnsentInvitationWithdrawnAtShutdown(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	dir := t.TempDir()
	cfg := testConfig(t, f, dir)
	d := openDaemon(t, f, cfg)
	send(t, f, alice, manager, "#create chat-1 private", 1)
	f.SetStatus(carol, "404 Not Found")
	send(t, f, alice, room1, "#invite carol", 2) // the invitation (404: kept) and "sent"
	eventually(t, "the invitation kept", func() bool { return d.sched.Stats().Kept == 1 })
	send(t, f, alice, room1, "#invite bob", 2) // delivered: stays pending
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if v := readCounterSum(d.metrics.Registry, "opensips_imc_delivery_results_total", "kind", "aborted"); v != 1 {
		t.Fatalf("%g aborted, want the kept invitation", v)
	}
	d2 := openDaemon(t, f, testConfig(t, f, dir))
	got := miCall(t, d2, `{"jsonrpc":"2.0","method":"imc_list_members","params":{"room":"`+room1+`"},"id":1}`)
	if strings.Contains(got, "carol") || !strings.Contains(got, "bob") {
		t.Fatalf("after restart: %s", got)
	}
}

// readCounterSum adds the samples of counter name whose label has value,
// or every sample when label is "".
func readCounterSum(reg *prometheus.Registry, name, label, value string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		return 0
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := label == ""
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					match = true
				}
			}
			if match {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// TestSharedMemoryCap: an OpenSIPS with little shared memory (the fake's
// model: 8 MB, 5 of them its own, 8 KB a transaction) and slow phones, 30
// members in 20 rooms. Left to read it (delivery_shm_share), imcd never
// fills more than its share: nothing is refused for want of memory and
// every line reaches every member. Told not to read it, with the fixed
// default cap, the same load runs that OpenSIPS out of memory: that is
// what the reading prevents.
func TestSharedMemoryCap(t *testing.T) {
	const members, rooms = 30, 20
	run := func(t *testing.T, share int) (peak, refused, delivered int) {
		f := opensipstest.New(t, opensipstest.Options{ShmSize: 8 << 20, ShmBase: 5 << 20, ShmPerTransaction: 8 << 10})
		cfg := testConfig(t, f, t.TempDir())
		cfg.RateLimit, cfg.FanoutLimit = 0, 0
		cfg.OpenSIPSWaitTime = 0 // the fake frees a transaction with its reply
		cfg.DeliveryShmShare = share
		d := openDaemon(t, f, cfg)
		for r := range rooms {
			room := "sip:chat-" + strconv.Itoa(r) + "@example.com"
			send(t, f, alice, manager, "#create chat-"+strconv.Itoa(r), 1)
			for i := range members {
				if _, err := f.Raise(opensipstest.NewEvent("sip:m"+strconv.Itoa(i)+"@example.com", room, "#join")); err != nil {
					t.Fatal(err)
				}
			}
			eventually(t, "everyone in "+room, func() bool {
				return strings.Count(miCall(t, d, `{"jsonrpc":"2.0","method":"imc_list_members","params":{"room":"`+room+`"},"id":1}`), "sip:m") == members
			})
		}
		settled(t, d)
		for i := range members { // slow phones: each delivery holds its transaction
			f.SetDelay("sip:m"+strconv.Itoa(i)+"@example.com", 500*time.Millisecond)
		}
		f.Reset()
		for r := range rooms {
			if _, err := f.Raise(opensipstest.NewEvent(alice, "sip:chat-"+strconv.Itoa(r)+"@example.com", "hello")); err != nil {
				t.Fatal(err)
			}
		}
		eventually(t, "every line answered", func() bool {
			st := f.MIStats()
			return len(f.Deliveries())+st.Refused >= members*rooms && st.Outstanding == 0
		})
		st := f.MIStats()
		return st.PeakOutstanding, st.Refused, len(f.Deliveries())
	}
	// 70 % of 8 MB, less OpenSIPS's own 5: 76 transactions of 8 KB.
	const fits = (8<<20*7/10 - 5<<20) / (8 << 10)
	peak, refused, delivered := run(t, 70)
	if refused != 0 || delivered != members*rooms || peak > fits*21/20 {
		t.Fatalf("reading the memory: %d refused, %d of %d delivered, peak %d transactions (%d fit in the share)", refused, delivered, members*rooms, peak, fits)
	}
	t.Logf("reading the memory: peak %d transactions alive (%d fit in the share), all %d delivered", peak, fits, delivered)
	if peak, refused, _ := run(t, 0); refused == 0 {
		t.Fatalf("not reading the memory, OpenSIPS ran out of none (peak %d): the load does not show what the reading prevents", peak)
	}
}
