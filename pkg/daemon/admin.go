package daemon

import (
	"context"
	"fmt"
	"net"

	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/mi"
	"github.com/imcd-sip/imcd/pkg/sockets"
)

// openMI serves imcd's own MI: the imc commands, imc:reload, and, when
// mi_passthrough says so, OpenSIPS's commands passed through.
func (d *Daemon) openMI(ctx context.Context) error {
	reg := mi.NewRegistry()
	for _, c := range append(mi.IMCCommands(globalView{d}, d), mi.ReloadCommand(d), mi.HistoryCommand(d), mi.MemberStatusCommand(globalView{d}, d)) {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	srv := d.miServer(reg)
	open := func(key, value string, t transport) (net.Addr, error) {
		if err := t.Open(ctx); err != nil {
			return nil, fmt.Errorf("%s %s: %w", key, value, err)
		}
		d.miTransports = append(d.miTransports, t)
		return t.LocalAddr(), nil
	}
	if a := d.cfg.MIDatagramAddress(); !a.IsZero() {
		bound, err := open("mi_datagram", d.cfg.MIDatagram, closeAtOnce{&mi.DatagramTransport{Server: srv, Network: a.Network, Addr: a.Addr}})
		if err != nil {
			return err
		}
		d.addrs.MIDatagram = sockets.Bound(bound).String()
	}
	if d.cfg.MIHTTP != "" {
		bound, err := open("mi_http", d.cfg.MIHTTP, &mi.HTTPTransport{Server: srv, Addr: d.cfg.MIHTTP, Path: d.cfg.MIHTTPPath,
			Hosts: d.cfg.MIHTTPHosts, Origins: d.cfg.MIHTTPOrigins})
		if err != nil {
			return err
		}
		d.addrs.MIHTTP = bound.String()
	}
	if d.cfg.MIFIFO != "" {
		fifo, err := d.fifoTransport(srv)
		if err != nil {
			return err
		}
		if _, err := open("mi_fifo", fifo.Path, closeAtOnce{fifo}); err != nil {
			return err
		}
		d.addrs.MIFIFO = fifo.Path
	}
	return nil
}

func (d *Daemon) openMetrics(ctx context.Context) error {
	d.metricsServer = &sockets.HTTPServer{Addr: d.cfg.MetricsListen, Handler: d.metrics.Handler(d.ready, d.cfg.MetricsPprof),
		Logger: d.logger.With(logkey.System, logkey.SystemMetrics)}
	if err := d.metricsServer.Open(ctx); err != nil {
		return fmt.Errorf("metrics_listen %s: %w", d.cfg.MetricsListen, err)
	}
	d.addrs.Metrics = d.metricsServer.LocalAddr().String()
	return nil
}
