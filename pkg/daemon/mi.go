package daemon

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/imcd-sip/imcd/pkg/config"
	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/mi"
	"github.com/imcd-sip/imcd/pkg/sockets"
)

// openMI serves imcd's own MI: the imc commands, imc:reload and
// imc:history, imc:member_status, and, when mi_passthrough says so,
// OpenSIPS's commands passed through (docs/security.md).
func (d *Daemon) openMI(ctx context.Context) error {
	reg := mi.NewRegistry()
	view := d.rooms.View()
	for _, c := range append(mi.IMCCommands(view, d.rooms), mi.ReloadCommand(d), mi.HistoryCommand(d), mi.MemberStatusCommand(view, d)) {
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

// miServer returns imcd's MI server with the pass-through policy of
// mi_passthrough and mi_passthrough_allow.
func (d *Daemon) miServer(reg *mi.Registry) *mi.Server {
	srv := &mi.Server{Registry: reg, Logger: d.logger.With(logkey.System, logkey.SystemMI)}
	if !d.cfg.ForwardsMI() {
		return srv
	}
	srv.Forward = d.miClients[0] // the first node of opensips_mi
	srv.PassthroughAll = d.cfg.MIPassthrough == config.PassthroughAll
	srv.PassthroughAllow = d.cfg.MIPassthroughAllow
	if d.cfg.MIPassthrough == config.PassthroughYes {
		d.logger.Warn("mi_passthrough = yes now means allowlist: only read-only OpenSIPS MI commands are passed through " +
			"(see docs/security.md); set mi_passthrough = all to forward every command as before, or list more in mi_passthrough_allow")
	}
	return srv
}

// fifoTransport returns the MI FIFO transport of mi_fifo (in data_dir
// unless absolute, the directory made if need be), mi_fifo_mode and
// mi_fifo_group.
func (d *Daemon) fifoTransport(srv *mi.Server) (*mi.FIFOTransport, error) {
	path := d.cfg.MIFIFOPath()
	if !filepath.IsAbs(d.cfg.MIFIFO) {
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, fmt.Errorf("mi_fifo %s: %w", path, err)
		}
	}
	return &mi.FIFOTransport{Server: srv, Path: path, ReplyDir: d.cfg.MIFIFOReplyDir,
		Mode: d.cfg.MIFIFOMode, Group: d.cfg.MIFIFOGroup}, nil
}

// Reload is imc:reload (mi.Reloader): the rooms' runtime reads every room
// again.
func (d *Daemon) Reload(ctx context.Context) (mi.ReloadReport, error) {
	rep, err := d.rooms.Reload(ctx)
	return mi.ReloadReport(rep), err
}

// History is imc:history (mi.HistoryReader): a room's last n lines.
func (d *Daemon) History(ctx context.Context, room imc.URI, n int) ([]imc.StoredLine, int64, error) {
	if d.hist == nil {
		return nil, 0, mi.ErrNoHistory
	}
	return d.rooms.History(ctx, room, n)
}
