package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

// Delivery end to end (issue 11): the real binary against the fake
// OpenSIPS, with members who never answer.

// metricSum adds the samples of metric name whose labels include every
// `k="v"` of with.
func metricSum(body, name string, with ...string) float64 {
	var sum float64
	for line := range strings.Lines(body) {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		labels := ""
		if rest[0] == '{' {
			end := strings.IndexByte(rest, '}')
			labels, rest = rest[1:end], rest[end+1:]
		}
		match := true
		for _, w := range with {
			if !strings.Contains(","+labels+",", ","+w+",") {
				match = false
			}
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64); err == nil && match {
			sum += v
		}
	}
	return sum
}

// lineNo reads the number of a "<user@host>: line N" body, -1 for another.
func lineNo(body string) int {
	_, n, ok := strings.Cut(body, ": line ")
	if !ok {
		return -1
	}
	i, err := strconv.Atoi(n)
	if err != nil {
		return -1
	}
	return i
}

// waitUsrlocSubscribed waits until p subscribed to the three usrloc
// events (usrloc_events = yes).
func waitUsrlocSubscribed(t *testing.T, f *opensipstest.Server, p *proc) {
	t.Helper()
	for _, ev := range []string{"E_UL_AOR_INSERT", "E_UL_CONTACT_INSERT", "E_UL_CONTACT_UPDATE"} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := f.WaitSubscribed(ctx, ev, p.events)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// waitUntil polls cond with a generous deadline.
func waitUntil(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDeadMembersRoom is the room of issue 11: 21 members, 10 of them
// registered at an address that never answers (408 after tm's fr_timeout,
// 4 s as measured), the sender posting 100 lines/s. The live members get
// their lines while the run lasts, not held up by the dead ones' 408s;
// each dead member gets
// nothing written beyond member_inflight while away; when one comes back
// (a usrloc registration) they are told how many lines they missed and
// get what was kept, in order; when all are back, every notice imcd took
// has ended in a counted result, none lost or failed.
func TestDeadMembersRoom(t *testing.T) {
	const (
		live, dead = 10, 10
		rate       = 100 // lines per second
		run        = 8 * time.Second
		memberQ    = 100
	)
	f := opensipstest.New(t, opensipstest.Options{FrTimeout: 4 * time.Second})
	// delivery_timeout must exceed fr_timeout (the harness's 3 s does not).
	p := startIMCD(t, f, procOpts{extra: []string{"rate_limit = 0", "fanout_limit = 0", "usrloc_events = yes", "delivery_timeout = 7s", "unreachable_retry = 5m",
		"unreachable_retry_max = 10m", "member_queue = " + strconv.Itoa(memberQ)}})
	waitUsrlocSubscribed(t, f, p)
	r := room1
	step(t, f, alice, "sip:chat-manager@127.0.0.1", r, "#create chat-1", want{to: alice, body: "*** room was created", reply: true})
	var liveURIs, deadURIs []string
	for i := range live + dead {
		u := fmt.Sprintf("sip:m%02d@127.0.0.1", i)
		if i < live {
			liveURIs = append(liveURIs, u)
		} else {
			deadURIs = append(deadURIs, u)
		}
		if _, err := f.Raise(opensipstest.NewEvent(u, r, "#join")); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "21 members", 20*time.Second, func() bool {
		return strings.Contains(p.mi(t, `{"jsonrpc":"2.0","method":"imc_list_members","params":{"room":"`+r+`"},"id":1}`), `"NO_MEMBERS":21`)
	})
	// The creation and the joins' notices: 1 + (2 + 3 + … + 21).
	const setup = 1 + (2+21)*20/2
	waitUntil(t, "the joins announced", 20*time.Second, func() bool {
		_, body := p.get("/metrics")
		return metricSum(body, "opensips_imc_delivery_results_total", `kind="delivered"`) == setup
	})
	for _, u := range deadURIs {
		f.SetNoAnswer(u)
	}
	f.Reset()

	// The run: 100 lines/s from alice.
	n := int(run.Seconds()) * rate
	tick := time.NewTicker(time.Second / rate)
	for i := range n {
		<-tick.C
		if _, err := f.Raise(opensipstest.NewEvent(alice, r, "line "+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	tick.Stop()
	atEnd := f.Deliveries()
	gotLive, gotDead := 0, 0
	isLive := map[string]bool{}
	for _, u := range liveURIs {
		isLive[u] = true
	}
	for _, d := range atEnd {
		if isLive[d.To] {
			gotLive++
		} else {
			gotDead++
		}
	}
	t.Logf("during the run: %d of %d live deliveries left imcd (%.2f %%); %d requests to the dead members",
		gotLive, n*live, 100*float64(gotLive)/float64(n*live), gotDead)
	// Held up by the dead members, the live ones would wait for their 408s
	// (fr_timeout, 4 s: half of the run). Not held up, they lag the sender
	// by imcd's own pace: well under 2 s even on a loaded machine (100 %
	// on a quiet one, 93 % with a load average of 8).
	if lag := n*live - gotLive; lag > 2*rate*live {
		t.Errorf("only %d of %d live deliveries left imcd during the run: %d behind, more than 2 s of lines", gotLive, n*live, lag)
	}
	// A dead member ties up member_inflight requests until its 408, then is
	// marked unreachable and nothing more is written to them.
	if max := dead * 4; gotDead > max {
		t.Errorf("%d requests written to dead members, at most %d expected (member_inflight 4 each)", gotDead, max)
	}

	// Every live member got every line, in order.
	waitUntil(t, "every live delivery", 20*time.Second, func() bool {
		c := 0
		for _, d := range f.Deliveries() {
			if isLive[d.To] {
				c++
			}
		}
		return c == n*live
	})
	next := map[string]int{}
	for _, d := range f.Deliveries() {
		if !isLive[d.To] {
			continue
		}
		if i := lineNo(d.Body); i != next[d.To] {
			t.Fatalf("%s got %q, want line %d", d.To, d.Body, next[d.To])
		}
		next[d.To]++
	}

	// The dead members are shown unreachable, memberQ kept each.
	waitUntil(t, "the dead members unreachable", 20*time.Second, func() bool {
		_, body := p.get("/metrics")
		return metricSum(body, "opensips_imc_members_unreachable") == dead && metricSum(body, "opensips_imc_delivery_kept") == dead*memberQ
	})
	status := p.mi(t, `{"jsonrpc":"2.0","method":"imc:member_status","params":{"room":"`+r+`"},"id":2}`)
	if !strings.Contains(status, `"NO_MEMBERS":21,"NO_UNREACHABLE":10}`) ||
		!strings.Contains(status, `{"URI":"`+deadURIs[0]+`","ROLE":"member","STATE":"unreachable"`) ||
		!strings.Contains(status, `"KEPT":100,"DROPPED":`+strconv.Itoa(n-memberQ)+`,"IN_FLIGHT":0}`) {
		t.Fatalf("imc:member_status:\n%s", status)
	}

	// One comes back: the missed count, then what was kept, in order.
	back := deadURIs[0]
	f.Reset()
	f.SetStatus(back, "200 OK")
	if err := f.Register(strings.TrimPrefix(back, "sip:"), "sip:m10@192.0.2.10:5060", time.Hour); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, back+" given what was kept", 20*time.Second, func() bool { return len(f.BodiesTo(back)) == 1+memberQ })
	got := f.BodiesTo(back)
	if want := fmt.Sprintf("*** you missed %d messages in this room while you could not be reached", n-memberQ); got[0] != want {
		t.Fatalf("%s first got %q, want %q", back, got[0], want)
	}
	for i, b := range got[1:] {
		if lineNo(b) != n-memberQ+i {
			t.Fatalf("%s got %q as kept line %d, want line %d", back, b, i, n-memberQ+i)
		}
	}

	// All come back: nothing is left, and every notice imcd took has one
	// counted end. The dropped ones were told to their members.
	for _, u := range deadURIs[1:] {
		f.SetStatus(u, "200 OK")
		if err := f.Register(strings.TrimPrefix(u, "sip:"), "sip:x@192.0.2.11:5060", time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	var body string
	waitUntil(t, "delivery to settle", 30*time.Second, func() bool {
		_, body = p.get("/metrics")
		return metricSum(body, "opensips_imc_delivery_queued") == 0 && metricSum(body, "opensips_imc_delivery_kept") == 0 &&
			metricSum(body, "opensips_imc_delivery_in_flight") == 0 && metricSum(body, "opensips_imc_members_unreachable") == 0
	})
	submitted := metricSum(body, "opensips_imc_delivery_submitted_total")
	results := metricSum(body, "opensips_imc_delivery_results_total")
	dropped := metricSum(body, "opensips_imc_delivery_results_total", `kind="dropped"`)
	if submitted != results {
		t.Errorf("%g notices submitted, %g ended:\n%s", submitted, results, grepMetrics(p, "opensips_imc_delivery"))
	}
	for _, k := range []string{"lost", "failed", "aborted"} {
		if v := metricSum(body, "opensips_imc_delivery_results_total", `kind="`+k+`"`); v != 0 {
			t.Errorf("%g notices %s", v, k)
		}
	}
	if want := float64(dead * (n - memberQ)); dropped != want {
		t.Errorf("%g notices dropped, want %g (each dead member's overflow)", dropped, want)
	}
	if v := metricSum(body, "opensips_imc_delivery_missed_notices_total", `kind="delivered"`); v != dead {
		t.Errorf("%g 'you missed' notices delivered, want one per dead member", v)
	}
}

// TestBusyRoomSheds: past delivery_room_queue, lines are refused whole at
// once and their sender told the room is busy (counted shed); what was
// admitted is delivered; nothing else happens to the refused lines.
func TestBusyRoomSheds(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	p := startIMCD(t, f, procOpts{extra: []string{"rate_limit = 0", "fanout_limit = 0", "delivery_room_queue = 16"}})
	r := room1
	step(t, f, alice, "sip:chat-manager@127.0.0.1", r, "#create chat-1", want{to: alice, body: "*** room was created", reply: true})
	step(t, f, bob, r, r, "#join",
		want{to: alice, body: "*** <" + bob + "> has joined the room"}, want{to: bob, body: "*** <" + bob + "> has joined the room", reply: true})
	f.SetDelay(bob, time.Second) // bob answers slowly: his lines pile up
	const n = 60
	f.Reset()
	for i := range n {
		if _, err := f.Raise(opensipstest.NewEvent(alice, r, "line "+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "each line delivered or refused", 30*time.Second, func() bool {
		return len(f.BodiesTo(bob))+len(f.BodiesTo(alice)) == n
	})
	busy := f.BodiesTo(alice)
	if len(busy) == 0 {
		t.Fatal("no line was refused")
	}
	for _, b := range busy {
		if b != "Room "+r+" is busy: your message was not sent; please send it again in a moment" {
			t.Fatalf("alice got %q", b)
		}
	}
	last := -1
	for _, b := range f.BodiesTo(bob) {
		if i := lineNo(b); i <= last {
			t.Fatalf("bob got %q after line %d", b, last)
		} else {
			last = i
		}
	}
	var body string
	waitUntil(t, "delivery to settle", 20*time.Second, func() bool {
		_, body = p.get("/metrics")
		return metricSum(body, "opensips_imc_delivery_queued") == 0 && metricSum(body, "opensips_imc_delivery_in_flight") == 0 &&
			metricSum(body, "opensips_imc_delivery_submitted_total") == metricSum(body, "opensips_imc_delivery_results_total")
	})
	if shed := metricSum(body, "opensips_imc_delivery_shed_total"); int(shed) != len(busy) {
		t.Errorf("%g notices shed, %d lines refused", shed, len(busy))
	}
	if v := metricSum(body, "opensips_imc_delivery_results_total", `kind="delivered"`); v != metricSum(body, "opensips_imc_delivery_submitted_total") {
		t.Errorf("not every admitted notice was delivered:\n%s", grepMetrics(p, "opensips_imc_delivery"))
	}
}
