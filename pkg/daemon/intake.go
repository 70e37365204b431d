package daemon

import (
	"errors"
	"fmt"

	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/opensips"
	"github.com/imcd-sip/imcd/pkg/rooms"
	"github.com/imcd-sip/imcd/pkg/store"
)

// Submit is the event sources' Sink (opensips.Sink, the RabbitMQ
// consumer's): it prepares one event for the engine (the sender and the
// room, the command recognised) and hands it to the rooms' runtime, which
// runs the flood guards and routes it to its room's shard without
// blocking (rooms.Runtime.Submit). done is called once the event is
// applied and committed (nil) or could not be.
func (d *Daemon) Submit(ev opensips.Event, done func(error)) error {
	if d.probe(&ev, done) { // canary.go: the canary's probes go no further
		return nil
	}
	in, err := d.engine.Prepare(ev.Req)
	if err != nil {
		d.logger.Warn("event refused: unusable addresses", logkey.CallID, ev.Req.CallID, logkey.From, ev.Req.From, logkey.RURI, ev.Req.RURI, logkey.Err, err)
		// Wrapped as a bad event so the intake counts it as a decode error.
		return fmt.Errorf("%w: %w", opensips.ErrBadEvent, err)
	}
	// Whoever sends a MESSAGE can be reached: what was kept for them while
	// they could not be goes out now.
	d.sched.Reachable(in.From)
	e := rooms.Event{In: in, Done: done, Dedup: d.dedup.Key(ev.Req.CallID, ev.CSeq, ev.FromTag)}
	if d.cfg.IsRabbitMQ() { // the key that makes it applied once, and where it came from
		e.Origin = &rooms.Origin{Key: store.EventKey(ev.Req.CallID, ev.CSeq, ev.FromTag), Queue: ev.Origin.Queue, Session: ev.Origin.Session}
		e.Done = rejectConflict(done)
	}
	return d.rooms.Submit(&e)
}

// rejectConflict makes a conflict with the stored rows a bad event, which
// the RabbitMQ consumer rejects: no redelivery can cure it.
func rejectConflict(done func(error)) func(error) {
	return func(err error) {
		if errors.Is(err, store.ErrConflict) {
			err = fmt.Errorf("%w: %w", opensips.ErrBadEvent, err)
		}
		done(err)
	}
}
