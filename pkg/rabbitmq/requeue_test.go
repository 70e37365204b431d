package rabbitmq

import (
	"fmt"
	"testing"

	"github.com/imcd-sip/imcd/internal/testbroker"
	amqp "github.com/rabbitmq/amqp091-go"
)

// TestQuorumRequeueOrder records what this RabbitMQ does with a delivery
// given back, which decides how the Consumer gives deliveries back after a
// failed commit. On a quorum queue (3.10):
//   - basic.nack with requeue puts the message behind the ones published
//     after it: order is lost, so the Consumer never nacks;
//   - closing the channel puts every unacknowledged delivery back at the
//     head of the queue, in order: the Consumer's rewind.
//
// If a broker version changes either, this test fails and the rewind must
// be thought again.
func TestQuorumRequeueOrder(t *testing.T) {
	url := testbroker.URL(t)
	a := newAdmin(t, url)
	// run publishes 1..5, takes 1 and 2 with a prefetch of 2, gives them
	// back with giveBack, then consumes the n messages left and returns
	// their order.
	run := func(n int, giveBack func(ch *amqp.Channel, first, second amqp.Delivery)) string {
		t.Helper()
		top := a.topology(url, 1, false)
		for i := 1; i <= 5; i++ {
			a.publish(top.Exchange, "k", message{Body: []byte(fmt.Sprint(i))})
		}
		conn, err := amqp.Dial(url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ch, _ := conn.Channel()
		ch.Qos(2, 0, false)
		ds, err := ch.Consume(top.Queues[0], "", false, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		first, second := next(t, ds), next(t, ds)
		giveBack(ch, first, second)
		ch2, _ := conn.Channel()
		ch2.Qos(1, 0, false)
		ds2, err := ch2.Consume(top.Queues[0], "", false, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		order := ""
		for range n {
			d := next(t, ds2)
			order += string(d.Body)
			d.Ack(false)
		}
		return order
	}
	nack := run(4, func(ch *amqp.Channel, first, second amqp.Delivery) {
		first.Nack(false, true)
		second.Ack(false)
		ch.Close()
	})
	if nack != "3451" {
		t.Errorf("nack with requeue of 1 (2 acked): redelivery order %s, want 3451 (behind the later ones)", nack)
	}
	closed := run(5, func(ch *amqp.Channel, first, second amqp.Delivery) { ch.Close() })
	if closed != "12345" {
		t.Errorf("channel closed with 1 and 2 unacknowledged: order %s, want 12345 (back at the head)", closed)
	}
}
