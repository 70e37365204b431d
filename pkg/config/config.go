// Package config holds imcd's configuration: one table of keys, each with a
// default, a description, a parser and a check, that serves the config file,
// the command-line flags (one per key, same name), `imcd --help` and the
// configuration reference's completeness test.
//
// Keys use the imc module's parameter names where one exists (db_url,
// rooms_table, members_table, hash_size, imc_cmd_start_char,
// outbound_proxy); the rest are imcd's own.
package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/imcd-sip/imcd/pkg/contacts"
	"github.com/imcd-sip/imcd/pkg/delivery"
	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/mi"
	"github.com/imcd-sip/imcd/pkg/opensips"
	"github.com/imcd-sip/imcd/pkg/sockets"
	"github.com/imcd-sip/imcd/pkg/store"
)

// Config is the whole configuration of one imcd process.
type Config struct {
	// Database.
	DBURL        string // db_url; "" means the embedded SQLite file in DataDir
	DataDir      string
	RoomsTable   string
	MembersTable string
	CreateTables bool
	// imcd's own tables of bans, moderated rooms and voices.
	BansTable       string
	ModerationTable string

	// Rooms.
	HashSize       int // 2^HashSize shards
	StartChar      byte
	MaxBody        int
	CreateOnJoin   bool
	ManagerUser    string
	OutboundProxy  string
	ProxyInOrder   bool // OutboundProxy relays a member's MESSAGEs in the order it takes them
	ShardQueue     int
	CommandTimeout time.Duration
	MaxMembers     int
	MaxOwnedRooms  int

	// Room and member policy.
	RoomPrefix    string   // "" = any name
	Domains       []string // empty = the domain a command was sent to; "*" = any
	MemberDomains []string // besides the room's own; "*" = any

	// History and topics.
	History          string // HistoryAuto, HistoryOn or HistoryOff
	HistoryTable     string
	TopicsTable      string
	MarksTable       string
	HistoryLines     int
	HistoryMax       int
	HistoryOnJoin    int
	CatchUpMax       int // 0 = no catch-up from the history
	HistoryKeepLines int // 0 = no count limit
	HistoryMaxAge    time.Duration

	// Flood control.
	RateLimit    float64 // messages per second per sender; 0 disables
	RateBurst    int
	FanoutLimit  float64 // deliveries per second per sender; 0 disables
	FanoutBurst  int
	DedupWindow  time.Duration
	MaxEventSize int

	// OpenSIPS.
	OpenSIPSMI      string // mi_datagram addresses of OpenSIPS, comma-separated: "udp:host:port" or "unix:/path"
	EventName       string
	EventListen     string // "tcp:ip:port" (event_stream), "udp:ip:port" or "unix:/path" (event_datagram)
	EventSocket     string // what OpenSIPS is told to send to; "" = EventListen
	EventSources    []netip.Prefix
	Subscribe       bool
	SubscribeExpire time.Duration
	SubscribeRenew  time.Duration
	DeliveryTimeout time.Duration
	UsrlocEvents    bool   // subscribe the usrloc events that bring members back
	UsrlocDomain    string // domain added to a usrloc AOR without one (use_domain off)
	UsrlocTable     string // usrloc's table, for ul_show_contact
	DeliveryPath    string // PathProxy or PathContact

	// event_stream's bounds (opensips.EventStreamServer).
	EventMaxConns     int
	EventAtMaxConns   string // opensips.AtMaxRefuse or opensips.AtMaxCloseIdle
	EventFrameTimeout time.Duration

	// Delivery (pkg/delivery's Scheduler).
	DeliveryQueue       int
	DeliveryRoomQueue   int
	DeliveryRateMax     float64
	DeliveryRateMin     float64
	DeliveryRateStep    float64 // 0 = DeliveryRateMax/100
	DeliveryBurst       int
	DeliveryLateAfter   time.Duration
	DeliveryOutstanding int
	DeliveryShmShare    int           // percent
	OpenSIPSWaitTime    time.Duration // tm's wt_timer; 0 counts only transactions awaiting their reply
	DeliveryLostRetries int           // 0 = never
	MemberInflight      int
	MemberQueue         int
	MemberQueueAge      time.Duration
	UnreachableRetry    time.Duration
	UnreachableRetryMax time.Duration
	GhostAfter          time.Duration // 0 = off
	GhostPolicy         string        // GhostKeep or GhostRemove

	// The event source (rabbitmq.go): SourceOpenSIPS or SourceRabbitMQ,
	// and RabbitMQ mode's settings.
	EventSource string
	RabbitMQ    RabbitMQ

	// The canary through the event path (canary.go).
	Canary Canary

	// imcd's own MI.
	MIDatagram         string // "udp:ip:port" or "unix:/path"; "" disables
	MIHTTP             string // "ip:port"; "" disables
	MIHTTPPath         string
	MIHTTPHosts        []string
	MIHTTPOrigins      []string
	MIFIFO             string // FIFO path, relative to DataDir unless absolute; "" disables (see MIFIFOPath)
	MIFIFOReplyDir     string
	MIFIFOMode         os.FileMode
	MIFIFOGroup        string
	MIPassthrough      string // PassthroughAllowlist, PassthroughAll, PassthroughNo or PassthroughYes
	MIPassthroughAllow []string

	// Operations.
	MetricsListen string // "" disables
	MetricsPprof  bool   // /debug/pprof/ on MetricsListen
	GOMAXPROCS    int    // 0 = every CPU
	LogLevel      Level
	LogFormat     string
	ShutdownGrace time.Duration
}

// Default returns the configuration imcd runs with when given none: the
// embedded SQLite database under ./var, everything on loopback, OpenSIPS's
// mi_datagram expected on its usual 127.0.0.1:8080. Where a component has a
// default of its own, this is it (one source per default).
func Default() Config {
	engine := imc.DefaultConfig()
	return Config{
		DataDir:          "var",
		RoomsTable:       store.DefaultRoomsTable,
		MembersTable:     store.DefaultMembersTable,
		BansTable:        store.DefaultBansTable,
		ModerationTable:  store.DefaultModTable,
		HashSize:         4,
		StartChar:        engine.StartChar,
		MaxBody:          engine.MaxBody,
		CreateOnJoin:     engine.CreateOnJoin,
		ManagerUser:      engine.ManagerUser,
		ShardQueue:       4096,
		CommandTimeout:   3 * time.Second,
		MaxMembers:       1000,
		MaxOwnedRooms:    20,
		RoomPrefix:       engine.RoomPrefix,
		History:          HistoryAuto,
		HistoryTable:     store.DefaultHistoryTable,
		TopicsTable:      store.DefaultTopicsTable,
		MarksTable:       store.DefaultMarksTable,
		HistoryLines:     engine.HistoryDefault,
		HistoryMax:       engine.HistoryMax,
		HistoryOnJoin:    engine.HistoryOnJoin,
		CatchUpMax:       engine.CatchUpMax,
		HistoryKeepLines: store.DefaultHistoryKeepLines,
		HistoryMaxAge:    store.DefaultHistoryMaxAge,
		RateLimit:        10,
		RateBurst:        20,
		FanoutLimit:      200,
		FanoutBurst:      4000,
		DedupWindow:      32 * time.Second,
		MaxEventSize:     opensips.DefaultMaxFrame,
		OpenSIPSMI:       "udp:127.0.0.1:8080",
		EventName:        opensips.DefaultEventName,
		EventListen:      "tcp:127.0.0.1:9998",
		EventSources:     []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")},
		Subscribe:        true,
		SubscribeExpire:  opensips.DefaultExpire,
		SubscribeRenew:   opensips.DefaultRenew,
		DeliveryTimeout:  opensips.DefaultMITimeout,

		EventMaxConns:     opensips.DefaultMaxConns,
		EventAtMaxConns:   opensips.AtMaxRefuse,
		EventFrameTimeout: opensips.DefaultFrameTimeout,

		DeliveryQueue:       delivery.DefaultQueueLimit,
		DeliveryRoomQueue:   delivery.DefaultRoomLimit,
		DeliveryRateMax:     delivery.DefaultRateMax,
		DeliveryRateMin:     delivery.DefaultRateMin,
		DeliveryBurst:       delivery.DefaultBurst,
		DeliveryLateAfter:   delivery.DefaultLateAfter,
		DeliveryShmShare:    int(delivery.DefaultShmShare * 100),
		OpenSIPSWaitTime:    delivery.DefaultWaitTime,
		DeliveryLostRetries: delivery.DefaultLostRetries,
		MemberInflight:      delivery.DefaultMemberInflight,
		MemberQueue:         delivery.DefaultMemberQueue,
		MemberQueueAge:      delivery.DefaultMemberQueueAge,
		UnreachableRetry:    delivery.DefaultUnreachableRetry,
		UnreachableRetryMax: delivery.DefaultUnreachableRetryMax,
		GhostPolicy:         GhostKeep,
		UsrlocTable:         contacts.DefaultTable,
		DeliveryPath:        PathProxy,

		EventSource: SourceOpenSIPS,
		RabbitMQ:    defaultRabbitMQ(),
		Canary:      defaultCanary(),

		MIDatagram:    "udp:" + mi.DefaultDatagramAddr,
		MIHTTP:        mi.DefaultHTTPAddr,
		MIHTTPPath:    mi.DefaultHTTPPath,
		MIFIFO:        "imcd_fifo",
		MIFIFOMode:    mi.DefaultFIFOMode,
		MIPassthrough: PassthroughAllowlist,
		MetricsListen: "127.0.0.1:9464",
		GOMAXPROCS:    1,
		LogLevel:      LevelNotice,
		LogFormat:     "text",
		ShutdownGrace: 10 * time.Second,
	}
}

// The values of mi_passthrough.
const (
	// PassthroughAllowlist forwards the read-only commands of
	// mi.DefaultPassthrough and those of mi_passthrough_allow.
	PassthroughAllowlist = "allowlist"
	// PassthroughAll forwards every command imcd does not own.
	PassthroughAll = "all"
	// PassthroughNo forwards nothing.
	PassthroughNo = "no"
	// PassthroughYes is how a configuration written for the boolean
	// mi_passthrough of earlier imcd versions said "on": it now means
	// PassthroughAllowlist, and the daemon says so when it starts.
	PassthroughYes = "yes"
)

// Values of the history key.
const (
	HistoryAuto = "auto"
	HistoryOn   = "on"
	HistoryOff  = "off"
)

// ErrInvalid is wrapped by every configuration error.
var ErrInvalid = errors.New("invalid configuration")

// KeyError names the key whose value is wrong and why.
type KeyError struct {
	Key    string
	Where  string // "flag", or "file:line"
	Reason string
}

func (e *KeyError) Error() string {
	if e.Where == "" {
		return fmt.Sprintf("%s: %s", e.Key, e.Reason)
	}
	return fmt.Sprintf("%s (%s): %s", e.Key, e.Where, e.Reason)
}

// Unwrap returns ErrInvalid.
func (e *KeyError) Unwrap() error { return ErrInvalid }

// AnySource is the value of event_sources that accepts events from any
// address.
const AnySource = "*"

// errNoSources refuses an empty event_sources, which accepted events from
// any address without saying so.
var errNoSources = errors.New("must name the addresses OpenSIPS sends events from (such as 127.0.0.1, or 10.0.0.0/24); " +
	"to accept events from any address, say so with *")

// anySource is what event_sources = * stands for: every IPv4 and IPv6
// address.
func anySource() []netip.Prefix {
	return []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
}

// AcceptsAnySource reports whether event_sources lets events in from any
// address (*, or a prefix as wide), which the daemon warns about at start.
func (c *Config) AcceptsAnySource() bool {
	for _, p := range c.EventSources {
		if p.Bits() == 0 {
			return true
		}
	}
	return false
}

// EventAddress returns EventListen parsed: a TCP address is event_stream,
// UDP or unixgram event_datagram. The key's parser has checked it.
func (c *Config) EventAddress() sockets.Address {
	a, _ := sockets.Parse(c.EventListen)
	return a
}

// MIDatagramAddress returns MIDatagram parsed; the zero Address when off.
func (c *Config) MIDatagramAddress() sockets.Address {
	a, _ := sockets.Parse(c.MIDatagram)
	return a
}

// MIFIFOPath returns the FIFO's path: MIFIFO, taken in DataDir when it is
// relative; "" when the FIFO is off.
func (c *Config) MIFIFOPath() string {
	if c.MIFIFO == "" || filepath.IsAbs(c.MIFIFO) {
		return c.MIFIFO
	}
	return filepath.Join(c.DataDir, c.MIFIFO)
}

// EmbeddedDBFile is the file name of the embedded SQLite database in
// data_dir, used when db_url is empty.
const EmbeddedDBFile = "imcd.db"

// EmbeddedDatabase returns the absolute path of the embedded SQLite
// database. It creates nothing.
func (c *Config) EmbeddedDatabase() (string, error) {
	dir, err := filepath.Abs(c.DataDir)
	if err != nil {
		return "", fmt.Errorf("data_dir: %w", err)
	}
	return filepath.Join(dir, EmbeddedDBFile), nil
}

// ForwardsMI reports whether any MI command is passed to OpenSIPS.
func (c *Config) ForwardsMI() bool { return c.MIPassthrough != PassthroughNo }

// OpenSIPSMIs returns the MI sockets of opensips_mi, one per OpenSIPS node
// (the key's parser has checked them).
func (c *Config) OpenSIPSMIs() []string {
	var out []string
	for _, f := range strings.Split(c.OpenSIPSMI, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// The values of delivery_path.
const (
	// PathProxy sends a member's MESSAGEs to their address of record,
	// which the proxy's script looks up and relays.
	PathProxy = "proxy"
	// PathContact sends them straight to the member's registered contact
	// when imcd knows it (pkg/contacts), through the proxy otherwise.
	PathContact = "contact"
)

// The values of ghost_policy.
const (
	// GhostKeep keeps members unreachable for ghost_after in their rooms
	// (it is logged).
	GhostKeep = "keep"
	// GhostRemove removes them from their rooms, with a notice to each room.
	GhostRemove = "remove"
)

// Shards returns the number of room shards, 2^HashSize.
func (c *Config) Shards() int { return 1 << c.HashSize }
