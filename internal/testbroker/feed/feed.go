// Package feed is one test's own event source for imcd in RabbitMQ mode:
// imcd's topology (a rabbitmq.Topology) on the machine's test broker, under
// names of the test's own and deleted when the test ends, published to as
// the OpenSIPS script of scripts/opensips/imcd-rabbitmq.cfg publishes. The
// tests of pkg/daemon and the end-to-end tests of cmd/imcd share it;
// pkg/rabbitmq's own tests cannot (it imports pkg/rabbitmq) and use
// internal/testbroker, the layer below, directly.
package feed

import (
	"context"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/imcd-sip/imcd/internal/testbroker"
	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/opensips"
	"github.com/imcd-sip/imcd/pkg/opensipstest"
	"github.com/imcd-sip/imcd/pkg/rabbitmq"
)

// Feed is one test's topology on a broker and the test's connection to it.
type Feed struct {
	// URL is the broker.
	URL string
	// Topology is the exchange and the queues, Prefix.0 … Prefix.N-1.
	Topology *rabbitmq.Topology
	// Prefix is what the queue names start with (rabbitmq_queue_prefix).
	Prefix string

	conn *testbroker.Conn
}

// New names a topology of shards queues on url (testbroker.URL's, or a
// broker of the test's own) and deletes it when the test ends; declare says
// whether New declares it, else imcd does (rabbitmq_declare). It fails the
// test when the broker does not take the connection or the declaration.
func New(tb testing.TB, url string, shards int, declare bool) *Feed {
	tb.Helper()
	f := &Feed{URL: url, Prefix: testbroker.Name(tb, "q")}
	f.Topology = &rabbitmq.Topology{Exchange: testbroker.Name(tb, "x"), Queues: rabbitmq.ShardQueues(f.Prefix, shards)}
	testbroker.DeleteAtEnd(tb, url, []string{f.Topology.Exchange}, f.Topology.Queues)
	if declare {
		ctx, cancel := context.WithTimeout(context.Background(), testbroker.Patience)
		defer cancel()
		if err := f.Topology.Declare(ctx, url); err != nil {
			tb.Fatal(err)
		}
	}
	f.conn = testbroker.Dial(tb, url)
	return f
}

// Publish publishes events as the OpenSIPS script does: the JSON form
// (rabbitmq.AppendJSON), routing key the R-URI, not persistent. It
// publishes them all before waiting for the broker's confirms, so that a
// backlog builds at once, and returns once all are confirmed.
func (f *Feed) Publish(events ...opensips.Event) error {
	msgs := make([]testbroker.Message, len(events))
	for i := range events {
		msgs[i] = testbroker.Message{Key: events[i].Req.RURI,
			Publishing: amqp.Publishing{ContentType: rabbitmq.ContentTypeJSON, Body: rabbitmq.AppendJSON(nil, &events[i])}}
	}
	return f.conn.Publish(f.Topology.Exchange, msgs...)
}

// PublishRaw publishes one message as it is and waits for the broker's
// confirm.
func (f *Feed) PublishRaw(key string, msg amqp.Publishing) error {
	return f.conn.Publish(f.Topology.Exchange, testbroker.Message{Key: key, Publishing: msg})
}

// Ready is the number of messages waiting in the topology's queues (given
// back ones included). It fails the test when a queue cannot be inspected.
func (f *Feed) Ready() int { return f.conn.Ready(f.Topology.Queues...) }

// Event is an opensipstest event as the Consumer decodes it from what
// Publish sends. (It is not opensipstest's: pkg/opensips's tests use
// opensipstest, which therefore cannot import pkg/opensips.)
func Event(e opensipstest.Event) opensips.Event {
	return opensips.Event{Req: imc.Request{From: e.From, To: e.To, RURI: e.RURI, CallID: e.CallID, ContentType: e.CType, Body: e.Body},
		FromTag: e.FromTag, CSeq: e.CSeq, SrcIP: e.SrcIP, SrcPort: e.SrcPort, Proto: e.Proto}
}
