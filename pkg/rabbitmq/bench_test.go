package rabbitmq

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/imcd-sip/imcd/internal/testbroker"
	"github.com/imcd-sip/imcd/pkg/opensips"
)

// ackCounter is an Observer that signals when n deliveries are acked.
type ackCounter struct {
	NopObserver
	n     int64
	acked atomic.Int64
	all   chan struct{}
}

func (c *ackCounter) Settled(_, outcome string) {
	if outcome == OutcomeAcked && c.acked.Add(1) == c.n {
		close(c.all)
	}
}

// BenchmarkConsume measures events consumed, decoded, handed to a Sink that
// commits at once, and acknowledged, through the machine's RabbitMQ: b.N
// captured-style JSON events are published first (not timed), spread over
// the queues by the consistent-hash exchange, then one Consumer drains them.
func BenchmarkConsume(b *testing.B) {
	for _, queues := range []int{1, 4} {
		for _, prefetch := range []int{32, 128, 512} {
			b.Run(fmt.Sprintf("queues=%d/prefetch=%d", queues, prefetch), func(b *testing.B) {
				benchConsume(b, queues, prefetch)
			})
		}
	}
}

func benchConsume(b *testing.B, queues, prefetch int) {
	url := testbroker.URL(b)
	a := newAdmin(b, url)
	top := a.topology(url, queues, false)
	msgs := make([]testbroker.Message, b.N)
	for i := range msgs {
		m := numbered(fmt.Sprintf("chat-%d", i%64), i)
		msgs[i] = testbroker.Message{Key: fmt.Sprintf("sip:chat-%d@127.0.0.1", i%64), Publishing: amqp.Publishing{ContentType: m.ContentType, Body: m.Body}}
	}
	if err := a.Publish(top.Exchange, msgs...); err != nil {
		b.Fatal(err)
	}
	obs := &ackCounter{n: int64(b.N), all: make(chan struct{})}
	sink := opensips.SinkFunc(func(_ opensips.Event, done func(error)) error { done(nil); return nil })
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	c := &Consumer{URL: url, Queues: top.Queues, Sink: sink, Observer: obs, Prefetch: prefetch}
	if err := c.Open(context.Background()); err != nil {
		b.Fatal(err)
	}
	select {
	case <-obs.all:
	case <-time.After(10 * time.Minute):
		b.Fatalf("%d of %d acknowledged", obs.acked.Load(), b.N)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	c.Close()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
}
