package daemon

import (
	"context"
	"fmt"

	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/sockets"
)

// openMetrics serves /metrics, /healthz and /readyz (ready, events.go).
func (d *Daemon) openMetrics(ctx context.Context) error {
	d.metricsServer = &sockets.HTTPServer{Addr: d.cfg.MetricsListen, Handler: d.metrics.Handler(d.ready, d.cfg.MetricsPprof),
		Logger: d.logger.With(logkey.System, logkey.SystemMetrics)}
	if err := d.metricsServer.Open(ctx); err != nil {
		return fmt.Errorf("metrics_listen %s: %w", d.cfg.MetricsListen, err)
	}
	d.addrs.Metrics = d.metricsServer.LocalAddr().String()
	return nil
}

// counts sums rooms and members, for the metrics gauges (which the metrics
// server reads once the runtime exists).
func (d *Daemon) counts() (nRooms, nMembers int) {
	if d.rooms == nil {
		return 0, 0
	}
	return d.rooms.Counts()
}
