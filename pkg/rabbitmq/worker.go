package rabbitmq

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/valyala/fastjson"

	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/opensips"
)

// worker owns one queue: it opens a channel and consumes under a new
// session each time the previous one ended (connection lost, channel
// closed by the broker, rewind after a failed commit), until Close.
type worker struct {
	c     *Consumer
	queue string
	log   *slog.Logger
	p     fastjson.Parser
	// ev is the event being handled, kept here rather than allocated per
	// delivery (the pointer Reroute takes would move it to the heap).
	ev opensips.Event
}

// sessionEnd says why a session ended, which decides the pause before the
// next one.
type sessionEnd int

const (
	endLost     sessionEnd = iota // the channel or connection closed under us, or could not be opened
	endRewind                     // a commit failed: deliveries given back
	endStopping                   // Close
)

// run consumes the queue, first after delay, until ctx ends.
func (w *worker) run(ctx context.Context, delay time.Duration) {
	defer w.c.workers.Done()
	if delay > 0 {
		if !sleep(ctx, delay) {
			return
		}
		w.c.endWait(w.queue)
	}
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
			w.log.Info("consuming again after a failed commit", logkey.Backoff, wait)
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
		w.log.Warn("cannot open a channel", logkey.Err, err)
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
	s.log = w.log.With(logkey.Session, strconv.FormatUint(s.id, 16))
	if err := ch.Qos(w.c.Prefetch, 0, false); err != nil {
		w.log.Warn("cannot set the prefetch", logkey.Err, err)
		ch.Close()
		return endLost, false
	}
	tag := w.c.Name + "." + strconv.FormatUint(s.id, 16)
	s.deliveries, err = ch.Consume(w.queue, tag, false, false, false, false, nil)
	if err != nil {
		w.log.Warn("cannot consume", logkey.Err, err)
		ch.Close()
		return endLost, false
	}
	w.c.setConsuming(w.queue, true)
	s.log.Debug("consuming")
	s.serve()
	s.flushAcks()
	if s.stopping && !s.over && w.c.holds() {
		s.hold()
	}
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
		s.log.Info("deliveries given back to the queue", logkey.Returned, s.unsettled)
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
	submitted []uint64            // tags in submission order; settled ones at the front are dropped lazily
	committed []uint64            // done(nil), not acknowledged yet
	failed    uint64              // lowest tag whose commit failed (0: none); never acknowledged
	unsettled int                 // received, neither acknowledged nor rejected
	progress  bool
	rewind    bool // a commit failed: submit nothing more, give back the rest
	over      bool // the channel is gone: nothing can be acknowledged
	stopping  bool // Close: drain, then give back the rest
	drained   bool // the drain time after a StopIntake is over
}

// serve runs the session: deliveries are submitted one by one, in order;
// verdicts are settled as they come.
func (s *session) serve() {
	for !s.finished() {
		d, got, timedOut := s.next(true, nil)
		if timedOut {
			return // Close's drain deadline
		}
		if got {
			s.handle(d)
		}
	}
}

// finished reports whether the session is over: the channel is gone, or it
// must be given back (rewind, Close) and no verdict is awaited any more.
func (s *session) finished() bool {
	return s.over || (s.rewind || s.stopping) && len(s.pending) == 0
}

// next waits for one thing to happen. With take, it may return a delivery
// (got). timer fires a wait of the caller's (fired); Close's drain deadline
// ends the wait as timedOut.
func (s *session) next(take bool, timer <-chan time.Time) (d amqp.Delivery, got, fired bool) {
	// Verdicts first: a failure must stop the queue before the next
	// delivery is submitted. Acknowledgements wait while deliveries are
	// ready, so that one ack "multiple" covers many (flushed below, before
	// any wait, and at the latest when the prefetch window is full).
	s.settleReady()
	if s.finished() {
		return d, false, false
	}
	var in <-chan amqp.Delivery
	if take && !s.rewind && !s.stopping {
		in = s.deliveries
		select {
		case d, ok := <-in:
			if !ok {
				s.over = true
				return d, false, false
			}
			return d, true, false
		default:
		}
	}
	s.flushAcks()
	select {
	case d, ok := <-in:
		if !ok {
			s.over = true
			return d, false, false
		}
		return d, true, false
	case c := <-s.completions:
		s.settle(c)
		s.settleReady()
		s.flushAcks()
	case err := <-s.closed:
		s.over = true
		if err != nil {
			s.log.Warn("channel closed by the broker", logkey.Err, err)
		}
	case <-s.stop:
		s.stopping = true
		s.stop = nil
		t := time.NewTimer(s.w.c.DrainTimeout)
		s.drain = t.C
	case <-s.drain:
		if s.w.c.holds() {
			// Nothing more to hold the queue for: Close or not, the next
			// instance may take it now.
			s.drained = true
			return d, false, true
		}
		s.log.Warn("events still being applied at the end of the drain: they will be redelivered", logkey.Pending, len(s.pending))
		s.over = true // acknowledges nothing more; the channel is closed by the caller
		s.ch.Close()
		return d, false, true
	case <-timer:
		return d, false, true
	}
	return d, false, false
}

// hold keeps a stopped session's channel, and the queue with it, until
// Close or the end of the drain (DrainTimeout after the stop): verdicts
// that come meanwhile are settled and acknowledged.
func (s *session) hold() {
	for !s.over && !s.drained {
		s.settleReady()
		s.flushAcks()
		select {
		case c := <-s.completions:
			s.settle(c)
		case err := <-s.closed:
			s.over = true
			if err != nil {
				s.log.Warn("channel closed by the broker", logkey.Err, err)
			}
		case <-s.w.c.release:
			s.settleReady()
			s.flushAcks()
			return
		case <-s.drain:
			s.log.Warn("events still being applied at the end of the drain: they will be redelivered", logkey.Pending, len(s.pending))
			return
		}
	}
}
