package daemon

import (
	"context"
	"errors"
	"sync"
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
	var errs []error
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
	close(d.stopping)
	// What was taken is applied: the shards drain their queues and the
	// commits in flight; past the deadline they answer what still waits.
	// Delivery feedback no longer goes through them from here (isStopping).
	for _, s := range d.shards {
		select {
		case s.queue <- task{kind: taskStop}:
		case <-ctx.Done():
		}
	}
	if !waitCtx(ctx, &d.shardsWG) {
		d.logger.Warn("shutdown grace period over with requests still queued: they are answered 'try again later'")
		close(d.stopNow)
		d.shardsWG.Wait() // each shard ends at once now
	}
	if !waitCtx(ctx, &d.committerWG) {
		d.logger.Warn("shutdown grace period over with a commit in flight: the database decides its outcome")
	}
	d.broker.stop() // rabbitmq.go: the marks writer, once the shards are done

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
	d.withdrawUnsent(ctx)
	if d.events != nil {
		errs = append(errs, d.events.Close())
	}
	d.history.close(ctx)
	d.db.close()
	if d.metricsServer != nil {
		errs = append(errs, d.metricsServer.Shutdown(ctx))
	}
	if d.store != nil {
		errs = append(errs, d.store.Close())
	}
	d.notice("imcd stopped")
	return errors.Join(errs...)
}

// every calls fn every period until ctx ends (the purges of old history
// lines and of old event keys).
func every(ctx context.Context, period time.Duration, fn func(context.Context, time.Time)) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			fn(ctx, now)
		}
	}
}

// waitCtx waits for wg, or for ctx to end first (false).
// isStopping reports whether the shards were told to stop: delivery
// feedback can no longer go through them (failed invitations wait in
// unsent for withdrawUnsent, a catch-up falls back).
func (d *Daemon) isStopping() bool {
	select {
	case <-d.stopping:
		return true
	default:
		return false
	}
}

func waitCtx(ctx context.Context, wg *sync.WaitGroup) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}
