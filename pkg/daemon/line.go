package daemon

import (
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logkey"
)

// sweepEvery is how often a shard looks for tasks that waited too long and
// for doubtful rooms due for another re-read.
const sweepEvery = 100 * time.Millisecond

// line is what waits behind the commit in flight of one room: later
// commands, operator actions and invitation withdrawals, and the chat lines
// of senders who have a command of their own waiting or in flight (so that
// "#join" then "hello" keeps its order). Other senders' chat lines do not
// wait: they see the room as last committed.
type line struct {
	tasks   []task
	senders map[string]int // sender key → its tasks in the line, the one being committed included
}

// newLine is the line behind a job for the MESSAGE in (nil for none): its
// sender's later chat lines wait in it too.
func newLine(in *imc.Input) *line {
	l := &line{senders: make(map[string]int, 1)}
	if in != nil {
		l.senders[in.From.Key()]++
	}
	return l
}

// hold opens job's room line (what comes for the room meanwhile waits in
// it) and marks its event as being applied (a copy waits for its outcome).
func (s *shard) hold(job *commitJob) {
	s.lines[job.room] = newLine(job.in)
	if job.dedup != 0 {
		s.inProgress[job.dedup] = nil
	}
}

func (l *line) push(t task) {
	l.tasks = append(l.tasks, t)
	if t.kind == taskEvent {
		l.senders[t.in.From.Key()]++
	}
}

func (l *line) hasSender(u imc.URI) bool {
	var buf [imc.KeyBufLen]byte
	return l.senders[string(u.AppendKey(buf[:0]))] > 0 // no allocation: map lookup by a converted []byte
}

// release ends the commit in flight for room: what waited behind it is
// handled again, in order, and stops at the next commit (later tasks wait
// behind that one).
func (s *shard) release(room string) {
	tasks := s.takeLine(room)
	for i := range tasks {
		s.handle(&tasks[i])
	}
}

// refuseLine ends room's line, answering what waited in it with err:
// nothing of it was attempted.
func (s *shard) refuseLine(room string, err error) {
	tasks := s.takeLine(room)
	for i := range tasks {
		s.refuse(&tasks[i], err)
	}
}

// takeLine ends room's line and returns what waited in it.
func (s *shard) takeLine(room string) []task {
	l := s.lines[room]
	if l == nil {
		return nil
	}
	delete(s.lines, room)
	s.waiting -= len(l.tasks)
	return l.tasks
}

// sweep answers the tasks that waited longer than command_timeout behind a
// commit ("try again later": nothing of them was attempted), and re-reads
// the doubtful rooms that are due.
func (s *shard) sweep(now time.Time) {
	limit := s.d.cfg.CommandTimeout
	for room, l := range s.lines {
		kept := l.tasks[:0]
		for _, t := range l.tasks {
			if now.Sub(t.queued) < limit {
				kept = append(kept, t)
				continue
			}
			s.waiting--
			if t.kind == taskEvent {
				l.senders[t.in.From.Key()]--
			}
			s.logger.Warn("a request waited too long for the database: answered 'try again later'",
				logkey.Room, room, logkey.Command, taskName(&t))
			s.refuse(&t, ErrTimeout)
		}
		clear(l.tasks[len(kept):])
		l.tasks = kept
	}
	s.retryDoubts(now)
}

func taskName(t *task) string {
	switch t.kind {
	case taskEvent:
		return t.in.Command()
	case taskAdmin:
		return t.op.Kind.String()
	case taskInvitationFailed:
		return "invitation-failed"
	}
	return "task"
}

// abandon answers everything still waiting when the shutdown grace is
// over: nothing of it was attempted.
func (s *shard) abandon() {
	for _, l := range s.lines {
		for i := range l.tasks {
			s.refuse(&l.tasks[i], ErrStopping)
		}
	}
	clear(s.lines)
	s.waiting = 0
}
