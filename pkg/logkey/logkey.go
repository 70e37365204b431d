// Package logkey names the attributes of imcd's log records, in one place,
// so that every component calls the same thing by the same key and an
// operator can filter on it (system=store, callid=…) across the whole log.
// It holds keys and the values of System only: what else every
// component's logging shares is in pkg/logging.
package logkey

// Attribute keys.
const (
	// System names the component that logged: one of the System* values.
	System = "system"

	Err        = "err"
	Panic      = "panic"
	Stack      = "stack"
	Suppressed = "suppressed" // records of the same kind held back since the last one
	Took       = "took"       // how long something took
	Timeout    = "timeout"
	Path       = "path"
	Callback   = "callback" // which callback of a component's user panicked

	// The process.
	Signal   = "signal"
	Grace    = "grace"
	LogLevel = "log_level"

	// A MESSAGE and its people.
	CallID  = "callid"
	From    = "from"
	RURI    = "ruri"
	Room    = "room"
	User    = "user"
	Command = "command"
	Status  = "status"
	Shard   = "shard"

	// Sockets and transports.
	Addr      = "addr"
	Remote    = "remote"
	Peer      = "peer"
	Transport = "transport"
	Socket    = "socket"
	Event     = "event"
	Size      = "size"
	ReplyFIFO = "reply_fifo"
	Datagram  = "datagram" // a datagram's bytes, quoted
	Expected  = "expected" // the peer a datagram was expected from

	// JSON-RPC.
	Method   = "method"
	ID       = "id"
	Code     = "code"
	Message  = "message" // a JSON-RPC error's
	Data     = "data"    // a JSON-RPC error's
	Request  = "request"
	Duration = "duration"

	// OpenSIPS's events and subscriptions.
	AOR    = "aor"
	Expire = "expire"
	Renew  = "renew"

	// The database.
	Engine  = "engine"
	DBURL   = "db_url"
	Table   = "table"
	Row     = "row"
	Reason  = "reason"
	Rooms   = "rooms"
	Members = "members"
	Skipped = "skipped"
	Elapsed = "elapsed"
	Change  = "change"
	Logged  = "logged" // rows logged of those skipped
	// RereadErr is why rooms could not be read again after a commit in
	// doubt (Err is the commit's error).
	RereadErr       = "reread_err"
	RoomsTable      = "rooms_table"
	MembersTable    = "members_table"
	BansTable       = "bans_table"
	ModerationTable = "moderation_table"
	History         = "history" // whether the history tables are used
	Keys            = "keys"    // event keys of RabbitMQ mode
	Purged          = "purged"

	// The rooms' runtime.
	Shards  = "shards"
	Added   = "added"
	Removed = "removed"
	Changed = "changed"
	Busy    = "busy"

	// Delivery.
	Endpoints      = "endpoints"
	RateMax        = "rate_max"
	Outstanding    = "outstanding"
	ShmTotal       = "shm_total" // bytes of OpenSIPS's shared memory
	ShmUsed        = "shm_used"
	ShmShare       = "shm_share" // of it, what imcd's transactions may fill
	MemberInflight = "member_inflight"
	MemberQueue    = "member_queue"
	Endpoint       = "endpoint"
	InFlight       = "in_flight"
	DownFor        = "down_for"
	Member         = "member"
	Contact        = "contact"
	Leg            = "leg"
	Nodes          = "nodes"    // OpenSIPS nodes (the canary's)
	Interval       = "interval" // between the canary's probes
	Kept           = "kept"
	Dropped        = "dropped"
	Rate           = "rate"
	OldRate        = "old_rate"
	AwayFor        = "away_for"

	// History.
	Lines            = "lines"
	Marks            = "marks"
	StaleMarks       = "stale_marks"
	RoomsWithHistory = "rooms_with_history"
	Topics           = "topics"
	KeepLines        = "keep_lines"
	MaxAge           = "max_age"

	// RabbitMQ.
	Queue      = "queue"
	Queues     = "queues"
	Standby    = "standby"
	Prefetch   = "prefetch"
	Pending    = "pending"
	Session    = "session"
	Broker     = "broker"
	Backoff    = "backoff"
	Returned   = "returned"
	RoutingKey = "routing_key"
	Reroute    = "reroute"
	Declare    = "declare"

	// The addresses imcd bound, in its "imcd started" record.
	Events     = "events" // also: whether the store keeps the events table
	OpenSIPSMI = "opensips_mi"
	MIDatagram = "mi_datagram"
	MIHTTP     = "mi_http"
	MIFIFO     = "mi_fifo"
	Metrics    = "metrics"
	GOMAXPROCS = "gomaxprocs"
)

// Values of System.
const (
	SystemShard      = "shard"
	SystemMI         = "mi"
	SystemMetrics    = "metrics"
	SystemStore      = "store"
	SystemEvents     = "events"
	SystemMIClient   = "mi-client"
	SystemSubscriber = "subscriber"
	SystemDelivery   = "delivery"
	SystemRabbitMQ   = "rabbitmq"
	SystemHistory    = "history"
	SystemPublisher  = "rabbitmq-publisher"
	SystemContacts   = "contacts"
	SystemCanary     = "canary"
	// SystemFakeOpenSIPS is pkg/opensipstest's fake OpenSIPS, in tests.
	SystemFakeOpenSIPS = "fake-opensips"
)
