package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/metrics"
	"github.com/imcd-sip/imcd/pkg/store"
)

type taskKind uint8

const (
	taskEvent taskKind = iota + 1
	taskInvitationFailed
	taskAdmin
	taskStop
)

// task is one unit of work for a shard. It travels by value through the
// shard's channel, so handing an event over allocates nothing; the rare
// kinds hold their payload by pointer to keep every queue slot small (each
// shard allocates shard_queue slots up front).
type task struct {
	kind taskKind
	in   imc.Input
	done func(error) // taskEvent: called once, after commit (or failure)

	inv    *imc.Invitation // taskInvitationFailed
	status string

	op    *imc.AdminOp // taskAdmin
	reply chan error
}

// shard owns a subset of the rooms (by hash of the room key). Only its
// goroutine writes rooms; it takes mu for writing only around Rooms.Apply so
// that other shards and the MI can read a consistent set of immutable rooms.
type shard struct {
	d      *Daemon
	id     int
	queue  chan task
	mu     sync.RWMutex
	rooms  *imc.Rooms
	view   shardView
	logger *slog.Logger
}

func newShard(d *Daemon, id, queue int) *shard {
	s := &shard{d: d, id: id, queue: make(chan task, queue), rooms: imc.NewRooms(),
		logger: d.logger.With(logkey.System, logkey.SystemShard, logkey.Shard, id)}
	s.view = shardView{d: d, self: s}
	return s
}

// run handles tasks in order until a stop task: everything queued before the
// stop is finished first, which is what makes a graceful stop drain.
func (s *shard) run() {
	for t := range s.queue {
		if t.kind == taskStop {
			return
		}
		s.handle(&t)
	}
}

// handle runs one task, turning a panic into a logged, counted failure of
// that task alone.
func (s *shard) handle(t *task) {
	answered := false
	defer func() {
		if r := recover(); r != nil {
			s.d.metrics.Panic(metrics.ComponentShard)
			s.logger.Error("panic while handling a request", logkey.Panic, fmt.Sprint(r), logkey.CallID, t.in.Req.CallID, "stack", string(debug.Stack()))
			if !answered {
				s.answer(t, errPanic)
			}
		}
	}()
	switch t.kind {
	case taskEvent:
		err := s.handleEvent(t.in)
		answered = true
		s.answer(t, err)
	case taskInvitationFailed:
		s.apply(s.d.engine.InvitationFailed(s.view, *t.inv, t.status), nil)
	case taskAdmin:
		err := s.handleAdmin(*t.op)
		answered = true
		s.answer(t, err)
	}
}

func (s *shard) answer(t *task, err error) {
	switch {
	case t.done != nil:
		t.done(err)
	case t.reply != nil:
		t.reply <- err
	}
}

// handleEvent applies one MESSAGE: rules, commit, memory, notices. The
// returned error is what a reliable-mode event_stream peer is told.
func (s *shard) handleEvent(in imc.Input) error {
	return s.apply(s.d.engine.Handle(s.view, in), &in)
}

// apply commits res's changes, applies them to memory and sends the notices.
// When the commit fails, memory is untouched and the sender of in (if any)
// gets the engine's "cannot save" reply instead of res's notices.
func (s *shard) apply(res imc.Result, in *imc.Input) error {
	if err := s.commit(res.Changes); err != nil {
		s.d.metrics.Command(res.Command, metrics.ResultDBError)
		attrs := []any{logkey.Command, res.Command, logkey.Err, err}
		reply, msg := s.d.engine.Unavailable, "cannot commit a command's changes; nothing was applied"
		if errors.Is(err, store.ErrConflict) {
			reply, msg = s.d.engine.Conflict, "the database refused a command's changes as conflicting with stored rows (not known to imcd: skipped at load, or written by someone else); nothing was applied"
		}
		if in != nil {
			attrs = append(attrs, logkey.CallID, in.Req.CallID, logkey.From, in.From.String())
			s.send(reply(*in).Notices)
		}
		s.logger.Error(msg, attrs...)
		return err
	}
	s.d.metrics.Command(res.Command, res.Outcome.String())
	s.send(res.Notices)
	s.d.chargeFanout(in, len(res.Notices))
	return nil
}

func (s *shard) commit(changes []imc.Change) error {
	if len(changes) == 0 {
		return nil
	}
	start := time.Now()
	err := s.d.store.Apply(context.Background(), changes)
	s.d.metrics.DB("apply", time.Since(start))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotSaved, err)
	}
	s.mu.Lock()
	s.rooms.Apply(changes)
	s.mu.Unlock()
	return nil
}

// send hands notices to the MI client in order; the client keeps that order
// on the wire, which is how per-room order survives delivery.
func (s *shard) send(notices []imc.Notice) {
	for i := range notices {
		n := &notices[i]
		done := s.d.delivered
		if n.Invitation != nil {
			inv := *n.Invitation
			done = func(o deliveryOutcome) { s.d.onInvitationDelivered(inv, o) }
		}
		if err := s.d.outbox.Deliver(n, done); err != nil {
			s.d.sendFailed(err)
			if n.Invitation != nil {
				// The invitation never left: withdraw it now, in order.
				s.apply(s.d.engine.InvitationFailed(s.view, *n.Invitation, "not sent: "+err.Error()), nil)
			}
		}
	}
}

func (s *shard) handleAdmin(op imc.AdminOp) error {
	res, err := s.d.engine.Admin(s.view, op)
	if err != nil {
		s.d.metrics.Command(metrics.CommandAdmin, imc.Refused.String())
		return err
	}
	if err := s.commit(res.Changes); err != nil {
		s.d.metrics.Command(res.Command, metrics.ResultDBError)
		return err
	}
	s.d.metrics.Command(res.Command, res.Outcome.String())
	s.send(res.Notices)
	return nil
}

// errPanic is what the peer of a request that panicked is told.
var errPanic = errors.New("internal error while handling the request")
