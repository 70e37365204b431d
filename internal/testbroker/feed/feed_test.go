package feed

import (
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/valyala/fastjson"

	"github.com/imcd-sip/imcd/internal/testbroker"
	"github.com/imcd-sip/imcd/pkg/opensips"
	"github.com/imcd-sip/imcd/pkg/opensipstest"
	"github.com/imcd-sip/imcd/pkg/rabbitmq"
)

// TestPublish: what Publish sends lands in the declared topology, keyed by
// the R-URI, in the script's JSON form, and decodes back to the event.
func TestPublish(t *testing.T) {
	f := New(t, testbroker.URL(t), 2, true)
	ev := Event(opensipstest.NewEvent("sip:alice@127.0.0.1", "sip:chat-1@127.0.0.1", "hello / \"you\""))
	if err := f.Publish(ev); err != nil {
		t.Fatal(err)
	}
	if n := f.Ready(); n != 1 {
		t.Fatalf("%d ready, want 1", n)
	}
	ch, err := f.conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	var p fastjson.Parser
	got := 0
	for _, q := range f.Topology.Queues {
		if f.conn.Ready(q) == 0 {
			continue
		}
		got++
		ds, err := ch.Consume(q, "", true, false, false, false, nil) // quorum queues with single-active-consumer take no basic.get
		if err != nil {
			t.Fatal(err)
		}
		var d amqp.Delivery
		select {
		case d = <-ds:
		case <-time.After(testbroker.Patience):
			t.Fatalf("nothing consumed from %s", q)
		}
		if d.RoutingKey != ev.Req.RURI || d.ContentType != rabbitmq.ContentTypeJSON {
			t.Errorf("routing key %q, content type %q", d.RoutingKey, d.ContentType)
		}
		var back opensips.Event
		if err := rabbitmq.Decode(&p, d.Headers, d.Body, &back); err != nil {
			t.Fatal(err)
		}
		if back != ev {
			t.Errorf("decoded\n %#v\nwant\n %#v", back, ev)
		}
	}
	if got != 1 {
		t.Errorf("%d messages in the queues, want 1", got)
	}
}
