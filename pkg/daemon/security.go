package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/imcd-sip/imcd/pkg/config"
	"github.com/imcd-sip/imcd/pkg/delivery"
	"github.com/imcd-sip/imcd/pkg/flood"
	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/metrics"
	"github.com/imcd-sip/imcd/pkg/mi"
)

// The daemon's share of the security settings (docs/security.md): the
// fan-out budget charged after each request, the rooms outside the room
// policy reported at load, the MI pass-through policy and the FIFO.

// spendFanout holds a handled request to its sender's fan-out budget
// (fanout_limit) on the shard goroutine, before anything is sent: the
// intake's check only filters, since every request a sender queued before
// the budget ran out passed it. A request with nothing to save takes its
// cost now, checked and charged in one step; one whose changes go to the
// database is checked only, and charged when they land (chargeFanout).
// Either way a burst sends at most fanout_burst plus one request's
// fan-out. Over the budget, the request is dropped (the sender told once)
// and answered; false then. It allocates nothing.
func (d *Daemon) spendFanout(t *task, res *imc.Result, now time.Time) bool {
	var key [imc.KeyBufLen]byte
	k := t.in.From.AppendKey(key[:0])
	var dec flood.Decision
	if len(res.Changes) == 0 && res.Topic == nil && res.History == nil {
		dec = d.limiter.Spend(k, len(res.Notices), now)
	} else {
		dec = d.limiter.Check(k, now)
	}
	if dec == flood.Allowed {
		return true
	}
	d.rateLimited(&t.in, dec)
	t.done(nil)
	return false
}

// rateLimited drops a request over the sender's rate or fan-out budget:
// the first refusal of an episode tells the sender (and is logged), every
// one is counted.
func (d *Daemon) rateLimited(in *imc.Input, dec flood.Decision) {
	if dec == flood.FirstRefusal {
		d.logger.Warn("sender over the rate limit: told once, dropping until it slows down", logkey.From, in.From.String(), logkey.CallID, in.Req.CallID)
		n := []imc.Notice{{From: in.RURI, To: in.From, Body: imc.TxtRateLimited, ContentType: "text/plain", InReplyTo: in.ReplyID()}}
		if err := d.submit(delivery.Batch{Notices: n, Urgent: true, Done: d.delivered}); err != nil {
			d.sendFailed(err)
		}
	}
	d.metrics.Command(metrics.CommandRateLimited, imc.Refused.String())
}

// chargeFanout takes the MESSAGEs a sender's command made imcd send from
// the sender's fan-out budget (fanout_limit), once its changes landed. It
// runs on the shard goroutine after the notices were handed over, and
// allocates nothing.
func (d *Daemon) chargeFanout(in *imc.Input, deliveries int, now time.Time) {
	if in == nil || deliveries == 0 {
		return
	}
	var key [imc.KeyBufLen]byte
	d.limiter.Charge(in.From.AppendKey(key[:0]), deliveries, now)
}

// maxPolicyExamples bounds the rooms named in the log line about rooms
// outside the policy.
const maxPolicyExamples = 10

// logOutsidePolicy says once, at start, which stored rooms break the room
// policy (room_prefix, domains): they were created before it or by another
// tool, and are served as before.
func (d *Daemon) logOutsidePolicy(rooms []*imc.Room) {
	n := 0
	var examples []string
	for _, r := range rooms {
		why := d.engine.OutsidePolicy(r.URI)
		if why == "" {
			continue
		}
		n++
		if len(examples) < maxPolicyExamples {
			examples = append(examples, r.URI.String()+" ("+why+")")
		}
	}
	if n == 0 {
		return
	}
	d.logger.Warn("rooms outside the room policy (room_prefix, domains) were loaded: they are served as before, but no such room can be created",
		logkey.Rooms, n, logkey.Room, strings.Join(examples, "; "))
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
