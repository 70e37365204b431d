package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/imcd-sip/imcd/pkg/flood"
	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/metrics"
	"github.com/imcd-sip/imcd/pkg/opensips"
)

// shardFor maps a room key to its shard with FNV-1a: cheap, allocation-free,
// and stable for the life of the process.
func (d *Daemon) shardFor(key string) *shard {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return d.shards[h&uint32(len(d.shards)-1)]
}

// routeKey is the key a request is serialised on: its room, or for a request
// that concerns no room (#help, #rooms) its sender, so that one user's
// requests keep their order.
func routeKey(in *imc.Input) string {
	if k := in.RoomKey(); k != "" {
		return k
	}
	return in.From.Key()
}

// Submit hands one event to the shard owning its room. It never blocks: a
// full shard queue refuses the event at once, which event_stream's reliable
// mode reports back to OpenSIPS as an error. done is called once the event
// is applied and committed (nil) or could not be.
//
// Before routing, the flood guards run: a copy of an event applied already
// (a retransmission raised twice) is acknowledged and dropped, and a sender
// over the rate limit is told once and then dropped; neither reaches a
// shard. A copy of an event still being applied goes to the shard, which
// answers it with the first copy's outcome: the duplicate filter records
// an event only once it is applied.
func (d *Daemon) Submit(ev opensips.Event, done func(error)) error {
	in, err := d.engine.Prepare(ev.Req)
	if err != nil {
		d.logger.Warn("event refused: unusable addresses", logkey.CallID, ev.Req.CallID, logkey.From, ev.Req.From, logkey.RURI, ev.Req.RURI, logkey.Err, err)
		// Wrapped as a bad event so the intake counts it as a decode error.
		return fmt.Errorf("%w: %w", opensips.ErrBadEvent, err)
	}
	// Whoever sends a MESSAGE can be reached: what was kept for them while
	// they could not be goes out now.
	d.sched.Reachable(in.From)
	now := time.Now()
	key := d.dedup.Key(ev.Req.CallID, ev.CSeq, ev.FromTag)
	if d.dedup.Done(now, key) {
		d.metrics.Command(metrics.CommandDuplicate, imc.Refused.String())
		d.logger.Debug("duplicate event dropped", logkey.CallID, ev.Req.CallID)
		done(nil)
		return nil
	}
	var buf [imc.KeyBufLen]byte
	if dec := d.limiter.Allow(in.From.AppendKey(buf[:0]), now); dec != flood.Allowed {
		d.rateLimited(&in, dec) // security.go
		done(nil)
		return nil
	}
	s := d.shardFor(routeKey(&in))
	t := task{kind: taskEvent, in: in, done: done, dedup: key}
	if d.broker != nil {
		d.broker.take(&t, &ev) // rabbitmq.go: the event's applied-once key and origin
	}
	if !s.offer(t) {
		return fmt.Errorf("%w (shard %d, %d queued)", ErrBusy, s.id, cap(s.queue))
	}
	return nil
}

// offer queues t on s without blocking: false when the queue is full (the
// event intake and the scheduler's callbacks must never wait).
func (s *shard) offer(t task) bool {
	select {
	case s.queue <- t:
		return true
	default:
		return false
	}
}

// put queues t on s for the MI, which may wait for room until ctx ends
// or imcd stops.
func (d *Daemon) put(ctx context.Context, s *shard, t task) error {
	select {
	case s.queue <- t:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-d.stopping:
		return ErrStopping
	}
}

// Admin runs an operator action from the MI on the shard owning its room and
// waits until it is committed and its notices are queued for delivery.
func (d *Daemon) Admin(ctx context.Context, op imc.AdminOp) error {
	reply := make(chan error, 1)
	if err := d.put(ctx, d.shardFor(op.Room.Key()), task{kind: taskAdmin, op: &op, reply: reply}); err != nil {
		return err
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
