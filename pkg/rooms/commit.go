package rooms

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/metrics"
	"github.com/imcd-sip/imcd/pkg/store"
)

// commit starts committing job's changes: the room's later requests wait
// behind it, and the job goes to the committer. When the database is
// known to be down, or the shard has too many jobs at the committer, the
// command is answered "try again later" at once instead.
func (s *shard) commit(job *commitJob) {
	if d, ok := s.doubtful[job.room]; ok {
		s.notSaved(job, fmt.Errorf("%w: the rows of room %s are unknown since a commit in doubt (%v)", ErrNotSaved, job.room, d.err))
		return
	}
	if err := s.admit(); err != nil {
		s.notSaved(job, err)
		return
	}
	s.holdRoom(job)
	if q := job.res.History; q != nil {
		job.upTo = s.seqs[q.Room.Key()]
	}
	job.queued = time.Now()
	s.toCommitter(job)
}

// run saves the changes, each bounded by the store's timeout, and learns
// the truth after a commit in doubt. A job that waited longer than
// command_timeout, or finds the database known down, is not attempted.
func (job *commitJob) run(s *shard) {
	switch {
	case time.Since(job.queued) > s.cfg.CommandTimeout:
		job.skipped, job.err = true, fmt.Errorf("%w: waited %v for the database", ErrTimeout, s.cfg.CommandTimeout)
	case !s.dbUp():
		job.skipped, job.err = true, errDBDown
	default:
		start := time.Now()
		if !s.mode.apply(s, job) {
			s.applyChanges(job)
		}
		s.metrics.DB("apply", time.Since(start))
		if job.err == nil && !job.dup && job.res.History != nil {
			s.readHistory(job)
		}
		inDoubt := errors.Is(job.err, store.ErrInDoubt)
		if inDoubt {
			job.truth, job.reread = s.store.LoadRooms(context.Background(), affected(job.res.Changes))
		}
		// A database that answered the re-read is not down.
		if errors.Is(job.err, store.ErrUnavailable) && (!inDoubt || job.reread != nil) {
			s.dbFailed(job.err)
		}
	}
}

// applyChanges saves a command's changes and its topic: how a command is
// saved but for the events RabbitMQ mode applies once.
func (s *shard) applyChanges(job *commitJob) {
	if len(job.res.Changes) > 0 {
		job.err = s.store.Apply(context.Background(), job.res.Changes)
	}
	if job.err == nil && job.res.Topic != nil {
		job.err = s.storeTopic(job)
	}
}

// finish takes a command back from the committer: memory follows the
// database, the people concerned are told the truth, and what waited
// behind it moves on.
func (job *commitJob) finish(s *shard) {
	defer s.release(job.room)
	switch {
	case job.err == nil && job.dup:
		s.mode.appliedBefore(s, job)
	case job.err == nil:
		s.applied(job)
	case errors.Is(job.err, store.ErrInDoubt):
		s.inDoubt(job)
	case errors.Is(job.err, store.ErrConflict):
		s.conflict(job)
	default:
		s.notSaved(job, fmt.Errorf("%w: %w", ErrNotSaved, job.err))
	}
}

// applied: the changes are in the database; memory follows and the notices
// go out.
func (s *shard) applied(job *commitJob) {
	s.mu.Lock()
	s.rooms.Apply(job.res.Changes)
	s.mu.Unlock()
	s.landed(job)
}

// landed follows a command whose changes are in the database and in memory:
// the notices, the history's side (topic, a destroyed room's lines) and
// the sender's fan-out charge, whether the commit was seen to succeed or
// found landed after a doubt.
func (s *shard) landed(job *commitJob) {
	s.metrics.Command(job.res.Command, job.res.Outcome.String())
	s.forgetRemoved(job.res.Changes)
	s.send(job.res.Notices, job.in, true)
	s.historyApplied(job)
	s.chargeFanout(job.in, len(job.res.Notices), time.Now())
	s.settle(job, nil)
}

// forgetRemoved drops what delivery still holds for members who left or
// were removed (the room's lines kept for them while unreachable, or
// still queued): they no longer concern them. It runs before the Result's
// own notices are submitted, so the farewell still goes out.
func (s *shard) forgetRemoved(changes []imc.Change) {
	for i := range changes {
		if c := &changes[i]; c.Op == imc.OpRemoveMember {
			s.delivery.Remove(c.Room, c.Member)
		}
	}
}

// inDoubt: the connection died during COMMIT. With the rooms re-read,
// memory becomes what the database holds, and the change counts as done
// exactly when the database shows it. Without them, the rooms are doubtful
// (no command is taken for them until a re-read succeeds) and the sender is
// told the outcome is unknown.
func (s *shard) inDoubt(job *commitJob) {
	if job.reread != nil {
		s.markDoubtful(job.res.Changes, job.reread)
		s.logger.Error("a commit is in doubt and the rooms could not be re-read: commands for them are refused until they can be",
			logkey.Room, job.room, logkey.Command, job.res.Command, logkey.Err, job.err, logkey.RereadErr, job.reread)
		s.metrics.Command(job.res.Command, metrics.ResultDBError)
		s.tell(job, s.engine.InDoubt, fmt.Errorf("%w: commit outcome unknown: %w", ErrNotSaved, job.err))
		return
	}
	landed := s.matches(job.res.Changes, job.truth)
	s.replace(job.truth)
	if landed {
		s.logger.Warn("a commit was in doubt and the database shows it landed", logkey.Room, job.room, logkey.Command, job.res.Command)
		s.landed(job)
		return
	}
	s.logger.Warn("a commit was in doubt and the database shows it did not land; memory now follows the database",
		logkey.Room, job.room, logkey.Command, job.res.Command)
	s.metrics.Command(job.res.Command, metrics.ResultDBError)
	s.tell(job, s.engine.Unavailable, fmt.Errorf("%w: %w", ErrNotSaved, job.err))
}

// conflict: the database refused the changes as contradicting its rows.
func (s *shard) conflict(job *commitJob) {
	s.logger.Error("the database refused a command's changes as conflicting with stored rows (not known to imcd: skipped at load, or written by someone else); nothing was applied",
		logkey.Room, job.room, logkey.Command, job.res.Command, logkey.Err, job.err)
	s.metrics.Command(job.res.Command, metrics.ResultDBError)
	s.mode.conflicted(s, job.room) // RabbitMQ mode reads the room again before its next event
	s.tell(job, s.engine.Conflict, fmt.Errorf("%w: %w", ErrNotSaved, job.err))
}

// notSaved: nothing was committed; memory is untouched and the sender is
// told to try again later.
func (s *shard) notSaved(job *commitJob, err error) {
	if !job.skipped && job.err != nil {
		s.logger.Error("cannot commit a command's changes; nothing was applied", logkey.Room, job.room,
			logkey.Command, job.res.Command, logkey.Err, err)
	}
	s.metrics.Command(job.res.Command, metrics.ResultDBError)
	s.tell(job, s.engine.Unavailable, err)
}

// tell sends the sender of job's MESSAGE the reply made by reply, and
// answers the job with err.
func (s *shard) tell(job *commitJob, reply func(imc.Input) imc.Result, err error) {
	if job.in != nil && !s.mode.redelivers(job.origin, err) { // RabbitMQ mode: the event comes back
		s.send(reply(*job.in).Notices, nil, false)
	}
	s.settle(job, err)
}

// settle answers the job's origin and the duplicates that waited for it;
// an event applied is recorded so that later copies are only acknowledged.
func (s *shard) settle(job *commitJob, err error) {
	s.mode.settled(s, job, err)
	if job.dedup != 0 {
		waiters := s.inProgress[job.dedup]
		delete(s.inProgress, job.dedup)
		if err == nil {
			s.dedup.Record(time.Now(), job.dedup)
		}
		for _, w := range waiters {
			w(err)
		}
	}
	switch {
	case job.done != nil:
		job.done(err)
	case job.reply != nil:
		job.reply <- err
	}
}
