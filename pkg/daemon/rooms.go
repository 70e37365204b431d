package daemon

import (
	"fmt"

	"github.com/imcd-sip/imcd/pkg/dbhealth"
	"github.com/imcd-sip/imcd/pkg/rooms"
	"github.com/imcd-sip/imcd/pkg/store"
)

// newRooms builds the rooms' runtime (pkg/rooms) on the open store, with
// what it depends on: the scheduler its notices go to (opened by
// openOutbox), the database's health, and the mode of the event source.
// Its shards start with Open.
func (d *Daemon) newRooms() error {
	cfg := d.cfg
	mode := rooms.SingleNode()
	if cfg.IsRabbitMQ() {
		events, ok := d.store.(store.EventLog)
		if !ok {
			return fmt.Errorf("event_source = rabbitmq: the store keeps no events table")
		}
		all, _, _ := cfg.RabbitMQQueues()
		mode = rooms.RabbitMQ(events, all, d.metrics.RabbitMQ())
	}
	d.sched = newScheduler(cfg)
	d.db = dbhealth.New(d.store, d.logger)
	deps := rooms.Deps{Engine: d.engine, Store: d.store, Delivery: d.sched, Metrics: d.metrics,
		Dedup: d.dedup, Limiter: d.limiter, DB: d.db, Mode: mode, Logger: d.logger}
	if d.history != nil {
		deps.History, deps.HistoryStore = d.history, d.hist
	}
	d.rooms = rooms.New(rooms.Config{Shards: cfg.Shards(), Queue: cfg.ShardQueue, CommandTimeout: cfg.CommandTimeout,
		CatchUpMax: cfg.CatchUpMax}, deps)
	return nil
}
