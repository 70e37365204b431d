package rabbitmq

import (
	"math"

	"github.com/imcd-sip/imcd/pkg/logkey"
)

// settle records one verdict: a commit is acknowledged with the next batch
// (flushAcks), a bad event is rejected, a failed commit starts a rewind.
func (s *session) settle(c completion) {
	if _, ok := s.pending[c.tag]; !ok {
		return // a second verdict for the same delivery: the Sink broke its contract
	}
	delete(s.pending, c.tag)
	if s.over {
		return
	}
	switch {
	case c.err == nil:
		s.committed = append(s.committed, c.tag)
	case isBadEvent(c.err):
		s.reject(c.tag, c.err, "")
	default:
		if !s.rewind {
			s.log.Warn("an event was not committed: giving this queue's deliveries back to be redelivered in order", logkey.Err, c.err)
		}
		if s.failed == 0 || c.tag < s.failed {
			s.failed = c.tag
		}
		s.rewind = true
	}
}

// settleReady settles every verdict already in.
func (s *session) settleReady() {
	for {
		select {
		case c := <-s.completions:
			s.settle(c)
		default:
			return
		}
	}
}

// flushAcks acknowledges the committed deliveries: those below every
// delivery still pending or failed with one basic.ack "multiple" (all that
// the broker still counts as unacknowledged up to that tag are committed),
// the others one by one. On a quorum queue each ack is a replicated
// command, so a batch is what lets a small prefetch keep up.
func (s *session) flushAcks() {
	if len(s.committed) == 0 || s.over {
		return
	}
	bound := s.lowestPending()
	if s.failed != 0 {
		bound = min(bound, s.failed)
	}
	var below uint64
	n := 0
	for _, tag := range s.committed {
		if tag < bound {
			below, n = max(below, tag), n+1
		} else if s.ack(tag, false, 1) != nil {
			return
		}
	}
	if n > 0 {
		s.ack(below, true, n)
	}
	s.committed = s.committed[:0]
}

// ack acknowledges tag (and, with multiple, every unacknowledged one below
// it), counting n deliveries.
func (s *session) ack(tag uint64, multiple bool, n int) error {
	if err := s.ch.Ack(tag, multiple); err != nil {
		return err // the channel is closing; the deliveries come back
	}
	s.unsettled -= n
	s.progress = true
	for range n {
		s.w.c.obs.Settled(s.w.queue, OutcomeAcked)
	}
	return nil
}

// lowestPending is the lowest tag submitted and still without a verdict,
// MaxUint64 when there is none. Tags are submitted in increasing order, so
// it is the first of s.submitted still pending; the settled ones before it
// are dropped, in place: reslicing past them would shrink the capacity
// until every append reallocates.
func (s *session) lowestPending() uint64 {
	i := 0
	for i < len(s.submitted) {
		if _, ok := s.pending[s.submitted[i]]; ok {
			break
		}
		i++
	}
	if i > 0 {
		s.submitted = s.submitted[:copy(s.submitted, s.submitted[i:])]
	}
	if len(s.submitted) == 0 {
		return math.MaxUint64
	}
	return s.submitted[0]
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
	s.log.Warn("message rejected: it can never be applied", logkey.Err, why, logkey.CallID, callid)
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
