// Package history writes the rooms' history in the background: chat lines
// and the catch-up marks of members who are away, queued without blocking
// by the rooms' shards and written in order, in batches, by one goroutine,
// so that chat never waits for the database; and a second goroutine that
// purges lines beyond history_keep_lines or older than history_max_age.
//
// Files: writer.go (the Writer: its queue, the batches, each room's
// highest line written, which history queries wait for), marks.go (the
// catch-up marks), purge.go (the purge of old lines).
package history
