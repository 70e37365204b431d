package daemon

import (
	"context"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/config"
	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

// TestBoundAddresses: a daemon configured with port 0 everywhere reports
// the ports it got, subscribes OpenSIPS to the event socket it really
// bound, and answers on each of them.
func TestBoundAddresses(t *testing.T) {
	for _, listen := range []string{"tcp:127.0.0.1:0", "udp:127.0.0.1:0"} {
		t.Run(listen, func(t *testing.T) {
			f := opensipstest.New(t, opensipstest.Options{})
			cfg := testConfig(t, f, t.TempDir())
			cfg.EventListen = listen
			d := openDaemon(t, f, cfg)
			a := d.Addrs()
			for name, hp := range map[string]string{"events": a.Events[4:], "mi_datagram": a.MIDatagram[4:], "mi_http": a.MIHTTP, "metrics": a.Metrics} {
				if _, port, err := net.SplitHostPort(hp); err != nil || port == "0" {
					t.Errorf("%s bound %q", name, hp)
				}
			}
			if scheme := listen[:4]; !strings.HasPrefix(a.Events, scheme) {
				t.Errorf("events %q is not %s", a.Events, scheme)
			}
			if subs := f.Subscriptions(cfg.EventName); len(subs) != 1 || subs[0].Socket != a.Events {
				t.Fatalf("subscriptions %+v, want one for %s", subs, a.Events)
			}
			if got := miCall(t, d, `{"jsonrpc":"2.0","method":"imc_list_rooms","id":1}`); got != `{"jsonrpc":"2.0","result":{"ROOMS":[]},"id":1}` {
				t.Errorf("MI datagram: %s", got)
			}
			if code, body := get(t, d, "/readyz"); code != 200 {
				t.Errorf("/readyz %d %s", code, body)
			}
			if a.MIFIFO != cfg.MIFIFO {
				t.Errorf("fifo %q", a.MIFIFO)
			}
		})
	}
}

// TestCommitThenNotify plays a short conversation and restarts the daemon
// on the same database: what users were told is what was stored.
func TestCommitThenNotify(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	dir := t.TempDir()
	cfg := testConfig(t, f, dir)
	d := openDaemon(t, f, cfg)
	same(t, "create", send(t, f, alice, manager, "#create chat-1", 1), alice+": *** room was created")
	same(t, "join", send(t, f, bob, room1, "#join", 2),
		alice+": *** <"+bob+"> has joined the room", bob+": *** <"+bob+"> has joined the room")
	same(t, "chat", send(t, f, bob, room1, "hello", 1), alice+": <bob@example.com>: hello")
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	d2 := openDaemon(t, f, testConfig(t, f, dir))
	same(t, "list after restart", send(t, f, bob, room1, "#list", 1), bob+": Members:\n*"+alice+"\n"+bob)
	if got := miCall(t, d2, `{"jsonrpc":"2.0","method":"imc_list_rooms","id":1}`); !strings.Contains(got, `"MEMBERS":2`) {
		t.Errorf("imc_list_rooms after restart: %s", got)
	}
}

// TestPerRoomOrder: the lines of one sender into one room reach every
// member in the order they were sent, whatever the shard count.
func TestPerRoomOrder(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	cfg := testConfig(t, f, t.TempDir())
	cfg.RateLimit = 0
	openDaemon(t, f, cfg)
	const n = 200
	aliceAndBob(t, f)
	raiseLines(t, f, alice, n)
	ds, err := f.WaitDeliveries(ctxTimeout(t, 10*time.Second), n)
	if err != nil {
		t.Fatal(err)
	}
	for i, dl := range ds {
		if want := "<alice@example.com>: line " + strconv.Itoa(i); dl.Body != want || dl.To != bob {
			t.Fatalf("delivery %d: %s %q, want %q", i, dl.To, dl.Body, want)
		}
	}
}

// TestDuplicateEvent: the same MESSAGE raised twice (same Call-ID, CSeq and
// From tag, as after a retransmission) is applied once.
func TestDuplicateEvent(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	d := openDaemon(t, f, testConfig(t, f, t.TempDir()))
	send(t, f, alice, manager, "#create chat-1", 1)
	send(t, f, bob, room1, "#join", 2)
	ev := opensipstest.NewEvent(bob, room1, "only once")
	same(t, "first", sendEvent(t, f, ev, 1), alice+": <bob@example.com>: only once")
	f.Reset()
	if _, err := f.Raise(ev); err != nil {
		t.Fatal(err)
	}
	quiet(t, f, 0)
	if v := metric(t, d, `opensips_imc_commands_total{command="duplicate",result="refused"}`); v != 1 {
		t.Errorf("duplicates counted %g, want 1", v)
	}
	ev.CSeq = "2" // a new request in the same dialog is not a duplicate
	same(t, "next CSeq", sendEvent(t, f, ev, 1), alice+": <bob@example.com>: only once")
}

// TestRateLimit: a sender over the rate limit is told once, and the rest
// of the burst is dropped without reaching the room.
func TestRateLimit(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	cfg := testConfig(t, f, t.TempDir())
	cfg.RateLimit, cfg.RateBurst = 0.001, 2
	d := openDaemon(t, f, cfg)
	same(t, "create", send(t, f, alice, manager, "#create chat-1", 1), alice+": *** room was created")
	same(t, "list", send(t, f, alice, room1, "#list", 1), alice+": Members:\n*"+alice)
	f.Reset()
	for range 3 {
		if _, err := f.Raise(opensipstest.NewEvent(alice, room1, "#list")); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := f.WaitDeliveries(ctxTimeout(t, 5*time.Second), 1)
	if err != nil {
		t.Fatal(err)
	}
	quiet(t, f, 1)
	if ds[0].To != alice || !strings.Contains(ds[0].Body, "too fast") {
		t.Errorf("rate-limit notice: %+v", lines(ds))
	}
	if v := metric(t, d, `opensips_imc_commands_total{command="rate_limited",result="refused"}`); v != 3 {
		t.Errorf("rate_limited %g, want 3", v)
	}
}

// TestInvitationFeedback: an invitation whose MESSAGE is refused is
// withdrawn and the inviter told; one kept for an invitee who cannot be
// reached is said to wait for them, then withdrawn when it is dropped
// (member_queue_age), the inviter told each time; one that is delivered
// stays pending.
func TestInvitationFeedback(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	cfg := testConfig(t, f, t.TempDir())
	cfg.MemberQueueAge = time.Second
	d := openDaemon(t, f, cfg)
	send(t, f, alice, manager, "#create chat-1 private", 1)
	f.SetStatus(carol, "403 Forbidden")
	f.Reset()
	if _, err := f.Raise(opensipstest.NewEvent(alice, room1, "#invite carol")); err != nil {
		t.Fatal(err)
	}
	ds, err := f.WaitDeliveries(ctxTimeout(t, 5*time.Second), 3) // invitation, "sent", "failed"
	if err != nil {
		t.Fatalf("%v: %v", err, lines(f.Deliveries()))
	}
	got := strings.Join(lines(ds), "\n")
	if !strings.Contains(got, "(403 Forbidden) and was withdrawn") || !strings.Contains(got, carol+": ") {
		t.Fatalf("deliveries:\n%s", got)
	}
	if got := miCall(t, d, `{"jsonrpc":"2.0","method":"imc_list_members","params":{"room":"`+room1+`"},"id":1}`); strings.Contains(got, "carol") {
		t.Errorf("the failed invitee is still a member: %s", got)
	}

	const dave = "sip:dave@example.com"
	f.SetStatus(dave, "404 Not Found")
	f.Reset()
	if _, err := f.Raise(opensipstest.NewEvent(alice, room1, "#invite dave")); err != nil {
		t.Fatal(err)
	}
	_, err = f.WaitDeliveries(ctxTimeout(t, 10*time.Second), 4) // invitation (404, kept), "sent", "waits", then "withdrawn" once dropped
	if err != nil {
		t.Fatalf("%v: %v", err, lines(f.Deliveries()))
	}
	// How long is the scheduler's to say (member_queue_age, and its
	// sweep); what is said, and in what order, is checked here.
	if bodies := f.BodiesTo(alice); len(bodies) != 3 || bodies[0] != "*** invitation sent to <"+dave+">" ||
		!strings.HasPrefix(bodies[1], "*** <"+dave+"> cannot be reached now (404 Not Found): the invitation waits for them for up to ") ||
		!strings.HasPrefix(bodies[2], "*** <"+dave+"> could not be reached for ") || !strings.HasSuffix(bodies[2], ": the invitation was withdrawn") {
		t.Fatalf("alice was told %q", bodies)
	}
	if got := miCall(t, d, `{"jsonrpc":"2.0","method":"imc_list_members","params":{"room":"`+room1+`"},"id":1}`); strings.Contains(got, "dave") {
		t.Errorf("the unreachable invitee is still a member: %s", got)
	}

	send(t, f, alice, room1, "#invite bob", 2)
	same(t, "bob accepts", send(t, f, bob, room1, "#accept", 2),
		alice+": *** <"+bob+"> has joined the room", bob+": *** <"+bob+"> has joined the room")
}

// TestInvitationWaitsThenReaches: an invitee who cannot be reached now
// (480): the inviter is told that the invitation waits for them, and for
// how long (member_queue_age); once the invitee is back (they send a
// MESSAGE) it reaches them, and the inviter is told so; the invitee is
// still invited and can accept.
func TestInvitationWaitsThenReaches(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	cfg := testConfig(t, f, t.TempDir())
	cfg.MemberQueueAge = 90 * time.Minute
	openDaemon(t, f, cfg)
	send(t, f, alice, manager, "#create chat-1 private", 1)
	const eve = "sip:eve@example.com"
	f.SetStatus(eve, "480 Temporarily Unavailable")
	got := send(t, f, alice, room1, "#invite eve", 3)
	waits := alice + ": *** <" + eve + "> cannot be reached now (480 Temporarily Unavailable): the invitation waits for them for up to 1 hour 30 minutes, and you will be told whether it reached them"
	if !slices.Contains(got, waits) {
		t.Fatalf("deliveries %q, want %q", got, waits)
	}
	if bodies := f.BodiesTo(alice); len(bodies) != 2 || !strings.HasPrefix(bodies[0], "*** invitation sent") {
		t.Fatalf("alice was told %q: \"sent\" first, then that it waits", bodies)
	}
	f.ClearRules()
	got = send(t, f, eve, manager, "#rooms", 3) // eve is back: her answer, the invitation, alice told
	if !slices.ContainsFunc(got, func(l string) bool {
		return strings.HasPrefix(l, alice+": *** the invitation reached <"+eve+"> after waiting ")
	}) {
		t.Fatalf("deliveries %q: alice not told it reached eve", got)
	}
	same(t, "eve accepts", send(t, f, eve, room1, "#accept", 2),
		alice+": *** <"+eve+"> has joined the room", eve+": *** <"+eve+"> has joined the room")
}

// TestAdminFromMI: an operator's MI command goes through the room's shard,
// is stored, and tells the room.
func TestAdminFromMI(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	d := openDaemon(t, f, testConfig(t, f, t.TempDir()))
	if got := miCall(t, d, `{"jsonrpc":"2.0","method":"imc:create_room","params":{"room":"`+room1+`","owner":"`+alice+`"},"id":1}`); !strings.Contains(got, `"result"`) {
		t.Fatalf("create_room: %s", got)
	}
	// The MI answers once the notices are queued, not delivered.
	ds, err := f.WaitDeliveries(ctxTimeout(t, 5*time.Second), 1)
	if err != nil {
		t.Fatal(err)
	}
	same(t, "owner told", lines(ds), alice+": *** room was created")
	f.Reset()
	if got := miCall(t, d, `{"jsonrpc":"2.0","method":"imc:add_member","params":{"room":"`+room1+`","user":"`+bob+`"},"id":2}`); !strings.Contains(got, `"result"`) {
		t.Fatalf("add_member: %s", got)
	}
	ds, err = f.WaitDeliveries(ctxTimeout(t, 5*time.Second), 2)
	if err != nil {
		t.Fatal(err)
	}
	same(t, "room told", lines(ds), alice+": *** <"+bob+"> has joined the room", bob+": *** <"+bob+"> has joined the room")
	same(t, "list", send(t, f, bob, room1, "#list", 1), bob+": Members:\n*"+alice+"\n"+bob)
}

// TestCloseDrains: Close waits for the deliveries in flight within the
// grace period, so that what was queued before the stop is sent. The
// events go in reliable mode: each Raise returns once imcd took the line,
// so all of them are queued before Close (the intake stops reading at
// once: an event still unread in the socket is OpenSIPS's to resend).
func TestCloseDrains(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{ReplyDelay: 200 * time.Millisecond, Reliable: true})
	cfg := testConfig(t, f, t.TempDir())
	cfg.RateLimit = 0
	d := openDaemon(t, f, cfg)
	const n = 20
	aliceAndBob(t, f)
	raiseLines(t, f, alice, n)
	if _, err := f.WaitDeliveries(ctxTimeout(t, 5*time.Second), 1); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if got := len(f.Deliveries()); got != n {
		t.Fatalf("%d of %d lines sent before Close returned", got, n)
	}
	if v := metric2xx(d); v != n+3 {
		t.Errorf("%d deliveries answered 2xx before Close returned, want %d", v, n+3)
	}
}

// metric2xx reads the 2xx delivery counter without HTTP (Close stopped the
// metrics server).
func metric2xx(d *Daemon) int {
	return int(readCounter(d.metrics.Registry, "opensips_imc_deliveries_total", "status", "2xx"))
}

// TestReadiness: /readyz says not ready while OpenSIPS refuses or cannot
// take the subscription, and ready once it is in place.
func TestReadiness(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	f.Down()
	cfg := testConfig(t, f, t.TempDir())
	cfg.Subscribe = true
	d := New(cfg, testLogger(t))
	if err := d.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if code, body := get(t, d, "/readyz"); code != 503 || !strings.Contains(body, "not subscribed") {
		t.Errorf("/readyz with OpenSIPS down: %d %s", code, body)
	}
	if err := f.Up(); err != nil {
		t.Fatal(err)
	}
	if err := f.WaitSubscribed(ctxTimeout(t, 10*time.Second), cfg.EventName, d.Addrs().Events); err != nil {
		t.Fatal(err)
	}
	waitReady(t, d)
}

// TestOpenSIPSRestartHeals: a restarted OpenSIPS has forgotten the
// subscription; with the default event_renew, imcd subscribes again at its
// next renewal (4 s), and events flow again.
func TestOpenSIPSRestartHeals(t *testing.T) {
	for _, listen := range []string{"tcp:127.0.0.1:0", "udp:127.0.0.1:0"} {
		t.Run(listen[:3], func(t *testing.T) {
			f := opensipstest.New(t, opensipstest.Options{})
			cfg := testConfig(t, f, t.TempDir())
			cfg.EventListen = listen
			cfg.SubscribeRenew = config.Default().SubscribeRenew
			d := openDaemon(t, f, cfg)
			aliceAndBob(t, f)
			if err := f.Restart(); err != nil {
				t.Fatal(err)
			}
			if n := len(f.Subscriptions(cfg.EventName)); n != 0 {
				t.Fatalf("%d subscriptions survived the restart", n)
			}
			// The next renewal (every event_renew, 4 s) subscribes again; the
			// bound leaves a loaded machine room beyond it.
			start := time.Now()
			bound := cfg.SubscribeRenew + 10*time.Second
			if err := f.WaitSubscribed(ctxTimeout(t, bound), cfg.EventName, d.Addrs().Events); err != nil {
				t.Fatalf("not subscribed again within %v of OpenSIPS's restart (event_renew %v): %v", bound, cfg.SubscribeRenew, err)
			}
			t.Logf("subscribed again %v after the restart", time.Since(start).Round(time.Millisecond))
			same(t, "after the restart", send(t, f, alice, room1, "back?", 1), bob+": <alice@example.com>: back?")
		})
	}
}
