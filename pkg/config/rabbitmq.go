package config

import (
	"fmt"
	"strconv"
	"time"

	"github.com/imcd-sip/imcd/pkg/rabbitmq"
	"github.com/imcd-sip/imcd/pkg/store"
)

// Event sources: where imcd takes OpenSIPS's MESSAGEs from.
const (
	// SourceOpenSIPS: OpenSIPS sends events to imcd (event_stream or
	// event_datagram, by event_listen), and imcd subscribes itself.
	SourceOpenSIPS = "opensips"
	// SourceRabbitMQ: OpenSIPS publishes to RabbitMQ and imcd consumes the
	// queues (docs/scale-out.md); event_listen and the subscription are
	// not used.
	SourceRabbitMQ = "rabbitmq"
)

// Values of rabbitmq_reroute.
const (
	RerouteAuto = "auto"
	RerouteYes  = "yes"
	RerouteNo   = "no"
)

// RabbitMQ is the configuration of RabbitMQ mode (event_source = rabbitmq):
// the broker, the queues this instance consumes, and the table that makes
// an event applied once across instances.
type RabbitMQ struct {
	URL          string
	Exchange     string
	Shards       int
	QueuePrefix  string
	Queues       []string // as given: names or shard numbers; none = every shard
	Standby      []string
	StandbyDelay time.Duration
	Prefetch     int
	Heartbeat    time.Duration
	Declare      bool
	DeadLetter   string
	Reroute      string // RerouteAuto, RerouteYes or RerouteNo
	DrainTimeout time.Duration

	// The applied-once events table (pkg/store).
	EventsTable  string
	EventsWindow time.Duration
}

// DefaultRabbitMQURL is the broker a fresh RabbitMQ installation offers on
// loopback.
const DefaultRabbitMQURL = "amqp://guest:guest@127.0.0.1:5672/"

func defaultRabbitMQ() RabbitMQ {
	return RabbitMQ{
		URL:          DefaultRabbitMQURL,
		Exchange:     rabbitmq.DefaultExchange,
		Shards:       1,
		QueuePrefix:  rabbitmq.DefaultQueuePrefix,
		StandbyDelay: rabbitmq.DefaultStandbyDelay,
		Prefetch:     rabbitmq.DefaultPrefetch,
		Heartbeat:    rabbitmq.DefaultHeartbeat,
		Reroute:      RerouteAuto,
		DrainTimeout: rabbitmq.DefaultDrainTimeout,
		EventsTable:  store.DefaultEventsTable,
		EventsWindow: store.DefaultEventsWindow,
	}
}

// IsRabbitMQ reports whether events come from RabbitMQ.
func (c *Config) IsRabbitMQ() bool { return c.EventSource == SourceRabbitMQ }

// RabbitMQQueues returns the queues of the topology (PREFIX.0 …
// PREFIX.N-1), those this instance leads (rabbitmq_queues, every one when
// none is given) and those it stands by for, with shard numbers turned
// into names. Validate has checked them.
func (c *Config) RabbitMQQueues() (all, active, standby []string) {
	r := &c.RabbitMQ
	all = rabbitmq.ShardQueues(r.QueuePrefix, r.Shards)
	active = r.queueNames(r.Queues)
	if len(active) == 0 {
		active = all
	}
	return all, active, r.queueNames(r.Standby)
}

// RabbitMQReroute reports whether events naming a room other than the one
// they were routed by are re-published keyed by that room: with "auto",
// when there is more than one queue.
func (c *Config) RabbitMQReroute() bool {
	switch c.RabbitMQ.Reroute {
	case RerouteYes:
		return true
	case RerouteNo:
		return false
	}
	return c.RabbitMQ.Shards > 1
}

// queueNames turns shard numbers into queue names.
func (r *RabbitMQ) queueNames(given []string) []string {
	var out []string
	for _, q := range given {
		if n, err := strconv.Atoi(q); err == nil {
			q = r.QueuePrefix + "." + strconv.Itoa(n)
		}
		out = append(out, q)
	}
	return out
}

// validateRabbitMQ checks what no single rabbitmq_* key can. It runs in
// every mode, so that a configuration prepared for RabbitMQ mode is checked
// before it is switched on.
func (c *Config) validateRabbitMQ() error {
	r := &c.RabbitMQ
	all, active, standby := c.RabbitMQQueues()
	known := make(map[string]bool, len(all))
	for _, q := range all {
		known[q] = true
	}
	seen := map[string]string{}
	for _, set := range []struct {
		key    string
		queues []string
	}{{"rabbitmq_queues", active}, {"rabbitmq_standby_queues", standby}} {
		for _, q := range set.queues {
			if !known[q] {
				return &KeyError{Key: set.key, Reason: fmt.Sprintf("%q is not one of the %d queues %s.0 … %s.%d (rabbitmq_shards, rabbitmq_queue_prefix)",
					q, r.Shards, r.QueuePrefix, r.QueuePrefix, r.Shards-1)}
			}
			if other, dup := seen[q]; dup {
				return &KeyError{Key: set.key, Reason: fmt.Sprintf("%q is in %s too", q, other)}
			}
			seen[q] = set.key
		}
	}
	if r.EventsTable == c.RoomsTable || r.EventsTable == c.MembersTable {
		return &KeyError{Key: "events_table", Reason: fmt.Sprintf("must differ from rooms_table and members_table, got %q", r.EventsTable)}
	}
	return nil
}

// rabbitmqKeys are the keys of the event source and RabbitMQ mode.
func rabbitmqKeys() []Key {
	return []Key{
		str("event_source", "where events come from: opensips (event_stream/event_datagram on event_listen, the default) or rabbitmq (consume the broker's queues: docs/scale-out.md)",
			func(c *Config) *string { return &c.EventSource }, oneOf(SourceOpenSIPS, SourceRabbitMQ)),
		str("rabbitmq_url", "the RabbitMQ broker, amqp://user:password@host:port/vhost (the password is never logged)",
			func(c *Config) *string { return &c.RabbitMQ.URL }, amqpURL),
		str("rabbitmq_exchange", "the exchange OpenSIPS publishes to (its server_id's exchange); used to re-publish, and declared with rabbitmq_declare",
			func(c *Config) *string { return &c.RabbitMQ.Exchange }, nonEmpty),
		integer("rabbitmq_shards", "number of queues of the topology: 1 = one queue behind a fanout exchange (total order), more = a consistent-hash exchange spreading rooms over them", 1, 1024,
			func(c *Config) *int { return &c.RabbitMQ.Shards }),
		str("rabbitmq_queue_prefix", "queue names are PREFIX.0 … PREFIX.N-1",
			func(c *Config) *string { return &c.RabbitMQ.QueuePrefix }, nonEmpty),
		list("rabbitmq_queues", "comma-separated queues this instance consumes at once and leads (names, or shard numbers); empty = every queue",
			func(c *Config) *[]string { return &c.RabbitMQ.Queues }, queueName),
		list("rabbitmq_standby_queues", "comma-separated queues this instance stands by for, consumed rabbitmq_standby_delay after start so that the instances started together each lead their own; empty = none",
			func(c *Config) *[]string { return &c.RabbitMQ.Standby }, queueName),
		duration("rabbitmq_standby_delay", "how long after start the standby queues are consumed", 0,
			func(c *Config) *time.Duration { return &c.RabbitMQ.StandbyDelay }),
		integer("rabbitmq_prefetch", "unacknowledged deliveries of one queue in imcd at once: what a failover redelivers; below 64 acknowledgements limit throughput", 1, 65535,
			func(c *Config) *int { return &c.RabbitMQ.Prefetch }),
		duration("rabbitmq_heartbeat", "AMQP heartbeat: a lost machine or network is noticed after about 3 of them (by the broker, which then hands its queues to a standby); RabbitMQ advises at least 1s", time.Second,
			func(c *Config) *time.Duration { return &c.RabbitMQ.Heartbeat }),
		boolean("rabbitmq_declare", "declare the exchange, the queues, their bindings and the dead-letter queue at start (idempotent) instead of relying on scripts/rabbitmq-setup.sh",
			func(c *Config) *bool { return &c.RabbitMQ.Declare }),
		str("rabbitmq_dead_letter", "with rabbitmq_declare: a dead-letter exchange and queue of this name, keeping the messages imcd rejects as never applicable; empty = they are dropped",
			func(c *Config) *string { return &c.RabbitMQ.DeadLetter }, nil),
		str("rabbitmq_reroute", "re-publish an event keyed by the room it names when that is not the room it was routed by (a manager's #create X goes to X's queue): auto = when rabbitmq_shards > 1, yes, no",
			func(c *Config) *string { return &c.RabbitMQ.Reroute }, oneOf(RerouteAuto, RerouteYes, RerouteNo)),
		duration("rabbitmq_drain_timeout", "at stop, how long imcd keeps its queues while it applies, acknowledges and sends what it took, before the next instance takes them over (within shutdown_grace)", 0,
			func(c *Config) *time.Duration { return &c.RabbitMQ.DrainTimeout }),
		str("events_table", "RabbitMQ mode: the table of applied events' keys (Call-ID, CSeq, From tag) that makes a redelivered event applied once across instances",
			func(c *Config) *string { return &c.RabbitMQ.EventsTable }, identifier),
		duration("events_window", "RabbitMQ mode: how long an applied event's key is kept; a redelivery later than this is applied again, so it must exceed the longest time every imcd may be stopped", time.Minute,
			func(c *Config) *time.Duration { return &c.RabbitMQ.EventsWindow }),
	}
}

// queueName checks a queue name or shard number of rabbitmq_queues.
func queueName(v string) error {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c >= 0x7f {
			return fmt.Errorf("queue %q: printable ASCII without blanks only", v)
		}
	}
	return nil
}

func amqpURL(v string) error {
	if err := rabbitmq.CheckURL(v); err != nil {
		return fmt.Errorf("must be amqp://user:password@host:port/vhost: %w", err)
	}
	return nil
}
