package rooms

import (
	"errors"

	"github.com/imcd-sip/imcd/pkg/delivery"
	"github.com/imcd-sip/imcd/pkg/imc"
)

// send submits the notices of one Result to delivery as one batch, which
// it admits whole (a chat line's whole fan-out) or refuses whole; each
// member then gets a room's notices in the order they were sent. in is
// the MESSAGE they answer (nil for an operator action, a refusal or
// delivery feedback) and applied says whether its changes were committed.
// When delivery is saturated (delivery.ErrBusy) the sender of in is told
// (Engine.Busy), the invitations of the batch, which never left, are
// withdrawn, and the error is returned.
func (s *shard) send(notices []imc.Notice, in *imc.Input, applied bool) error {
	if len(notices) == 0 {
		return nil
	}
	b := delivery.Batch{Notices: notices, Done: s.delivered}
	if invites(notices) {
		b.Kept = s.kept // the inviter is told when it waits for the invitee
	}
	err := s.submit(b)
	if err == nil {
		return nil
	}
	s.sendFailed(err)
	if in != nil && errors.Is(err, delivery.ErrBusy) {
		busy := s.engine.Busy(*in, applied)
		if err := s.submit(delivery.Batch{Notices: busy.Notices, Urgent: true, Done: s.delivered}); err != nil {
			s.sendFailed(err)
		}
	}
	for i := range notices {
		if inv := notices[i].Invitation; inv != nil {
			// The invitation never left: withdraw it now, in order.
			s.handleInvitation(&task{kind: taskInvitationFailed, inv: inv, status: "not sent: " + err.Error()})
		}
	}
	return err
}

// invites reports whether notices carry an invitation: only such a batch
// needs to hear that a notice is kept (a chat line's fan-out to members
// away need not).
func invites(notices []imc.Notice) bool {
	for i := range notices {
		if notices[i].Invitation != nil {
			return true
		}
	}
	return false
}
