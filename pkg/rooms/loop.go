package rooms

import (
	"fmt"
	"runtime/debug"
	"time"

	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/metrics"
)

// sweepEvery is how often a shard looks for tasks that waited too long and
// for doubtful rooms due for another re-read.
const sweepEvery = 100 * time.Millisecond

// run handles tasks in order until a stop task, then finishes what is in
// flight: everything queued before the stop is handled first, which is
// what makes a graceful stop drain.
func (s *shard) run() {
	// The sweep's ticker runs only while there is something to sweep (a
	// task behind a commit, a doubtful room): an idle shard wakes nobody.
	var tick *time.Ticker
	defer func() {
		if tick != nil {
			tick.Stop()
		}
	}()
	defer close(s.commits) // the committer ends when the shard does
	for {
		if s.stopping && s.jobs == 0 && s.mode.idle(s) {
			return
		}
		var tickC <-chan time.Time
		switch sweeps := s.nBehind > 0 || len(s.doubtful) > 0; {
		case sweeps && tick == nil:
			tick = time.NewTicker(sweepEvery)
		case !sweeps && tick != nil:
			tick.Stop()
			tick = nil
		}
		if tick != nil {
			tickC = tick.C
		}
		select {
		case t := <-s.queue:
			if t.kind == taskStop {
				s.stopping = true
				continue
			}
			s.handle(&t)
		case j := <-s.committed:
			s.jobs--
			j.finish(s)
		case jobs := <-s.returned: // RabbitMQ mode: event keys stored
			s.mode.returned(s, jobs)
		case now := <-tickC:
			s.sweep(now)
			s.retryDoubts(now)
		case <-s.stopNow:
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
			s.metrics.Panic(metrics.ComponentShard)
			s.logger.Error("panic while handling a request", logkey.Panic, fmt.Sprint(r), logkey.CallID, t.in.Req.CallID, logkey.Stack, string(debug.Stack()))
			t.answer(s.env, errPanic)
		}
	}()
	switch t.kind {
	case taskEvent:
		s.handleEvent(t)
	case taskInvitationFailed, taskInvitationExpired, taskInvitationKept, taskInvitationDelivered:
		s.handleInvitation(t)
	case taskAdmin:
		s.handleAdmin(t)
	case taskReload:
		s.handleReload(t.reload)
	case taskGhost:
		for _, rm := range s.ghostTasks(*t.ghost) {
			s.handle(&rm)
		}
	case taskCatchUp:
		s.handleCatchUp(t.catchUp)
	}
}

// release ends the commit in flight for room: what waited behind it is
// handled again, in order, and stops at the next commit (later tasks wait
// behind that one).
func (s *shard) release(room string) {
	tasks := s.takeWaiting(room)
	for i := range tasks {
		s.handle(&tasks[i])
	}
}
