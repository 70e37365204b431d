// Package rooms is the runtime that owns imcd's rooms: the shards that hold
// them and their committers, the order of each room's requests, commits in
// doubt and their re-reads, reloads and catch-ups on the shards' side, the
// views the engine and the MI read rooms through, and the routing of each
// request to its room's shard. It is built on its dependencies (Deps: the
// engine, the store, delivery, the history writer, the duplicate filter and
// the senders' budgets, the database's health, metrics) and on a Mode, which
// says how events are acknowledged and rooms kept fresh: SingleNode, or
// RabbitMQ when several imcd share the broker's queues. It knows nothing of
// the wire: events come in as imc.Input, notices leave as delivery.Batch.
//
// New, then Load (and LoadHistory), Open, and Shutdown (then
// WithdrawUnsent once delivery is closed).
//
// Files, from the entry points down to what they stand on:
//
//   - requests.go: Submit (the flood guards, then the room's shard), Admin,
//     Reload, History; feedback.go: what delivery tells the rooms
//     (invitations not delivered, catch-ups, members gone for good);
//     runtime.go: the Runtime, its lifecycle, its views;
//   - rabbitmq_fresh.go, rabbitmq_keys.go, rabbitmq.go: RabbitMQ mode
//     (rooms read again before they are served under a new consumer
//     session; events applied once, their keys stored by the key writer);
//   - loop.go: a shard's goroutine, which handles one task at a time;
//     event.go (a MESSAGE), admin.go (an operator action, a member gone
//     for good), reload.go, catchup.go: the tasks;
//   - commit.go: a command's changes saved, then applied and announced
//     (or the truth told); history.go: chat lines numbered for the
//     history, history queries and topics; fanout.go: the senders' rate and
//     fan-out budgets; doubt.go: rooms whose rows are
//     unknown after a commit in doubt; send.go: notices to delivery;
//     invitation.go: an invitation withdrawn; waiting.go: what waits behind
//     a room's commit; committer.go: the committer goroutine; stored.go:
//     memory following the database; view.go: the views and the routing;
//   - mode.go (Mode, SingleNode), shard.go (what a shard owns), job.go
//     (what goes to the committer), task.go (what goes to a shard), env.go
//     (what the shards share), errors.go.
//
// Goroutines and what they own:
//   - one per shard (Config.Shards): the shard's rooms (the only writer;
//     readers take its read lock and get immutable rooms), what waits
//     behind its commits, its doubtful rooms, its rooms' history numbering;
//   - one committer per shard: nothing; it runs the shard's store calls
//     one at a time (commits, re-reads, history and catch-up reads) and
//     hands each back;
//   - in RabbitMQ mode, one key writer: the keys of events without
//     changes, stored in batches, each shard's verdicts handed back.
//
// No goroutine is started per event.
package rooms
