package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/opensips"
	"github.com/imcd-sip/imcd/pkg/sockets"
)

func (d *Daemon) openEvents(ctx context.Context) error {
	if d.cfg.IsRabbitMQ() {
		return d.openRabbitMQ(ctx)
	}
	a := d.cfg.EventAddress()
	var usrloc opensips.UsrlocSink
	if d.cfg.UsrlocEvents || d.contacts != nil {
		usrloc = d
	}
	var srv eventServer
	if d.cfg.AcceptsAnySource() {
		d.logger.Warn("event_sources = *: events are accepted from any address, and whoever can send one speaks as any user (docs/security.md); list OpenSIPS's addresses instead")
	}
	if a.Network == sockets.TCP {
		srv = &opensips.EventStreamServer{Addr: a.Addr, Sink: d, Usrloc: usrloc, Observer: d.metrics, Logger: d.logger, EventName: d.cfg.EventName,
			Allow: d.cfg.EventSources, MaxFrame: d.cfg.MaxEventSize, OnDisconnect: d.resubscribe,
			MaxConns: d.cfg.EventMaxConns, AtMaxConns: d.cfg.EventAtMaxConns, FrameTimeout: d.cfg.EventFrameTimeout}
	} else {
		srv = &opensips.EventDatagramServer{Network: a.Network, Addr: a.Addr, Sink: d, Usrloc: usrloc, Observer: d.metrics, Logger: d.logger,
			EventName: d.cfg.EventName, Allow: d.cfg.EventSources, ReadBuffer: opensips.DefaultSocketBuffer}
	}
	if err := srv.Open(ctx); err != nil {
		return fmt.Errorf("event_listen %s: %w", d.cfg.EventListen, err)
	}
	d.events = srv
	d.addrs.Events = sockets.Bound(srv.LocalAddr()).String()
	return nil
}

// openSubscriber keeps every OpenSIPS of opensips_mi subscribed to the
// event (and, with usrloc_events, to the usrloc events that say a member
// registered), on the socket actually bound (event_listen may say port 0),
// unless event_socket names another one or the script subscribes itself.
func (d *Daemon) openSubscriber(ctx context.Context) error {
	cfg := d.cfg
	if !cfg.Subscribe || cfg.IsRabbitMQ() {
		return nil
	}
	socket := cfg.EventSocket
	if socket == "" {
		socket = d.addrs.Events
	}
	events := []string{cfg.EventName}
	switch {
	case d.contacts != nil: // every change of a registration
		events = append(events, opensips.UsrlocEventNames()...)
	case cfg.UsrlocEvents:
		events = append(events, opensips.ReachabilityEventNames()...)
	}
	for _, c := range d.miClients {
		for _, ev := range events {
			sub := &opensips.Subscriber{Client: c, Event: ev, Socket: socket,
				Expire: cfg.SubscribeExpire, Renew: cfg.SubscribeRenew, Logger: d.logger.With(logkey.OpenSIPSMI, c.Addr)}
			if err := sub.Open(ctx); err != nil {
				return fmt.Errorf("event subscription: %w", err)
			}
			d.subsMu.Lock()
			d.subscribers = append(d.subscribers, sub)
			d.subsMu.Unlock()
			if ev == cfg.EventName {
				d.eventSubs = append(d.eventSubs, sub)
			}
		}
	}
	return nil
}

// resubscribe renews every subscription now: an event_stream connection
// ended, so an OpenSIPS probably restarted and forgot them. The
// subscribers are set up after the event server, hence the check.
func (d *Daemon) resubscribe() {
	d.subsMu.Lock()
	subs := d.subscribers
	d.subsMu.Unlock()
	for _, sub := range subs {
		sub.Kick()
	}
}

// Usrloc is told of each usrloc event (opensips.UsrlocSink, with
// usrloc_events or delivery_path = contact): it keeps the contacts up to
// date, and a registration of a member's AOR makes them reachable again:
// what was kept for them is sent. It runs on the event read
// loop and does not block.
func (d *Daemon) Usrloc(ev *opensips.UsrlocEvent) {
	if d.contacts != nil {
		d.contacts.Update(ev)
	}
	if !ev.Registers() {
		return
	}
	uri := ev.URI(d.cfg.UsrlocDomain)
	u, err := imc.ParseURI(uri)
	if uri == "" || err != nil {
		if ok, suppressed := d.ulLog.Allow(time.Now()); ok {
			d.logger.Warn("usrloc event without a usable AOR ignored (with usrloc's use_domain off, set usrloc_domain; at most one such line in 10 s)",
				logkey.Event, ev.Name, logkey.AOR, ev.AOR, logkey.Err, err, logkey.Suppressed, suppressed)
		}
		return
	}
	d.sched.Reachable(u)
}

// ready is /readyz: start-up is over, the database answers and, when imcd
// subscribes itself, the subscription is in place; in RabbitMQ mode, imcd
// is connected to the broker and has a consumer on every queue; with the
// canary, its last probe through each OpenSIPS came back. The metrics server runs
// from early in Open, so the components it looks at may not exist yet:
// until started is set it reads none of them.
func (d *Daemon) ready() error {
	if !d.started.Load() {
		return errors.New("starting")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := d.store.Ping(ctx); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	d.db.Answered()
	// Each node's E_IMC_MESSAGE subscription; the usrloc ones are not
	// needed to take MESSAGEs.
	for i, sub := range d.eventSubs {
		if !sub.Active() {
			return fmt.Errorf("not subscribed to OpenSIPS events at %s", d.miClients[i].Addr)
		}
	}
	if d.cfg.IsRabbitMQ() {
		if err := d.rabbitMQReady(); err != nil {
			return err
		}
	}
	return d.canaryReady() // canary.go: the event path through each OpenSIPS
}
