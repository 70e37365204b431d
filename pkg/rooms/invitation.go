package rooms

import (
	"time"

	"github.com/imcd-sip/imcd/pkg/delivery"
	"github.com/imcd-sip/imcd/pkg/imc"
)

// handleInvitation runs delivery's news of an invitation (feedback.go)
// once what its room has in flight is committed: one that failed, or
// never left, or waited too long (expired) is withdrawn, so that the
// invitee is no longer pending, and the inviter is told; of one kept for
// an invitee who cannot be reached now, or delivered after it waited, the
// inviter is told.
func (s *shard) handleInvitation(t *task) {
	key := t.inv.Room.Key()
	if w := s.behind[key]; w != nil {
		s.wait(w, t, time.Now())
		return
	}
	var res imc.Result
	switch t.kind {
	case taskInvitationFailed:
		res = s.engine.InvitationFailed(s.view, *t.inv, t.status)
	case taskInvitationExpired:
		res = s.engine.InvitationExpired(s.view, *t.inv, t.span)
	case taskInvitationKept:
		res = s.engine.InvitationWaiting(s.view, *t.inv, t.status, t.span)
	case taskInvitationDelivered:
		res = s.engine.InvitationDelivered(s.view, *t.inv, t.span)
	}
	if len(res.Changes) > 0 {
		s.commit(&commitJob{room: key, res: res})
		return
	}
	if len(res.Notices) == 0 {
		return
	}
	s.metrics.Command(res.Command, res.Outcome.String())
	// Urgent, as the inviter's "invitation sent" was: in the same flow,
	// so that this never overtakes it.
	if err := s.submit(delivery.Batch{Notices: res.Notices, Urgent: true, Done: s.delivered}); err != nil {
		s.sendFailed(err)
	}
}
