package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/imcd-sip/imcd/pkg/config"
	"github.com/imcd-sip/imcd/pkg/contacts"
	"github.com/imcd-sip/imcd/pkg/delivery"
	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/mi"
	"github.com/imcd-sip/imcd/pkg/opensips"
)

// openOutbox opens one MI client per OpenSIPS node of opensips_mi and the
// scheduler that paces every notice into them (pkg/delivery,
// docs/delivery.md). The first client also carries the MI pass-through.
func (d *Daemon) openOutbox(ctx context.Context) error {
	cfg := d.cfg
	addrs := cfg.OpenSIPSMIs()
	eps := make([]delivery.Endpoint, 0, len(addrs))
	for _, a := range addrs {
		c := &opensips.MIClient{Addr: a, Logger: d.logger, Observer: d.metrics, Timeout: cfg.DeliveryTimeout, NextHop: cfg.OutboundProxy}
		if err := c.Open(ctx); err != nil {
			return fmt.Errorf("opensips_mi %s: %w", a, err)
		}
		d.miClients = append(d.miClients, c)
		eps = append(eps, delivery.Endpoint{Name: a, Sender: c})
	}
	if cfg.DeliveryPath == config.PathContact {
		if err := d.openContacts(ctx); err != nil {
			return err
		}
	}
	d.sched = newScheduler(cfg, eps)
	d.sched.Logger, d.sched.Observer = d.logger, d.metrics
	d.sched.MissedNotice = d.engine.Missed
	d.sched.OnGhost = d.onGhost
	d.wireCatchUp()
	if err := d.sched.Open(ctx); err != nil {
		return fmt.Errorf("delivery: %w", err)
	}
	d.restoreMarks()
	return nil
}

// openContacts keeps the members' registered contacts (delivery_path =
// contact): from usrloc's events and, for a member not heard of, from the
// first node's ul_show_contact; every node's MI client sends through them.
func (d *Daemon) openContacts(ctx context.Context) error {
	d.contacts = &contacts.Directory{Lookup: contacts.ShowContact(d.miClients[0], d.cfg.UsrlocTable),
		Domain: d.cfg.UsrlocDomain, Logger: d.logger}
	if err := d.contacts.Open(ctx); err != nil {
		return fmt.Errorf("contacts: %w", err)
	}
	for _, c := range d.miClients {
		c.Routes = d.contacts
	}
	return nil
}

// newScheduler maps the delivery keys to the scheduler's fields, one for
// one: the keys' defaults are the scheduler's (pkg/config takes them from
// pkg/delivery).
func newScheduler(cfg config.Config, eps []delivery.Endpoint) *delivery.Scheduler {
	s := &delivery.Scheduler{Endpoints: eps,
		RateMax: cfg.DeliveryRateMax, RateMin: cfg.DeliveryRateMin, RateStep: cfg.DeliveryRateStep,
		Burst: cfg.DeliveryBurst, Outstanding: cfg.DeliveryOutstanding, WaitTime: cfg.OpenSIPSWaitTime,
		MemberInflight: cfg.MemberInflight, MemberQueue: cfg.MemberQueue, MemberQueueAge: cfg.MemberQueueAge,
		QueueLimit: cfg.DeliveryQueue, RoomLimit: cfg.DeliveryRoomQueue,
		UnreachableRetry: cfg.UnreachableRetry, UnreachableRetryMax: cfg.UnreachableRetryMax,
		LostRetries: cfg.DeliveryLostRetries, GhostAfter: cfg.GhostAfter, LateAfter: cfg.DeliveryLateAfter,
	}
	return s
}

// submit hands one batch to the scheduler and counts what it admitted.
func (d *Daemon) submit(b delivery.Batch) error {
	err := d.sched.Submit(b)
	if err == nil {
		d.metrics.Submitted(len(b.Notices))
	}
	return err
}

// onDelivered is the Done of every batch: the scheduler's goroutine calls
// it with each notice's result, so it must not block. Only invitations
// need it: a definite failure (Failed: a refusal; Dropped: kept for an
// invitee who never came back) withdraws the invitation and tells the
// inviter, through the room's shard. Lost leaves the outcome unknown (the
// invitee may well have it), so the invitation stays pending; so does one
// Aborted at shutdown after it was written. One that never left (Aborted
// before any request, or while kept for an unreachable invitee) is
// withdrawn at shutdown (see withdrawUnsent).
func (d *Daemon) onDelivered(n imc.Notice, r delivery.Result) {
	if n.Invitation == nil {
		return
	}
	var status string
	switch r.Kind {
	case delivery.Failed:
		status = r.Outcome.String()
	case delivery.Dropped:
		status = "the invitee could not be reached"
	case delivery.Aborted:
		if r.Attempts > 0 && !r.Held {
			return
		}
		status = "not sent before imcd stopped"
	default:
		return
	}
	d.invitationFailed(*n.Invitation, status)
}

// invitationFailed withdraws inv: through its room's shard while the
// shards run (which also tells the inviter), else at the end of the
// shutdown.
func (d *Daemon) invitationFailed(inv imc.Invitation, status string) {
	if d.isStopping() {
		d.unsentMu.Lock()
		d.unsent = append(d.unsent, unsentInvitation{inv: inv, status: status})
		d.unsentMu.Unlock()
		return
	}
	if !d.shardFor(inv.Room.Key()).offer(task{kind: taskInvitationFailed, inv: &inv, status: status}) {
		d.logger.Warn("shard queue full: failed invitation stays pending", logkey.Room, inv.Room.String(), logkey.User, inv.Invitee.String(), logkey.Status, status)
	}
}

// unsentInvitation is an invitation to withdraw once the shards stopped.
type unsentInvitation struct {
	inv    imc.Invitation
	status string
}

// withdrawUnsent removes, from the database and memory, the invitations
// whose MESSAGE failed or never left while imcd was stopping: an
// invitation nobody received must not stay pending across the restart.
// The inviters cannot be told any more (delivery is closed): it is
// logged. It runs after the shards and the scheduler stopped, within what
// is left of the shutdown budget.
func (d *Daemon) withdrawUnsent(ctx context.Context) {
	d.unsentMu.Lock()
	unsent := d.unsent
	d.unsent = nil
	d.unsentMu.Unlock()
	if len(unsent) == 0 || d.store == nil {
		return
	}
	view := globalView{d}
	for _, u := range unsent {
		res := d.engine.InvitationFailed(view, u.inv, u.status)
		if len(res.Changes) == 0 {
			continue
		}
		if err := d.store.Apply(ctx, res.Changes); err != nil {
			d.logger.Warn("an invitation that never reached the invitee stays pending: it could not be withdrawn before the end of the shutdown",
				logkey.Room, u.inv.Room.String(), logkey.User, u.inv.Invitee.String(), logkey.Err, err)
			continue
		}
		s := d.shardFor(u.inv.Room.Key())
		s.mu.Lock()
		s.rooms.Apply(res.Changes)
		s.mu.Unlock()
		d.logger.Info("invitation withdrawn at shutdown: it never reached the invitee (the inviter is not told)",
			logkey.Room, u.inv.Room.String(), logkey.User, u.inv.Invitee.String(), logkey.Status, u.status)
	}
}

// onGhost is told of a member unreachable for ghost_after (once per
// absence, on the scheduler's goroutine). With ghost_policy remove every
// shard is asked to remove them from its rooms, as an operator would.
func (d *Daemon) onGhost(member imc.URI, since time.Time) {
	away := time.Since(since).Round(time.Second).String()
	if d.cfg.GhostPolicy != config.GhostRemove {
		d.logger.Warn("member unreachable for longer than ghost_after: kept in their rooms (ghost_policy keep)", logkey.Member, member.String(), logkey.AwayFor, away)
		return
	}
	d.logger.Warn("member unreachable for longer than ghost_after: removing them from their rooms (ghost_policy remove)", logkey.Member, member.String(), logkey.AwayFor, away)
	for _, s := range d.shards {
		if !s.offer(task{kind: taskGhost, ghost: &member}) {
			s.logger.Warn("shard queue full: an unreachable member stays in this shard's rooms", logkey.Member, member.String())
		}
	}
}

// MemberStates reports what the scheduler knows of members of room, for
// imc:member_status (mi.MemberStates).
func (d *Daemon) MemberStates(room imc.URI, members []imc.URI) []mi.MemberState {
	sts := d.sched.MemberStatus(room, members)
	out := make([]mi.MemberState, len(sts))
	for i, st := range sts {
		out[i] = mi.MemberState{Reachable: st.Reachable, Since: st.Since, NextRetry: st.NextProbe,
			Kept: st.Kept, Dropped: st.Dropped, InFlight: st.InFlight}
	}
	return out
}

// sendFailed logs notices that could not be sent, at most once a second:
// when delivery is saturated every batch fails the same way.
func (d *Daemon) sendFailed(err error) {
	if ok, suppressed := d.sendLog.Allow(time.Now()); ok {
		d.logger.Warn("notices refused for delivery (at most one such line a second)", logkey.Err, err, logkey.Suppressed, suppressed)
	}
}
