package daemon

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

// commitJob is one change set on its way to the database and back: the
// shard fills the first part, the committer the second.
type commitJob struct {
	room   string     // the room key the changes concern
	res    imc.Result // changes to commit, notices to send once committed
	in     *imc.Input // the MESSAGE it answers (&event), nil for operator actions and feedback
	event  imc.Input
	done   func(error)
	reply  chan error // an operator action's answer
	dedup  uint64
	queued time.Time
	doubt  *doubt // a re-read of doubtful rooms instead of a commit
	// catchUp is a catch-up to read instead of a commit.
	catchUp *catchUp

	// RabbitMQ mode (rabbitmq.go): the event's key and origin, a re-read
	// before serving a room (freshness.go), the shard of a mark (once.go).
	broker  *brokered
	refresh *refresh
	owner   *shard

	// Set by the committer.
	upTo    int64 // a history query waits for the room's lines up to this seq to be written
	err     error
	skipped bool                 // not attempted: the database was known down, or the job waited too long
	truth   map[string]*imc.Room // after a commit in doubt: the rooms as the database holds them
	reread  error                // why truth could not be read
	dup     bool                 // RabbitMQ mode: the event's key was stored already (once.go)
	topicAt time.Time            // when a topic change was stored
	stored  []imc.StoredLine     // what a history query read, oldest first
	total   int64                // how many lines the query matched
	histErr error                // why the history query failed (the job itself did not)
}

// commit starts committing job's changes: the room takes a line (so later
// commands wait), and the job goes to the committer. When the database is
// known to be down, or the shard has too many commits in flight, the
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
	s.hold(job)
	if q := job.res.History; q != nil {
		job.upTo = s.seqs[q.Room.Key()]
	}
	job.queued = time.Now()
	s.toCommitter(job)
}

// admit returns why the committer cannot take another job now (the
// database is known down, or the shard has maxCommits jobs there), nil
// when it can.
func (s *shard) admit() error {
	switch {
	case !s.d.db.up():
		return errDBDown
	case s.jobs >= maxCommits:
		return fmt.Errorf("%w (%d commits in flight in shard %d)", ErrBusy, s.jobs, s.id)
	}
	return nil
}

// toCommitter hands job to the committer, which admit (or a bound of the
// caller's own) said has room for it.
func (s *shard) toCommitter(job *commitJob) {
	s.jobs++
	s.commits <- job // never blocks: at most maxCommits jobs exist
}

// commitLoop is the shard's committer: it runs the change sets in the
// order they come, each bounded by the store's timeout, and learns the
// truth after a commit in doubt. A job that waited longer than
// command_timeout, or finds the database known down, is not attempted.
func (s *shard) commitLoop(st store.Store) {
	for job := range s.commits {
		switch {
		case job.doubt != nil:
			job.truth, job.reread = st.LoadRooms(context.Background(), job.doubt.rooms)
		case job.refresh != nil:
			s.reread(st, job) // freshness.go
		case job.catchUp != nil:
			s.readCatchUp(job) // catchup.go
		case time.Since(job.queued) > s.d.cfg.CommandTimeout:
			job.skipped, job.err = true, fmt.Errorf("%w: waited %v for the database", ErrTimeout, s.d.cfg.CommandTimeout)
		case !s.d.db.up():
			job.skipped, job.err = true, errDBDown
		default:
			start := time.Now()
			if job.broker != nil {
				s.applyOnce(st, job) // once.go: the changes (if any) with the event's key, in one transaction
			} else if len(job.res.Changes) > 0 {
				job.err = st.Apply(context.Background(), job.res.Changes)
			}
			if job.err == nil && job.broker == nil && job.res.Topic != nil {
				job.err = s.storeTopic(job) // (applyOnce stores a brokered event's topic itself)
			}
			s.d.metrics.DB("apply", time.Since(start))
			if job.err == nil && !job.dup && job.res.History != nil {
				s.readHistory(job)
			}
			inDoubt := errors.Is(job.err, store.ErrInDoubt)
			if inDoubt {
				job.truth, job.reread = st.LoadRooms(context.Background(), affected(job.res.Changes))
			}
			// A database that answered the re-read is not down.
			if errors.Is(job.err, store.ErrUnavailable) && (!inDoubt || job.reread != nil) {
				s.d.db.failed(job.err)
			}
		}
		s.committed <- job // never blocks: at most maxCommits jobs exist
	}
}

// finish takes a job back from the committer: memory follows the
// database, the people concerned are told the truth, and the room's line
// moves on.
func (s *shard) finish(job *commitJob) {
	s.jobs--
	if job.doubt != nil {
		s.settleDoubt(job)
		return
	}
	if job.refresh != nil {
		s.refreshed(job) // freshness.go
		return
	}
	if job.catchUp != nil {
		s.caughtUp(job)
		return
	}
	defer s.release(job.room)
	switch {
	case job.err == nil && job.dup:
		s.appliedElsewhere(job) // once.go
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
	s.d.metrics.Command(job.res.Command, job.res.Outcome.String())
	s.forgetRemoved(job.res.Changes)
	s.send(job.res.Notices, job.in, true)
	s.historyApplied(job)
	s.d.chargeFanout(job.in, len(job.res.Notices), time.Now())
	s.settle(job, nil)
}

// forgetRemoved drops what the scheduler still holds for members who left
// or were removed (the room's lines kept for them while unreachable, or
// still queued): they no longer concern them. It runs before the Result's
// own notices are submitted, so the farewell still goes out.
func (s *shard) forgetRemoved(changes []imc.Change) {
	for i := range changes {
		if c := &changes[i]; c.Op == imc.OpRemoveMember {
			s.d.sched.Remove(c.Room, c.Member)
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
		s.markDoubtful(job, job.reread)
		s.logger.Error("a commit is in doubt and the rooms could not be re-read: commands for them are refused until they can be",
			logkey.Room, job.room, logkey.Command, job.res.Command, logkey.Err, job.err, "reread_err", job.reread)
		s.d.metrics.Command(job.res.Command, metrics.ResultDBError)
		s.tell(job, s.d.engine.InDoubt, fmt.Errorf("%w: commit outcome unknown: %w", ErrNotSaved, job.err))
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
	s.d.metrics.Command(job.res.Command, metrics.ResultDBError)
	s.tell(job, s.d.engine.Unavailable, fmt.Errorf("%w: %w", ErrNotSaved, job.err))
}

// conflict: the database refused the changes as contradicting its rows.
func (s *shard) conflict(job *commitJob) {
	s.logger.Error("the database refused a command's changes as conflicting with stored rows (not known to imcd: skipped at load, or written by someone else); nothing was applied",
		logkey.Room, job.room, logkey.Command, job.res.Command, logkey.Err, job.err)
	s.d.metrics.Command(job.res.Command, metrics.ResultDBError)
	s.forget(job.room) // freshness.go: RabbitMQ mode re-reads the room before its next event
	s.tell(job, s.d.engine.Conflict, fmt.Errorf("%w: %w", ErrNotSaved, job.err))
}

// notSaved: nothing was committed; memory is untouched and the sender is
// told to try again later.
func (s *shard) notSaved(job *commitJob, err error) {
	if !job.skipped && job.err != nil {
		s.logger.Error("cannot commit a command's changes; nothing was applied", logkey.Room, job.room,
			logkey.Command, job.res.Command, logkey.Err, err)
	}
	s.d.metrics.Command(job.res.Command, metrics.ResultDBError)
	s.tell(job, s.d.engine.Unavailable, err)
}

// tell sends the sender of job's MESSAGE the reply made by reply, and
// answers the job with err.
func (s *shard) tell(job *commitJob, reply func(imc.Input) imc.Result, err error) {
	if job.in != nil && !redelivers(job.broker, err) { // RabbitMQ mode: the event comes back
		s.send(reply(*job.in).Notices, nil, false)
	}
	s.settle(job, err)
}

// settle answers the job's origin and the duplicates that waited for it;
// an event applied is recorded so that later copies are only acknowledged.
func (s *shard) settle(job *commitJob, err error) {
	if job.broker != nil {
		s.keepUnsent(job, err) // once.go: notices of a write in doubt, for its redelivery
	}
	if job.dedup != 0 {
		waiters := s.inProgress[job.dedup]
		delete(s.inProgress, job.dedup)
		if err == nil {
			s.d.dedup.Record(time.Now(), job.dedup)
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

// affected lists the rooms a change set touches.
func affected(changes []imc.Change) []imc.URI {
	var rooms []imc.URI
	seen := make(map[string]bool, 1)
	for _, c := range changes {
		if k := c.Room.Key(); !seen[k] {
			seen[k] = true
			rooms = append(rooms, c.Room)
		}
	}
	return rooms
}

// matches reports whether the database's rooms equal memory with changes
// applied: whether a commit in doubt landed.
func (s *shard) matches(changes []imc.Change, truth map[string]*imc.Room) bool {
	want := imc.NewRooms()
	for k := range truth {
		if r := s.rooms.Room(k); r != nil {
			want.Put(r)
		}
	}
	want.Apply(changes)
	for k, r := range truth {
		if !sameRoom(want.Room(k), r) {
			return false
		}
	}
	return true
}

// replace puts the database's rooms in memory (nil: the room is gone):
// being what the database holds, they are no longer doubtful.
func (s *shard) replace(truth map[string]*imc.Room) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, r := range truth {
		delete(s.doubtful, k)
		if r == nil {
			s.rooms.Delete(k)
			continue
		}
		s.putStored(k, r)
	}
}

// putStored puts room r (of key k) as the database holds it, with the
// topic memory had: the imc tables hold no topic. s.mu is held.
func (s *shard) putStored(k string, r *imc.Room) {
	old := s.rooms.Room(k)
	s.rooms.Put(r)
	if old != nil && old.Topic().Text != "" {
		s.rooms.SetTopic(k, old.Topic())
	}
}

// sameRoom compares two rooms as the database stores them: URI, flag, the
// members with their flags (order aside), and the moderation.
func sameRoom(a, b *imc.Room) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Key() != b.Key() || a.Flags != b.Flags || len(a.Members()) != len(b.Members()) || !a.SameModeration(b) {
		return false
	}
	for _, m := range a.Members() {
		o, ok := b.Member(m.URI)
		if !ok || o.Flags&imc.MemberStored != m.Flags&imc.MemberStored {
			return false
		}
	}
	return true
}
