package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"

	"github.com/imcd-sip/imcd/pkg/config"
	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/metrics"
	"github.com/imcd-sip/imcd/pkg/opensips"
	"github.com/imcd-sip/imcd/pkg/rabbitmq"
	"github.com/imcd-sip/imcd/pkg/store"
)

// RabbitMQ mode (event_source = rabbitmq, docs/scale-out.md). Several imcd
// consume the same broker queues, so the daemon differs from the
// single-node modes in four ways:
//
//   - applied once: a command's changes commit with the event's key
//     (store.ApplyOnce), and an event without changes (a chat line, a
//     refusal) has its key stored by the marks writer before its notices go
//     out (once.go). A redelivered event that some instance applied already
//     is acknowledged with no change and no notice;
//   - fresh rooms: a room is re-read from the database before it is served
//     under a consumer session other than the one it was last served under
//     (freshness.go), because another instance may have changed it;
//   - strict order: every event of a room waits while the room has a commit,
//     a mark or a re-read in flight, so a room's notices leave in the order
//     of its queue; and once an event failed (done with an error: the queue
//     rewinds), the later events of its session fail too without being
//     applied, to come back in order;
//   - a failure that the broker will retry (database down, busy) tells the
//     sender nothing: the event comes back. Only a permanent one (a conflict
//     with the stored rows) is told, and its message rejected.

// brokered is what an event from RabbitMQ carries besides the event: the key
// that makes it applied once, and where it came from.
type brokered struct {
	key    string // store.EventKey(Call-ID, CSeq, From tag)
	origin opensips.Origin
}

// brokerMode is the daemon's state in RabbitMQ mode.
type brokerMode struct {
	d       *Daemon
	events  store.EventLog
	metrics *metrics.RabbitMQ
	cfg     config.RabbitMQ

	// failed holds, per queue, the session of the last event that failed:
	// the later events of that session fail too. Built at open, read-only
	// after that (its values are atomics).
	failed map[string]*atomic.Uint64

	// marks feeds the marks writer (once.go); it holds every mark that can
	// exist at once, so a shard never blocks on it.
	marks      chan *commitJob
	stopPurge  context.CancelFunc
	writerDone chan struct{}
	purgeWG    sync.WaitGroup
	stopOnce   sync.Once
}

var _ rabbitmq.Observer = (*metrics.RabbitMQ)(nil)

// errRewound answers the events of a consumer session after one of its
// events failed: the broker brings them back, in order.
var errRewound = errors.New("an earlier event of this queue could not be applied: it is redelivered, in order, with this one")

// openBrokerMode prepares RabbitMQ mode before the shards start: the
// failed-session table, the marks writer and the purge of old keys. The
// consumer opens later, in place of the event listener (openRabbitMQ).
func (d *Daemon) openBrokerMode() error {
	if !d.cfg.IsRabbitMQ() {
		return nil
	}
	events, ok := d.store.(store.EventLog)
	if !ok {
		return fmt.Errorf("event_source = rabbitmq: the store keeps no events table")
	}
	all, _, _ := d.cfg.RabbitMQQueues()
	b := &brokerMode{d: d, events: events, metrics: d.metrics.RabbitMQ(), cfg: d.cfg.RabbitMQ,
		failed: make(map[string]*atomic.Uint64, len(all)), marks: make(chan *commitJob, len(d.shards)*maxMarks),
		writerDone: make(chan struct{})}
	for _, q := range all {
		b.failed[q] = new(atomic.Uint64)
	}
	go b.writeMarks()
	ctx, cancel := context.WithCancel(context.Background())
	b.stopPurge = cancel
	b.purgeWG.Add(1)
	go func() { defer b.purgeWG.Done(); every(ctx, purgeEvery, b.purgeOnce) }()
	d.broker = b
	return nil
}

// stop ends the marks writer and the purge; the shards must be done.
func (b *brokerMode) stop() {
	if b == nil {
		return
	}
	b.stopOnce.Do(func() {
		b.stopPurge()
		b.purgeWG.Wait()
		close(b.marks)
		<-b.writerDone
	})
}

// take fills in a task of an event from RabbitMQ: its key and origin, and a
// done that records a failed session and turns a conflict into a bad event
// (rejected: no retry can cure it).
func (b *brokerMode) take(t *task, ev *opensips.Event) {
	t.broker = &brokered{key: store.EventKey(ev.Req.CallID, ev.CSeq, ev.FromTag), origin: ev.Origin}
	done, o := t.done, ev.Origin
	t.done = func(err error) {
		switch {
		case err == nil:
		case errors.Is(err, store.ErrConflict):
			err = fmt.Errorf("%w: %w", opensips.ErrBadEvent, err)
		case !errors.Is(err, opensips.ErrBadEvent):
			if f := b.failed[o.Queue]; f != nil {
				f.Store(o.Session)
			}
		}
		done(err)
	}
}

// rewound reports whether an earlier event of o's session failed.
func (b *brokerMode) rewound(o opensips.Origin) bool {
	f := b.failed[o.Queue]
	return f != nil && f.Load() == o.Session
}

// redelivers reports whether the broker brings an event back after err, so
// that its sender must not be told to try again: every failure of a
// brokered event but a conflict with the stored rows.
func redelivers(b *brokered, err error) bool {
	return b != nil && err != nil && !errors.Is(err, store.ErrConflict) && !errors.Is(err, opensips.ErrBadEvent)
}

// openRabbitMQ opens the RabbitMQ event source in place of the event
// listener: a publisher for re-publishing (when rabbitmq_reroute is on),
// then the consumer, which may declare the topology first.
func (d *Daemon) openRabbitMQ(ctx context.Context) error {
	cfg := d.cfg
	r := cfg.RabbitMQ
	all, active, standby := cfg.RabbitMQQueues()
	src := &brokerSource{}
	c := &rabbitmq.Consumer{URL: r.URL, Queues: active, Standby: standby, StandbyDelay: r.StandbyDelay,
		Prefetch: r.Prefetch, Sink: d, Observer: d.broker.metrics, Logger: d.logger, Name: connectionName(),
		// The drain (how long a stopping instance keeps its queues) is
		// taken from the one shutdown budget.
		DrainTimeout: min(r.DrainTimeout, max(cfg.ShutdownGrace, 1)),
		MaxBody:      cfg.MaxEventSize, Heartbeat: r.Heartbeat}
	if r.Declare {
		c.Declare = &rabbitmq.Topology{Exchange: r.Exchange, Queues: all, DeadLetter: r.DeadLetter}
	}
	if cfg.RabbitMQReroute() {
		src.pub = &rabbitmq.Publisher{URL: r.URL, Exchange: r.Exchange, Logger: d.logger, Name: c.Name + "-publisher"}
		if err := src.pub.Open(ctx); err != nil {
			return fmt.Errorf("rabbitmq publisher: %w", err)
		}
		c.Publisher, c.Reroute = src.pub, d.reroute
	}
	src.consumer = c
	d.events = src // closed by shutdown, also when the consumer fails to open
	if err := c.Open(ctx); err != nil {
		return fmt.Errorf("rabbitmq: %w", err)
	}
	d.notice("events come from RabbitMQ", logkey.Broker, rabbitmq.Redacted(r.URL), logkey.Queues, active,
		logkey.Standby, standby, logkey.Reroute, c.Reroute != nil, logkey.Declare, r.Declare)
	return nil
}

// connectionName names imcd's connections in the broker's listings.
func connectionName() string {
	host, err := os.Hostname()
	if err != nil {
		return rabbitmq.DefaultName
	}
	return rabbitmq.DefaultName + "@" + host
}

// reroute is the Consumer's Reroute: an event whose command names another
// room than the one its R-URI routed it by (a manager's "#create chat-x",
// an "#invite bob chat-2" sent to chat-1) is re-published keyed by that
// room, as OpenSIPS keys a MESSAGE sent to it, so that it is applied in
// that room's queue and order. It runs on the consumer's workers: Prepare
// is pure.
func (d *Daemon) reroute(ev *opensips.Event) string {
	in, err := d.engine.Prepare(ev.Req)
	if err != nil {
		return "" // Submit refuses it
	}
	room := in.RoomKey()
	if room == "" || room == in.RURI.Key() {
		return ""
	}
	return "sip:" + room
}

// brokerSource is the RabbitMQ event source in the daemon's eventServer
// idiom: StopIntake stops the consumer taking deliveries while it keeps the
// queues and acknowledges what is applied; Close, once the shards and
// delivery have drained, gives the queues back (the rest of the
// deliveries go to the next instance, whose notices then follow this
// one's) and closes the publisher.
type brokerSource struct {
	consumer *rabbitmq.Consumer
	pub      *rabbitmq.Publisher
}

// Open is done by openRabbitMQ.
func (s *brokerSource) Open(context.Context) error { return nil }

// LocalAddr is nil: imcd listens for nothing in RabbitMQ mode.
func (s *brokerSource) LocalAddr() net.Addr { return nil }

// StopIntake stops taking deliveries; the queues are kept until Close, or
// rabbitmq_drain_timeout.
func (s *brokerSource) StopIntake() { s.consumer.StopIntake() }

// Close closes the consumer and the publisher.
func (s *brokerSource) Close() error {
	s.consumer.Close()
	if s.pub != nil {
		return s.pub.Close()
	}
	return nil
}

// ready is /readyz in RabbitMQ mode: connected, and a consumer on every
// queue (active or standing by).
func (b *brokerMode) ready() error {
	src, ok := b.d.events.(*brokerSource)
	if !ok {
		return errors.New("rabbitmq: not started")
	}
	return src.consumer.Ready()
}
