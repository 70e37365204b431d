package rabbitmq

import (
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/opensips"
)

// isBadEvent reports whether err says an event can never be applied.
func isBadEvent(err error) bool { return errors.Is(err, opensips.ErrBadEvent) }

// handle takes one delivery: decode, re-publish or submit. It returns when
// the delivery is submitted, settled, or left unsettled because the session
// is ending (it then goes back to the queue with the later ones). A panic
// rejects the delivery: a message that crashes imcd must not come back.
func (s *session) handle(d amqp.Delivery) {
	c := s.w.c
	s.unsettled++
	c.obs.Delivered(s.w.queue, d.Redelivered)
	submitted := false
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic while handling a message", logkey.Panic, fmt.Sprint(r), logkey.Stack, string(debug.Stack()))
			if !submitted {
				delete(s.pending, d.DeliveryTag)
				s.reject(d.DeliveryTag, errors.New("panic"), "")
			}
		}
	}()
	if len(d.Body) > c.MaxBody {
		s.reject(d.DeliveryTag, fmt.Errorf("%w: body of %d bytes, over %d", opensips.ErrBadEvent, len(d.Body), c.MaxBody), "")
		return
	}
	ev := &s.w.ev // Decode fills all of it but Transport and Origin
	if err := Decode(&s.w.p, d.Headers, d.Body, ev); err != nil {
		s.reject(d.DeliveryTag, err, "")
		return
	}
	ev.Transport = Transport
	ev.Origin = opensips.Origin{Queue: s.w.queue, Session: s.id, Redelivered: d.Redelivered}
	if c.Reroute != nil && d.Headers[HeaderRepublished] == nil {
		if key := c.Reroute(ev); key != "" {
			s.republish(&d, key, ev.Req.CallID)
			return
		}
	}
	var wait time.Duration
	for {
		s.pending[d.DeliveryTag] = struct{}{}
		err := c.Sink.Submit(*ev, s.done(d.DeliveryTag))
		if err == nil {
			submitted = true
			s.submitted = append(s.submitted, d.DeliveryTag)
			return
		}
		delete(s.pending, d.DeliveryTag)
		if isBadEvent(err) {
			s.reject(d.DeliveryTag, err, ev.Req.CallID)
			return
		}
		// Busy: offer it again later, holding the queue's later deliveries
		// (still in the channel's buffer) behind it.
		c.obs.Retried(s.w.queue)
		wait = c.RetryBackoff.next(wait)
		if !s.pause(wait) {
			return
		}
	}
}

// pause waits d while settling verdicts; false when the session is ending
// (the delivery in hand is then given back with the later ones).
func (s *session) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		if s.over || s.stopping || s.rewind {
			return false
		}
		if _, _, fired := s.next(false, t.C); fired {
			return !(s.over || s.stopping || s.rewind)
		}
	}
}

// republish publishes the delivery again under key and acknowledges it once
// the broker confirmed the copy. When that fails the delivery stays
// unacknowledged and the queue rewinds, so it is re-published again later:
// a duplicate at worst, which the applied-once check removes.
func (s *session) republish(d *amqp.Delivery, key, callid string) {
	err := s.w.c.Publisher.Republish(s.ctx, d, s.w.queue, key)
	if err != nil {
		s.log.Warn("cannot re-publish a message: the queue rewinds", logkey.Err, err, logkey.RoutingKey, key, logkey.CallID, callid)
		s.rewind = true
		return
	}
	if err := s.ch.Ack(d.DeliveryTag, false); err != nil {
		return
	}
	s.unsettled--
	s.progress = true
	s.w.c.obs.Settled(s.w.queue, OutcomeRerouted)
}
