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
	"github.com/imcd-sip/imcd/pkg/store"
)

// openOutbox opens one MI client per OpenSIPS node of opensips_mi and the
// scheduler that paces every notice into them (pkg/delivery,
// docs/delivery.md). The first client also carries the MI pass-through.
func (d *Daemon) openOutbox(ctx context.Context) error {
	cfg := d.cfg
	addrs := cfg.OpenSIPSMIs()
	eps := make([]delivery.Endpoint, 0, len(addrs))
	for _, a := range addrs {
		c := &opensips.MIClient{Addr: a, Logger: d.logger, Observer: d.metrics, Timeout: cfg.DeliveryTimeout, NextHop: cfg.OutboundProxy, NextHopInOrder: cfg.ProxyInOrder}
		if err := c.Open(ctx); err != nil {
			return fmt.Errorf("opensips_mi %s: %w", a, err)
		}
		d.miClients = append(d.miClients, c)
		eps = append(eps, delivery.Endpoint{Name: a, Sender: c, Memory: c})
	}
	if cfg.DeliveryPath == config.PathContact {
		if err := d.openContacts(ctx); err != nil {
			return err
		}
	}
	d.sched.Endpoints = eps
	d.sched.Logger, d.sched.Observer = d.logger, d.metrics
	d.sched.MissedNotice = d.engine.Missed
	d.sched.OnGhost = d.onGhost
	if d.catchUpOn() {
		d.sched.FillCatchUp = d.rooms.FillCatchUp
		d.sched.OnMarks = d.onMarks
	}
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
// pkg/delivery). The endpoints and callbacks are set by openOutbox.
func newScheduler(cfg config.Config) *delivery.Scheduler {
	return &delivery.Scheduler{
		RateMax: cfg.DeliveryRateMax, RateMin: cfg.DeliveryRateMin, RateStep: cfg.DeliveryRateStep,
		Burst: cfg.DeliveryBurst, Outstanding: cfg.DeliveryOutstanding, WaitTime: cfg.OpenSIPSWaitTime,
		ShmShare:       float64(cfg.DeliveryShmShare) / 100,
		MemberInflight: cfg.MemberInflight, MemberQueue: cfg.MemberQueue, MemberQueueAge: cfg.MemberQueueAge,
		QueueLimit: cfg.DeliveryQueue, RoomLimit: cfg.DeliveryRoomQueue,
		UnreachableRetry: cfg.UnreachableRetry, UnreachableRetryMax: cfg.UnreachableRetryMax,
		LostRetries: cfg.DeliveryLostRetries, GhostAfter: cfg.GhostAfter, LateAfter: cfg.DeliveryLateAfter,
	}
}

// onGhost is told of a member unreachable for ghost_after (once per
// absence, on the scheduler's goroutine). With ghost_policy remove the
// rooms' runtime removes them from their rooms, as an operator would.
func (d *Daemon) onGhost(member imc.URI, since time.Time) {
	away := time.Since(since).Round(time.Second).String()
	if d.cfg.GhostPolicy != config.GhostRemove {
		d.logger.Warn("member unreachable for longer than ghost_after: kept in their rooms (ghost_policy keep)", logkey.Member, member.String(), logkey.AwayFor, away)
		return
	}
	d.logger.Warn("member unreachable for longer than ghost_after: removing them from their rooms (ghost_policy remove)", logkey.Member, member.String(), logkey.AwayFor, away)
	d.rooms.RemoveEverywhere(member)
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

// Catch-up (docs/delivery.md, "Members who are away"). With history on
// and catchup_max > 0, the scheduler keeps, per member and room, the
// history number of the last line delivered. When a member becomes
// unreachable it reports those marks (onMarks), which the history writer
// stores; when they are back, it asks (FillCatchUp) the rooms' runtime for
// the lines they missed. At start the stored marks make those members away
// again (restoreMarks), so a restart loses nothing of what they missed.

// catchUpOn reports whether members are caught up from the history.
func (d *Daemon) catchUpOn() bool { return d.history != nil && d.cfg.CatchUpMax > 0 }

// restoreMarks tells the scheduler, once it is open, which members were
// away when imcd stopped, with the last line delivered to them in each
// room. Marks of rooms or members that are gone are deleted.
func (d *Daemon) restoreMarks() {
	marks := d.marksAtStart
	d.marksAtStart = nil
	if !d.catchUpOn() || len(marks) == 0 {
		return
	}
	var away []delivery.Mark
	var stale []delivery.MarkChange
	view := d.rooms.View()
	for _, m := range marks {
		if r := view.Room(m.Room.Key()); r != nil {
			if mem, ok := r.Member(m.Member); ok && mem.Active() {
				// As the room spells them: the flows are keyed by these.
				away = append(away, delivery.Mark{Room: r.URI, Member: mem.URI, Seq: m.Seq})
				continue
			}
		}
		stale = append(stale, delivery.MarkChange{Mark: delivery.Mark{Room: m.Room, Member: m.Member, Seq: m.Seq}})
	}
	d.sched.Away(away)
	d.onMarks(stale)
	d.notice("members away when imcd stopped: caught up from the history when they are back", logkey.Marks, len(away), logkey.StaleMarks, len(stale))
}

// onMarks is the scheduler's OnMarks: the marks to store or delete go to
// the history writer, in order, without blocking.
func (d *Daemon) onMarks(changes []delivery.MarkChange) {
	for _, c := range changes {
		d.history.Mark(store.Mark{Room: c.Room, Member: c.Member, Seq: c.Seq}, c.Away)
	}
}
