package rabbitmq

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/valyala/fastjson"
)

// worker owns one queue: it opens a channel and consumes under a new
// session each time the previous one ended (connection lost, channel
// closed by the broker, rewind after a failed commit), until Close.
type worker struct {
	c     *Consumer
	queue string
	log   *slog.Logger
	p     fastjson.Parser
}

// sessionEnd says why a session ended, which decides the pause before the
// next one.
type sessionEnd int

const (
	endLost     sessionEnd = iota // the channel or connection closed under us, or could not be opened
	endRewind                     // a commit failed: deliveries given back
	endStopping                   // Close
)

func (w *worker) run(ctx context.Context) {
	defer w.c.workers.Done()
	var wait time.Duration
	for {
		conn := w.c.waitConn(ctx)
		if conn == nil {
			return
		}
		end, progress := w.session(ctx, conn)
		if end == endStopping || ctx.Err() != nil {
			return
		}
		if progress {
			wait = 0
		}
		wait = w.c.Backoff.next(wait)
		if end == endRewind {
			w.log.Info("consuming again after a failed commit", keyBackoff, wait)
		}
		if !sleep(ctx, wait) {
			return
		}
	}
}

// session consumes the queue on a new channel of conn until the channel
// closes, a rewind is due or ctx ends. progress says whether anything was
// acknowledged or rejected, which resets the backoff.
func (w *worker) session(ctx context.Context, conn *amqp.Connection) (end sessionEnd, progress bool) {
	ch, err := conn.Channel()
	if err != nil {
		w.log.Warn("cannot open a channel", keyErr, err)
		return endLost, false
	}
	s := &session{
		w:           w,
		ch:          ch,
		id:          w.c.nextSession(),
		closed:      ch.NotifyClose(make(chan *amqp.Error, 1)),
		completions: make(chan completion, w.c.Prefetch),
		pending:     make(map[uint64]struct{}, w.c.Prefetch),
		ctx:         ctx,
		stop:        ctx.Done(),
	}
	s.log = w.log.With(keySession, strconv.FormatUint(s.id, 16))
	if err := ch.Qos(w.c.Prefetch, 0, false); err != nil {
		w.log.Warn("cannot set the prefetch", keyErr, err)
		ch.Close()
		return endLost, false
	}
	tag := w.c.Name + "." + strconv.FormatUint(s.id, 16)
	s.deliveries, err = ch.Consume(w.queue, tag, false, false, false, false, nil)
	if err != nil {
		w.log.Warn("cannot consume", keyErr, err)
		ch.Close()
		return endLost, false
	}
	w.c.setConsuming(w.queue, true)
	s.log.Debug("consuming")
	s.serve()
	w.c.setConsuming(w.queue, false)
	if !s.over {
		// Gives every unacknowledged delivery back to the head of the
		// queue, in order, and lets the next consumer in line take over.
		ch.Close()
	}
	if s.unsettled > 0 {
		for range s.unsettled {
			w.c.obs.Settled(w.queue, OutcomeReturned)
		}
		s.log.Info("deliveries given back to the queue", keyReturned, s.unsettled)
	}
	switch {
	case s.stopping:
		return endStopping, s.progress
	case s.rewind && !s.over:
		return endRewind, s.progress
	}
	return endLost, s.progress
}

// completion is a Sink's verdict on one delivery of a session.
type completion struct {
	tag uint64
	err error
}

// session is one consumption of the queue on one channel; its delivery tags
// mean nothing on another channel, so its completions arrive on its own
// Go channel and die with it.
type session struct {
	w           *worker
	log         *slog.Logger
	ch          *amqp.Channel
	id          uint64
	deliveries  <-chan amqp.Delivery
	closed      chan *amqp.Error
	completions chan completion
	ctx         context.Context
	stop        <-chan struct{} // ctx.Done() until Close begins, then nil
	drain       <-chan time.Time

	pending   map[uint64]struct{} // submitted, verdict not in yet
	unsettled int                 // received, neither acknowledged nor rejected
	progress  bool
	rewind    bool // a commit failed: submit nothing more, give back the rest
	over      bool // the channel is gone: nothing can be acknowledged
	stopping  bool // Close: drain, then give back the rest
}

// serve runs the session: deliveries are submitted one by one, in order;
// verdicts are settled as they come.
func (s *session) serve() {
	for !s.over {
		if (s.rewind || s.stopping) && len(s.pending) == 0 {
			return
		}
		d, got, timedOut := s.next(true, nil)
		if timedOut {
			return // Close's drain deadline
		}
		if got {
			s.handle(d)
		}
	}
}

// next waits for one thing to happen. With take, it may return a delivery
// (got). timer fires a wait of the caller's (fired); Close's drain deadline
// ends the wait as timedOut.
func (s *session) next(take bool, timer <-chan time.Time) (d amqp.Delivery, got, fired bool) {
	var in <-chan amqp.Delivery
	if take && !s.rewind && !s.stopping {
		in = s.deliveries
	}
	select {
	case d, ok := <-in:
		if !ok {
			s.over = true
			return d, false, false
		}
		return d, true, false
	case c := <-s.completions:
		s.settle(c)
	case err := <-s.closed:
		s.over = true
		if err != nil {
			s.log.Warn("channel closed by the broker", keyErr, err)
		}
	case <-s.stop:
		s.stopping = true
		s.stop = nil
		t := time.NewTimer(s.w.c.DrainTimeout)
		s.drain = t.C
	case <-s.drain:
		s.log.Warn("events still being applied at the end of the drain: they will be redelivered", "pending", len(s.pending))
		s.over = true // acknowledges nothing more; the channel is closed by the caller
		s.ch.Close()
		return d, false, true
	case <-timer:
		return d, false, true
	}
	return d, false, false
}

// settle acknowledges, rejects or rewinds according to one verdict.
func (s *session) settle(c completion) {
	if _, ok := s.pending[c.tag]; !ok {
		return // a second verdict for the same delivery: the Sink broke its contract
	}
	delete(s.pending, c.tag)
	if s.over {
		return
	}
	q := s.w.queue
	switch {
	case c.err == nil:
		if err := s.ch.Ack(c.tag, false); err != nil {
			return // the channel is closing; the delivery comes back
		}
		s.unsettled--
		s.progress = true
		s.w.c.obs.Settled(q, OutcomeAcked)
	case isBadEvent(c.err):
		s.reject(c.tag, c.err, "")
	default:
		if !s.rewind {
			s.log.Warn("an event was not committed: giving this queue's deliveries back to be redelivered in order", keyErr, c.err)
		}
		s.rewind = true
	}
}

// reject refuses a delivery that can never be applied: dead-lettered when
// the queue has a dead-letter exchange, dropped otherwise.
func (s *session) reject(tag uint64, why error, callid string) {
	if err := s.ch.Reject(tag, false); err != nil {
		return
	}
	s.unsettled--
	s.progress = true
	s.w.c.obs.Settled(s.w.queue, OutcomeRejected)
	s.log.Warn("message rejected: it can never be applied", keyErr, why, keyCallID, callid)
}

// done returns the verdict callback of one delivery. It never blocks: a
// session has at most Prefetch deliveries pending and its completions
// channel holds that many.
func (s *session) done(tag uint64) func(error) {
	out := s.completions
	return func(err error) {
		select {
		case out <- completion{tag: tag, err: err}:
		default:
		}
	}
}
