package rooms

import (
	"context"
	"fmt"
	"time"

	"github.com/imcd-sip/imcd/pkg/delivery"
	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logkey"
)

// What delivery tells the rooms, on its goroutine: invitations that did
// not reach their invitee, members to catch up, members gone for good.
// None of it may block: it goes to the rooms' shards with offer.

// onDelivered is the Done of every batch: delivery calls it with each
// notice's result. Only invitations need it: a definite failure (Failed: a
// refusal; Dropped: kept for an invitee who never came back) withdraws the
// invitation and tells the inviter, through the room's shard; so does
// delivery of one the inviter was told waits (Kept). Lost leaves the
// outcome unknown (the invitee may well have it), so the invitation stays
// pending; so does one Aborted at shutdown after it was written. One that
// never left (Aborted before any request, or while kept for an unreachable
// invitee) is withdrawn at shutdown (WithdrawUnsent).
func (r *Runtime) onDelivered(n imc.Notice, res delivery.Result) {
	if n.Invitation == nil {
		return
	}
	inv := *n.Invitation
	var status string
	switch res.Kind {
	case delivery.Delivered:
		if res.Kept { // the inviter was told it waits: it reached them
			r.invitationNews(task{kind: taskInvitationDelivered, inv: &inv, span: res.Waited})
		}
		return
	case delivery.Failed:
		status = res.Outcome.String()
	case delivery.Dropped:
		if !r.isStopping() {
			r.invitationNews(task{kind: taskInvitationExpired, inv: &inv, span: res.Waited})
			return
		}
		status = "the invitee could not be reached"
	case delivery.Aborted:
		if res.Attempts > 0 && !res.Held {
			return
		}
		status = "not sent before imcd stopped"
	default:
		return
	}
	r.invitationFailed(inv, status)
}

// onKept is the Kept of every batch with an invitation: an invitation kept
// for an invitee who cannot be reached now; its inviter is told that it
// waits, and for how long (until delivery would drop it).
func (r *Runtime) onKept(n imc.Notice, k delivery.Keep) {
	if n.Invitation == nil || r.isStopping() {
		return
	}
	inv := *n.Invitation
	r.invitationNews(task{kind: taskInvitationKept, inv: &inv, status: k.Outcome.Reason, span: time.Until(k.Until)})
}

// invitationFailed withdraws inv: through its room's shard while the
// shards run (which also tells the inviter), else at the end of the
// shutdown.
func (r *Runtime) invitationFailed(inv imc.Invitation, status string) {
	if r.isStopping() {
		r.unsentMu.Lock()
		r.unsent = append(r.unsent, unsentInvitation{inv: inv, status: status})
		r.unsentMu.Unlock()
		return
	}
	r.invitationNews(task{kind: taskInvitationFailed, inv: &inv, status: status})
}

// invitationNews hands t, delivery's news of an invitation, to the room's
// shard without blocking.
func (r *Runtime) invitationNews(t task) {
	if !r.all.of(t.inv.Room.Key()).offer(t) {
		r.env.log.Warn("shard queue full: news of an invitation lost (a failed one stays pending)", logkey.Room, t.inv.Room.String(),
			logkey.User, t.inv.Invitee.String(), logkey.Command, t.name(), logkey.Status, t.status)
	}
}

// unsentInvitation is an invitation to withdraw once the shards stopped.
type unsentInvitation struct {
	inv    imc.Invitation
	status string
}

// WithdrawUnsent removes, from the database and memory, the invitations
// whose MESSAGE failed or never left while imcd was stopping: an
// invitation nobody received must not stay pending across the restart.
// The inviters cannot be told any more (delivery is closed): it is
// logged. It runs after Shutdown and once delivery is closed, within what
// is left of the shutdown budget (ctx).
func (r *Runtime) WithdrawUnsent(ctx context.Context) {
	r.unsentMu.Lock()
	unsent := r.unsent
	r.unsent = nil
	r.unsentMu.Unlock()
	e := r.env
	for _, u := range unsent {
		res := e.engine.InvitationFailed(r.view, u.inv, u.status)
		if len(res.Changes) == 0 {
			continue
		}
		if err := e.store.Apply(ctx, res.Changes); err != nil {
			e.log.Warn("an invitation that never reached the invitee stays pending: it could not be withdrawn before the end of the shutdown",
				logkey.Room, u.inv.Room.String(), logkey.User, u.inv.Invitee.String(), logkey.Err, err)
			continue
		}
		s := r.all.of(u.inv.Room.Key())
		s.mu.Lock()
		s.rooms.Apply(res.Changes)
		s.mu.Unlock()
		e.log.Info("invitation withdrawn at shutdown: it never reached the invitee (the inviter is not told)",
			logkey.Room, u.inv.Room.String(), logkey.User, u.inv.Invitee.String(), logkey.Status, u.status)
	}
}

// FillCatchUp is delivery's FillCatchUp, on its goroutine: the request
// goes to the room's shard without blocking; when it cannot, the member is
// told how many they missed instead.
func (r *Runtime) FillCatchUp(req delivery.CatchUpRequest) {
	if r.isStopping() {
		r.env.catchUpFailed(req, ErrStopping)
		return
	}
	if s := r.all.of(req.Room.Key()); !s.offer(task{kind: taskCatchUp, catchUp: &catchUp{req: req}}) {
		r.env.catchUpFailed(req, fmt.Errorf("%w (shard %d)", ErrBusy, s.id))
	}
}

// RemoveEverywhere asks every shard to remove member from its rooms, as an
// operator would (ghost_policy remove: delivery found them unreachable
// for ghost_after). It does not block.
func (r *Runtime) RemoveEverywhere(member imc.URI) {
	for _, s := range r.all {
		if !s.offer(task{kind: taskGhost, ghost: &member}) {
			s.logger.Warn("shard queue full: an unreachable member stays in this shard's rooms", logkey.Member, member.String())
		}
	}
}
