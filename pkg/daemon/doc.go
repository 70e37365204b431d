// Package daemon assembles imcd: the store, the engine's shards, the
// OpenSIPS link (event intake, subscription, t_uac_dlg delivery), imcd's own
// MI server and the metrics endpoint. Open starts them in dependency order;
// Close stops intake first, drains the shards and in-flight deliveries within
// the grace period, and closes the database last.
//
// Goroutines and what they own:
//   - one per shard (2^hash_size): the shard's rooms (the only writer);
//   - the event listener's (one per listener, one per event_stream
//     connection): decode only, then Submit to a shard;
//   - the MI client's writer, reader and reaper: the t_uac_dlg window;
//   - the MI transports' and the metrics server's.
//
// No goroutine is started per event or per delivery.
package daemon
