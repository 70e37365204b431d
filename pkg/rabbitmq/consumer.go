package rabbitmq

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/imcd-sip/imcd/pkg/logging"
	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/opensips"
)

// Defaults of the Consumer.
const (
	// DefaultPrefetch bounds the deliveries of one queue that are in imcd
	// and not yet acknowledged.
	DefaultPrefetch = 128
	// DefaultDrainTimeout bounds how long Close waits for events being
	// applied, so that their acknowledgements are not lost.
	DefaultDrainTimeout = 5 * time.Second
	// DefaultName names the connection in the broker's listings and starts
	// every consumer tag.
	DefaultName = "imcd"
	// DefaultStandbyDelay is how long the Standby queues wait before being
	// consumed.
	DefaultStandbyDelay = 3 * time.Second
	// DefaultHeartbeat is the AMQP heartbeat. A peer that vanishes without
	// closing its socket (a machine lost, a network cut) is noticed within
	// about three times this, by the broker (which then hands the queue to
	// a standby; TestFailoverNetworkCut) and by imcd (which reconnects).
	// One second, the least RabbitMQ advises (a loaded machine's pauses
	// would cut healthy connections), keeps a lost machine's failover
	// within 5 s (2.97 s measured).
	DefaultHeartbeat = time.Second
	// dialTimeout bounds one TCP connect and AMQP handshake.
	dialTimeout = 10 * time.Second
)

// Bounds of the default backoffs.
const (
	// DefaultBackoffMin and DefaultBackoffMax pace reconnections, and new
	// sessions after a rewind.
	DefaultBackoffMin = 100 * time.Millisecond
	DefaultBackoffMax = 5 * time.Second
	// DefaultRetryMin and DefaultRetryMax pace the offers of a delivery the
	// Sink refused as busy.
	DefaultRetryMin = 2 * time.Millisecond
	DefaultRetryMax = 200 * time.Millisecond
)

// Consumer consumes events from RabbitMQ queues and hands them to a Sink,
// acknowledging each only when the Sink reports it committed. Set the
// fields, then Open, then Close.
//
// Order: one worker per queue submits that queue's deliveries in delivery
// order, and a delivery the Sink refuses (busy) is offered again, after a
// backoff, before any later one. When the Sink reports a failure other than
// a bad event (done(err): a commit failed), the worker stops submitting,
// waits for the events already submitted, acknowledges those that
// succeeded, and closes its channel: the broker puts every unacknowledged
// delivery back at the head of the queue, in order, and the worker consumes
// again after a backoff under a new session. It never nacks with requeue:
// on quorum queues that moves the message behind the later ones
// (TestQuorumRequeueOrder).
//
// Events submitted after the failed one and before its verdict arrived (at
// most Prefetch) are still applied by the Sink; one of the same room would
// then be applied before the failed one comes again. A Sink keeps strict
// per-room order by answering done(err), without applying, every event of
// the same Origin (queue and session) that reaches the room's shard after
// a failure: the rewind brings them all back, in order.
type Consumer struct {
	// URL is the broker, amqp://user:password@host:5672/vhost. Required.
	URL string
	// Queues are consumed, each by its own worker. Required unless Declare
	// names them.
	Queues []string
	// Standby queues are consumed too, but only StandbyDelay after Open.
	// Single-active-consumer makes the first consumer registered on a queue
	// its active one, so instances started together each become active on
	// their own Queues and stand by for the others' (docs/scale-out.md).
	Standby []string
	// StandbyDelay is DefaultStandbyDelay when 0.
	StandbyDelay time.Duration
	// Prefetch bounds the unacknowledged deliveries of each queue;
	// DefaultPrefetch when 0.
	Prefetch int
	// Sink receives the events. Required.
	Sink opensips.Sink
	// Observer counts deliveries; nil means NopObserver.
	Observer Observer
	// Logger is the parent logger; nil discards.
	Logger *slog.Logger
	// Name is the connection name and consumer tag prefix; DefaultName
	// when "".
	Name string
	// Declare, when set, is declared by Open before consuming (the
	// operator's "declare at start").
	Declare *Topology
	// Reroute, when set, is asked for the routing key an event must be
	// re-published under instead of being applied here; "" applies it. It
	// is called by every queue's worker, so it must be safe for concurrent
	// use, quick, and must not block; ev is valid only during the call. A
	// message that was re-published once (HeaderRepublished) is never asked
	// about. Requires Publisher.
	Reroute func(ev *opensips.Event) string
	// Publisher re-publishes what Reroute asks for; it must be open.
	Publisher *Publisher
	// Backoff paces reconnections and rewinds; DefaultBackoffMin and
	// DefaultBackoffMax where zero.
	Backoff Backoff
	// RetryBackoff paces offers of a delivery the Sink refused as busy;
	// DefaultRetryMin and DefaultRetryMax where zero.
	RetryBackoff Backoff
	// DrainTimeout bounds Close's wait for events being applied, and how
	// long StopIntake keeps the queues; DefaultDrainTimeout when 0.
	DrainTimeout time.Duration
	// MaxBody caps a message body; a larger one is rejected.
	// DefaultMaxBody when 0.
	MaxBody int
	// Heartbeat is the AMQP heartbeat; DefaultHeartbeat when 0.
	Heartbeat time.Duration

	log         *slog.Logger
	obs         Observer
	sessionBase uint64
	sessionSeq  atomic.Uint64

	mu        sync.Mutex
	conn      *amqp.Connection
	connWake  chan struct{} // closed and replaced when conn changes
	consuming map[string]bool
	waiting   map[string]bool // Standby queues in their first delay
	opening   bool            // Open was called
	opened    bool            // and started the goroutines
	closed    bool
	holding   bool          // StopIntake: stopped sessions keep their channel until Close
	release   chan struct{} // closed by Close: held channels may close

	cancelWork context.CancelFunc // stops the workers (they drain first)
	cancelConn context.CancelFunc // then the connection keeper
	workers    sync.WaitGroup
	keeper     sync.WaitGroup
	closeOnce  sync.Once
}

// Open checks the fields, declares the topology when Declare is set (ctx
// bounds that), and starts consuming in the background: it does not wait for
// the broker, whose absence Ready reports while the Consumer reconnects.
func (c *Consumer) Open(ctx context.Context) error {
	c.mu.Lock()
	again := c.opening || c.closed
	c.opening = true
	c.mu.Unlock()
	if again {
		return fmt.Errorf("%w: Open called twice or after Close", ErrConfig)
	}
	if err := c.init(); err != nil {
		return err
	}
	if c.Declare != nil {
		if err := c.Declare.Declare(ctx, c.URL); err != nil {
			return err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	c.opened = true
	workCtx, cancelWork := context.WithCancel(context.Background())
	connCtx, cancelConn := context.WithCancel(context.Background())
	c.cancelWork, c.cancelConn = cancelWork, cancelConn
	c.keeper.Add(1)
	go c.keep(connCtx)
	for _, q := range c.Queues {
		w := &worker{c: c, queue: q, log: c.log.With(logkey.Queue, q)}
		c.workers.Add(1)
		go w.run(workCtx, 0)
	}
	for _, q := range c.Standby {
		w := &worker{c: c, queue: q, log: c.log.With(logkey.Queue, q)}
		c.waiting[q] = true
		c.workers.Add(1)
		go w.run(workCtx, c.StandbyDelay)
	}
	c.log.Info("consuming from RabbitMQ", logkey.Broker, Redacted(c.URL), logkey.Queues, c.Queues, logkey.Standby, c.Standby, logkey.Prefetch, c.Prefetch)
	return nil
}

func (c *Consumer) init() error {
	if c.Queues == nil && c.Declare != nil {
		c.Queues = c.Declare.Queues
	}
	switch {
	case c.Sink == nil:
		return fmt.Errorf("%w: Consumer has no Sink", ErrConfig)
	case len(c.Queues) == 0:
		return fmt.Errorf("%w: Consumer has no queue", ErrConfig)
	case c.Reroute != nil && c.Publisher == nil:
		return fmt.Errorf("%w: Consumer has Reroute but no Publisher", ErrConfig)
	case c.Prefetch < 0 || c.Prefetch > 65535:
		return fmt.Errorf("%w: prefetch %d out of 1..65535", ErrConfig, c.Prefetch)
	}
	seen := make(map[string]bool, len(c.Queues)+len(c.Standby))
	for _, q := range append(c.Queues[:len(c.Queues):len(c.Queues)], c.Standby...) {
		if q == "" || seen[q] {
			return fmt.Errorf("%w: queue %q empty or given twice", ErrConfig, q)
		}
		seen[q] = true
	}
	if _, err := amqp.ParseURI(c.URL); err != nil {
		return fmt.Errorf("%w: URL: %w", ErrConfig, err)
	}
	if c.Prefetch == 0 {
		c.Prefetch = DefaultPrefetch
	}
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.MaxBody <= 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.StandbyDelay <= 0 {
		c.StandbyDelay = DefaultStandbyDelay
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = DefaultHeartbeat
	}
	c.Backoff = c.Backoff.orDefault(DefaultBackoffMin, DefaultBackoffMax)
	c.RetryBackoff = c.RetryBackoff.orDefault(DefaultRetryMin, DefaultRetryMax)
	c.obs = c.Observer
	if c.obs == nil {
		c.obs = NopObserver{}
	}
	c.log = logging.Child(c.Logger, logkey.SystemRabbitMQ)
	// Sessions start at a random point so that a Consumer created again in
	// the same process (a daemon restarted in-process) never repeats one.
	c.sessionBase = rand.Uint64()
	c.connWake = make(chan struct{})
	c.consuming = make(map[string]bool, len(c.Queues)+len(c.Standby))
	c.release = make(chan struct{})
	c.waiting = make(map[string]bool, len(c.Standby))
	return nil
}

// Ready reports whether the Consumer is connected and has a consumer on
// every queue (active or standing by behind another instance's; a Standby
// queue still in its first delay counts as ready). It is
// what /readyz should say in RabbitMQ mode.
func (c *Consumer) Ready() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return ErrClosed
	case !c.opened:
		return ErrNotConnected
	case c.conn == nil:
		return fmt.Errorf("%w (%s)", ErrNotConnected, Redacted(c.URL))
	}
	for _, q := range append(c.Queues[:len(c.Queues):len(c.Queues)], c.Standby...) {
		if !c.consuming[q] && !c.waiting[q] {
			return fmt.Errorf("%w: no consumer on %s", ErrNotConsuming, q)
		}
	}
	return nil
}

// Close stops consuming: each worker stops submitting, waits up to
// DrainTimeout for the events it submitted and acknowledges those that were
// committed, then the connection is closed and every delivery not
// acknowledged goes back to its queue, for this or another instance. Call it
// before the Sink stops applying events, or after StopIntake once the Sink
// has finished what it took. It is safe to call more than once.
func (c *Consumer) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		opened := c.opened
		c.mu.Unlock()
		if !opened {
			return
		}
		c.cancelWork()
		close(c.release)
		c.workers.Wait()
		c.cancelConn()
		c.keeper.Wait()
	})
	return nil
}

// StopIntake stops taking deliveries but keeps each queue until Close, or
// at most DrainTimeout: the workers submit nothing more and go on
// acknowledging what the Sink reports committed while their channels stay
// open, so that single-active-consumer hands the queues to the next
// instance only then. A daemon that stops gracefully calls it first, then
// drains what it took (its notices sent), then calls Close: the next
// instance's notices then follow this one's instead of mixing with them.
// It does not wait.
func (c *Consumer) StopIntake() {
	c.mu.Lock()
	start := c.opened && !c.closed && !c.holding
	c.holding = true
	c.mu.Unlock()
	if start {
		c.cancelWork()
	}
}

// holds reports whether stopped sessions keep their channel until Close.
func (c *Consumer) holds() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.holding
}

// nextSession returns a new consumer session id, never 0.
func (c *Consumer) nextSession() uint64 {
	for {
		if id := c.sessionBase + c.sessionSeq.Add(1); id != 0 {
			return id
		}
	}
}

// keep holds the connection: it dials with backoff, publishes the
// connection to the workers, and dials again when the broker closes it.
func (c *Consumer) keep(ctx context.Context) {
	defer c.keeper.Done()
	var wait time.Duration
	for {
		conn, err := dial(c.URL, c.Name, c.Heartbeat)
		if err != nil {
			wait = c.Backoff.next(wait)
			c.log.Warn("cannot connect to RabbitMQ", logkey.Broker, Redacted(c.URL), logkey.Err, err, logkey.Backoff, wait)
			if !sleep(ctx, wait) {
				return
			}
			continue
		}
		wait = 0
		lost := conn.NotifyClose(make(chan *amqp.Error, 1))
		c.setConn(conn)
		c.obs.Connected(true)
		c.log.Info("connected to RabbitMQ", logkey.Broker, Redacted(c.URL))
		select {
		case err := <-lost:
			c.setConn(nil)
			c.obs.Connected(false)
			c.log.Warn("RabbitMQ connection lost", logkey.Err, err)
			if !sleep(ctx, c.Backoff.Min) {
				return
			}
		case <-ctx.Done():
			c.setConn(nil)
			conn.Close()
			c.obs.Connected(false)
			return
		}
	}
}

func dial(url, name string, heartbeat time.Duration) (*amqp.Connection, error) {
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(name)
	return amqp.DialConfig(url, amqp.Config{
		Heartbeat:  heartbeat,
		Properties: props,
		Dial:       amqp.DefaultDial(dialTimeout),
	})
}

func (c *Consumer) setConn(conn *amqp.Connection) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conn = conn
	close(c.connWake)
	c.connWake = make(chan struct{})
}

// waitConn returns a live connection, waiting for the keeper to make one;
// nil when ctx ends first.
func (c *Consumer) waitConn(ctx context.Context) *amqp.Connection {
	for {
		c.mu.Lock()
		conn, wake := c.conn, c.connWake
		c.mu.Unlock()
		if conn != nil && !conn.IsClosed() {
			return conn
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return nil
		}
	}
}

// endWait ends a Standby queue's first delay: from now on Ready wants a
// consumer on it.
func (c *Consumer) endWait(queue string) {
	c.mu.Lock()
	delete(c.waiting, queue)
	c.mu.Unlock()
}

func (c *Consumer) setConsuming(queue string, on bool) {
	c.mu.Lock()
	c.consuming[queue] = on
	c.mu.Unlock()
	c.obs.Consuming(queue, on)
}
