package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Exchange kinds a Topology declares.
const (
	// KindConsistentHash spreads rooms over several queues by a hash of the
	// routing key (the R-URI); it needs the broker plugin
	// rabbitmq_consistent_hash_exchange.
	KindConsistentHash = "x-consistent-hash"
	// KindFanout sends everything to the one queue bound. Direct would not
	// do: it matches the routing key exactly, and OpenSIPS routes by R-URI.
	KindFanout = "fanout"
)

// Queue arguments of the queues a Topology declares.
const (
	argQueueType     = "x-queue-type"
	argSingleActive  = "x-single-active-consumer"
	argDeadLetterX   = "x-dead-letter-exchange"
	argDeliveryLimit = "x-delivery-limit"
)

// hashWeight is the binding key of each queue on a consistent-hash
// exchange: its share of the hash ring, equal for every queue.
const hashWeight = "1"

// Topology is what the broker needs for imcd, as scripts/rabbitmq-setup.sh
// also sets it up: a durable exchange that OpenSIPS publishes to, durable
// quorum queues with single-active-consumer bound to it, and an optional
// dead-letter queue. Declaring is idempotent; declaring a queue that exists
// with other arguments fails (the broker refuses to change them).
type Topology struct {
	// Exchange is the exchange named in OpenSIPS's server_id.
	Exchange string
	// Queues are the queues imcd consumes. One queue is bound to a fanout
	// exchange (single queue: total order, no sharding); several to a
	// consistent-hash exchange (one shard each).
	Queues []string
	// DeadLetter, when not "", names a fanout exchange and a quorum queue
	// bound to it, set as every queue's dead-letter exchange: messages that
	// can never be applied are kept there instead of being dropped.
	DeadLetter string
	// DeliveryLimit, when > 0, dead-letters a message delivered that many
	// times without being acknowledged. Leave it 0 unless there is a
	// dead-letter queue and imcd's rewinds (each a delivery) are rare: a long
	// database outage would otherwise dead-letter good messages.
	DeliveryLimit int
}

// ShardQueues names n queues prefix.0 … prefix.n-1.
func ShardQueues(prefix string, n int) []string {
	q := make([]string, n)
	for i := range q {
		q[i] = prefix + "." + strconv.Itoa(i)
	}
	return q
}

// Kind is the exchange type the topology needs.
func (t *Topology) Kind() string {
	if len(t.Queues) == 1 {
		return KindFanout
	}
	return KindConsistentHash
}

// QueueArgs are the arguments every queue is declared with.
func (t *Topology) QueueArgs() amqp.Table {
	args := amqp.Table{argQueueType: "quorum", argSingleActive: true}
	if t.DeadLetter != "" {
		args[argDeadLetterX] = t.DeadLetter
	}
	if t.DeliveryLimit > 0 {
		args[argDeliveryLimit] = int64(t.DeliveryLimit)
	}
	return args
}

// Declare connects to url and declares the topology; ctx bounds it.
func (t *Topology) Declare(ctx context.Context, url string) error {
	if t.Exchange == "" || len(t.Queues) == 0 {
		return fmt.Errorf("%w: topology needs an exchange and a queue", ErrConfig)
	}
	type result struct {
		conn *amqp.Connection
		err  error
	}
	res := make(chan result, 1)
	go func() {
		// The library's calls take no context: a stuck broker is cut
		// off by closing the connection below.
		c, err := dial(url, DefaultName+"-declare", DefaultHeartbeat)
		if err != nil {
			res <- result{nil, fmt.Errorf("%w: %w", ErrNotConnected, err)}
			return
		}
		res <- result{c, t.declare(c)}
	}()
	closeConn := func(r result) {
		if r.conn != nil {
			r.conn.Close()
		}
	}
	select {
	case r := <-res:
		closeConn(r)
		return r.err
	case <-ctx.Done():
		go func() { closeConn(<-res) }()
		return fmt.Errorf("rabbitmq: declaring the topology: %w", ctx.Err())
	}
}

func (t *Topology) declare(conn *amqp.Connection) error {
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	if t.DeadLetter != "" {
		if err := ch.ExchangeDeclare(t.DeadLetter, KindFanout, true, false, false, false, nil); err != nil {
			return fmt.Errorf("rabbitmq: dead-letter exchange %s: %w", t.DeadLetter, err)
		}
		if _, err := ch.QueueDeclare(t.DeadLetter, true, false, false, false, amqp.Table{argQueueType: "quorum"}); err != nil {
			return fmt.Errorf("rabbitmq: dead-letter queue %s: %w", t.DeadLetter, err)
		}
		if err := ch.QueueBind(t.DeadLetter, "", t.DeadLetter, false, nil); err != nil {
			return fmt.Errorf("rabbitmq: binding the dead-letter queue: %w", err)
		}
	}
	kind := t.Kind()
	if err := ch.ExchangeDeclare(t.Exchange, kind, true, false, false, false, nil); err != nil {
		var ae *amqp.Error
		if kind == KindConsistentHash && errors.As(err, &ae) && ae.Code == amqp.CommandInvalid {
			return fmt.Errorf("rabbitmq: exchange %s: %w (is the plugin rabbitmq_consistent_hash_exchange enabled?)", t.Exchange, err)
		}
		return fmt.Errorf("rabbitmq: exchange %s: %w", t.Exchange, err)
	}
	args := t.QueueArgs()
	key := hashWeight
	if kind == KindFanout {
		key = ""
	}
	for _, q := range t.Queues {
		if _, err := ch.QueueDeclare(q, true, false, false, false, args); err != nil {
			return fmt.Errorf("rabbitmq: queue %s: %w", q, err)
		}
		if err := ch.QueueBind(q, key, t.Exchange, false, nil); err != nil {
			return fmt.Errorf("rabbitmq: binding queue %s: %w", q, err)
		}
	}
	return nil
}
