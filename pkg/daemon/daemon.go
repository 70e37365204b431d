package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imcd-sip/imcd/pkg/config"
	"github.com/imcd-sip/imcd/pkg/flood"
	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/metrics"
	"github.com/imcd-sip/imcd/pkg/mi"
	"github.com/imcd-sip/imcd/pkg/opensips"
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

	mi         *opensips.MIClient
	subscriber *opensips.Subscriber
	events     interface{ Close() error }
	miServers  []interface{ Close() error }
	httpServer *http.Server

	stopping  chan struct{}
	shardsWG  sync.WaitGroup
	closeOnce sync.Once
	closeErr  error

	// delivered is onDelivered as a func value made once: a method value
	// taken per notice would allocate per delivery.
	delivered   func(deliveryOutcome)
	lastSendErr atomic.Int64 // unix nanos of the last "cannot send" log line
	started     atomic.Bool  // Open finished: every component is up
}

// New returns a daemon for cfg; Open starts it.
func New(cfg config.Config, logger *slog.Logger) *Daemon {
	d := &Daemon{cfg: cfg, logger: logger, stopping: make(chan struct{})}
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
		MaxMembers: cfg.MaxMembers, MaxOwnedRooms: cfg.MaxOwnedRooms})
	d.limiter = &flood.Limiter{Rate: cfg.RateLimit, Burst: cfg.RateBurst}
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
		if err := d.openHTTP(); err != nil {
			return err
		}
	}
	d.mi = &opensips.MIClient{Addr: cfg.OpenSIPSMI, Logger: d.logger, Observer: d.metrics,
		Timeout: cfg.DeliveryTimeout, Window: cfg.DeliveryWindow, QueueSize: cfg.DeliveryQueue, NextHop: cfg.OutboundProxy}
	if err := d.mi.Open(ctx); err != nil {
		return fmt.Errorf("opensips_mi %s: %w", cfg.OpenSIPSMI, err)
	}
	for _, s := range d.shards {
		d.shardsWG.Add(1)
		go func() { defer d.shardsWG.Done(); s.run() }()
	}
	if err := d.openMI(ctx); err != nil {
		return err
	}
	if err := d.openEvents(ctx); err != nil {
		return err
	}
	if cfg.Subscribe {
		socket := cfg.EventSocket
		if socket == "" {
			socket = cfg.EventListen
		}
		d.subscriber = &opensips.Subscriber{Client: d.mi, Event: cfg.EventName, Socket: socket,
			Expire: cfg.SubscribeExpire, Renew: cfg.SubscribeRenew, Logger: d.logger}
		if err := d.subscriber.Open(ctx); err != nil {
			return fmt.Errorf("event subscription: %w", err)
		}
	}
	d.started.Store(true)
	rooms, members := d.counts()
	d.notice("imcd started", "rooms", rooms, "members", members, "shards", len(d.shards),
		"events", cfg.EventListen, "opensips_mi", cfg.OpenSIPSMI, "mi_datagram", cfg.MIDatagram, "mi_http", cfg.MIHTTP,
		"mi_fifo", cfg.MIFIFO, "metrics", cfg.MetricsListen)
	return nil
}

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
	return nil
}

func (d *Daemon) openHTTP() error {
	ln, err := net.Listen("tcp", d.cfg.MetricsListen)
	if err != nil {
		return fmt.Errorf("metrics_listen: %w", err)
	}
	d.httpServer = &http.Server{Handler: d.metrics.Handler(d.ready), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := d.httpServer.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.logger.Error("metrics server stopped", logError, err)
		}
	}()
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
	if d.subscriber != nil && !d.subscriber.Active() {
		return errors.New("not subscribed to OpenSIPS events")
	}
	return nil
}

func (d *Daemon) openEvents(ctx context.Context) error {
	transport, network, addr := d.cfg.EventTransport()
	logger := d.logger
	if transport == "stream" {
		s := &opensips.StreamServer{Addr: addr, Sink: d, Observer: d.metrics, Logger: logger, EventName: d.cfg.EventName,
			Allow: d.cfg.EventSources, MaxFrame: d.cfg.MaxEventSize}
		if err := s.Open(ctx); err != nil {
			return fmt.Errorf("event_listen %s: %w", d.cfg.EventListen, err)
		}
		d.events = s
		return nil
	}
	s := &opensips.DatagramServer{Network: network, Addr: addr, Sink: d, Observer: d.metrics, Logger: logger, EventName: d.cfg.EventName,
		Allow: d.cfg.EventSources, ReadBuffer: opensips.DefaultSocketBuffer}
	if err := s.Open(ctx); err != nil {
		return fmt.Errorf("event_listen %s: %w", d.cfg.EventListen, err)
	}
	d.events = s
	return nil
}

func (d *Daemon) openMI(ctx context.Context) error {
	reg := mi.NewRegistry()
	for _, c := range mi.IMCCommands(globalView{d}, d) {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	srv := &mi.Server{Registry: reg, Logger: d.logger.With(logSystem, "mi")}
	if d.cfg.MIPassthrough {
		srv.Forward = d.mi
	}
	if a := d.cfg.MIDatagram; a != "" {
		network, addr := d.cfg.MIDatagramListen()
		t := &mi.DatagramTransport{Server: srv, Network: network, Addr: addr}
		if err := t.Open(ctx); err != nil {
			return fmt.Errorf("mi_datagram %s: %w", a, err)
		}
		d.miServers = append(d.miServers, t)
	}
	if d.cfg.MIHTTP != "" {
		t := &mi.HTTPTransport{Server: srv, Addr: d.cfg.MIHTTP, Path: d.cfg.MIHTTPPath}
		if err := t.Open(ctx); err != nil {
			return fmt.Errorf("mi_http %s: %w", d.cfg.MIHTTP, err)
		}
		d.miServers = append(d.miServers, t)
	}
	if d.cfg.MIFIFO != "" {
		t := &mi.FIFOTransport{Server: srv, Path: d.cfg.MIFIFO, ReplyDir: d.cfg.MIFIFOReplyDir}
		if err := t.Open(ctx); err != nil {
			return fmt.Errorf("mi_fifo %s: %w", d.cfg.MIFIFO, err)
		}
		d.miServers = append(d.miServers, t)
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
	d.logger.Warn("cannot send MESSAGEs to OpenSIPS (further errors of this second not logged)", logError, err)
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
	if d.subscriber != nil {
		errs = append(errs, d.subscriber.Close())
	}
	if d.events != nil {
		errs = append(errs, d.events.Close())
	}
	for _, s := range d.miServers {
		errs = append(errs, s.Close())
	}
	close(d.stopping)
	for _, s := range d.shards {
		select {
		case s.queue <- task{kind: taskStop}:
		case <-ctx.Done():
		}
	}
	drained := make(chan struct{})
	go func() { d.shardsWG.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-ctx.Done():
		d.logger.Warn("shutdown grace period over with requests still queued")
	}
	if d.mi != nil {
		if err := d.mi.Drain(ctx); err != nil {
			d.logger.Warn("shutdown grace period over with deliveries in flight", logError, err)
		}
		errs = append(errs, d.mi.Close())
	}
	if d.httpServer != nil {
		errs = append(errs, d.httpServer.Close())
	}
	if d.store != nil {
		errs = append(errs, d.store.Close())
	}
	d.notice("imcd stopped")
	return errors.Join(errs...)
}

// notice logs at OpenSIPS's NOTICE level, imcd's default: what an operator
// should see on every start and stop.
func (d *Daemon) notice(msg string, attrs ...any) {
	d.logger.Log(context.Background(), config.LevelNoticeSlog, msg, attrs...)
}
