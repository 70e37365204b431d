package rooms

import "time"

// handleInvitationFailed withdraws an invitation whose MESSAGE failed, or
// never left: the invitee is no longer pending, and the inviter is told.
func (s *shard) handleInvitationFailed(t *task) {
	key := t.inv.Room.Key()
	if w := s.behind[key]; w != nil {
		s.wait(w, t, time.Now())
		return
	}
	res := s.engine.InvitationFailed(s.view, *t.inv, t.status)
	if len(res.Changes) == 0 {
		return
	}
	s.commit(&commitJob{room: key, res: res})
}
