package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imcd-sip/imcd/pkg/config"
	"github.com/imcd-sip/imcd/pkg/flood"
	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/metrics"
	"github.com/imcd-sip/imcd/pkg/mi"
	"github.com/imcd-sip/imcd/pkg/opensips"
	"github.com/imcd-sip/imcd/pkg/sockets"
	"github.com/imcd-sip/imcd/pkg/store"
)

// Daemon is one running imcd.
type Daemon struct {
	cfg    config.Config
	logger *slog.Logger

	engine  *imc.Engine
	limiter *flood.Limiter
	dedup   *flood.Dedup
	store   store.Store
	shards  []*shard
	metrics *metrics.Metrics

	// opensips is the MI client to OpenSIPS's mi_datagram: t_uac_dlg,
	// event_subscribe, pass-through. outbox is what the shards deliver
	// through (today the same client).
	opensips   *opensips.MIClient
	outbox     Outbox
	subscriber *opensips.Subscriber
	events     eventServer
	db         *dbHealth
	// miTransports serve imcd's own MI (datagram, HTTP, FIFO).
	miTransports  []server
	metricsServer *sockets.HTTPServer
	addrs         Addrs

	// stopping closes when a stop begins (no new MI work); stopNow when
	// the shutdown grace is over (shards answer what still waits and end).
	stopping    chan struct{}
	stopNow     chan struct{}
	shardsWG    sync.WaitGroup
	committerWG sync.WaitGroup
	closeOnce   sync.Once
	closeErr    error

	// delivered is onDelivered as a func value made once: a method value
	// taken per notice would allocate per delivery.
	delivered   func(deliveryOutcome)
	lastSendErr atomic.Int64 // unix nanos of the last "cannot send" log line
	started     atomic.Bool  // Open finished: every component is up
}

// Outbox sends notices as SIP MESSAGEs, in the order they are handed over,
// and reports each one's outcome to done (from another goroutine; done must
// not block). It returns an error, and never calls done, for a notice it
// could not take.
type Outbox interface {
	Deliver(n *imc.Notice, done func(opensips.Outcome)) error
}

var _ Outbox = (*opensips.MIClient)(nil)

// server is what every socket server of imcd is, in pkg/sockets's idiom.
type server interface {
	Open(ctx context.Context) error
	LocalAddr() net.Addr
	Close() error
}

// eventServer is an event listener: StopIntake stops taking events but
// lets replies to those taken go out, until Close.
type eventServer interface {
	server
	StopIntake()
}

// Addrs are the addresses a running daemon bound, with ports resolved (a
// configuration may ask for port 0); "" for what is off.
type Addrs struct {
	// Events is where OpenSIPS sends events, in OpenSIPS's socket grammar
	// ("tcp:127.0.0.1:9998"): what imcd subscribes.
	Events string
	// MIDatagram is imcd's own MI over datagrams ("udp:127.0.0.1:8081").
	MIDatagram string
	// MIHTTP is the host:port of imcd's own MI over HTTP.
	MIHTTP string
	// MIFIFO is the path of imcd's own MI FIFO.
	MIFIFO string
	// Metrics is the host:port of /metrics, /healthz and /readyz.
	Metrics string
}

// New returns a daemon for cfg; Open starts it.
func New(cfg config.Config, logger *slog.Logger) *Daemon {
	d := &Daemon{cfg: cfg, logger: logger, stopping: make(chan struct{}), stopNow: make(chan struct{})}
	d.delivered = d.onDelivered
	return d
}

// DatabaseURL returns the db_url the daemon uses: the configured one, or the
// embedded SQLite file in data_dir.
func DatabaseURL(cfg config.Config) (url string, embedded bool, err error) {
	if cfg.DBURL != "" {
		return cfg.DBURL, false, nil
	}
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return "", true, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", true, fmt.Errorf("data_dir: %w", err)
	}
	return "sqlite://" + filepath.Join(dir, "imcd.db"), true, nil
}

// Open starts every component in dependency order. On error, what was
// started is closed again.
func (d *Daemon) Open(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			d.abort()
		}
	}()
	cfg := d.cfg
	d.engine = imc.NewEngine(imc.Config{StartChar: cfg.StartChar, MaxBody: cfg.MaxBody, CreateOnJoin: cfg.CreateOnJoin,
		ManagerUser: cfg.ManagerUser, MaxRoomsListed: imc.DefaultConfig().MaxRoomsListed,
		MaxMembers: cfg.MaxMembers, MaxOwnedRooms: cfg.MaxOwnedRooms,
		RoomPrefix: cfg.RoomPrefix, Domains: cfg.Domains, MemberDomains: cfg.MemberDomains})
	d.limiter = &flood.Limiter{Rate: cfg.RateLimit, Burst: cfg.RateBurst, FanoutRate: cfg.FanoutLimit, FanoutBurst: cfg.FanoutBurst}
	d.dedup = &flood.Dedup{Window: cfg.DedupWindow}
	d.shards = make([]*shard, cfg.Shards())
	for i := range d.shards {
		d.shards[i] = newShard(d, i, cfg.ShardQueue)
	}
	d.metrics = metrics.New(d.counts)

	if err := d.openStore(ctx); err != nil {
		return err
	}
	if cfg.MetricsListen != "" {
		if err := d.openMetrics(ctx); err != nil {
			return err
		}
	}
	d.opensips = &opensips.MIClient{Addr: cfg.OpenSIPSMI, Logger: d.logger, Observer: d.metrics,
		Timeout: cfg.DeliveryTimeout, Window: cfg.DeliveryWindow, QueueSize: cfg.DeliveryQueue, NextHop: cfg.OutboundProxy}
	if err := d.opensips.Open(ctx); err != nil {
		return fmt.Errorf("opensips_mi %s: %w", cfg.OpenSIPSMI, err)
	}
	d.outbox = d.opensips
	d.db = newDBHealth(d, d.store)
	for _, s := range d.shards {
		d.shardsWG.Add(1)
		d.committerWG.Add(1)
		go func() { defer d.shardsWG.Done(); s.run() }()
		go func() { defer d.committerWG.Done(); s.commitLoop(d.store) }()
	}
	if err := d.openMI(ctx); err != nil {
		return err
	}
	if err := d.openEvents(ctx); err != nil {
		return err
	}
	if cfg.Subscribe {
		// What was bound, not what was asked: event_listen may say port 0.
		socket := cfg.EventSocket
		if socket == "" {
			socket = d.addrs.Events
		}
		d.subscriber = &opensips.Subscriber{Client: d.opensips, Event: cfg.EventName, Socket: socket,
			Expire: cfg.SubscribeExpire, Renew: cfg.SubscribeRenew, Logger: d.logger}
		if err := d.subscriber.Open(ctx); err != nil {
			return fmt.Errorf("event subscription: %w", err)
		}
	}
	d.started.Store(true)
	rooms, members := d.counts()
	a := d.addrs
	d.notice("imcd started", "rooms", rooms, "members", members, "shards", len(d.shards),
		logkey.Events, a.Events, logkey.OpenSIPSMI, cfg.OpenSIPSMI, logkey.MIDatagram, a.MIDatagram, logkey.MIHTTP, a.MIHTTP,
		logkey.MIFIFO, a.MIFIFO, logkey.Metrics, a.Metrics)
	return nil
}

// Addrs returns the addresses the daemon bound; valid once Open returned.
func (d *Daemon) Addrs() Addrs { return d.addrs }

func (d *Daemon) openStore(ctx context.Context) error {
	url, embedded, err := DatabaseURL(d.cfg)
	if err != nil {
		return err
	}
	if embedded {
		d.notice("no db_url configured: using the embedded SQLite database", "path", url[len("sqlite://"):])
	} else {
		d.notice("using database", "db_url", store.Redacted(url))
	}
	db, err := store.Open(ctx, store.Config{URL: url, RoomsTable: d.cfg.RoomsTable, MembersTable: d.cfg.MembersTable,
		Logger: d.logger, CreateTables: embedded || d.cfg.CreateTables})
	if err != nil {
		return err
	}
	d.store = db
	start := time.Now()
	rooms, err := db.Load(ctx)
	d.metrics.DB("load", time.Since(start))
	if err != nil {
		return fmt.Errorf("loading rooms: %w", err)
	}
	for _, r := range rooms {
		d.shardFor(r.Key()).rooms.Put(r)
	}
	d.notice("rooms loaded", "rooms", len(rooms), "took", time.Since(start).Round(time.Millisecond))
	d.logOutsidePolicy(rooms)
	return nil
}

func (d *Daemon) openMetrics(ctx context.Context) error {
	d.metricsServer = &sockets.HTTPServer{Addr: d.cfg.MetricsListen, Handler: d.metrics.Handler(d.ready),
		Logger: d.logger.With(logkey.System, logkey.SystemMetrics)}
	err := d.metricsServer.Open(ctx, func(err error) { d.logger.Error("metrics server stopped", logkey.Err, err) })
	if err != nil {
		return fmt.Errorf("metrics_listen %s: %w", d.cfg.MetricsListen, err)
	}
	d.addrs.Metrics = d.metricsServer.LocalAddr().String()
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

func (d *Daemon) openMI(ctx context.Context) error {
	reg := mi.NewRegistry()
	for _, c := range append(mi.IMCCommands(globalView{d}, d), mi.ReloadCommand(d)) {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	srv := d.miServer(reg)
	open := func(key, value string, t server) (net.Addr, error) {
		if err := t.Open(ctx); err != nil {
			return nil, fmt.Errorf("%s %s: %w", key, value, err)
		}
		d.miTransports = append(d.miTransports, t)
		return t.LocalAddr(), nil
	}
	if a := d.cfg.MIDatagramAddress(); !a.IsZero() {
		bound, err := open("mi_datagram", d.cfg.MIDatagram, &mi.DatagramTransport{Server: srv, Network: a.Network, Addr: a.Addr})
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
		if _, err := open("mi_fifo", fifo.Path, fifo); err != nil {
			return err
		}
		d.addrs.MIFIFO = fifo.Path
	}
	return nil
}

// sendFailed logs a delivery that could not even be queued, at most once a
// second: when OpenSIPS is down every notice fails the same way.
func (d *Daemon) sendFailed(err error) {
	now := time.Now().UnixNano()
	last := d.lastSendErr.Load()
	if now-last < int64(time.Second) || !d.lastSendErr.CompareAndSwap(last, now) {
		return
	}
	d.logger.Warn("cannot send MESSAGEs to OpenSIPS (further errors of this second not logged)", logkey.Err, err)
}

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
	if d.subscriber != nil {
		errs = append(errs, d.subscriber.Shutdown(ctx))
	}
	if d.events != nil {
		d.events.StopIntake()
	}
	for _, t := range d.miTransports {
		if sh, ok := t.(interface{ Shutdown(context.Context) error }); ok {
			errs = append(errs, sh.Shutdown(ctx))
		} else {
			errs = append(errs, t.Close())
		}
	}
	close(d.stopping)
	// What was taken is applied: the shards drain their queues and the
	// commits in flight; past the deadline they answer what still waits.
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
	// What was applied is announced: queued notices are sent within the
	// same budget.
	if d.opensips != nil {
		if err := d.opensips.Drain(ctx); err != nil {
			d.logger.Warn("shutdown grace period over with deliveries in flight", logkey.Err, err)
		}
		errs = append(errs, d.opensips.Close())
	}
	if d.events != nil {
		errs = append(errs, d.events.Close())
	}
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

// waitCtx waits for wg, or for ctx to end first (false).
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

// notice logs at OpenSIPS's NOTICE level, imcd's default: what an operator
// should see on every start and stop.
func (d *Daemon) notice(msg string, attrs ...any) {
	d.logger.Log(context.Background(), config.LevelNoticeSlog, msg, attrs...)
}
