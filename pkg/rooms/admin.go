package rooms

import (
	"fmt"
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/metrics"
)

// handleAdmin runs an operator action; the MI caller (t.reply, or t.done
// for a ghost's removal) is answered once it is committed and its notices
// are queued for delivery.
func (s *shard) handleAdmin(t *task) {
	key := t.op.Room.Key()
	if w := s.behind[key]; w != nil {
		s.wait(w, t, time.Now())
		return
	}
	if !t.fresh && s.mode.rereadsAdmin() { // RabbitMQ mode: another instance may have changed the room
		t.fresh = true
		s.readFirst(t, key, nil)
		return
	}
	res, err := s.engine.Admin(s.view, *t.op)
	if err != nil {
		s.metrics.Command(metrics.CommandAdmin, imc.Refused.String())
		t.answer(s.env, err)
		return
	}
	if len(res.Changes) == 0 {
		s.metrics.Command(res.Command, res.Outcome.String())
		if err := s.send(res.Notices, nil, false); err != nil {
			err = fmt.Errorf("notices not sent: %w", err)
			t.answer(s.env, err)
			return
		}
		t.answer(s.env, nil)
		return
	}
	job := &commitJob{room: key, res: res, reply: t.reply, done: t.done}
	t.handOff()
	s.commit(job)
}

// ghostTasks are the removals of member, unreachable for ghost_after, from
// every room of this shard they belong to (ghost_policy remove), as the
// MI's imc:remove_member would: committed, the room told, what was kept
// for them dropped. A room's owner is not removed.
func (s *shard) ghostTasks(member imc.URI) []task {
	var tasks []task
	s.rooms.EachRoom(func(r *imc.Room) bool {
		m, ok := r.Member(member)
		switch {
		case !ok:
		case m.Owner():
			s.logger.Warn("unreachable member kept: they own the room", logkey.Room, r.URI.String(), logkey.Member, member.String())
		default:
			room := r.URI
			op := imc.AdminOp{Kind: imc.AdminRemove, Room: room, User: member}
			tasks = append(tasks, task{kind: taskAdmin, op: &op, done: func(err error) {
				if err != nil {
					s.logger.Warn("could not remove an unreachable member", logkey.Room, room.String(), logkey.Member, member.String(), logkey.Err, err)
					return
				}
				s.logger.Info("unreachable member removed from the room", logkey.Room, room.String(), logkey.Member, member.String())
			}})
		}
		return true
	})
	return tasks
}
