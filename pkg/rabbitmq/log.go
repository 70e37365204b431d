package rabbitmq

import (
	"io"
	"log/slog"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Attribute keys used in log records.
const (
	keySystem      = "system"
	keyErr         = "err"
	keyQueue       = "queue"
	keyQueues      = "queues"
	keyStandby     = "standby"
	keyPrefetch    = "prefetch"
	keyPending     = "pending"
	keyStack       = "stack"
	keySession     = "session"
	keyCallID      = "callid"
	keyBroker      = "broker"
	keyBackoff     = "backoff"
	keyReturned    = "returned"
	keyRedelivered = "redelivered"
	keyRoutingKey  = "routing_key"
	keyPanic       = "panic"
)

// Values of the "system" attribute.
const (
	systemConsumer  = "rabbitmq"
	systemPublisher = "rabbitmq-publisher"
)

// childLogger returns l (or a discarding logger when l is nil) with the
// system attribute set.
func childLogger(l *slog.Logger, system string) *slog.Logger {
	if l == nil {
		l = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return l.With(keySystem, system)
}

// brokerName is the URL without its credentials, for logs.
func brokerName(url string) string {
	u, err := amqp.ParseURI(url)
	if err != nil {
		return "(unparsable URL)"
	}
	u.Password = ""
	u.Username = ""
	return u.String()
}
