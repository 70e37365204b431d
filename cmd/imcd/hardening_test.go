package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

// TestRateLimit: a sender over the limit is told once; the rest is dropped
// until the bucket refills.
func TestRateLimit(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	startIMCD(t, f, procOpts{extra: []string{"rate_limit = 2", "rate_burst = 4"}})
	r := room1
	step(t, f, alice, r, r, "#create chat-1", want{to: alice, body: "*** room was created", reply: true})
	step(t, f, bob, r, r, "#join",
		want{to: alice, body: "*** <" + bob + "> has joined the room"}, want{to: bob, body: "*** <" + bob + "> has joined the room", reply: true})
	f.Reset()
	for i := 0; i < 12; i++ {
		if _, err := f.Raise(opensipstest.NewEvent(bob, r, fmt.Sprintf("spam %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := f.WaitDeliveries(ctx, 4); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	var relayed, told int
	for _, d := range f.Deliveries() {
		switch {
		case d.To == alice && strings.HasPrefix(d.Body, "<bob@127.0.0.1>: spam "):
			relayed++
		case d.To == bob && d.Body == imc.TxtRateLimited:
			told++
		default:
			t.Errorf("unexpected %s: %q", d.To, d.Body)
		}
	}
	// bob's join used one token of the burst of 4; a few more may have
	// refilled at 2/s while the lines were raised.
	if relayed < 3 || relayed > 5 || told != 1 {
		t.Fatalf("relayed %d (want 3 to 5), told %d times (want once)", relayed, told)
	}
	time.Sleep(1100 * time.Millisecond)
	step(t, f, bob, r, r, "slower now", want{to: alice, body: "<bob@127.0.0.1>: slower now", ctype: "text/plain;charset=UTF-8"})
}

// TestDuplicateEvent: the same MESSAGE raised twice (same Call-ID, CSeq and
// From tag) is applied once.
func TestDuplicateEvent(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	startIMCD(t, f, procOpts{})
	ev := opensipstest.NewEvent(alice, room1, "#create chat-1")
	f.Reset()
	for i := 0; i < 2; i++ {
		if _, err := f.Raise(ev); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := f.WaitDeliveries(ctx, 1); err != nil {
		t.Fatal(err)
	}
	// A second copy applied would answer "already a member" by now.
	time.Sleep(300 * time.Millisecond)
	if ds := f.Deliveries(); len(ds) != 1 || ds[0].Body != "*** room was created" {
		t.Fatalf("deliveries: %v", summarize(ds))
	}
	// A new transaction (next CSeq) is not a duplicate.
	ev.CSeq = "2"
	stepEvent(t, f, ev, room1, want{to: alice, body: "You are already a member of " + room1, reply: true})
}

// TestHeaderInjection sends hostile values in every event param through the
// real daemon: no t_uac_dlg may carry a header imcd did not write, or a
// control byte, backslash or URI break-out in one it did.
func TestHeaderInjection(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	p := startIMCD(t, f, procOpts{extra: []string{"rate_limit = 0"}})
	r := room1
	step(t, f, alice, r, r, "#create chat-1", want{to: alice, body: "*** room was created", reply: true})
	step(t, f, bob, r, r, "#join",
		want{to: alice, body: "*** <" + bob + "> has joined the room"}, want{to: bob, body: "*** <" + bob + "> has joined the room", reply: true})
	f.Reset()

	evil := []string{
		"\r\nX-Injected: 1", "\nX-Injected: 1", "\rX-Injected: 1", `\r\nX-Injected: 1`, "%0d%0aX-Injected: 1",
		"\x00X-Injected: 1", ">;x=1\r\nX-Injected: 1", "a>b", "a;b", "a\"b", "a\\b", "a b", "\u2028X-Injected: 1",
		strings.Repeat("A", 300), "sip:x@h>\r\nX-Injected: 1",
	}
	var events []opensipstest.Event
	for _, e := range evil {
		for _, cmd := range []string{"#invite ", "#add ", "#remove ", "#modify ", "#join ", "#create ", "#list ", "#foo"} {
			events = append(events, opensipstest.NewEvent(alice, r, cmd+e))
		}
		ev := opensipstest.NewEvent(alice, r, "chat "+e) // body: allowed anything, goes only in body
		ev.CType = "text/plain" + e
		events = append(events, ev)
		ev = opensipstest.NewEvent(alice, r, "#list")
		ev.CallID = "cid" + e
		events = append(events, ev)
		ev = opensipstest.NewEvent("sip:al"+e+"@127.0.0.1", r, "#join") // unusable senders are refused
		events = append(events, ev)
		ev = opensipstest.NewEvent(alice, "sip:chat-1"+e+"@127.0.0.1", "#help")
		events = append(events, ev)
		ev = opensipstest.NewEvent(alice, r, "#help")
		ev.To = "sip:chat-1@127.0.0.1" + e
		events = append(events, ev)
	}
	for _, ev := range events {
		if _, err := f.Raise(ev); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := f.WaitDeliveries(ctx, len(evil)*8); err != nil {
		t.Fatalf("%v: refusals must be answered", err)
	}
	time.Sleep(300 * time.Millisecond)
	ds := f.Deliveries()
	if len(ds) < len(evil)*8 {
		t.Fatalf("only %d deliveries for %d hostile events: refusals must be answered", len(ds), len(events))
	}
	allowed := map[string]bool{"From": true, "To": true, "Content-Type": true, "In-Reply-To": true}
	for _, d := range ds {
		for _, fld := range d.Fields {
			if !allowed[fld.Name] {
				t.Errorf("injected header %q: %q (headers %q)", fld.Name, fld.Value, d.Headers)
			}
			for i := 0; i < len(fld.Value); i++ {
				if c := fld.Value[i]; c < 0x20 || c == 0x7f || c == '\\' {
					t.Errorf("byte 0x%02x in header %s: %q", c, fld.Name, fld.Value)
				}
			}
		}
		for _, u := range []string{d.From, d.To, d.RURI} {
			if _, err := imc.ParseURI(u); err != nil || strings.ContainsAny(u, "<>;\" ") {
				t.Errorf("unsafe URI %q in a t_uac_dlg", u)
			}
		}
		if strings.Contains(d.Headers, "X-Injected") {
			t.Errorf("headers carry the payload: %q", d.Headers)
		}
	}
	if code, _ := p.get("/healthz"); code != 200 {
		t.Fatal("imcd died")
	}
}

// TestEventStreamCutMidFrame: a connection closed in the middle of an
// event loses that event only; the next connection works.
func TestEventStreamCutMidFrame(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	p := startIMCD(t, f, procOpts{})
	ev := opensipstest.NewEvent(alice, room1, "#create chat-1")
	frame := ev.AppendJSON(nil, "E_IMC_MESSAGE", 0, "")
	c, err := net.Dial("tcp", strings.TrimPrefix(p.events, "tcp:"))
	if err != nil {
		t.Fatal(err)
	}
	c.Write(frame[:len(frame)/2])
	time.Sleep(50 * time.Millisecond)
	c.Close()
	time.Sleep(100 * time.Millisecond)
	if ds := f.Deliveries(); len(ds) != 0 {
		t.Fatalf("half a frame was applied: %v", summarize(ds))
	}
	step(t, f, alice, room1, room1, "#create chat-1", want{to: alice, body: "*** room was created", reply: true})
}

// TestOpenSIPSMIDownAndBack: with OpenSIPS's MI gone, deliveries fail fast
// and are counted, imcd stays healthy; when it is back, what waited is sent
// and service resumes by itself.
func TestOpenSIPSMIDownAndBack(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	p := startIMCD(t, f, procOpts{extra: []string{"rate_limit = 0"}})
	r := room1
	step(t, f, alice, r, r, "#create chat-1", want{to: alice, body: "*** room was created", reply: true})
	f.Down()
	for i := 0; i < 20; i++ {
		// The events come over the already open event_stream connection.
		f.RaiseRaw(p.events, func() []byte {
			e := opensipstest.NewEvent(alice, r, "#list")
			return e.AppendJSON(nil, "E_IMC_MESSAGE", 0, "")
		}())
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		failed := p.metric(t, `opensips_imc_deliveries_total{status="unreachable"}`) + p.metric(t, `opensips_imc_deliveries_total{status="timeout"}`)
		if failed >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries with OpenSIPS down not counted:\n%s", grepMetrics(p, "opensips_imc_deliveries_total"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, _ := p.get("/healthz"); code != 200 {
		t.Fatal("imcd unhealthy while OpenSIPS is down")
	}
	f.Reset()
	if err := f.Up(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.WaitSubscribed(ctx, "E_IMC_MESSAGE", p.events); err != nil {
		t.Fatal(err)
	}
	// The 20 replies waited for OpenSIPS (an endpoint that does not answer
	// only gets a probe now and then): none is lost.
	ds, err := f.WaitDeliveries(ctx, 20)
	if err != nil {
		t.Fatalf("replies made while OpenSIPS was down: %v (got %d)", err, len(f.Deliveries()))
	}
	for _, d := range ds {
		if d.To != alice || !strings.HasPrefix(d.Body, "Members:") {
			t.Fatalf("unexpected delivery %s: %q", d.To, d.Body)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(f.Deliveries()); n != 20 {
		t.Fatalf("%d deliveries, want the 20 replies once each", n)
	}
	step(t, f, bob, r, r, "#join",
		want{to: alice, body: "*** <" + bob + "> has joined the room"}, want{to: bob, body: "*** <" + bob + "> has joined the room", reply: true})
}

// TestSIGKILLKeepsWhatWasAcknowledged: imcd killed outright during a
// command storm loses nothing it acknowledged (write-through).
func TestSIGKILLKeepsWhatWasAcknowledged(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{Reliable: true})
	dir := t.TempDir()
	for round := 0; round < 3; round++ {
		// Flood control and the room policy off: the storm is one user's
		// thousands of rooms named kR-N.
		p := startIMCD(t, f, procOpts{dir: dir, extra: []string{"rate_limit = 0", "fanout_limit = 0", "max_rooms_per_user = 0", `room_prefix = ""`}})
		var acked []string
		// Killed at a random moment once the storm is under way, from another
		// goroutine, so that it may land in the middle of a commit.
		killed := make(chan struct{})
		arm := func() {
			go func() {
				time.Sleep(time.Duration(10+rand.IntN(60)) * time.Millisecond)
				p.Signal(syscall.SIGKILL)
				close(killed)
			}()
		}
		for i := 0; i < 4000; i++ {
			name := fmt.Sprintf("k%d-%d", round, i)
			// The killed imcd of the previous round is still subscribed (as
			// with a real OpenSIPS, until its expire): only the live one's
			// reply counts.
			replies, _ := f.Raise(opensipstest.NewEvent(alice, "sip:chat-manager@127.0.0.1", "#create "+name))
			live := false
			for _, rp := range replies {
				if rp.Socket == p.events {
					live = rp.Err == nil
					if string(rp.Raw) == fmt.Sprintf(`{"jsonrpc":"2.0","result":"OK","id":%d}`, rp.ID) {
						acked = append(acked, name)
						if len(acked) == 1 {
							arm()
						}
					}
				}
			}
			if !live {
				break
			}
		}
		if len(acked) == 0 {
			t.Fatalf("round %d: no command acknowledged at all", round)
		}
		<-killed
		<-p.Exited()
		p2 := startIMCD(t, f, procOpts{dir: dir})
		body := p2.mi(t, `{"jsonrpc":"2.0","method":"imc_list_members","params":{"room":"sip:`+acked[len(acked)-1]+`@127.0.0.1"},"id":1}`)
		if !strings.Contains(body, `"NO_MEMBERS":1`) {
			t.Fatalf("round %d: last acknowledged room %s missing after SIGKILL: %s", round, acked[len(acked)-1], body)
		}
		for _, n := range acked {
			if got := p2.mi(t, `{"jsonrpc":"2.0","method":"imc_list_members","params":{"room":"sip:`+n+`@127.0.0.1"},"id":2}`); strings.Contains(got, "error") {
				t.Fatalf("round %d: acknowledged room %s lost: %s", round, n, got)
			}
		}
		p2.stop()
		t.Logf("round %d: %d acknowledged before SIGKILL, all present", round, len(acked))
	}
}

// TestOverload floods imcd far past what it can deliver for a while (30 s,
// IMCD_OVERLOAD_SECONDS to change): memory stays bounded by its queues,
// /healthz answers throughout, and afterwards a command is answered at
// once again.
func TestOverload(t *testing.T) {
	secs := 30
	if s, err := strconv.Atoi(os.Getenv("IMCD_OVERLOAD_SECONDS")); err == nil {
		secs = s
	}
	if testing.Short() {
		secs = 3
	}
	f := opensipstest.New(t, opensipstest.Options{})
	p := startIMCD(t, f, procOpts{transport: "datagram", extra: []string{"rate_limit = 0", "fanout_limit = 0", "delivery_queue = 20000", "shard_queue = 1024"}})
	r := room1
	step(t, f, alice, r, r, "#create chat-1", want{to: alice, body: "*** room was created", reply: true})
	for i := 0; i < 9; i++ {
		ev := opensipstest.NewEvent(fmt.Sprintf("sip:m%d@127.0.0.1", i), r, "#join")
		f.Raise(ev)
	}
	time.Sleep(300 * time.Millisecond)

	conn, err := net.Dial("udp", strings.TrimPrefix(p.events, "udp:"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Every event its own Call-ID: repeats would be dropped as duplicates.
	flood := opensipstest.NewEvent(alice, r, strings.Repeat("flood ", 100))
	var frame []byte
	stop := time.Now().Add(time.Duration(secs) * time.Second)
	var sent, maxRSS int
	healthFails := 0
	lastCheck := time.Now()
	for time.Now().Before(stop) {
		for i := 0; i < 200; i++ {
			flood.CallID = "ovl-" + strconv.Itoa(sent)
			frame = flood.AppendJSON(frame[:0], "E_IMC_MESSAGE", 0, "")
			conn.Write(frame)
			sent++
		}
		if time.Since(lastCheck) > 250*time.Millisecond {
			lastCheck = time.Now()
			f.Reset() // the fake's own recording is not what is measured
			if code, _ := p.get("/healthz"); code != 200 {
				healthFails++
			}
			if rss := rssKB(p.Pid()); rss > maxRSS {
				maxRSS = rss
			}
		}
	}
	t.Logf("offered %d events in %ds (%d/s); peak RSS %d MB; %s", sent, secs, sent/secs, maxRSS/1024,
		strings.ReplaceAll(grepMetrics(p, "opensips_imc_events_total"), "\n", "; "))
	if healthFails > 0 {
		t.Errorf("/healthz failed %d times under overload", healthFails)
	}
	const limitMB = 400
	if maxRSS/1024 > limitMB {
		t.Errorf("peak RSS %d MB over the %d MB bound", maxRSS/1024, limitMB)
	}
	if p.metric(t, `opensips_imc_events_total{result="busy",transport="datagram"}`) == 0 && p.metric(t, `opensips_imc_delivery_shed_total`) == 0 {
		t.Errorf("the flood never filled a queue: not an overload")
	}
	// Recovery: once the queues drain, a command is answered promptly.
	deadline := time.Now().Add(30 * time.Second)
	for {
		f.Reset()
		ev := opensipstest.NewEvent(bob, r, "#list")
		conn.Write(ev.AppendJSON(nil, "E_IMC_MESSAGE", 0, ""))
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		var found bool
		for !found && ctx.Err() == nil { // deliveries of the flood may go on arriving: WaitDeliveries alone would not end
			if _, err := f.WaitDeliveries(ctx, 1); err != nil {
				break
			}
			for _, d := range f.Deliveries() {
				found = found || d.To == bob
			}
			if !found {
				time.Sleep(10 * time.Millisecond)
			}
		}
		cancel()
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("imcd did not recover within 30s of the flood")
		}
	}
}

func rssKB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			n, _ := strconv.Atoi(strings.Fields(l)[1])
			return n
		}
	}
	return 0
}
