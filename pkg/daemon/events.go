package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/imcd-sip/imcd/pkg/opensips"
	"github.com/imcd-sip/imcd/pkg/sockets"
)

func (d *Daemon) openEvents(ctx context.Context) error {
	a := d.cfg.EventAddress()
	var srv eventServer
	if a.Network == sockets.TCP {
		srv = &opensips.EventStreamServer{Addr: a.Addr, Sink: d, Observer: d.metrics, Logger: d.logger, EventName: d.cfg.EventName,
			Allow: d.cfg.EventSources, MaxFrame: d.cfg.MaxEventSize}
	} else {
		srv = &opensips.EventDatagramServer{Network: a.Network, Addr: a.Addr, Sink: d, Observer: d.metrics, Logger: d.logger,
			EventName: d.cfg.EventName, Allow: d.cfg.EventSources, ReadBuffer: opensips.DefaultSocketBuffer}
	}
	if err := srv.Open(ctx); err != nil {
		return fmt.Errorf("event_listen %s: %w", d.cfg.EventListen, err)
	}
	d.events = srv
	d.addrs.Events = sockets.Bound(srv.LocalAddr()).String()
	return nil
}

// openSubscriber keeps OpenSIPS subscribed to the event, on the socket
// actually bound (event_listen may say port 0), unless event_socket names
// another one or the script subscribes itself.
func (d *Daemon) openSubscriber(ctx context.Context) error {
	cfg := d.cfg
	if !cfg.Subscribe {
		return nil
	}
	socket := cfg.EventSocket
	if socket == "" {
		socket = d.addrs.Events
	}
	d.subscriber = &opensips.Subscriber{Client: d.opensips, Event: cfg.EventName, Socket: socket,
		Expire: cfg.SubscribeExpire, Renew: cfg.SubscribeRenew, Logger: d.logger}
	if err := d.subscriber.Open(ctx); err != nil {
		return fmt.Errorf("event subscription: %w", err)
	}
	return nil
}

// ready is /readyz: start-up is over, the database answers and, when imcd
// subscribes itself, the subscription is in place. The metrics server runs
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
	d.db.answered()
	if d.subscriber != nil && !d.subscriber.Active() {
		return errors.New("not subscribed to OpenSIPS events")
	}
	return nil
}
