package rooms

import (
	"context"
	"fmt"
	"time"

	"github.com/imcd-sip/imcd/pkg/flood"
	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logging"
	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/metrics"
)

// Event is one MESSAGE for the runtime.
type Event struct {
	// In is the MESSAGE as the engine prepared it (Engine.Prepare).
	In imc.Input
	// Done is called once the event is applied and committed (nil) or
	// could not be; on the shard's goroutine, or Submit's.
	Done func(error)
	// Dedup is the event's identity for the duplicate filter
	// (flood.Dedup.Key), 0 for none.
	Dedup uint64
	// Origin is where an event of RabbitMQ mode came from; nil otherwise.
	Origin *Origin
}

// Submit hands one event to the shard owning its room. It never blocks: a
// full shard queue refuses the event at once (ErrBusy), which
// event_stream's reliable mode reports back to OpenSIPS as an error.
//
// Before routing, the flood guards run: a copy of an event applied already
// (a retransmission raised twice) is acknowledged and dropped, and a sender
// over the rate limit is told once and then dropped; neither reaches a
// shard. A copy of an event still being applied goes to the shard, which
// answers it with the first copy's outcome: the duplicate filter records
// an event only once it is applied.
func (r *Runtime) Submit(ev *Event) error {
	e := r.env
	in := &ev.In
	now := time.Now()
	if e.dedup.Done(now, ev.Dedup) {
		e.metrics.Command(metrics.CommandDuplicate, imc.Refused.String())
		e.log.Debug("duplicate event dropped", logkey.CallID, in.Req.CallID)
		ev.Done(nil)
		return nil
	}
	var buf [imc.KeyBufLen]byte
	if dec := e.limiter.Allow(in.From.AppendKey(buf[:0]), now); dec != flood.Allowed {
		e.rateLimited(in, dec) // fanout.go
		ev.Done(nil)
		return nil
	}
	s := r.all.of(routeKey(in))
	t := task{kind: taskEvent, in: *in, done: r.mode.take(ev.Origin, ev.Done), dedup: ev.Dedup, origin: ev.Origin}
	if !s.offer(t) {
		return fmt.Errorf("%w (shard %d, %d queued)", ErrBusy, s.id, cap(s.queue))
	}
	return nil
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

// put queues t on s for an operator, who may wait for room until ctx ends
// or the runtime stops.
func (r *Runtime) put(ctx context.Context, s *shard, t task) error {
	select {
	case s.queue <- t:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-r.stopping:
		return ErrStopping
	}
}

// Admin runs an operator action on the shard owning its room and waits
// until it is committed and its notices are queued for delivery.
func (r *Runtime) Admin(ctx context.Context, op imc.AdminOp) error {
	reply := make(chan error, 1)
	if err := r.put(ctx, r.all.of(op.Room.Key()), task{kind: taskAdmin, op: &op, reply: reply}); err != nil {
		return err
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Reload reads every room from the database again and makes memory equal
// to it, for when someone else changed the tables (an operator, a
// migration, the native module). Each shard replaces its own rooms in its
// goroutine, between two requests, so no request sees half a reload.
func (r *Runtime) Reload(ctx context.Context) (ReloadReport, error) {
	start := time.Now()
	rooms, err := r.env.store.Load(ctx)
	if err != nil {
		return ReloadReport{}, fmt.Errorf("reload: %w", err)
	}
	parts := make([]*reloadPart, len(r.all))
	for i := range parts {
		parts[i] = &reloadPart{rooms: make(map[string]*imc.Room), done: make(chan error, 1)}
	}
	for _, room := range rooms {
		parts[r.all.of(room.Key()).id].rooms[room.Key()] = room
	}
	var total ReloadReport
	for i, s := range r.all {
		if err := r.put(ctx, s, task{kind: taskReload, reload: parts[i]}); err != nil {
			return total, err
		}
	}
	for i, p := range parts {
		select {
		case err := <-p.done:
			if err != nil {
				return total, fmt.Errorf("reload: shard %d: %w", i, err)
			}
			rep := p.report
			total.Added += rep.Added
			total.Removed += rep.Removed
			total.Changed += rep.Changed
			total.Busy += rep.Busy
		case <-ctx.Done():
			return total, ctx.Err()
		}
	}
	total.Rooms, total.Took = len(rooms), time.Since(start)
	logging.Notice(r.env.log, "rooms reloaded from the database", logkey.Rooms, total.Rooms, logkey.Added, total.Added, logkey.Removed, total.Removed,
		logkey.Changed, total.Changed, logkey.Busy, total.Busy, logkey.Took, total.Took.Round(time.Millisecond))
	return total, nil
}

// History reads a room's last n lines for an operator (MI imc:history),
// oldest first, and how many the room has.
func (r *Runtime) History(ctx context.Context, room imc.URI, n int) ([]imc.StoredLine, int64, error) {
	hist := r.env.hist
	if hist == nil {
		return nil, 0, ErrNoHistory
	}
	stored := r.view.Room(room.Key())
	if stored == nil {
		return nil, 0, imc.ErrNoSuchRoom
	}
	lines, err := hist.LastLines(ctx, stored.URI, 0, n)
	if err != nil {
		return nil, 0, err
	}
	total, err := hist.CountHistory(ctx, stored.URI, 0)
	if err != nil {
		return nil, 0, err
	}
	return storedLines(lines), total, nil
}
