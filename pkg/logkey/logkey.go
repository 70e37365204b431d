// Package logkey names the attributes of imcd's log records, in one place,
// so that every component calls the same thing by the same key and an
// operator can filter on it (system=store, callid=…) across the whole log;
// with them, what every component's logging shares: its child logger
// (Child) and the rate limit of records a flood would repeat (Limit).
package logkey

// Attribute keys.
const (
	// System names the component that logged: one of the System* values.
	System = "system"

	Err        = "err"
	Panic      = "panic"
	Stack      = "stack"
	Suppressed = "suppressed" // records of the same kind held back since the last one

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

	// JSON-RPC.
	Method   = "method"
	ID       = "id"
	Code     = "code"
	Duration = "duration"

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

	// Delivery.
	Endpoint = "endpoint"
	InFlight = "in_flight"
	DownFor  = "down_for"
	Member   = "member"
	Contact  = "contact"
	Leg      = "leg"
	Kept     = "kept"
	Dropped  = "dropped"
	Rate     = "rate"
	OldRate  = "old_rate"
	AwayFor  = "away_for"

	// History.
	Lines      = "lines"
	Marks      = "marks"
	StaleMarks = "stale_marks"

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

	// The addresses imcd bound, in its "imcd started" record.
	Events     = "events"
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
)
