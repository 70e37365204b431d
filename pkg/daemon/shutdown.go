package daemon

import (
	"context"
	"errors"
	"time"

	"github.com/imcd-sip/imcd/pkg/logkey"
)

// Close stops the daemon gracefully: no new events or MI requests, queued
// requests finished, deliveries in flight awaited, all within shutdown_grace;
// then the database is closed. It is idempotent.
func (d *Daemon) Close() error {
	d.closeOnce.Do(func() { d.closeErr = d.shutdown(d.cfg.ShutdownGrace) })
	return d.closeErr
}

// abort stops whatever Open managed to start, without waiting.
func (d *Daemon) abort() {
	d.closeOnce.Do(func() { d.closeErr = d.shutdown(0) })
}

func (d *Daemon) shutdown(grace time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	// The canary first: what follows takes the event path down.
	errs := []error{d.closeCanary()}
	// No new work: OpenSIPS stops sending, nothing more is read. Event
	// connections stay open so that what is applied below is acknowledged.
	for _, sub := range d.subscribers {
		errs = append(errs, sub.Shutdown(ctx))
	}
	if d.events != nil {
		d.events.StopIntake()
	}
	for _, t := range d.miTransports {
		errs = append(errs, t.Shutdown(ctx))
	}
	// What was taken is applied: the shards drain their queues and the
	// commits in flight; past the deadline they answer what still waits.
	// Delivery feedback no longer goes through them from here.
	if d.rooms != nil {
		d.rooms.Shutdown(ctx)
	}
	errs = append(errs, d.keyPurge.Close()) // rabbitmq.go

	// What was applied is announced: what reachable members are owed is
	// sent within the same budget; what is kept for unreachable ones ends
	// aborted (they may not come back within the budget). Then the MI
	// clients close (the scheduler writes through them until its Close).
	if d.sched != nil {
		if err := d.sched.Drain(ctx); err != nil {
			d.logger.Warn("shutdown grace period over with deliveries waiting or in flight", logkey.Err, err)
		}
		errs = append(errs, d.sched.Close())
	}
	if d.contacts != nil {
		errs = append(errs, d.contacts.Close()) // its lookups use the MI clients
	}
	for _, c := range d.miClients {
		errs = append(errs, c.Close())
	}
	// Invitations nobody received do not outlive the process (a failure
	// is logged: the database is what stops us).
	if d.rooms != nil {
		d.rooms.WithdrawUnsent(ctx)
	}
	if d.events != nil {
		errs = append(errs, d.events.Close())
	}
	d.probeMarks.close() // the consumer submits no more probes

	if d.history != nil {
		d.history.Shutdown(ctx)
	}
	if d.db != nil {
		errs = append(errs, d.db.Close())
	}
	if d.metricsServer != nil {
		errs = append(errs, d.metricsServer.Shutdown(ctx))
	}
	if d.store != nil {
		errs = append(errs, d.store.Close())
	}
	d.notice("imcd stopped")
	return errors.Join(errs...)
}
