package daemon

import (
	"context"

	"github.com/imcd-sip/imcd/pkg/flood"
	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/metrics"
)

// Open starts every component in dependency order. On error, what was
// started is closed again.
func (d *Daemon) Open(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			d.abort()
		}
	}()
	cfg := d.cfg
	d.limiter = &flood.Limiter{Rate: cfg.RateLimit, Burst: cfg.RateBurst, FanoutRate: cfg.FanoutLimit, FanoutBurst: cfg.FanoutBurst}
	if cfg.IsRabbitMQ() {
		// A queue replays a backlog faster than it was sent: rate and
		// fan-out limits belong in OpenSIPS, before rabbitmq_publish
		// (docs/scale-out.md).
		d.limiter.Rate, d.limiter.FanoutRate = 0, 0
	}
	d.dedup = &flood.Dedup{Window: cfg.DedupWindow}
	d.metrics = metrics.New(d.counts)

	if err := d.openStore(ctx); err != nil { // database.go: the rooms loaded into the runtime (rooms.go)
		return err
	}
	if cfg.MetricsListen != "" {
		if err := d.openMetrics(ctx); err != nil {
			return err
		}
	}
	if err := d.openOutbox(ctx); err != nil {
		return err
	}
	if err := d.db.Open(ctx); err != nil {
		return err
	}
	if err := d.openKeyPurge(ctx); err != nil { // rabbitmq.go
		return err
	}
	if err := d.rooms.Open(ctx); err != nil {
		return err
	}
	if err := d.openMI(ctx); err != nil {
		return err
	}
	d.openProbeMarks() // canary.go
	if err := d.openEvents(ctx); err != nil {
		return err
	}
	if err := d.openSubscriber(ctx); err != nil {
		return err
	}
	if err := d.openCanary(ctx); err != nil { // canary.go: once events can come back
		return err
	}
	d.started.Store(true)
	nRooms, nMembers := d.counts()
	a := d.addrs
	d.notice("imcd started", logkey.Rooms, nRooms, logkey.Members, nMembers, logkey.Shards, d.rooms.Shards(),
		logkey.Events, a.Events, logkey.OpenSIPSMI, cfg.OpenSIPSMI, logkey.MIDatagram, a.MIDatagram, logkey.MIHTTP, a.MIHTTP,
		logkey.MIFIFO, a.MIFIFO, logkey.Metrics, a.Metrics)
	return nil
}
