package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"

	"github.com/valyala/fastjson"

	"github.com/imcd-sip/imcd/internal/testbroker"
	"github.com/imcd-sip/imcd/pkg/opensips"
)

// numbered is the JSON body of the n-th chat line to room, as the OpenSIPS
// json module prints it; its body is its number.
func numbered(room string, n int) message {
	body := fmt.Sprintf(`{ "from": "sip:alice@127.0.0.1", "from_tag": "t%d", "to": "sip:x@127.0.0.1", "ruri": "sip:%s@127.0.0.1", "callid": "c%d@lab", "cseq": "1", "src_ip": "127.0.0.1", "src_port": 5060, "proto": "udp", "ctype": "text\/plain", "body": "%d" }`, n, room, n, n)
	return message{ContentType: "application/json", Body: []byte(body)}
}

// numbers returns the body numbers of events, in order.
func numbers(t testing.TB, evs []opensips.Event) []int {
	t.Helper()
	out := make([]int, len(evs))
	for i, ev := range evs {
		n, err := strconv.Atoi(ev.Req.Body)
		if err != nil {
			t.Fatalf("event %d: body %q", i, ev.Req.Body)
		}
		out[i] = n
	}
	return out
}

// inOrder fails unless got is 1..n.
func inOrder(t testing.TB, got []int, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("%d events, want %d: %v", len(got), n, got)
	}
	for i, v := range got {
		if v != i+1 {
			t.Fatalf("event %d is %d, want %d (order broken): %v", i, v, i+1, got)
		}
	}
}

// TestConsumeCaptures publishes every capture byte for byte as OpenSIPS did,
// through a four-queue consistent-hash exchange as in the capture set-up,
// and checks that each event decodes as Decode says, carries its queue and
// session, and that each queue's events arrive in publish order.
func TestConsumeCaptures(t *testing.T) {
	url := testbroker.URL(t)
	a := newAdmin(t, url)
	top := a.topology(url, 4, false)
	msgs := captures(t)
	for _, m := range msgs {
		a.publish(top.Exchange, m.RoutingKey, m)
	}
	rec := newRecorder(applyAll)
	obs := newCounter()
	c := openConsumer(t, &Consumer{URL: url, Queues: top.Queues, Sink: rec, Observer: obs})
	evs := rec.waitEvents(t, len(msgs))
	eventually(t, "all acknowledged", func() bool { return obs.get(OutcomeAcked) == len(msgs) })
	eventually(t, "ready", func() bool { return c.Ready() == nil })

	var p fastjson.Parser
	byCallID := map[string]opensips.Event{}
	lastIndex := map[string]int{} // per queue: order of the captures
	index := map[string]int{}
	for i, m := range msgs {
		var want opensips.Event
		if err := Decode(&p, m.table(), m.Body, &want); err != nil {
			t.Fatal(err)
		}
		byCallID[want.Req.CallID] = want
		index[want.Req.CallID] = i
	}
	sessions := map[string]uint64{}
	for _, ev := range evs {
		want, ok := byCallID[ev.Req.CallID]
		if !ok {
			t.Fatalf("unexpected event %#v", ev)
		}
		if ev.Transport != Transport || ev.Origin.Session == 0 || ev.Origin.Redelivered || !slices.Contains(top.Queues, ev.Origin.Queue) {
			t.Errorf("%s: transport %q origin %+v", ev.Req.CallID, ev.Transport, ev.Origin)
		}
		if s, ok := sessions[ev.Origin.Queue]; ok && s != ev.Origin.Session {
			t.Errorf("two sessions on %s without a reconnect", ev.Origin.Queue)
		}
		sessions[ev.Origin.Queue] = ev.Origin.Session
		q, i := ev.Origin.Queue, index[ev.Req.CallID]
		if last, ok := lastIndex[q]; ok && last > i {
			t.Errorf("queue %s: capture %d after %d", q, i, last)
		}
		lastIndex[q] = i
		got := ev
		got.Transport, got.Origin = "", opensips.Origin{}
		if got != want {
			t.Errorf("%s:\n got %#v\nwant %#v", ev.Req.CallID, got, want)
		}
	}
	if len(sessions) < 2 {
		t.Errorf("every capture landed in one queue of four: %v", sessions)
	}
	for _, q := range top.Queues {
		if n := a.Ready(q); n != 0 {
			t.Errorf("%s: %d messages left", q, n)
		}
	}
}

// TestAckOnlyAfterDone holds the verdicts: a consumer closed before done is
// called acknowledges nothing, and the next one gets the same messages,
// redelivered, under another session; once done(nil) is called (while
// Close drains) they are gone from the queue.
func TestAckOnlyAfterDone(t *testing.T) {
	url := testbroker.URL(t)
	a := newAdmin(t, url)
	top := a.topology(url, 1, false)
	const n = 5
	a.publishLines(top.Exchange, 1, n)
	rec1 := newRecorder(holdAll)
	obs1 := newCounter()
	c1 := &Consumer{URL: url, Queues: top.Queues, Sink: rec1, Observer: obs1, DrainTimeout: 1}
	openConsumer(t, c1)
	first := rec1.waitEvents(t, n)
	inOrder(t, numbers(t, first), n)
	c1.Close() // the drain ends at once: nothing was committed
	if obs1.get(OutcomeAcked) != 0 || obs1.get(OutcomeReturned) != n {
		t.Fatalf("first consumer: %v", obs1.settled)
	}
	for _, done := range rec1.held() {
		done(nil) // too late: that session is gone
	}
	// The broker returns them once it has processed the consumer's end.
	eventually(t, "given back", func() bool { return a.Ready(top.Queues[0]) == n })

	rec2 := newRecorder(holdAll)
	obs2 := newCounter()
	c2 := openConsumer(t, &Consumer{URL: url, Queues: top.Queues, Sink: rec2, Observer: obs2})
	second := rec2.waitEvents(t, n)
	inOrder(t, numbers(t, second), n)
	for _, ev := range second {
		if !ev.Origin.Redelivered || ev.Origin.Session == first[0].Origin.Session {
			t.Fatalf("second consumer: origin %+v, first session %x", ev.Origin, first[0].Origin.Session)
		}
	}
	// Close drains: verdicts given while it waits are still acknowledged.
	closed := make(chan struct{})
	go func() { c2.Close(); close(closed) }()
	for _, done := range rec2.held() {
		done(nil)
	}
	<-closed
	if got := obs2.get(OutcomeAcked); got != n {
		t.Fatalf("%d acknowledged by the time Close returned, want %d", got, n)
	}
	// Nothing comes back: had anything been given back, it would come
	// before a message published now.
	a.publish(top.Exchange, "sip:chat-1@127.0.0.1", numbered("chat-1", 99))
	rec3 := newRecorder(applyAll)
	openConsumer(t, &Consumer{URL: url, Queues: top.Queues, Sink: rec3})
	if got := numbers(t, rec3.waitEvents(t, 1)); got[0] != 99 {
		t.Fatalf("after done(nil) the queue still held %v", got)
	}
}

// TestOrderAcrossBusy refuses offers as busy (every third one, and a run of
// them) and checks that the queue's events still reach the Sink in publish
// order, each once, all acknowledged.
func TestOrderAcrossBusy(t *testing.T) {
	url := testbroker.URL(t)
	a := newAdmin(t, url)
	top := a.topology(url, 1, false)
	const n = 300
	a.publishLines(top.Exchange, 1, n)
	busy := errors.New("busy")
	rec := newRecorder(func(offer int, _ opensips.Event) (error, error, bool) {
		if offer%3 == 0 || (offer > 100 && offer < 120) {
			return busy, nil, false
		}
		return nil, nil, false
	})
	obs := newCounter()
	openConsumer(t, &Consumer{URL: url, Queues: top.Queues, Sink: rec, Observer: obs, Prefetch: 16})
	inOrder(t, numbers(t, rec.waitEvents(t, n)), n)
	eventually(t, "acknowledged", func() bool { return obs.get(OutcomeAcked) == n })
	if r := obs.retries(); r < n/3 {
		t.Fatalf("%d retries, want at least %d", r, n/3)
	}
}

// TestRewindAfterFailedCommit fails the commit of one event: the queue is
// given back and consumed again, so that event comes again, redelivered,
// under a new session, before every later one; nothing is lost or reordered.
func TestRewindAfterFailedCommit(t *testing.T) {
	url := testbroker.URL(t)
	a := newAdmin(t, url)
	top := a.topology(url, 1, false)
	const n, failAt = 40, 17
	a.publishLines(top.Exchange, 1, n)
	failed := false
	rec := newRecorder(func(_ int, ev opensips.Event) (error, error, bool) {
		if ev.Req.Body == strconv.Itoa(failAt) && !failed {
			failed = true
			return nil, errors.New("database unavailable"), false
		}
		return nil, nil, false
	})
	obs := newCounter()
	openConsumer(t, &Consumer{URL: url, Queues: top.Queues, Sink: rec, Observer: obs, Backoff: Backoff{Min: 1, Max: 1}})
	evs := rec.waitEvents(t, n+1)
	eventually(t, "acknowledged", func() bool { return obs.get(OutcomeAcked) == n })
	got := numbers(t, evs)
	// Applied once each, in order, with the failed one offered twice.
	want := make([]int, 0, n+1)
	for i := 1; i <= n; i++ {
		want = append(want, i)
		if i == failAt {
			want = append(want, i)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("offered %v\nwant    %v", got, want)
	}
	before, again := evs[failAt-1].Origin, evs[failAt].Origin
	if before.Redelivered || !again.Redelivered || before.Session == again.Session {
		t.Fatalf("failed offer %+v, second offer %+v", before, again)
	}
	if obs.get(OutcomeReturned) == 0 {
		t.Fatal("nothing counted as returned")
	}
	if a.Ready(top.Queues[0]) != 0 {
		t.Fatal("messages left")
	}
}

// TestRejectUndecodable publishes messages that can never be applied between
// good ones: they are rejected into the dead-letter queue and counted, and
// the good ones are applied in order. A Sink refusing an event as bad (the
// daemon's unusable addresses) is treated the same.
func TestRejectUndecodable(t *testing.T) {
	url := testbroker.URL(t)
	a := newAdmin(t, url)
	top := a.topology(url, 1, true)
	const room = "sip:chat-1@127.0.0.1"
	a.publish(top.Exchange, room, numbered("chat-1", 1))
	a.publish(top.Exchange, room, message{ContentType: "application/json", Body: []byte(`{ "from": "sip:a@h", "body": "no ruri" }`)})
	a.publish(top.Exchange, room, numbered("chat-1", 2))
	a.publish(top.Exchange, room, message{ContentType: "text/plain", Body: []byte("no headers, not JSON")})
	a.publish(top.Exchange, room, message{ContentType: "text/plain", Headers: map[string]string{"from": "sip:a@h", "ruri": "sip:chat-1@h"}, Body: []byte("sink refuses")})
	a.publish(top.Exchange, room, numbered("chat-1", 3))
	rec := newRecorder(func(_ int, ev opensips.Event) (error, error, bool) {
		if ev.Req.Body == "sink refuses" {
			return fmt.Errorf("%w: unusable From", opensips.ErrBadEvent), nil, false
		}
		return nil, nil, false
	})
	obs := newCounter()
	openConsumer(t, &Consumer{URL: url, Queues: top.Queues, Sink: rec, Observer: obs})
	inOrder(t, numbers(t, rec.waitEvents(t, 3)), 3)
	eventually(t, "settled", func() bool { return obs.get(OutcomeAcked) == 3 && obs.get(OutcomeRejected) == 3 })
	eventually(t, "dead-lettered", func() bool { return a.Ready(top.DeadLetter) == 3 })
}

// TestBacklogInOrder publishes while no consumer runs: the events are kept
// and applied in order when one starts.
func TestBacklogInOrder(t *testing.T) {
	url := testbroker.URL(t)
	a := newAdmin(t, url)
	top := a.topology(url, 1, false)
	const n = 500
	for i := 1; i <= n; i++ {
		a.publish(top.Exchange, "sip:chat-"+strconv.Itoa(i%7)+"@127.0.0.1", numbered("chat-x", i))
	}
	if got := a.Ready(top.Queues[0]); got != n {
		t.Fatalf("%d messages kept, want %d", got, n)
	}
	rec := newRecorder(applyAll)
	obs := newCounter()
	openConsumer(t, &Consumer{URL: url, Queues: top.Queues, Sink: rec, Observer: obs})
	inOrder(t, numbers(t, rec.waitEvents(t, n)), n)
	eventually(t, "acknowledged", func() bool { return obs.get(OutcomeAcked) == n })
}

// TestConfig checks that Open refuses what cannot work.
func TestConfig(t *testing.T) {
	sink := newRecorder(applyAll)
	f := func(c *Consumer) {
		t.Helper()
		if err := c.Open(context.Background()); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: Open gave %v, want ErrConfig", c, err)
			c.Close()
		}
	}
	f(&Consumer{URL: "amqp://127.0.0.1/", Queues: []string{"q"}})
	f(&Consumer{URL: "amqp://127.0.0.1/", Sink: sink})
	f(&Consumer{URL: "amqp://127.0.0.1/", Sink: sink, Queues: []string{"q", "q"}})
	f(&Consumer{URL: "amqp://127.0.0.1/", Sink: sink, Queues: []string{"q"}, Standby: []string{"q"}})
	f(&Consumer{URL: "http://127.0.0.1/", Sink: sink, Queues: []string{"q"}})
	f(&Consumer{URL: "amqp://127.0.0.1/", Sink: sink, Queues: []string{"q"}, Prefetch: -1})
	f(&Consumer{URL: "amqp://127.0.0.1/", Sink: sink, Queues: []string{"q"}, Reroute: func(*opensips.Event) string { return "" }})
	var c Consumer
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Ready(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ready after Close: %v", err)
	}
}

// TestOutOfOrderVerdicts gives the verdicts in another order than the
// deliveries, as shards do: 11..20 commit first, 5 fails, then the rest
// commit. Acknowledging in batches must never cover 5: it alone comes
// again (redelivered, new session), everything else is acknowledged once.
func TestOutOfOrderVerdicts(t *testing.T) {
	url := testbroker.URL(t)
	a := newAdmin(t, url)
	top := a.topology(url, 1, false)
	const n = 20
	a.publishLines(top.Exchange, 1, n)
	rec := newRecorder(func(offer int, _ opensips.Event) (error, error, bool) { return nil, nil, offer <= n })
	obs := newCounter()
	openConsumer(t, &Consumer{URL: url, Queues: top.Queues, Sink: rec, Observer: obs, Backoff: Backoff{Min: 1, Max: 1}})
	inOrder(t, numbers(t, rec.waitEvents(t, n)), n)
	dones := rec.held()
	for i := 20; i >= 11; i-- {
		dones[i-1](nil)
	}
	eventually(t, "11..20 acknowledged", func() bool { return obs.get(OutcomeAcked) == 10 })
	dones[4](errors.New("database unavailable"))
	for _, i := range []int{3, 1, 4, 2, 10, 6, 9, 7, 8} {
		dones[i-1](nil)
	}
	evs := rec.waitEvents(t, n+1)
	eventually(t, "all acknowledged", func() bool { return obs.get(OutcomeAcked) == n })
	again := evs[n]
	if again.Req.Body != "5" || !again.Origin.Redelivered || again.Origin.Session == evs[0].Origin.Session {
		t.Fatalf("after the failure came %q, origin %+v", again.Req.Body, again.Origin)
	}
	a.publish(top.Exchange, "sip:chat-1@127.0.0.1", numbered("chat-1", 99))
	if got := numbers(t, rec.waitEvents(t, n+2)); got[n+1] != 99 {
		t.Fatalf("offered after the failure: %v", got[n:])
	}
}
