package rooms

import (
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/metrics"
)

// handleEvent applies one MESSAGE: rules, then either the notices at once
// (nothing to save) or a commit whose end sends them.
func (s *shard) handleEvent(t *task) {
	now := time.Now()
	if t.dedup != 0 {
		if s.dedup.Done(now, t.dedup) {
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
	if w := s.behind[key]; w != nil && (s.strict || w.all || !(t.in.Command() == "chat" && !w.hasSender(t.in.From))) {
		s.wait(w, t, now)
		return
	}
	if reread, fail := s.mode.first(s, t.origin, key); fail != nil { // RabbitMQ mode: an earlier event of its session failed
		s.metrics.Command(t.in.Command(), metrics.ResultDBError)
		t.done(fail)
		return
	} else if reread { // RabbitMQ mode: another instance may have changed the room
		s.readFirst(t, key, t.origin)
		return
	}
	res := s.engine.Handle(s.view, t.in)
	if !s.spendFanout(t, &res, now) { // fanout.go: over the budget, answered
		return
	}
	if len(res.Changes) > 0 || res.Topic != nil || res.History != nil {
		s.commit(eventJob(t, key, res))
		return
	}
	if s.mode.keyFirst(t.origin) { // RabbitMQ mode: its key is stored before its notices go out
		s.mode.storeKey(s, eventJob(t, key, res))
		return
	}
	if res.Record != nil { // a chat line: it has nothing to save
		s.record(key, res.Record, res.Notices, now)
	}
	s.metrics.Command(res.Command, res.Outcome.String())
	s.send(res.Notices, &t.in, false) // charged by spendFanout
	s.dedup.Record(now, t.dedup)
	t.done(nil)
}

// eventJob is the job of an event's Result for room. It carries a copy of
// the event: t stays where it is (the shard loop's stack, behind a
// commit), which it could not if the job pointed into it.
func eventJob(t *task, room string, res imc.Result) *commitJob {
	job := &commitJob{room: room, res: res, event: t.in, done: t.done, dedup: t.dedup, origin: t.origin}
	job.in = &job.event
	t.handOff()
	return job
}

// duplicate counts and logs a copy of an event seen already.
func (s *shard) duplicate(t *task) {
	s.metrics.Command(metrics.CommandDuplicate, imc.Refused.String())
	s.logger.Debug("duplicate event: answered with the first copy", logkey.CallID, t.in.Req.CallID)
}
