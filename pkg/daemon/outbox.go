package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/opensips"
)

// Outbox sends notices as SIP MESSAGEs, in the order they are handed over,
// and reports each one's outcome to done (from another goroutine; done must
// not block). It returns an error, and never calls done, for a notice it
// could not take.
type Outbox interface {
	Deliver(n *imc.Notice, done func(opensips.Outcome)) error
}

var _ Outbox = (*opensips.MIClient)(nil)

type deliveryOutcome = opensips.Outcome

// openOutbox opens the MI client to OpenSIPS: the shards deliver through
// it, and the subscription and the MI pass-through use it too.
func (d *Daemon) openOutbox(ctx context.Context) error {
	cfg := d.cfg
	d.opensips = &opensips.MIClient{Addr: cfg.OpenSIPSMI, Logger: d.logger, Observer: d.metrics,
		Timeout: cfg.DeliveryTimeout, Window: cfg.DeliveryWindow, QueueSize: cfg.DeliveryQueue, NextHop: cfg.OutboundProxy}
	if err := d.opensips.Open(ctx); err != nil {
		return fmt.Errorf("opensips_mi %s: %w", cfg.OpenSIPSMI, err)
	}
	d.outbox = d.opensips
	return nil
}

// onDelivered is the callback of every notice that is not an invitation;
// the MI client already counts the outcome.
func (d *Daemon) onDelivered(deliveryOutcome) {}

// onInvitationDelivered feeds a failed invitation back to the room's shard,
// which withdraws it and tells the inviter. Only a definite failure counts:
// a SIP failure status, a refusal by OpenSIPS, or a request that never left.
// A timeout or a shutdown leaves the outcome unknown (the invitee may well
// have it), so the invitation stays pending. It runs on the MI client's
// reader goroutine, so it must not block.
func (d *Daemon) onInvitationDelivered(inv imc.Invitation, o deliveryOutcome) {
	switch o.Class() {
	case opensips.Class2xx, opensips.ClassTimeout, opensips.ClassAborted:
		return
	}
	s := d.shardFor(inv.Room.Key())
	select {
	case s.queue <- task{kind: taskInvitationFailed, inv: &inv, status: o.Reason}:
	default:
		d.logger.Warn("shard queue full: failed invitation stays pending", logkey.Room, inv.Room.String(), logkey.User, inv.Invitee.String(), logkey.Status, o.Reason)
	}
}

// sendFailed logs a delivery that could not even be queued, at most once a
// second: when OpenSIPS is down every notice fails the same way.
func (d *Daemon) sendFailed(err error) {
	now := time.Now().UnixNano()
	last := d.lastSendErr.Load()
	if now-last < int64(time.Second) || !d.lastSendErr.CompareAndSwap(last, now) {
		return
	}
	d.logger.Warn("cannot send MESSAGEs to OpenSIPS (further errors of this second not logged)", logkey.Err, err)
}
