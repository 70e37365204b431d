package rabbitmq_test

import (
	"context"
	"log"
	"strings"

	"github.com/imcd-sip/imcd/pkg/opensips"
	"github.com/imcd-sip/imcd/pkg/rabbitmq"
)

// The wiring of RabbitMQ mode in a daemon: a Publisher for re-publishing,
// a Consumer in place of the event_stream server, Ready for /readyz.
func Example() {
	var sink opensips.Sink // the daemon (its Submit)
	url := "amqp://guest:guest@127.0.0.1:5672/"
	top := &rabbitmq.Topology{Exchange: "imcd.rooms", Queues: rabbitmq.ShardQueues("imcd.shard", 4)}

	pub := &rabbitmq.Publisher{URL: url, Exchange: top.Exchange}
	if err := pub.Open(context.Background()); err != nil {
		log.Fatal(err)
	}
	defer pub.Close()
	c := &rabbitmq.Consumer{
		URL:     url,
		Queues:  top.Queues[:2], // this instance leads shards 0 and 1
		Standby: top.Queues[2:], // and stands by for 2 and 3
		Sink:    sink,
		Declare: top, // rabbitmq_declare = yes
		// Sharded: a manager "#create X" is applied in X's queue.
		Publisher: pub,
		Reroute: func(ev *opensips.Event) string {
			room, ok := strings.CutPrefix(ev.Req.Body, "#create ")
			if !ok || !strings.HasPrefix(ev.Req.RURI, "sip:chat-manager@") {
				return ""
			}
			room, _, _ = strings.Cut(room, " ")
			_, domain, _ := strings.Cut(ev.Req.RURI, "@")
			return "sip:" + room + "@" + domain
		},
	}
	if err := c.Open(context.Background()); err != nil {
		log.Fatal(err)
	}
	defer c.Close() // before the daemon's shards stop: it drains
	_ = c.Ready()   // /readyz
}
