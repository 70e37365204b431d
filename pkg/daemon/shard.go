package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/imcd-sip/imcd/pkg/delivery"
	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/metrics"
)

type taskKind uint8

const (
	taskEvent taskKind = iota + 1
	taskInvitationFailed
	taskAdmin
	taskReload
	taskGhost
	taskCatchUp
	taskStop
)

// task is one unit of work for a shard. It travels by value through the
// shard's channel, so handing an event over allocates nothing; the rare
// kinds hold their payload by pointer to keep every queue slot small (each
// shard allocates shard_queue slots up front).
type task struct {
	kind  taskKind
	in    imc.Input
	done  func(error) // taskEvent: called once, after commit (or failure)
	dedup uint64      // taskEvent: the event's identity for the duplicate filter, 0 for none

	inv    *imc.Invitation // taskInvitationFailed
	status string

	op    *imc.AdminOp // taskAdmin
	reply chan error

	reload *reloadPart // taskReload

	ghost *imc.URI // taskGhost: a member unreachable for ghost_after, to remove

	// RabbitMQ mode (rabbitmq.go): an event's key and origin (nil in the
	// single-node modes), and whether an operator action's room was re-read.
	broker *brokered
	fresh  bool

	catchUp *catchUp // taskCatchUp: what a member back from being away missed

	// queued is when the task began to wait behind a commit (zero while it
	// has not): a task waits at most command_timeout.
	queued time.Time
}

// shard owns a subset of the rooms (by hash of the room key). Only its
// goroutine writes rooms; it takes mu for writing only around Rooms.Apply so
// that other shards and the MI can read a consistent set of immutable rooms.
//
// Commands never make the shard wait for the database: their changes go to
// the shard's committer goroutine, and the shard goes on with other rooms,
// and with chat lines in the same room, while the commit runs. A room with
// a commit in flight keeps its later commands (and the later lines of the
// command's sender) in a line of its own, so each room's changes are
// committed, applied and announced in order.
type shard struct {
	d      *Daemon
	id     int
	queue  chan task
	mu     sync.RWMutex
	rooms  *imc.Rooms
	view   imc.View // a shardView, boxed once: converting it per request would allocate
	logger *slog.Logger

	// commits feeds the committer; committed brings its jobs back. Both
	// hold every job that can exist at once (maxCommits), so neither side
	// ever blocks on the other.
	commits   chan *commitJob
	committed chan *commitJob

	// Owned by the shard goroutine.
	lines      map[string]*line         // rooms with a commit in flight
	waiting    int                      // tasks waiting in lines
	inProgress map[uint64][]func(error) // events being committed: the done of copies that came meanwhile
	doubtful   map[string]*doubt        // rooms whose rows are unknown after a commit in doubt
	jobs       int                      // jobs at the committer (commits and re-reads)
	seqs       map[string]int64         // room key → the seq of its last history line
	stopping   bool
	rmq        shardBroker // RabbitMQ mode's state (freshness.go, once.go)
}

// maxCommits is the most jobs one shard has at its committer (commands
// being saved, re-reads); a command beyond it is answered "try again
// later".
const maxCommits = 64

// maxWaiting is the most tasks that wait behind commits in one shard; a
// command beyond it is answered "try again later" at once.
const maxWaiting = 1024

func newShard(d *Daemon, id, queue int) *shard {
	s := &shard{d: d, id: id, queue: make(chan task, queue), rooms: imc.NewRooms(),
		logger:     d.logger.With(logkey.System, logkey.SystemShard, logkey.Shard, id),
		commits:    make(chan *commitJob, maxCommits),
		committed:  make(chan *commitJob, maxCommits),
		lines:      make(map[string]*line),
		inProgress: make(map[uint64][]func(error)),
		doubtful:   make(map[string]*doubt),
		seqs:       make(map[string]int64),
		rmq:        newShardBroker(d.cfg.IsRabbitMQ()),
	}
	s.view = shardView{d: d, self: s}
	return s
}

// run handles tasks in order until a stop task, then finishes what is in
// flight: everything queued before the stop is handled first, which is
// what makes a graceful stop drain.
func (s *shard) run() {
	tick := time.NewTicker(sweepEvery)
	defer tick.Stop()
	defer close(s.commits) // the committer ends when the shard does
	for {
		if s.stopping && s.jobs == 0 && s.rmq.marking == 0 {
			return
		}
		select {
		case t := <-s.queue:
			if t.kind == taskStop {
				s.stopping = true
				continue
			}
			s.handle(&t)
		case job := <-s.committed:
			s.finish(job)
		case jobs := <-s.rmq.marked: // RabbitMQ mode: event keys stored (once.go)
			s.finishMarks(jobs)
		case now := <-tick.C:
			s.sweep(now)
		case <-s.d.stopNow:
			s.abandon()
			return
		}
	}
}

// handle runs one task, turning a panic into a logged, counted failure of
// that task alone.
func (s *shard) handle(t *task) {
	defer func() {
		if r := recover(); r != nil {
			s.d.metrics.Panic(metrics.ComponentShard)
			s.logger.Error("panic while handling a request", logkey.Panic, fmt.Sprint(r), logkey.CallID, t.in.Req.CallID, logkey.Stack, string(debug.Stack()))
			s.answer(t, errPanic)
		}
	}()
	switch t.kind {
	case taskEvent:
		s.handleEvent(t)
	case taskInvitationFailed:
		s.handleInvitationFailed(t)
	case taskAdmin:
		s.handleAdmin(t)
	case taskReload:
		s.handleReload(t.reload)
	case taskGhost:
		s.removeGhost(*t.ghost)
	case taskCatchUp:
		s.handleCatchUp(t.catchUp)
	}
}

// answer tells the origin of t how it ended, unless t handed its origin
// on (handOff): then the new holder answers it, once.
func (s *shard) answer(t *task, err error) {
	switch {
	case t.done != nil:
		t.done(err)
	case t.reply != nil:
		t.reply <- err
	case t.catchUp != nil:
		s.d.catchUpFailed(t.catchUp.req, err)
	case t.reload != nil:
		t.reload.done <- err
	}
}

// handOff records that whoever t's origin waits on (t.done, t.reply) now
// sits elsewhere (a line, a commit job, a duplicate's original): what
// happens to t after this, a panic included, must not answer it again.
func (t *task) handOff() { t.done, t.reply, t.catchUp, t.reload = nil, nil, nil, nil }

// handleEvent applies one MESSAGE: rules, then either the notices at once
// (nothing to save) or a commit whose end sends them.
func (s *shard) handleEvent(t *task) {
	now := time.Now()
	if t.dedup != 0 {
		if s.d.dedup.Done(now, t.dedup) {
			s.duplicate(t)
			t.done(nil)
			return
		}
		if waiters, ok := s.inProgress[t.dedup]; ok {
			// The first copy is being saved: this one is answered with it.
			s.duplicate(t)
			s.inProgress[t.dedup] = append(waiters, t.done)
			t.handOff()
			return
		}
	}
	key := t.in.RoomKey()
	// In RabbitMQ mode every event of a room waits behind its line.
	if l := s.lines[key]; l != nil && (s.rmq.on || !(t.in.Command() == "chat" && !l.hasSender(t.in.From))) {
		s.wait(l, t, now)
		return
	}
	if t.broker != nil && s.brokerFirst(t, key) { // freshness.go: a failed session, a room to re-read
		return
	}
	res := s.d.engine.Handle(s.view, t.in)
	if !s.d.spendFanout(t, &res, now) { // security.go: over the budget, answered
		return
	}
	if len(res.Changes) > 0 || res.Topic != nil || res.History != nil {
		s.commit(eventJob(t, key, res))
		return
	}
	if t.broker != nil {
		s.mark(t, key, res) // once.go: its key is stored before its notices go out (and its line recorded)
		return
	}
	if res.Record != nil { // a chat line: it has nothing to save
		s.record(key, res.Record, res.Notices, now)
	}
	s.d.metrics.Command(res.Command, res.Outcome.String())
	s.send(res.Notices, &t.in, false) // charged by spendFanout
	s.d.dedup.Record(now, t.dedup)
	t.done(nil)
}

// eventJob is the job of an event's Result for room. It carries a copy of
// the event: t stays where it is (the shard loop's stack, a line), which
// it could not if the job pointed into it.
func eventJob(t *task, room string, res imc.Result) *commitJob {
	job := &commitJob{room: room, res: res, event: t.in, done: t.done, dedup: t.dedup, broker: t.broker}
	job.in = &job.event
	t.handOff()
	return job
}

// duplicate counts and logs a copy of an event seen already.
func (s *shard) duplicate(t *task) {
	s.d.metrics.Command(metrics.CommandDuplicate, imc.Refused.String())
	s.logger.Debug("duplicate event: answered with the first copy", logkey.CallID, t.in.Req.CallID)
}

// wait puts t in line l; when the shard cannot hold more, a command is
// answered "try again later" at once.
func (s *shard) wait(l *line, t *task, now time.Time) {
	if s.waiting >= maxWaiting || len(l.tasks) >= maxWaiting/4 {
		s.refuse(t, fmt.Errorf("%w (room %s has %d requests waiting for the database)", ErrBusy, t.in.RoomKey(), len(l.tasks)))
		return
	}
	t.queued = now
	l.push(*t)
	t.handOff()
	s.waiting++
}

// refuse answers t without running it: the sender of an event is told to
// try again later, an operator gets err.
func (s *shard) refuse(t *task, err error) {
	switch t.kind {
	case taskEvent:
		res := s.d.engine.Unavailable(t.in)
		s.d.metrics.Command(res.Command, metrics.ResultDBError)
		if !redelivers(t.broker, err) { // RabbitMQ mode: the event comes back
			s.send(res.Notices, nil, false)
		}
		t.done(err)
	case taskAdmin:
		s.d.metrics.Command(metrics.CommandAdmin, metrics.ResultDBError)
		s.answer(t, err)
	case taskInvitationFailed:
		s.logger.Warn("a failed invitation stays pending: the database did not take its withdrawal in time",
			logkey.Room, t.inv.Room.String(), logkey.User, t.inv.Invitee.String(), logkey.Err, err)
	}
}

// handleInvitationFailed withdraws an invitation whose MESSAGE failed.
func (s *shard) handleInvitationFailed(t *task) {
	key := t.inv.Room.Key()
	if l := s.lines[key]; l != nil {
		s.wait(l, t, time.Now())
		return
	}
	res := s.d.engine.InvitationFailed(s.view, *t.inv, t.status)
	if len(res.Changes) == 0 {
		return
	}
	s.commit(&commitJob{room: key, res: res})
}

// handleAdmin runs an operator action; the MI caller (t.reply, or t.done
// for a ghost's removal) is answered once it is committed and its notices
// are queued for delivery.
func (s *shard) handleAdmin(t *task) {
	key := t.op.Room.Key()
	if l := s.lines[key]; l != nil {
		s.wait(l, t, time.Now())
		return
	}
	if s.rmq.on && !t.fresh {
		s.refreshAdmin(t, key) // freshness.go: another instance may have changed the room
		return
	}
	res, err := s.d.engine.Admin(s.view, *t.op)
	if err != nil {
		s.d.metrics.Command(metrics.CommandAdmin, imc.Refused.String())
		s.answer(t, err)
		return
	}
	if len(res.Changes) == 0 {
		s.d.metrics.Command(res.Command, res.Outcome.String())
		if err := s.send(res.Notices, nil, false); err != nil {
			err = fmt.Errorf("notices not sent: %w", err)
			s.answer(t, err)
			return
		}
		s.answer(t, nil)
		return
	}
	job := &commitJob{room: key, res: res, reply: t.reply, done: t.done}
	t.handOff()
	s.commit(job)
}

// send submits the notices of one Result to the scheduler as one batch,
// which it admits whole (a chat line's whole fan-out) or refuses whole;
// each member then gets a room's notices in the order they were sent. in
// is the MESSAGE they answer (nil for an operator action, a refusal or
// delivery feedback) and applied says whether its changes were committed.
// When delivery is saturated (delivery.ErrBusy) the sender of in is told
// (Engine.Busy), the invitations of the batch, which never left, are
// withdrawn, and the error is returned.
func (s *shard) send(notices []imc.Notice, in *imc.Input, applied bool) error {
	if len(notices) == 0 {
		return nil
	}
	err := s.d.submit(delivery.Batch{Notices: notices, Done: s.d.delivered})
	if err == nil {
		return nil
	}
	s.d.sendFailed(err)
	if in != nil && errors.Is(err, delivery.ErrBusy) {
		busy := s.d.engine.Busy(*in, applied)
		if err := s.d.submit(delivery.Batch{Notices: busy.Notices, Urgent: true, Done: s.d.delivered}); err != nil {
			s.d.sendFailed(err)
		}
	}
	for i := range notices {
		if inv := notices[i].Invitation; inv != nil {
			// The invitation never left: withdraw it now, in order.
			s.handleInvitationFailed(&task{kind: taskInvitationFailed, inv: inv, status: "not sent: " + err.Error()})
		}
	}
	return err
}

// removeGhost removes member, unreachable for ghost_after, from every
// room of this shard they belong to (ghost_policy remove), as the MI's
// imc:remove_member would: committed, the room told, what was kept for
// them dropped. A room's owner is not removed.
func (s *shard) removeGhost(member imc.URI) {
	var rooms []imc.URI
	s.rooms.EachRoom(func(r *imc.Room) bool {
		if m, ok := r.Member(member); ok {
			if m.Owner() {
				s.logger.Warn("unreachable member kept: they own the room", logkey.Room, r.URI.String(), logkey.Member, member.String())
			} else {
				rooms = append(rooms, r.URI)
			}
		}
		return true
	})
	for _, room := range rooms {
		op := imc.AdminOp{Kind: imc.AdminRemove, Room: room, User: member}
		s.handle(&task{kind: taskAdmin, op: &op, done: func(err error) {
			if err != nil {
				s.logger.Warn("could not remove an unreachable member", logkey.Room, room.String(), logkey.Member, member.String(), logkey.Err, err)
				return
			}
			s.logger.Info("unreachable member removed from the room", logkey.Room, room.String(), logkey.Member, member.String())
		}})
	}
}

// errPanic is what the peer of a request that panicked is told.
var errPanic = errors.New("internal error while handling the request")
