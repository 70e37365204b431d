package daemon

import (
	"context"
	"errors"
	"fmt"
	"github.com/imcd-sip/imcd/pkg/batch"
	"log/slog"
	"sync"
	"time"

	"github.com/imcd-sip/imcd/pkg/canary"
	"github.com/imcd-sip/imcd/pkg/delivery"
	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logging"
	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/opensips"
	"github.com/imcd-sip/imcd/pkg/store"
)

// The canary (pkg/canary; docs/operations.md, "The canary"): through each
// OpenSIPS of opensips_mi, a probe MESSAGE to imcd's own manager every
// canary_interval, which must come back as an event. Each node is its own
// path, so each has its own Prober, and its own MI client: the probes go
// to the manager's address through the proxy (never to a contact, so no
// Router), and are not deliveries (no Observer). Submit takes every probe
// out of the intake (probe) before anything else; /readyz fails while a
// node's path is broken (canaryReady).
//
// In RabbitMQ mode several instances share the queues, so a probe may be
// consumed by another instance than the one that sent it: whoever consumes
// one stores its key in the events table (probeMarks), and the sender, when
// it did not see its probe, asks the table (Returned).

// canaryNode is the canary through one OpenSIPS.
type canaryNode struct {
	mi       string // the node's opensips_mi
	client   *opensips.MIClient
	prober   *canary.Prober
	from, to imc.URI
}

// canaryWatch is every node's canary; it is published whole once open,
// for the intake and /readyz, which run meanwhile.
type canaryWatch struct {
	nodes []*canaryNode
}

// openCanary starts a probe through every node whose probes can be
// addressed (config.CanaryURIs); it says which ones cannot.
func (d *Daemon) openCanary(ctx context.Context) error {
	cfg := d.cfg
	if !cfg.CanaryOn() {
		return nil
	}
	w := &canaryWatch{}
	defer d.canary.Store(w) // what opened is closed by shutdown, also on error
	for i, mi := range cfg.OpenSIPSMIs() {
		from, to, err := cfg.CanaryURIs(mi)
		if err != nil {
			d.logger.Warn("the canary does not watch the event path through this OpenSIPS", logkey.OpenSIPSMI, mi, logkey.Err, err)
			continue
		}
		n := &canaryNode{mi: mi, from: from, to: to,
			client: &opensips.MIClient{Addr: mi, Logger: d.logger, Timeout: cfg.DeliveryTimeout, NextHop: cfg.OutboundProxy}}
		n.prober = &canary.Prober{Interval: cfg.Canary.Interval, Timeout: cfg.Canary.Timeout, Send: n.send, Ready: d.pathSetUp(i),
			Observer: d.metrics.Canary().Observer(mi), Logger: d.logger.With(logkey.OpenSIPSMI, mi)}
		if d.probeMarks != nil {
			n.prober.Returned = d.probeMarks.returned
		}
		if err := n.client.Open(ctx); err != nil {
			return fmt.Errorf("canary: opensips_mi %s: %w", mi, err)
		}
		w.nodes = append(w.nodes, n)
		if err := n.prober.Open(ctx); err != nil {
			return fmt.Errorf("canary: %w", err)
		}
	}
	if len(w.nodes) > 0 {
		d.notice("canary: a probe through each OpenSIPS to the manager, expected back as an event", logkey.Nodes, len(w.nodes),
			logkey.Interval, cfg.Canary.Interval.String(), logkey.Timeout, cfg.Canary.Timeout.String())
	}
	return nil
}

// pathSetUp is the Prober's Ready for the i-th node of opensips_mi: what
// imcd sets up itself is in place (that node's E_IMC_MESSAGE subscription;
// in RabbitMQ mode, the consumer), which the first probe waits for. Until
// then /readyz says what is missing, and a probe would only lose its way.
func (d *Daemon) pathSetUp(i int) func() bool {
	return func() bool {
		if d.cfg.IsRabbitMQ() {
			return d.rabbitMQReady() == nil
		}
		return i >= len(d.eventSubs) || d.eventSubs[i].Active()
	}
}

// send is the Prober's Send: one t_uac_dlg of a MESSAGE from the canary's
// user to the manager, through the node's proxy path (next_hop =
// outbound_proxy), so that OpenSIPS's script takes it as it takes a
// user's. It returns the final status, or why OpenSIPS gave none.
func (n *canaryNode) send(ctx context.Context, body string) (int, error) {
	out := make(chan delivery.Outcome, 1) // the answer may come after we stopped waiting
	msg := imc.Notice{From: n.from, To: n.to, Body: body, ContentType: "text/plain"}
	if err := n.client.Send(&msg, 0, func(_ uint64, o delivery.Outcome, _ bool) { out <- o }); err != nil {
		return 0, err
	}
	n.client.Flush()
	select {
	case o := <-out:
		if o.Fault != delivery.FaultNone {
			return 0, fmt.Errorf("t_uac_dlg: %s", o.Reason)
		}
		return o.Status, nil
	case <-ctx.Done():
		return 0, errors.New("t_uac_dlg not answered in time")
	}
}

// close stops the probes, then their MI clients.
func (w *canaryWatch) close() error {
	var errs []error
	for _, n := range w.nodes {
		errs = append(errs, n.prober.Close(), n.client.Close())
	}
	return errors.Join(errs...)
}

// closeCanary stops the canary: first at shutdown, so that the probes do
// not report the event path broken while imcd takes it down.
func (d *Daemon) closeCanary() error {
	if w := d.canary.Load(); w != nil {
		return w.close()
	}
	return nil
}

// probe takes the canary's probes out of the intake (Submit), before
// anything else: a probe of this instance counts as back; any probe
// (another instance's too: they share OpenSIPS, or RabbitMQ's queues) is
// answered and dropped, never shown to anyone nor counted as chat. In
// RabbitMQ mode its key is stored first, for the instance that sent it.
func (d *Daemon) probe(ev *opensips.Event, done func(error)) bool {
	if !canary.Probe(ev.Req.Body) {
		return false
	}
	from, err := imc.ParseURI(ev.Req.From)
	var none *canary.Prober
	if err != nil || !none.Seen(from.User, ev.Req.Body) {
		return false
	}
	if w := d.canary.Load(); w != nil {
		for _, n := range w.nodes {
			n.prober.Seen(from.User, ev.Req.Body)
		}
	}
	if d.probeMarks != nil {
		d.probeMarks.mark(ev.Req.Body, done)
		return true
	}
	done(nil)
	return true
}

// canaryReady is /readyz's word on the event path: the first node whose
// probe did not come back, with the leg it points at.
func (d *Daemon) canaryReady() error {
	w := d.canary.Load()
	if w == nil {
		return nil
	}
	for _, n := range w.nodes {
		if err := n.prober.Err(); err != nil {
			return fmt.Errorf("through OpenSIPS %s: %w", n.mi, err)
		}
	}
	return nil
}

// probeKey is the key a probe is stored under in the events table: of its
// body, which holds the sending instance's mark and the probe's number.
func probeKey(body string) string { return store.EventKey(body, canary.User, "") }

// Bounds of the probe marks.
const (
	// maxProbeMarks is the most probes waiting for their key to be
	// stored; beyond it (a flood of look-alikes) they are answered
	// unstored.
	maxProbeMarks = 64
	// probeMarkTimeout bounds one write of keys.
	probeMarkTimeout = 5 * time.Second
)

// probeMarks stores, in RabbitMQ mode, the keys of the probes this
// instance consumes, in batches, by one goroutine; each probe is answered
// (acknowledged) once its key is stored, or could not be.
type probeMarks struct {
	events store.EventLog
	log    *slog.Logger
	skip   logging.Limit

	mu     sync.Mutex
	closed bool
	in     chan probeMark
	done   chan struct{}
}

// probeMark is one consumed probe: its key, and how to answer it.
type probeMark struct {
	key  string
	done func(error)
}

// openProbeMarks starts the probe marks in RabbitMQ mode (whether this
// instance's canary runs or not: the others' may), before the consumer.
func (d *Daemon) openProbeMarks() {
	events, ok := d.store.(store.EventLog)
	if !d.cfg.IsRabbitMQ() || !ok {
		return
	}
	m := &probeMarks{events: events, log: logging.Child(d.logger, logkey.SystemCanary), skip: logging.Limit{Interval: 10 * time.Second},
		in: make(chan probeMark, maxProbeMarks), done: make(chan struct{})}
	go m.run()
	d.probeMarks = m
}

// mark stores body's key and then answers done, without blocking.
func (m *probeMarks) mark(body string, done func(error)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.closed {
		select {
		case m.in <- probeMark{key: probeKey(body), done: done}:
			return
		default:
		}
	}
	if ok, suppressed := m.skip.Allow(time.Now()); ok {
		m.log.Warn("a probe answered without storing its key: too many waiting, or stopping (its sender may count it lost; at most one such line in 10 s)",
			logkey.Suppressed, suppressed)
	}
	done(nil)
}

// run stores what queued since its last write in one MarkEvents, then
// answers those probes; a failure is logged, and they are answered all the
// same: a probe is not worth a redelivery.
func (m *probeMarks) run() {
	defer close(m.done)
	taken := make([]probeMark, 0, maxProbeMarks)
	keys := make([]string, 0, maxProbeMarks)
	for {
		var ok bool
		if taken, ok = batch.Next(m.in, taken, maxProbeMarks); !ok {
			return
		}
		keys = keys[:0]
		for _, pm := range taken {
			keys = append(keys, pm.key)
		}
		ctx, cancel := context.WithTimeout(context.Background(), probeMarkTimeout)
		_, err := m.events.MarkEvents(ctx, keys)
		cancel()
		if err != nil {
			m.log.Warn("cannot store the keys of probes consumed here: their senders count them lost", logkey.Keys, len(keys), logkey.Err, err)
		}
		for _, pm := range taken {
			pm.done(nil)
		}
	}
}

// returned is a Prober's Returned: whether some instance consumed the
// probe of body.
func (m *probeMarks) returned(ctx context.Context, body string) (bool, error) {
	return m.events.HasEvent(ctx, probeKey(body))
}

// close stores what is queued and stops, once the consumer takes no more.
func (m *probeMarks) close() {
	if m == nil {
		return
	}
	m.mu.Lock()
	if !m.closed {
		m.closed = true
		close(m.in)
	}
	m.mu.Unlock()
	<-m.done
}
