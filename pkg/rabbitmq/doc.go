// Package rabbitmq is imcd's RabbitMQ event source, for running several imcd
// behind one broker (active/standby, sharding) without losing an event while
// an instance restarts or dies. It owns everything imcd does over AMQP:
//
//   - Consumer: consumes quorum queues with single-active-consumer, decodes
//     each delivery into an opensips.Event (the JSON body the OpenSIPS json
//     module builds, or the raw body with AMQP headers, both as captured in
//     testdata/opensips-wire/rabbitmq), hands it to an opensips.Sink in
//     delivery order per queue, and acknowledges it only once the Sink says
//     its changes are committed. It reconnects with backoff and tags every
//     event with its Origin (queue, consumer session, redelivered) so the
//     daemon knows when its cached state of a room may be stale;
//   - Publisher: publishes with publisher confirms, to re-publish an event
//     under another routing key (a manager command keyed by its room) before
//     the original is acknowledged;
//   - Topology: declares the exchange, the quorum queues, their bindings and
//     an optional dead-letter queue, when the operator asks imcd to.
//
// Goroutines are fixed in number: one connection keeper per Consumer and one
// worker per consumed queue, which owns that queue's AMQP channel, its
// session and the order of its deliveries. None is started per message.
//
// docs/scale-out.md explains the topologies and what each failure loses.
package rabbitmq
