package daemon

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imcd-sip/imcd/pkg/config"
	"github.com/imcd-sip/imcd/pkg/delivery"
	"github.com/imcd-sip/imcd/pkg/flood"
	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logging"
	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/metrics"
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
	// hist is the store's history side, nil when the rooms keep no
	// history; history writes their chat lines in the background.
	hist    store.HistoryStore
	history *historyWriter
	shards  []*shard
	metrics *metrics.Metrics

	// miClients talk to each OpenSIPS of opensips_mi (t_uac_dlg,
	// event_subscribe); the first also carries the MI pass-through. sched
	// paces every notice into them (pkg/delivery).
	miClients   []*opensips.MIClient
	sched       *delivery.Scheduler
	subsMu      sync.Mutex             // subscribers is read by the event server (resubscribe)
	subscribers []*opensips.Subscriber // eventSubs, and the usrloc ones
	eventSubs   []*opensips.Subscriber // each node's E_IMC_MESSAGE subscription
	events      eventServer
	broker      *brokerMode // RabbitMQ mode (rabbitmq.go); nil otherwise
	db          *dbHealth
	// miTransports serve imcd's own MI (datagram, HTTP, FIFO).
	miTransports  []transport
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
	// taken per batch would allocate per line.
	delivered delivery.Done
	sendLog   logging.Limit // "notices refused for delivery": once a second
	ulLog     logging.Limit // unusable usrloc events: once in 10 s
	started   atomic.Bool   // Open finished: every component is up
	unsentMu  sync.Mutex
	unsent    []unsentInvitation

	// marksAtStart are the catch-up marks stored before the restart, for
	// the scheduler once it is open (restoreMarks).
	marksAtStart []store.Mark
}

// server is what every socket server of imcd is, in pkg/sockets's idiom.
type server interface {
	Open(ctx context.Context) error
	LocalAddr() net.Addr
	Close() error
}

// transport is one of imcd's MI transports: a server whose stop may let
// requests in progress finish within the shutdown budget (Shutdown).
type transport interface {
	server
	Shutdown(ctx context.Context) error
}

// closeAtOnce is a transport with no request to let finish (datagram,
// FIFO: Close waits for the one being answered): its Shutdown is Close.
type closeAtOnce struct{ server }

// Shutdown closes the transport.
func (t closeAtOnce) Shutdown(context.Context) error { return t.Close() }

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
	d := &Daemon{cfg: cfg, logger: logger, stopping: make(chan struct{}), stopNow: make(chan struct{}),
		sendLog: logging.Limit{Interval: time.Second}, ulLog: logging.Limit{Interval: 10 * time.Second}}
	d.delivered = d.onDelivered
	return d
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
	d.limiter = &flood.Limiter{Rate: cfg.RateLimit, Burst: cfg.RateBurst, FanoutRate: cfg.FanoutLimit, FanoutBurst: cfg.FanoutBurst}
	if cfg.IsRabbitMQ() {
		// A queue replays a backlog faster than it was sent: rate and
		// fan-out limits belong in OpenSIPS, before rabbitmq_publish
		// (docs/scale-out.md).
		d.limiter.Rate, d.limiter.FanoutRate = 0, 0
	}
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
	if err := d.openOutbox(ctx); err != nil {
		return err
	}
	d.db = newDBHealth(d, d.store)
	if err := d.openBrokerMode(); err != nil { // rabbitmq.go: before the shards start
		return err
	}
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
	if err := d.openSubscriber(ctx); err != nil {
		return err
	}
	d.started.Store(true)
	rooms, members := d.counts()
	a := d.addrs
	d.notice("imcd started", logkey.Rooms, rooms, logkey.Members, members, logkey.Shards, len(d.shards),
		logkey.Events, a.Events, logkey.OpenSIPSMI, cfg.OpenSIPSMI, logkey.MIDatagram, a.MIDatagram, logkey.MIHTTP, a.MIHTTP,
		logkey.MIFIFO, a.MIFIFO, logkey.Metrics, a.Metrics)
	return nil
}

// EngineConfig is the room engine's configuration as a daemon of cfg
// runs it, history saying whether its rooms keep one (known once the store
// is open). Tests that model the daemon build their engine from it.
func EngineConfig(cfg config.Config, history bool) imc.Config {
	return imc.Config{StartChar: cfg.StartChar, MaxBody: cfg.MaxBody, CreateOnJoin: cfg.CreateOnJoin,
		ManagerUser: cfg.ManagerUser, MaxRoomsListed: imc.DefaultConfig().MaxRoomsListed,
		MaxMembers: cfg.MaxMembers, MaxOwnedRooms: cfg.MaxOwnedRooms,
		RoomPrefix: cfg.RoomPrefix, Domains: cfg.Domains, MemberDomains: cfg.MemberDomains,
		History: history, HistoryDefault: cfg.HistoryLines, HistoryMax: cfg.HistoryMax, HistoryOnJoin: cfg.HistoryOnJoin,
		CatchUpMax: cfg.CatchUpMax}
}

// Addrs returns the addresses the daemon bound; valid once Open returned.
func (d *Daemon) Addrs() Addrs { return d.addrs }

// notice logs at OpenSIPS's NOTICE level, imcd's default: what an operator
// should see on every start and stop.
func (d *Daemon) notice(msg string, attrs ...any) {
	d.logger.Log(context.Background(), config.LevelNoticeSlog, msg, attrs...)
}
