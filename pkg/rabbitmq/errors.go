package rabbitmq

import "errors"

// Errors of the RabbitMQ link; wrapped errors carry the details, test with
// errors.Is. A message that can never be decoded is reported with
// opensips.ErrBadEvent, as the other event sources do.
var (
	// ErrNotConnected: the Consumer or Publisher has no live connection to
	// the broker (not yet, or it is reconnecting).
	ErrNotConnected = errors.New("rabbitmq: not connected to the broker")
	// ErrNotConsuming: connected, but a queue has no consumer yet (its
	// channel is being opened again, or the queue does not exist).
	ErrNotConsuming = errors.New("rabbitmq: not consuming every queue")
	// ErrClosed: the component is closed.
	ErrClosed = errors.New("rabbitmq: closed")
	// ErrNacked: the broker refused a published message (publisher confirm
	// nack); it was not stored.
	ErrNacked = errors.New("rabbitmq: the broker refused the message")
	// ErrUnroutable: a published message matched no queue, so the broker
	// dropped it (returned as mandatory).
	ErrUnroutable = errors.New("rabbitmq: the message matched no queue")
	// ErrConfig: a field of the component is missing or wrong.
	ErrConfig = errors.New("rabbitmq: bad configuration")
)
