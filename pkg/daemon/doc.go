// Package daemon assembles imcd: configuration to components, their start
// and stop order, and the sources of work: the store and the rooms' runtime
// (pkg/rooms) loaded from it, the OpenSIPS link (event intake,
// subscriptions, the delivery scheduler and the MI clients it writes
// t_uac_dlg through), imcd's own MI server and the metrics endpoint. Open
// starts them in dependency order; Close stops intake first, drains the
// rooms and in-flight deliveries within one grace period, and closes the
// database last. The rooms themselves are run by pkg/rooms.
//
// Files: open.go (Open: the start order), shutdown.go (Close: the stop
// order), database.go (the store, the rooms and the history read at start,
// the history writer, the room-policy log), rooms.go (the rooms' runtime
// and its dependencies), outbox.go (the MI clients and the scheduler, ghosts,
// member status, catch-up marks), metrics.go (the metrics server), mi.go
// (imcd's MI: commands, the pass-through policy, the transports), events.go
// (event intake, subscriptions, usrloc events, /readyz), intake.go (Submit:
// an event prepared and handed to the runtime), rabbitmq.go (RabbitMQ
// mode's event source and the purge of old event keys), daemon.go (the
// Daemon, its addresses, the server idioms).
//
// Goroutines the daemon starts itself: none but the purge of old event
// keys (RabbitMQ mode); each component it opens runs its own
// (docs/ARCHITECTURE.md lists them).
package daemon
