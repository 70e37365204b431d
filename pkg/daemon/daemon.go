package daemon

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imcd-sip/imcd/pkg/config"
	"github.com/imcd-sip/imcd/pkg/contacts"
	"github.com/imcd-sip/imcd/pkg/dbhealth"
	"github.com/imcd-sip/imcd/pkg/delivery"
	"github.com/imcd-sip/imcd/pkg/flood"
	"github.com/imcd-sip/imcd/pkg/history"
	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logging"
	"github.com/imcd-sip/imcd/pkg/metrics"
	"github.com/imcd-sip/imcd/pkg/opensips"
	"github.com/imcd-sip/imcd/pkg/rooms"
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
	// hist is the store's history side and history its writer, both nil
	// when the rooms keep no history.
	hist    store.HistoryStore
	history *history.Writer
	db      *dbhealth.Monitor
	rooms   *rooms.Runtime
	metrics *metrics.Metrics

	// miClients talk to each OpenSIPS of opensips_mi (t_uac_dlg,
	// event_subscribe); the first also carries the MI pass-through. sched
	// paces every notice into them (pkg/delivery).
	miClients   []*opensips.MIClient
	contacts    *contacts.Directory // delivery_path = contact; nil otherwise
	sched       *delivery.Scheduler
	subsMu      sync.Mutex             // subscribers is read by the event server (resubscribe)
	subscribers []*opensips.Subscriber // eventSubs, and the usrloc ones
	eventSubs   []*opensips.Subscriber // each node's E_IMC_MESSAGE subscription
	events      eventServer
	keyPurge    *keyPurge // RabbitMQ mode (rabbitmq.go); nil otherwise
	// canary watches the event path through each OpenSIPS (canary.go),
	// set once open; probeMarks store the keys of the probes consumed, in
	// RabbitMQ mode.
	canary     atomic.Pointer[canaryWatch]
	probeMarks *probeMarks
	// miTransports serve imcd's own MI (datagram, HTTP, FIFO).
	miTransports  []transport
	metricsServer *sockets.HTTPServer
	addrs         Addrs

	closeOnce sync.Once
	closeErr  error
	ulLog     logging.Limit // unusable usrloc events: once in 10 s
	started   atomic.Bool   // Open finished: every component is up

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
	return &Daemon{cfg: cfg, logger: logger, ulLog: logging.Limit{Interval: 10 * time.Second}}
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
func (d *Daemon) notice(msg string, attrs ...any) { logging.Notice(d.logger, msg, attrs...) }
