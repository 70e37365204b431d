package rooms

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/imcd-sip/imcd/pkg/dbhealth"
	"github.com/imcd-sip/imcd/pkg/flood"
	"github.com/imcd-sip/imcd/pkg/history"
	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logging"
	"github.com/imcd-sip/imcd/pkg/metrics"
	"github.com/imcd-sip/imcd/pkg/store"
)

// Deps are the runtime's dependencies, built and opened by its owner (the
// daemon), which also closes them after the runtime.
type Deps struct {
	// Engine applies the rules (pure).
	Engine *imc.Engine
	// Store holds the rooms: commits, re-reads, reloads.
	Store store.Store
	// History writes the rooms' chat lines and HistoryStore reads them;
	// both nil when the rooms keep no history.
	History      *history.Writer
	HistoryStore store.HistoryStore
	// Delivery takes the notices.
	Delivery Delivery
	// Metrics counts what happens.
	Metrics *metrics.Metrics
	// Dedup is the duplicate filter and Limiter the senders' budgets
	// (rate, fan-out); nil for none.
	Dedup   *flood.Dedup
	Limiter *flood.Limiter
	// DB says whether the database is known down; nil: taken to be up.
	DB *dbhealth.Monitor
	// Mode is how events are acknowledged and rooms kept fresh; nil:
	// SingleNode.
	Mode Mode
	// Logger is the parent logger; nil discards.
	Logger *slog.Logger
}

// Runtime owns the rooms: the shards that hold them (one goroutine each,
// the only writer of its rooms) and their committers, what waits behind a
// commit, commits in doubt and their re-reads, reloads and catch-ups on the
// shards' side, the views the engine and the MI read rooms through, and
// the routing of each request to its room's shard. New, then Load, Open,
// and Shutdown.
type Runtime struct {
	env  *env
	mode Mode
	all  shards
	view globalView

	// stopping closes when a stop begins: no new operator work, delivery
	// feedback no longer goes through the shards.
	stopping    chan struct{}
	stopOnce    sync.Once
	shardsWG    sync.WaitGroup
	committerWG sync.WaitGroup

	// unsent are the invitations to withdraw once the shards stopped
	// (WithdrawUnsent).
	unsentMu sync.Mutex
	unsent   []unsentInvitation
}

// New returns a runtime of cfg.Shards empty shards; Load fills them and
// Open starts them.
func New(cfg Config, deps Deps) *Runtime {
	e := &env{cfg: cfg, engine: deps.Engine, store: deps.Store, history: deps.History, hist: deps.HistoryStore,
		delivery: deps.Delivery, metrics: deps.Metrics, dedup: deps.Dedup, limiter: deps.Limiter, db: deps.DB,
		log: deps.Logger, stopNow: make(chan struct{}), sendLog: logging.Limit{Interval: time.Second}}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.dedup == nil {
		e.dedup = &flood.Dedup{}
	}
	if e.limiter == nil {
		e.limiter = &flood.Limiter{}
	}
	r := &Runtime{env: e, mode: deps.Mode, all: make(shards, cfg.Shards), stopping: make(chan struct{})}
	if r.mode == nil {
		r.mode = SingleNode()
	}
	for i := range r.all {
		r.all[i] = newShard(e, r.mode, i, cfg.Queue)
	}
	for _, s := range r.all {
		s.view = shardView{all: r.all, self: s}
	}
	r.view = globalView{all: r.all}
	e.delivered, e.kept = r.onDelivered, r.onKept
	return r
}

// Load puts the rooms as the database holds them into their shards,
// before Open.
func (r *Runtime) Load(rooms []*imc.Room) {
	for _, room := range rooms {
		r.all.of(room.Key()).rooms.Put(room)
	}
}

// LoadHistory gives the rooms, before Open, the number of their last
// history line (they go on numbering from it) and their topics.
func (r *Runtime) LoadHistory(seqs map[string]int64, topics map[string]store.Topic) {
	for key, seq := range seqs {
		r.all.of(key).seqs[key] = seq
	}
	for key, t := range topics {
		r.all.of(key).rooms.SetTopic(key, imc.Topic{Text: string(t.Text), SetBy: setBy(t.SetBy), At: t.Time})
	}
}

// setBy reads a stored set_by column; an unreadable one is left out.
func setBy(s string) imc.URI {
	u, err := imc.ParseURI(s)
	if err != nil {
		return imc.URI{}
	}
	return u
}

// Open starts the mode's goroutines, then each shard's goroutine and its
// committer; ctx bounds only the opening.
func (r *Runtime) Open(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("rooms: %w", err)
	}
	r.mode.open(r.all)
	for _, s := range r.all {
		r.shardsWG.Add(1)
		r.committerWG.Add(1)
		go func() { defer r.shardsWG.Done(); s.run() }()
		go func() { defer r.committerWG.Done(); s.commitLoop() }()
	}
	return nil
}

// Shutdown stops the shards after their queues drain and their jobs in
// flight come back, within ctx: past it, what still waits is answered
// "try again later" (nothing of it attempted) and the shards end at once;
// then the mode's goroutines end. From its start, operator actions are
// refused (ErrStopping) and delivery feedback no longer goes through the
// shards (WithdrawUnsent). It runs once; later calls return at once.
func (r *Runtime) Shutdown(ctx context.Context) {
	first := false
	r.stopOnce.Do(func() { first = true; close(r.stopping) })
	if !first {
		return
	}
	for _, s := range r.all {
		select {
		case s.queue <- task{kind: taskStop}:
		case <-ctx.Done():
		}
	}
	if !waitCtx(ctx, &r.shardsWG) {
		r.env.log.Warn("shutdown grace period over with requests still queued: they are answered 'try again later'")
		close(r.env.stopNow)
		r.shardsWG.Wait() // each shard ends at once now
	}
	if !waitCtx(ctx, &r.committerWG) {
		r.env.log.Warn("shutdown grace period over with a commit in flight: the database decides its outcome")
	}
	r.mode.close()
}

// waitCtx waits for wg, or for ctx to end first (false).
func waitCtx(ctx context.Context, wg *sync.WaitGroup) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

// isStopping reports whether Shutdown began: delivery feedback can no
// longer go through the shards (failed invitations wait in unsent for
// WithdrawUnsent, a catch-up falls back).
func (r *Runtime) isStopping() bool {
	select {
	case <-r.stopping:
		return true
	default:
		return false
	}
}

// View is the rooms as the MI reads them: every shard under its read lock,
// held only while copying room pointers.
func (r *Runtime) View() imc.View { return r.view }

// Counts sums rooms and members over all shards, for the metrics gauges.
func (r *Runtime) Counts() (rooms, members int) { return r.all.counts() }

// Shards is how many shards own the rooms.
func (r *Runtime) Shards() int { return len(r.all) }
