package rabbitmq

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/valyala/fastjson"

	"github.com/imcd-sip/imcd/internal/testbroker"
	"github.com/imcd-sip/imcd/pkg/opensips"
)

func openPublisher(t *testing.T, p *Publisher) *Publisher {
	t.Helper()
	if err := p.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// rawConsume consumes a queue by hand (no Consumer): the test acknowledges
// or not.
func rawConsume(t *testing.T, url, queue string) (*amqp.Connection, <-chan amqp.Delivery) {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	ds, err := ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return conn, ds
}

func next(t *testing.T, ds <-chan amqp.Delivery) amqp.Delivery {
	t.Helper()
	select {
	case d, ok := <-ds:
		if !ok {
			t.Fatal("consumer gone")
		}
		return d
	case <-time.After(patience):
		t.Fatal("no delivery")
	}
	panic("unreachable")
}

// TestRepublishCrashBetween re-publishes a consumed message, then "crashes"
// before acknowledging the original: the original comes back, is
// re-published again and acknowledged. The target then holds two copies,
// byte for byte the original plus the mark, with the same applied-once key
// (Call-ID, CSeq, From tag), which the store's check reduces to one.
func TestRepublishCrashBetween(t *testing.T) {
	url := testbroker.URL(t)
	a := newAdmin(t, url)
	src, dst := a.topology(url, 1, false), a.topology(url, 1, false)
	var origs []message // the manager's #create, and one of the headers form
	for _, m := range captures(t) {
		if strings.HasPrefix(m.Name, "06-") || strings.HasPrefix(m.Name, "09-") {
			origs = append(origs, m)
			a.publish(src.Exchange, m.RoutingKey, m)
		}
	}
	// The default exchange routes by queue name: dst's queue stands for
	// the room's queue.
	pub := openPublisher(t, &Publisher{URL: url, Exchange: ""})
	republish := func(ds <-chan amqp.Delivery, redelivered bool) []amqp.Delivery {
		var got []amqp.Delivery
		for range 2 {
			d := next(t, ds)
			if d.Redelivered != redelivered {
				t.Fatalf("redelivered %v", d.Redelivered)
			}
			if err := pub.Republish(context.Background(), &d, src.Queues[0], dst.Queues[0]); err != nil {
				t.Fatal(err)
			}
			got = append(got, d)
		}
		return got
	}
	conn, ds := rawConsume(t, url, src.Queues[0])
	republish(ds, false)
	conn.Close() // the crash: confirmed copies, originals not acknowledged
	_, ds = rawConsume(t, url, src.Queues[0])
	for _, d := range republish(ds, true) {
		d.Ack(false)
	}

	_, copies := rawConsume(t, url, dst.Queues[0])
	var p fastjson.Parser
	keys := map[string]int{}
	for i := range 4 {
		d := next(t, copies)
		if d.Headers[HeaderRepublished] != src.Queues[0] || d.DeliveryMode != amqp.Persistent {
			t.Fatalf("copy %d: headers %v, delivery mode %d", i, d.Headers, d.DeliveryMode)
		}
		var ev opensips.Event
		if err := Decode(&p, d.Headers, d.Body, &ev); err != nil {
			t.Fatal(err)
		}
		keys[ev.Req.CallID+"|"+ev.CSeq+"|"+ev.FromTag]++
		if !bytes.Equal(d.Body, origs[0].Body) && !bytes.Equal(d.Body, origs[1].Body) {
			t.Fatalf("copy %d: body %q is neither original", i, d.Body)
		}
		d.Ack(false)
	}
	if len(keys) != 2 {
		t.Fatalf("applied-once keys %v, want two, each twice", keys)
	}
	for k, n := range keys {
		if n != 2 {
			t.Fatalf("key %s seen %d times", k, n)
		}
	}
	if a.Ready(src.Queues[0]) != 0 {
		t.Fatal("originals left")
	}
}

// TestRepublishByteExact checks the copy against the captured bytes.
func TestRepublishByteExact(t *testing.T) {
	url := testbroker.URL(t)
	a := newAdmin(t, url)
	src, dst := a.topology(url, 1, false), a.topology(url, 1, false)
	pub := openPublisher(t, &Publisher{URL: url})
	for _, m := range captures(t) {
		a.publish(src.Exchange, m.RoutingKey, m)
	}
	_, ds := rawConsume(t, url, src.Queues[0])
	_, copies := rawConsume(t, url, dst.Queues[0])
	for _, m := range captures(t) {
		d := next(t, ds)
		if err := pub.Republish(context.Background(), &d, "q", dst.Queues[0]); err != nil {
			t.Fatal(err)
		}
		c := next(t, copies)
		if !bytes.Equal(c.Body, m.Body) || c.ContentType != m.ContentType || len(c.Headers) != len(m.Headers)+1 {
			t.Fatalf("%s: copy %q %q %v", m.Name, c.Body, c.ContentType, c.Headers)
		}
		for k, v := range m.Headers {
			if c.Headers[k] != v {
				t.Fatalf("%s: header %s = %v", m.Name, k, c.Headers[k])
			}
		}
		if c.RoutingKey != dst.Queues[0] {
			t.Fatalf("routing key %q", c.RoutingKey)
		}
	}
}

// TestPublishRefused: a message no queue takes is an error, not a silent
// loss; a lost connection is made again by the next publish.
func TestPublishRefused(t *testing.T) {
	url := testbroker.URL(t)
	a := newAdmin(t, url)
	dst := a.topology(url, 1, false)
	pub := openPublisher(t, &Publisher{URL: url})
	err := pub.Publish(context.Background(), testbroker.Name(t, "nosuchqueue"), amqp.Publishing{Body: []byte("x")})
	if !errors.Is(err, ErrUnroutable) {
		t.Fatalf("unroutable publish: %v", err)
	}
	pub.mu.Lock()
	pub.conn.Close() // as the broker would
	pub.mu.Unlock()
	if err := pub.Publish(context.Background(), dst.Queues[0], amqp.Publishing{Body: []byte("x")}); err != nil {
		t.Fatalf("publish after the connection was lost: %v", err)
	}
	if n := a.Ready(dst.Queues[0]); n != 1 {
		t.Fatalf("%d messages", n)
	}
	pub.Close()
	if err := pub.Publish(context.Background(), dst.Queues[0], amqp.Publishing{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("publish after Close: %v", err)
	}
}

// roomOf is the Reroute a sharded daemon would use: a manager "#create X"
// is re-published keyed by X's URI, so it is applied in X's queue, in X's
// order.
func roomOf(ev *opensips.Event) string {
	room, ok := strings.CutPrefix(ev.Req.Body, "#create ")
	if !ok || !strings.HasPrefix(ev.Req.RURI, "sip:chat-manager@") {
		return ""
	}
	room, _, _ = strings.Cut(room, " ")
	_, domain, _ := strings.Cut(ev.Req.RURI, "@")
	return "sip:" + room + "@" + domain
}

// TestReroute runs the manager's "#create chat-r1" (the capture) through a
// Consumer with Reroute on the four-queue consistent-hash exchange: it is
// re-published keyed by sip:chat-r1@127.0.0.1, acknowledged, and applied
// from the queue chat-r1 hashes to, after the line already in that queue,
// without being re-published a second time.
func TestReroute(t *testing.T) {
	url := testbroker.URL(t)
	a := newAdmin(t, url)
	top := a.topology(url, 4, false)
	const room = "sip:chat-r1@127.0.0.1"
	a.publish(top.Exchange, room, numbered("chat-r1", 1))
	var create message
	for _, m := range captures(t) {
		if strings.HasPrefix(m.Name, "06-") {
			create = m
		}
	}
	a.publish(top.Exchange, create.RoutingKey, create)

	pub := openPublisher(t, &Publisher{URL: url, Exchange: top.Exchange})
	rec := newRecorder(applyAll)
	obs := newCounter()
	var asked atomic.Int32
	openConsumer(t, &Consumer{URL: url, Queues: top.Queues, Sink: rec, Observer: obs, Publisher: pub,
		Reroute: func(ev *opensips.Event) string { asked.Add(1); return roomOf(ev) }})
	evs := rec.waitEvents(t, 2)
	eventually(t, "settled", func() bool { return obs.get(OutcomeAcked) == 2 && obs.get(OutcomeRerouted) == 1 })
	line, created := evs[0], evs[1]
	if line.Req.Body != "1" || created.Req.Body != "#create chat-r1" {
		t.Fatalf("applied %q then %q", line.Req.Body, created.Req.Body)
	}
	if created.Origin.Queue != line.Origin.Queue {
		t.Fatalf("#create applied from %s, the room's queue is %s", created.Origin.Queue, line.Origin.Queue)
	}
	if n := asked.Load(); n != 2 {
		t.Fatalf("Reroute asked %d times, want 2 (the line and the original; never the copy)", n)
	}
	var p fastjson.Parser
	var want opensips.Event
	if err := Decode(&p, nil, create.Body, &want); err != nil {
		t.Fatal(err)
	}
	created.Transport, created.Origin = "", opensips.Origin{}
	if created != want {
		t.Fatalf("re-published event\n got %#v\nwant %#v", created, want)
	}
}
