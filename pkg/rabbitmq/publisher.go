package rabbitmq

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/imcd-sip/imcd/pkg/logging"
	"github.com/imcd-sip/imcd/pkg/logkey"
)

// HeaderRepublished marks a message imcd re-published; its value is the
// queue the original was consumed from. A Consumer never re-publishes a
// message that carries it, so a re-published event is applied where it
// lands, not sent on again.
const HeaderRepublished = "x-imcd-republished"

// DefaultConfirmTimeout bounds the wait for the broker's confirm of one
// publish.
const DefaultConfirmTimeout = 5 * time.Second

// Publisher publishes messages to an exchange and waits for each to be
// confirmed by the broker (publisher confirms), so a caller may acknowledge
// the original of a re-published message only once the copy is stored. It
// uses its own connection (the broker may block publishing connections under
// memory pressure; consumers must keep going). Set the fields, then Open,
// then Close. Publish and Republish are safe for concurrent use; they are
// serialised, which suits re-publishing (rare: manager commands).
type Publisher struct {
	// URL is the broker. Required.
	URL string
	// Exchange is where messages go: the exchange OpenSIPS publishes to.
	Exchange string
	// Timeout bounds the wait for one confirm; DefaultConfirmTimeout when 0.
	Timeout time.Duration
	// Name is the connection name; DefaultName+"-publisher" when "".
	Name string
	// Logger is the parent logger; nil discards.
	Logger *slog.Logger

	log     *slog.Logger
	mu      sync.Mutex // serialises publishes and guards what follows
	conn    *amqp.Connection
	ch      *amqp.Channel
	returns chan amqp.Return
	opened  bool
	closed  bool
}

// Open checks the fields. It does not wait for the broker (so it has no use
// for ctx): the connection is made by the first publish, and made again
// after it is lost.
func (p *Publisher) Open(context.Context) error {
	if _, err := amqp.ParseURI(p.URL); err != nil {
		return fmt.Errorf("%w: publisher URL: %w", ErrConfig, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.opened || p.closed {
		return fmt.Errorf("%w: Open called twice or after Close", ErrConfig)
	}
	if p.Timeout <= 0 {
		p.Timeout = DefaultConfirmTimeout
	}
	if p.Name == "" {
		p.Name = DefaultName + "-publisher"
	}
	p.log = logging.Child(p.Logger, logkey.SystemPublisher)
	p.opened = true
	return nil
}

// Close closes the connection. It is safe to call more than once.
func (p *Publisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.reset()
	return nil
}

// Republish publishes a consumed message again under key: same body (byte
// for byte), content type and headers, plus HeaderRepublished set to
// fromQueue, marked persistent. It returns once the broker confirmed it.
func (p *Publisher) Republish(ctx context.Context, d *amqp.Delivery, fromQueue, key string) error {
	h := make(amqp.Table, len(d.Headers)+1)
	maps.Copy(h, d.Headers)
	h[HeaderRepublished] = fromQueue
	return p.Publish(ctx, key, amqp.Publishing{
		Headers:         h,
		ContentType:     d.ContentType,
		ContentEncoding: d.ContentEncoding,
		DeliveryMode:    amqp.Persistent,
		Priority:        d.Priority,
		CorrelationId:   d.CorrelationId,
		ReplyTo:         d.ReplyTo,
		Expiration:      d.Expiration,
		MessageId:       d.MessageId,
		Timestamp:       d.Timestamp,
		Type:            d.Type,
		AppId:           d.AppId,
		Body:            d.Body,
	})
}

// Publish sends one message to Exchange with routing key key, as mandatory,
// and waits for the broker's confirm. It fails with ErrUnroutable when the
// message matched no queue, ErrNacked when the broker refused it, and with
// the context's or a connection error when the outcome is unknown (the
// message may then be stored all the same: publishing again makes a
// duplicate, which the applied-once check removes).
func (p *Publisher) Publish(ctx context.Context, key string, msg amqp.Publishing) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.opened || p.closed {
		return ErrClosed
	}
	if err := p.connect(); err != nil {
		return err
	}
	p.drainReturns()
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	dc, err := p.ch.PublishWithDeferredConfirmWithContext(ctx, p.Exchange, key, true, false, msg)
	if err != nil {
		p.reset()
		return fmt.Errorf("rabbitmq: publish: %w", err)
	}
	acked, err := dc.WaitContext(ctx)
	if err != nil {
		// A late confirm or return would be taken for the next message's.
		p.reset()
		return fmt.Errorf("rabbitmq: no confirm from the broker: %w", err)
	}
	if !acked {
		return fmt.Errorf("%w (routing key %q)", ErrNacked, key)
	}
	// The broker sends basic.return before basic.ack, and the library hands
	// it to p.returns before it reports the ack: it is there by now.
	select {
	case r := <-p.returns:
		return fmt.Errorf("%w: exchange %q, routing key %q: %s", ErrUnroutable, p.Exchange, r.RoutingKey, r.ReplyText)
	default:
	}
	return nil
}

// connect makes the connection and the confirming channel when there is
// none (or it was lost).
func (p *Publisher) connect() error {
	if p.ch != nil && !p.ch.IsClosed() {
		return nil
	}
	p.reset()
	conn, err := dial(p.URL, p.Name, DefaultHeartbeat)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotConnected, err)
	}
	ch, err := conn.Channel()
	if err == nil {
		err = ch.Confirm(false)
	}
	if err != nil {
		conn.Close()
		return fmt.Errorf("%w: confirming channel: %w", ErrNotConnected, err)
	}
	p.conn, p.ch = conn, ch
	// Buffered: the library's reader blocks on a full listener.
	p.returns = ch.NotifyReturn(make(chan amqp.Return, 4))
	p.log.Info("publisher connected", logkey.Broker, Redacted(p.URL))
	return nil
}

// reset drops the connection; the next publish makes a new one.
func (p *Publisher) reset() {
	if p.conn != nil {
		p.conn.Close()
	}
	p.conn, p.ch, p.returns = nil, nil, nil
}

// drainReturns discards returns left by an earlier publish.
func (p *Publisher) drainReturns() {
	for {
		select {
		case <-p.returns:
		default:
			return
		}
	}
}
