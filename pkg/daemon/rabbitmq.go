package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/metrics"
	"github.com/imcd-sip/imcd/pkg/opensips"
	"github.com/imcd-sip/imcd/pkg/rabbitmq"
	"github.com/imcd-sip/imcd/pkg/store"
)

// RabbitMQ mode (event_source = rabbitmq, docs/scale-out.md): the consumer
// of pkg/rabbitmq in place of the event listener, and the purge of old
// event keys. How the rooms are run in this mode (events applied once,
// fresh rooms, strict order) is the rooms' runtime's (pkg/rooms,
// rooms.RabbitMQ), which newRooms gives it.

var _ rabbitmq.Observer = (*metrics.RabbitMQ)(nil)

// openRabbitMQ opens the RabbitMQ event source in place of the event
// listener: a publisher for re-publishing (when rabbitmq_reroute is on),
// then the consumer, which may declare the topology first.
func (d *Daemon) openRabbitMQ(ctx context.Context) error {
	cfg := d.cfg
	r := cfg.RabbitMQ
	all, active, standby := cfg.RabbitMQQueues()
	src := &rabbitMQSource{}
	c := &rabbitmq.Consumer{URL: r.URL, Queues: active, Standby: standby, StandbyDelay: r.StandbyDelay,
		Prefetch: r.Prefetch, Sink: d, Observer: d.metrics.RabbitMQ(), Logger: d.logger, Name: connectionName(),
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

// rabbitMQSource is the RabbitMQ event source in the daemon's eventServer
// idiom: StopIntake stops the consumer taking deliveries while it keeps the
// queues and acknowledges what is applied; Close, once the shards and
// delivery have drained, gives the queues back (the rest of the
// deliveries go to the next instance, whose notices then follow this
// one's) and closes the publisher.
type rabbitMQSource struct {
	consumer *rabbitmq.Consumer
	pub      *rabbitmq.Publisher
}

// Open is done by openRabbitMQ.
func (s *rabbitMQSource) Open(context.Context) error { return nil }

// LocalAddr is nil: imcd listens for nothing in RabbitMQ mode.
func (s *rabbitMQSource) LocalAddr() net.Addr { return nil }

// StopIntake stops taking deliveries; the queues are kept until Close, or
// rabbitmq_drain_timeout.
func (s *rabbitMQSource) StopIntake() { s.consumer.StopIntake() }

// Close closes the consumer and the publisher.
func (s *rabbitMQSource) Close() error {
	s.consumer.Close()
	if s.pub != nil {
		return s.pub.Close()
	}
	return nil
}

// rabbitMQReady is /readyz in RabbitMQ mode: connected, and a consumer on
// every queue (active or standing by).
func (d *Daemon) rabbitMQReady() error {
	src, ok := d.events.(*rabbitMQSource)
	if !ok {
		return errors.New("rabbitmq: not started")
	}
	return src.consumer.Ready()
}

// keyPurgeEvery is how often event keys older than events_window are
// deleted.
const keyPurgeEvery = time.Minute

// keyPurge deletes, once a minute, the event keys stored before
// events_window: an event older than that is not expected back.
type keyPurge struct {
	events  store.EventLog
	window  time.Duration
	metrics *metrics.Metrics
	log     *slog.Logger
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// openKeyPurge starts the purge of old event keys, in RabbitMQ mode.
func (d *Daemon) openKeyPurge(ctx context.Context) error {
	if !d.cfg.IsRabbitMQ() {
		return nil
	}
	p := &keyPurge{events: d.store.(store.EventLog), window: d.cfg.RabbitMQ.EventsWindow, metrics: d.metrics, log: d.logger}
	if err := p.Open(ctx); err != nil {
		return err
	}
	d.keyPurge = p
	return nil
}

// Open starts the purge; ctx bounds only the opening.
func (p *keyPurge) Open(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(keyPurgeEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				p.purge(ctx, now)
			}
		}
	}()
	return nil
}

// Close stops the purge.
func (p *keyPurge) Close() error {
	if p == nil {
		return nil
	}
	p.cancel()
	p.wg.Wait()
	return nil
}

// purge deletes the keys stored before now minus events_window.
func (p *keyPurge) purge(ctx context.Context, now time.Time) {
	start := time.Now()
	n, err := p.events.PurgeEvents(ctx, now.Add(-p.window), store.DefaultPurgeBatch)
	p.metrics.DB("purge", time.Since(start))
	p.metrics.RabbitMQ().Purged(n)
	if err != nil && ctx.Err() == nil {
		p.log.Warn("cannot purge old keys of applied events (tried again in a minute)", logkey.Err, err, logkey.Purged, n)
	}
}
