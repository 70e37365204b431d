package main

// Order and exactly-once at a member, through the real OpenSIPS (issue 21,
// "How it is shown"): the bursts imcd itself makes (catch-up, history on
// join, a backlog replayed at start, redeliveries after a broker restart
// or a failover) and one sender's burst, each line numbered and the
// sequence each member received compared with the order the room
// accepted. A line is what a member answered 200; a retransmission (the
// same Call-ID and CSeq) is one line (sipua).

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/internal/imcdproc"
	"github.com/imcd-sip/imcd/internal/opensipsproc"
	"github.com/imcd-sip/imcd/internal/sipua"
	"github.com/imcd-sip/imcd/internal/testbroker"
	"github.com/imcd-sip/imcd/internal/testbroker/feed"
)

// orderRoom is the room of these tests; the fragments route sip:chat-*.
const orderRoom = "chat-1"

func roomURI(room string) string { return "sip:" + room + "@127.0.0.1" }

// line is the body of line i of a run tagged tag; pad makes it long, so
// that a history or catch-up of several lines takes several MESSAGEs.
func line(tag string, i int, pad int) string {
	return fmt.Sprintf("%s#%03d %s", tag, i, strings.Repeat("x", pad))
}

// numbered returns the numbers of tag's lines user received from room and
// answered 200, in the order they arrived: several per MESSAGE in a
// history or a catch-up. keep, when set, chooses the lines of a body to
// count (history entries start with "[time]", live lines with
// "<sender>").
func (l *realLab) numbered(user, room, tag string, keep func(text string) bool) []int {
	re := regexp.MustCompile(regexp.QuoteMeta(tag) + `#(\d+)`)
	var out []int
	for _, m := range l.ua.MessagesTo(user) {
		if m.Code != 200 || !strings.Contains(m.From, roomURI(room)) {
			continue
		}
		for text := range strings.Lines(m.Body) {
			if keep != nil && !keep(text) {
				continue
			}
			for _, sm := range re.FindAllStringSubmatch(text, -1) {
				n, _ := strconv.Atoi(sm[1])
				out = append(out, n)
			}
		}
	}
	return out
}

func live(text string) bool    { return strings.HasPrefix(text, "<") }
func history(text string) bool { return strings.HasPrefix(text, "[") }

// upTo is 0 … n-1.
func upTo(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// seqDiff describes how got differs from want: lengths, the first
// position that differs, numbers repeated, missing, and adjacent pairs
// out of order.
func seqDiff(got, want []int) string {
	first := -1
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			first = i
			break
		}
	}
	if first < 0 && len(got) != len(want) {
		first = min(len(got), len(want))
	}
	count := map[int]int{}
	for _, n := range got {
		count[n]++
	}
	var dups, missing, swaps []int
	for n, c := range count {
		if c > 1 {
			dups = append(dups, n)
		}
	}
	for _, n := range want {
		if count[n] == 0 {
			missing = append(missing, n)
		}
	}
	for i := 1; i < len(got); i++ {
		if got[i] < got[i-1] {
			swaps = append(swaps, got[i-1], got[i])
		}
	}
	slices.Sort(dups)
	slices.Sort(missing)
	around := got[max(first-3, 0):min(first+5, len(got))]
	return fmt.Sprintf("%d lines, want %d; first difference at %d (got around it %v); repeated %v; missing %v; pairs out of order %v",
		len(got), len(want), first, around, dups, missing, swaps)
}

// checkExact fails the test unless got is want.
func checkExact(t *testing.T, who string, got, want []int) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s did not get every line once in the room's order: %s", who, seqDiff(got, want))
	}
}

// settled waits until each imcd has nothing of its own queued or in
// flight and no member away: what it will deliver has arrived.
func settled(t *testing.T, ps ...*imcdproc.Proc) {
	t.Helper()
	for _, p := range ps {
		waitUntil(t, "delivery settled", 60*time.Second, func() bool {
			m := p.Metrics()
			return metricSum(m, "opensips_imc_delivery_queued") == 0 && metricSum(m, "opensips_imc_delivery_in_flight") == 0 &&
				metricSum(m, "opensips_imc_members_unreachable") == 0 && metricSum(m, "opensips_imc_delivery_kept") == 0
		})
	}
}

// waitLines waits until every user has received at least n of tag's
// numbers from room (keep as for numbered).
func (l *realLab) waitLines(room, tag string, n int, keep func(string) bool, users ...string) {
	l.t.Helper()
	for _, u := range users {
		if !waitFor(120*time.Second, func() bool { return len(l.numbered(u, room, tag, keep)) >= n }) {
			l.t.Fatalf("%s got %d of %d lines of %s within 120s: %v\nall they got: %s", u, len(l.numbered(u, room, tag, keep)), n, room,
				l.numbered(u, room, tag, keep), bodies(l.ua.MessagesTo(u)))
		}
	}
}

// openRoom creates room as owner and joins the others to it, waiting for
// each to be told.
func (l *realLab) openRoom(room, owner string, members ...string) {
	l.t.Helper()
	l.send(owner, roomURI(room), "#create "+room)
	l.expect(owner, room, "room was created", 0)
	for _, m := range members {
		l.send(m, roomURI(room), "#join")
		l.expect(m, room, "<sip:"+m+"@127.0.0.1> has joined", 0)
	}
}

// say sends lines from … to-1 of tag from user to room, each accepted
// (202) before the next is sent: the room accepts them in that order.
func (l *realLab) say(user, room, tag string, from, to, pad int) {
	l.t.Helper()
	for i := from; i < to; i++ {
		l.send(user, roomURI(room), line(tag, i, pad))
	}
}

// post sends body from user to room until OpenSIPS accepts it (202). A
// 500 (OpenSIPS could not publish it: the broker is away) is sent again,
// as the fragment tells the sender to, for at most two minutes; it
// returns how many times it was refused.
func (l *realLab) post(user, room, body string) (refused int, err error) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		code, err := l.ua.Do(ctx, l.os.SIP, &sipua.Request{RURI: roomURI(room), From: "sip:" + user + "@127.0.0.1", Body: body})
		cancel()
		switch {
		case err != nil:
			return refused, err
		case code == 202:
			return refused, nil
		case code != 500 || time.Now().After(deadline):
			return refused, fmt.Errorf("%q from %s: %d after %d refusals", body, user, code, refused)
		}
		refused++
		time.Sleep(50 * time.Millisecond) // the sender's pace of retries, not a timed assertion
	}
}

// stream sends lines 0 … n-1 of tag from user to room in the background,
// one accepted before the next (post); done is closed when it is over.
// end, when called, makes it stop earlier: after more lines.
type stream struct {
	done    chan struct{}
	sent    atomic.Int64
	limit   atomic.Int64
	refused int
	err     error
}

func (l *realLab) stream(user, room, tag string, n int) *stream {
	s := &stream{done: make(chan struct{})}
	s.limit.Store(int64(n))
	go func() {
		defer close(s.done)
		for i := 0; int64(i) < s.limit.Load(); i++ {
			r, err := l.post(user, room, line(tag, i, 0))
			s.refused += r
			if err != nil {
				s.err = err
				return
			}
			s.sent.Add(1)
		}
	}()
	return s
}

// end makes the stream stop after more lines from now, and returns how
// many it will have sent.
func (s *stream) end(more int) int {
	n := s.sent.Load() + int64(more)
	s.limit.Store(n)
	return int(n)
}

// wait waits for the stream's end and fails the test if a line was not
// accepted.
func (s *stream) wait(t *testing.T) {
	t.Helper()
	<-s.done
	if s.err != nil {
		t.Fatalf("after %d lines: %v", s.sent.Load(), s.err)
	}
}

// needOpenSIPS skips the test, as startLab does, without a real OpenSIPS.
func needOpenSIPS(t *testing.T) {
	if os.Getenv(opensipsproc.EnvBinary) == "" {
		t.Skip("no real OpenSIPS: set " + opensipsproc.EnvBinary + " to …/sbin/opensips of an unpacked build (scripts/test.sh does when it finds one)")
	}
}

// orderLines are imcd's settings these tests share: no flood control in
// the way of a burst, and a member away stays away until they register
// again (usrloc events), not found back by a probe meanwhile.
var orderLines = []string{"rate_limit = 0", "fanout_limit = 0", "usrloc_events = yes", "usrloc_domain = 127.0.0.1",
	"unreachable_retry = 1h", "unreachable_retry_max = 1h"}

// TestRealOpenSIPSOrderCatchUp: bob is away while alice says 50 lines;
// when he registers again he gets all 50, in order, once. Away two ways:
// unregistered (OpenSIPS answers imcd 404) with the history off, so that
// the 50 notices kept for him are sent; and registered but answering 480
// with the history on and member_queue 10, so that 40 of them are
// dropped and come back from the history as a catch-up (several MESSAGEs
// of several lines each), followed by the 10 kept.
func TestRealOpenSIPSOrderCatchUp(t *testing.T) {
	const n, tag = 50, "catchup"
	for _, c := range []struct {
		name     string
		declined bool // away by answering 480, not by unregistering
		imcd     []string
	}{
		{"unregistered-kept", false, []string{"history = off"}},
		{"480-history", true, []string{"history = on", "member_queue = 10", "catchup_max = 50"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var away atomic.Bool
			l := startLab(t, labOpts{users: []string{"alice", "bob", "carol"}, imcd: append(slices.Clone(orderLines), c.imcd...),
				answer: func(user string) int {
					if user == "bob" && away.Load() {
						return 480
					}
					return 200
				}})
			l.openRoom(orderRoom, "alice", "bob", "carol")
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if c.declined {
				away.Store(true)
			} else if err := l.ua.Register(ctx, l.os.SIP, "bob", "127.0.0.1", 0); err != nil {
				t.Fatal(err)
			}
			l.say("alice", orderRoom, tag, 0, n, 100)
			l.waitLines(orderRoom, tag, n, nil, "carol")
			waitUntil(t, "bob away, nothing in flight", 60*time.Second, func() bool {
				m := l.imcd.Metrics()
				return metricSum(m, "opensips_imc_members_unreachable") == 1 && metricSum(m, "opensips_imc_delivery_in_flight") == 0 &&
					metricSum(m, "opensips_imc_delivery_queued") == 0
			})
			if got := l.numbered("bob", orderRoom, tag, nil); len(got) != 0 {
				t.Fatalf("bob, away, got lines %v", got)
			}

			away.Store(false)
			if err := l.ua.Register(ctx, l.os.SIP, "bob", "127.0.0.1", time.Hour); err != nil {
				t.Fatal(err)
			}
			l.waitLines(orderRoom, tag, n, nil, "bob")
			settled(t, l.imcd)
			checkExact(t, "bob, back", l.numbered("bob", orderRoom, tag, nil), upTo(n))
			checkExact(t, "carol, present", l.numbered("carol", orderRoom, tag, nil), upTo(n))
			m := l.imcd.Metrics()
			caught := metricSum(m, "opensips_imc_catchup_lines_total")
			if c.declined && caught != n-10 {
				t.Errorf("%v lines came from the history, want %d (those over member_queue)", caught, n-10)
			}
			if !c.declined && caught != 0 {
				t.Errorf("%v lines came from the history, which is off", caught)
			}
			t.Logf("%v lines from the history; %d retransmissions from OpenSIPS absorbed", caught, l.ua.Retransmits())
		})
	}
}

// TestRealOpenSIPSOrderHistoryOnJoin: a room has 40 lines when carol
// joins; she gets them as the history on join (several MESSAGEs), then
// the 20 alice says next, all 60 in order, once; bob, there all along,
// gets the same 60.
func TestRealOpenSIPSOrderHistoryOnJoin(t *testing.T) {
	const before, after, tag = 40, 20, "joined"
	l := startLab(t, labOpts{users: []string{"alice", "bob", "carol"},
		imcd: append(slices.Clone(orderLines), "history = on", "history_on_join = 40")})
	l.openRoom(orderRoom, "alice", "bob")
	l.say("alice", orderRoom, tag, 0, before, 100)
	l.send("carol", roomURI(orderRoom), "#join")
	l.say("alice", orderRoom, tag, before, before+after, 100)
	l.waitLines(orderRoom, tag, before+after, nil, "bob", "carol")
	settled(t, l.imcd)
	checkExact(t, "carol, who joined", l.numbered("carol", orderRoom, tag, nil), upTo(before+after))
	checkExact(t, "bob", l.numbered("bob", orderRoom, tag, nil), upTo(before+after))
	if got := l.numbered("carol", orderRoom, tag, history); !slices.Equal(got, upTo(before)) {
		t.Errorf("carol's history on join: %s", seqDiff(got, upTo(before)))
	}
	messages := 0
	for _, m := range l.ua.MessagesTo("carol") {
		if strings.HasPrefix(m.Body, "[") || strings.Contains(m.Body, "\n[") {
			messages++
		}
	}
	if messages < 3 {
		t.Errorf("the history came in %d MESSAGEs: the test shows no order between them", messages)
	}
}

// TestRealOpenSIPSOrderBurst: alice sends 300 lines at once (without
// waiting for each 202, so OpenSIPS's workers decide the order the room
// accepts them in). bob and carol get the same 300, once each, in the
// order the room accepted them: the order its history keeps (#history
// 300). On both event transports, and through a socket of one worker
// with several lines in flight to each member (proxy_in_order).
func TestRealOpenSIPSOrderBurst(t *testing.T) {
	const n, tag = 300, "burst"
	for _, c := range []struct {
		name, transport string
		ordered         bool
	}{{"stream", "stream", false}, {"datagram", "datagram", false}, {"ordered", "stream", true}} {
		t.Run(c.name, func(t *testing.T) {
			l := startLab(t, labOpts{transport: c.transport, ordered: c.ordered, users: []string{"alice", "bob", "carol"},
				imcd: append(slices.Clone(orderLines), "history = on", "history_max = 300", "history_on_join = 0")})
			l.openRoom(orderRoom, "alice", "bob", "carol")
			for i := range n {
				if err := l.ua.Send(l.os.SIP, &sipua.Request{RURI: roomURI(orderRoom), From: "sip:alice@127.0.0.1", Body: line(tag, i, 0)}); err != nil {
					t.Fatal(err)
				}
			}
			waitUntil(t, "every line answered", 120*time.Second, func() bool {
				codes, _, timedOut := l.ua.Responses()
				var answered int64
				for _, c := range codes {
					answered += c
				}
				return answered+timedOut >= n
			})
			if codes, unsent, timedOut := l.ua.Responses(); codes[202] != n {
				t.Fatalf("OpenSIPS accepted %d of %d lines (answers %v, %d unsent, %d unanswered)", codes[202], n, codes, unsent, timedOut)
			}
			l.waitLines(orderRoom, tag, n, live, "bob", "carol")
			settled(t, l.imcd)

			l.send("bob", roomURI(orderRoom), "#history 300")
			l.waitLines(orderRoom, tag, n, history, "bob")
			accepted := l.numbered("bob", orderRoom, tag, history)
			if sorted := slices.Sorted(slices.Values(accepted)); !slices.Equal(sorted, upTo(n)) {
				t.Fatalf("the room's history is not every line once: %s", seqDiff(sorted, upTo(n)))
			}
			checkExact(t, "bob", l.numbered("bob", orderRoom, tag, live), accepted)
			checkExact(t, "carol", l.numbered("carol", orderRoom, tag, live), accepted)
			t.Logf("the room accepted %d of %d lines elsewhere than alice sent them; %d retransmissions from OpenSIPS absorbed", moved(accepted), n, l.ua.Retransmits())
		})
	}
}

// rabbitLab is a lab in RabbitMQ mode: OpenSIPS with
// scripts/opensips/imcd-rabbitmq.cfg publishing to r's exchange on r's
// broker; imcd is started by the test (startIMCD) with orderLines and
// more.
//
// Each OpenSIPS worker publishes on a connection of its own, without
// publisher confirms: lines of one sender, each sent after the last one's
// 202, may reach the queue in another order (3 pairs of 30 swapped in a
// trial). The order the room accepts is the queue's, which these tests
// learn from the room's history (#history) or compare between members.
func rabbitLab(t *testing.T, r *feed.Feed, more []string, users ...string) *realLab {
	t.Helper()
	uri := strings.TrimSuffix(r.URL, "/") // event_rabbitmq takes no vhost path for the default one
	return startLab(t, labOpts{users: users, fragment: "imcd-rabbitmq.cfg", later: true,
		params: map[string]string{"event_rabbitmq/server_id": `"[imcd] uri = ` + uri + `; exchange = ` + r.Topology.Exchange + `; retries = 1"`},
		imcd: append(append(slices.Clone(orderLines), "event_source = rabbitmq", "rabbitmq_url = "+r.URL,
			"rabbitmq_exchange = "+r.Topology.Exchange, "rabbitmq_queue_prefix = "+r.Prefix, "rabbitmq_shards = 1",
			"rabbitmq_heartbeat = 1s"), more...)})
}

// accepted asks the room's history for its last n lines as user and
// returns their numbers: the order the room accepted tag's lines in.
func (l *realLab) accepted(user, room, tag string, want int) []int {
	l.t.Helper()
	// Asked again when no answer comes: in RabbitMQ mode an OpenSIPS
	// worker's first publish after a broker restart may be written to
	// its dead connection and lost.
	asked := false
	for range 6 {
		l.send(user, roomURI(room), "#history "+strconv.Itoa(want))
		if asked = waitFor(10*time.Second, func() bool { return len(l.numbered(user, room, tag, history)) > 0 }); asked {
			break
		}
	}
	if !asked {
		l.t.Fatalf("%s never got the history of %s", user, room)
	}
	var got []int
	waitUntil(l.t, "the history settled", 60*time.Second, func() bool {
		again := l.numbered(user, room, tag, history)
		same := slices.Equal(again, got) && len(got) > 0
		got = again
		return same
	})
	return got
}

// sameOrder fails the test when two members got two lines in opposite
// orders, or a line twice; either may miss lines the other got.
func sameOrder(t *testing.T, a, b []int) {
	t.Helper()
	pos := map[int]int{}
	for i, v := range b {
		pos[v] = i
	}
	last := -1
	for _, v := range a {
		p, ok := pos[v]
		if !ok {
			continue
		}
		if p <= last {
			t.Errorf("two members got lines in different orders:\n %v\n %v", a, b)
			return
		}
		last = p
	}
}

// twice returns the numbers seq holds more than once.
func twice(seq []int) []int {
	seen := map[int]bool{}
	var out []int
	for _, v := range seq {
		if seen[v] {
			out = append(out, v)
		}
		seen[v] = true
	}
	return out
}

// TestRealOpenSIPSOrderRabbitMQBacklog: 100 lines said through OpenSIPS
// while imcd is stopped wait in the queue; imcd started again applies
// them, and bob and carol get all 100, once, in the order the room
// accepted them (its history's).
func TestRealOpenSIPSOrderRabbitMQBacklog(t *testing.T) {
	const n, tag = 100, "backlog"
	r := feed.New(t, testbroker.URL(t), 1, true)
	l := rabbitLab(t, r, []string{"history = on", "history_on_join = 0"}, "alice", "bob", "carol")
	dir := t.TempDir()
	p := l.startIMCD(dir)
	l.openRoom(orderRoom, "alice", "bob", "carol")
	if code, err := p.Stop(15 * time.Second); code != 0 || err != nil {
		t.Fatalf("imcd stopped with %d: %v", code, err)
	}
	l.say("alice", orderRoom, tag, 0, n, 0)
	// OpenSIPS's workers publish after their 202s.
	if !waitFor(60*time.Second, func() bool { return r.Ready() == n }) {
		t.Fatalf("%d messages queued, want %d", r.Ready(), n)
	}
	p = l.startIMCD(dir)
	l.waitLines(orderRoom, tag, n, live, "bob", "carol")
	settled(t, p)
	order := l.accepted("bob", orderRoom, tag, n)
	if sorted := slices.Sorted(slices.Values(order)); !slices.Equal(sorted, upTo(n)) {
		t.Fatalf("the room's history is not every line once: %s", seqDiff(sorted, upTo(n)))
	}
	checkExact(t, "bob", l.numbered("bob", orderRoom, tag, live), order)
	checkExact(t, "carol", l.numbered("carol", orderRoom, tag, live), order)
	waitUntil(t, "the queue emptied", 30*time.Second, func() bool { return r.Ready() == 0 })
	t.Logf("the queue held %d of %d lines elsewhere than alice sent them", moved(order), n)
}

// moved counts the places where seq is not 0, 1, 2, …
func moved(seq []int) int {
	n := 0
	for i, v := range seq {
		if v != i {
			n++
		}
	}
	return n
}

// TestRealOpenSIPSOrderRabbitMQBrokerRestart: the broker (a node of the
// test's own) restarts while alice says lines, until 100 after it is back; OpenSIPS answers 500
// while it is away and alice sends those lines again. bob and carol get
// what the room accepted (its history), once, in its order. A line
// OpenSIPS wrote to the broker's socket as it died (event_rabbitmq has no
// publisher confirms) is in neither, and is counted.
func TestRealOpenSIPSOrderRabbitMQBrokerRestart(t *testing.T) {
	const tag = "restart"
	needOpenSIPS(t) // before the broker node, which takes a while to start
	pb := startPrivateBroker(t)
	r := feed.New(t, pb.URL(), 1, true)
	l := rabbitLab(t, r, []string{"history = on", "history_on_join = 0", "history_max = 5000"}, "alice", "bob", "carol")
	p := l.startIMCD(t.TempDir())
	l.openRoom(orderRoom, "alice", "bob", "carol")
	s := l.stream("alice", orderRoom, tag, 5000) // until the broker is back, and 100 more
	l.waitLines(orderRoom, tag, 50, nil, "bob")
	pb.stopApp()
	waitUntil(t, "/readyz 503 with the broker stopped", 30*time.Second, func() bool { code, _ := p.Get("/readyz"); return code == 503 })
	pb.startApp()
	waitUntil(t, "/readyz 200 with the broker back", 60*time.Second, func() bool { code, _ := p.Get("/readyz"); return code == 200 })
	n := s.end(100)
	s.wait(t)
	if s.refused == 0 {
		t.Error("OpenSIPS refused nothing: the broker did not restart mid-stream")
	}
	// The room's order is not alice's: wait until the queue is empty and
	// imcd has sent what it will.
	waitUntil(t, "the queue emptied", 60*time.Second, func() bool { return r.Ready() == 0 })
	settled(t, p)
	order := l.accepted("bob", orderRoom, tag, n)
	l.waitLines(orderRoom, tag, len(order), live, "bob", "carol")
	settled(t, p)
	if d := twice(order); len(d) > 0 {
		t.Logf("OpenSIPS published lines %v twice (a 500 after all written?)", d)
	}
	checkExact(t, "bob", l.numbered("bob", orderRoom, tag, live), order)
	checkExact(t, "carol", l.numbered("carol", orderRoom, tag, live), order)
	t.Logf("%d lines refused (500) while the broker was away and sent again; %d of %d never reached the room (written to the dying broker); %d placed elsewhere than alice sent them",
		s.refused, n-len(order), n, moved(order))
}

// TestRealOpenSIPSOrderRabbitMQFailover: two imcd on one queue, one
// active, one standing by; the active one is killed (SIGKILL) while alice
// says 300 lines, and the other takes over. bob and carol get no line
// twice and no two lines in different orders. Lines the dead instance had
// applied and not yet handed to OpenSIPS are lost (issue 21 item 2):
// counted, and the test is skipped rather than passed when there are any.
func TestRealOpenSIPSOrderRabbitMQFailover(t *testing.T) {
	const n, tag = 300, "failover"
	needOpenSIPS(t)
	r := feed.New(t, testbroker.URL(t), 1, true)
	_, _, dbLines := rabbitDB(t) // both instances on the same tables
	l := rabbitLab(t, r, dbLines, "alice", "bob", "carol")
	a := l.startIMCD(t.TempDir())
	b := l.startIMCD(t.TempDir())
	l.openRoom(orderRoom, "alice", "bob", "carol")
	deliveries := func(p *imcdproc.Proc) float64 {
		return metricSum(p.Metrics(), "opensips_imc_rabbitmq_deliveries_total")
	}
	active, standby := a, b
	if deliveries(b) > deliveries(a) {
		active, standby = b, a
	}
	if deliveries(standby) != 0 {
		t.Fatalf("both instances took deliveries (%v, %v): no standby", deliveries(active), deliveries(standby))
	}
	s := l.stream("alice", orderRoom, tag, n)
	l.waitLines(orderRoom, tag, n/4, nil, "bob")
	active.Kill()
	killedAt := len(l.numbered("bob", orderRoom, tag, nil))
	s.wait(t)
	// Every line is in the queue or taken from it: one more said now is
	// behind them all, and applied after them; when it has reached both,
	// so has everything that will.
	waitUntil(t, "the queue emptied", 60*time.Second, func() bool { return r.Ready() == 0 })
	l.send("alice", roomURI(orderRoom), line(tag, n, 0))
	last := func(u string) bool { return slices.Contains(l.numbered(u, orderRoom, tag, nil), n) }
	waitUntil(t, "the last line to bob and carol", 120*time.Second, func() bool { return last("bob") && last("carol") })
	settled(t, standby)
	if deliveries(standby) == 0 {
		t.Fatal("the standby never took the queue over")
	}
	bob, carol := l.numbered("bob", orderRoom, tag, nil), l.numbered("carol", orderRoom, tag, nil)
	for who, seq := range map[string][]int{"bob": bob, "carol": carol} {
		if d := twice(seq); len(d) > 0 {
			t.Errorf("%s got lines %v twice", who, d)
		}
		if seq[len(seq)-1] != n {
			t.Errorf("%s got lines after the last one said: %v", who, seq)
		}
	}
	bob, carol = bob[:len(bob)-1], carol[:len(carol)-1]
	sameOrder(t, bob, carol)
	lost := map[string]int{"bob": n - len(bob), "carol": n - len(carol)}
	t.Logf("killed after %d lines had reached bob; %v redelivered events found applied; lines lost: %v; placed elsewhere than alice sent them: %d",
		killedAt, metricSum(standby.Metrics(), "opensips_imc_commands_total", `command="duplicate"`, `result="refused"`), lost, moved(bob))
	if lost["bob"]+lost["carol"] > 0 && !t.Failed() {
		t.Skipf("no line twice or out of order, but the kill lost lines (bob %d, carol %d): issue 21 item 2 (notices of applied events die with their instance)",
			lost["bob"], lost["carol"])
	}
}
