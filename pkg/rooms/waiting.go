package rooms

import (
	"fmt"
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/metrics"
)

// holdRoom makes what comes for job's room meanwhile wait behind it, and
// marks its event as being applied (a copy waits for its outcome).
func (s *shard) holdRoom(job *commitJob) {
	w := newWaiters(job.in)
	w.all = job.res.History != nil && job.res.History.Purpose == imc.HistoryOnJoin
	s.behind[job.room] = w
	if job.dedup != 0 {
		s.inProgress[job.dedup] = nil
	}
}

// wait puts t behind w; when the shard cannot hold more, a command is
// answered "try again later" at once.
func (s *shard) wait(w *waiters, t *task, now time.Time) {
	if s.nBehind >= maxWaiting || len(w.tasks) >= maxWaiting/4 {
		s.refuse(t, fmt.Errorf("%w (room %s has %d requests waiting for the database)", ErrBusy, t.in.RoomKey(), len(w.tasks)))
		return
	}
	t.queued = now
	w.push(*t)
	t.handOff()
	s.nBehind++
}

// readFirst makes t wait behind a re-read of room (the mode's), which
// releases it once memory equals the database.
func (s *shard) readFirst(t *task, room string, o *Origin) {
	now := time.Now()
	if !s.dbUp() {
		s.refuse(t, errDBDown)
		return
	}
	if err := s.mode.reread(s, room, o); err != nil {
		s.refuse(t, err)
		return
	}
	s.behind[room] = newWaiters(nil)
	s.wait(s.behind[room], t, now)
}

// takeWaiting ends room's hold and returns what waited behind it.
func (s *shard) takeWaiting(room string) []task {
	w := s.behind[room]
	if w == nil {
		return nil
	}
	delete(s.behind, room)
	s.nBehind -= len(w.tasks)
	return w.tasks
}

// refuseWaiting ends room's hold, answering what waited with err: nothing
// of it was attempted.
func (s *shard) refuseWaiting(room string, err error) {
	tasks := s.takeWaiting(room)
	for i := range tasks {
		s.refuse(&tasks[i], err)
	}
}

// refuse answers t without running it: the sender of an event is told to
// try again later, an operator gets err.
func (s *shard) refuse(t *task, err error) {
	switch t.kind {
	case taskEvent:
		res := s.engine.Unavailable(t.in)
		s.metrics.Command(res.Command, metrics.ResultDBError)
		if !s.mode.redelivers(t.origin, err) { // RabbitMQ mode: the event comes back
			s.send(res.Notices, nil, false)
		}
		t.done(err)
	case taskAdmin:
		s.metrics.Command(metrics.CommandAdmin, metrics.ResultDBError)
		t.answer(s.env, err)
	case taskInvitationFailed, taskInvitationExpired:
		s.logger.Warn("a failed invitation stays pending: the database did not take its withdrawal in time",
			logkey.Room, t.inv.Room.String(), logkey.User, t.inv.Invitee.String(), logkey.Err, err)
	case taskInvitationKept, taskInvitationDelivered:
		s.logger.Warn("the inviter was not told what became of an invitation: its room waited too long for the database",
			logkey.Room, t.inv.Room.String(), logkey.User, t.inv.Invitee.String(), logkey.Command, t.name(), logkey.Err, err)
	}
}

// sweep answers the tasks that waited longer than command_timeout behind a
// commit ("try again later": nothing of them was attempted).
func (s *shard) sweep(now time.Time) {
	limit := s.cfg.CommandTimeout
	for room, w := range s.behind {
		kept := w.tasks[:0]
		for _, t := range w.tasks {
			if now.Sub(t.queued) < limit {
				kept = append(kept, t)
				continue
			}
			s.nBehind--
			if t.kind == taskEvent {
				w.senders[t.in.From.Key()]--
			}
			s.logger.Warn("a request waited too long for the database: answered 'try again later'",
				logkey.Room, room, logkey.Command, t.name())
			s.refuse(&t, ErrTimeout)
		}
		clear(w.tasks[len(kept):])
		w.tasks = kept
	}
}

// abandon answers everything still waiting when the shutdown grace is
// over: nothing of it was attempted.
func (s *shard) abandon() {
	for _, w := range s.behind {
		for i := range w.tasks {
			s.refuse(&w.tasks[i], ErrStopping)
		}
	}
	clear(s.behind)
	s.nBehind = 0
}
