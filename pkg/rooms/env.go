package rooms

import (
	"log/slog"
	"time"

	"github.com/imcd-sip/imcd/pkg/dbhealth"
	"github.com/imcd-sip/imcd/pkg/delivery"
	"github.com/imcd-sip/imcd/pkg/flood"
	"github.com/imcd-sip/imcd/pkg/history"
	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logging"
	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/metrics"
	"github.com/imcd-sip/imcd/pkg/store"
)

// Config is how a runtime is sized and bounded.
type Config struct {
	// Shards is how many shards own the rooms: a power of two
	// (2^hash_size).
	Shards int
	// Queue is how many tasks each shard's queue holds (shard_queue).
	Queue int
	// CommandTimeout is the longest a command waits for the database
	// before it is answered "try again later" (command_timeout).
	CommandTimeout time.Duration
	// CatchUpMax is the most lines a member who is back is caught up with
	// (catchup_max).
	CatchUpMax int
}

// Delivery is what the runtime hands its notices to: *delivery.Scheduler.
type Delivery interface {
	// Submit admits a batch whole or refuses it whole.
	Submit(b delivery.Batch) error
	// Remove drops what is held for member in room: they left it.
	Remove(room, member imc.URI)
	// CatchUp answers a catch-up request (FillCatchUp).
	CatchUp(r delivery.CatchUpReply)
}

var _ Delivery = (*delivery.Scheduler)(nil)

// env is what every shard of a runtime shares: its dependencies and
// settings, set by New and only read after that.
type env struct {
	cfg      Config
	engine   *imc.Engine
	store    store.Store
	hist     store.HistoryStore // the history's reads; nil without history
	history  *history.Writer    // the history's writes; nil without history
	delivery Delivery
	metrics  *metrics.Metrics
	dedup    *flood.Dedup
	limiter  *flood.Limiter
	db       *dbhealth.Monitor
	log      *slog.Logger

	// stopNow closes when the shutdown grace is over: the shards answer
	// what still waits and end.
	stopNow chan struct{}
	// delivered is the Done of every batch (the runtime's delivery
	// feedback), a func value made once: a method value taken per batch
	// would allocate per line.
	delivered delivery.Done
	kept      delivery.Kept // the Kept of batches with an invitation, made once too
	sendLog   logging.Limit // "notices refused for delivery": once a second
}

// dbUp reports whether commands may go to the database.
func (e *env) dbUp() bool { return e.db == nil || e.db.Up() }

// dbFailed records that the database did not answer.
func (e *env) dbFailed(err error) {
	if e.db != nil {
		e.db.Failed(err)
	}
}

// submit hands one batch to delivery and counts what it admitted.
func (e *env) submit(b delivery.Batch) error {
	err := e.delivery.Submit(b)
	if err == nil {
		e.metrics.Submitted(len(b.Notices))
	}
	return err
}

// sendFailed logs notices that could not be sent, at most once a second:
// when delivery is saturated every batch fails the same way.
func (e *env) sendFailed(err error) {
	if ok, suppressed := e.sendLog.Allow(time.Now()); ok {
		e.log.Warn("notices refused for delivery (at most one such line a second)", logkey.Err, err, logkey.Suppressed, suppressed)
	}
}

// catchUpFailed answers a catch-up request with err: the member is told
// how many lines they missed instead.
func (e *env) catchUpFailed(r delivery.CatchUpRequest, err error) {
	e.metrics.CatchUp(metrics.CatchUpFailed, 0)
	e.delivery.CatchUp(delivery.CatchUpReply{Room: r.Room, Member: r.Member, Token: r.Token, Err: err})
}
