// Package daemon assembles imcd: the store, the engine's shards, the
// OpenSIPS link (event intake, subscription, the delivery scheduler and the
// MI clients it writes t_uac_dlg through), imcd's own MI server and the
// metrics endpoint. Open starts them in dependency order;
// Close stops intake first, drains the shards and in-flight deliveries within
// one grace period, and closes the database last.
//
// Files: daemon.go (the Daemon, Open), database.go (the store),
// events.go (event intake, subscriptions, usrloc events), outbox.go
// (delivery: the MI clients and the scheduler, invitation feedback, ghosts,
// member status), admin.go (imcd's MI and the metrics server), router.go
// (Submit: flood guards, routing to a shard), shard.go and line.go (a
// shard's goroutine and the lines behind commits), commit.go, doubt.go and
// dbhealth.go (saving changes, commits in doubt, a database that stopped
// answering), reload.go (imc:reload), view.go (what the engine sees),
// security.go (the fan-out budget on the shard, stored rooms outside the room policy,
// the MI pass-through policy and the FIFO), shutdown.go; with the history,
// history.go (chat lines numbered, history queries and topics, on the
// shard and its committer), historywriter.go (the writer of lines and
// catch-up marks, and the purge of old lines) and catchup.go (members
// caught up from the history when they are back); for RabbitMQ mode,
// rabbitmq.go (the consumer in place of the event listener, and the mode's
// rules), once.go (events applied once: the marks writer, the purge of old
// keys) and freshness.go (re-reading rooms served under a new consumer
// session).
//
// Goroutines and what they own:
//   - one per shard (2^hash_size): the shard's rooms (the only writer), its
//     lines, its doubtful rooms;
//   - one committer per shard: the store calls for that shard's commands,
//     one at a time, each bounded by the store's timeout;
//   - the event listener's (one per listener, one per event_stream
//     connection): decode only, then Submit to a shard;
//   - the delivery scheduler's (pkg/delivery): pacing, the transaction cap,
//     fair queues, members away; it calls onDelivered and onGhost;
//   - each MI client's reader and reaper (one client per opensips_mi node);
//   - one that pings a database known down;
//   - with the history: its writer (the lines and catch-up marks to write,
//     in batches) and the purge of old lines;
//   - in RabbitMQ mode: the consumer's connection keeper and one worker per
//     queue (decode only, then Submit), one marks writer (the keys of events
//     without changes, stored in batches) and one purge of old keys;
//   - the MI transports' and the metrics server's.
//
// No goroutine is started per event or per delivery.
package daemon
