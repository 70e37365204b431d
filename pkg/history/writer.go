package history

import (
	"context"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logging"
	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/store"
)

// Writer limits.
const (
	// queueLen is how many lines may wait to be written; beyond it (the
	// database away for long) lines are left out of the history, counted
	// and logged, and chat goes on.
	queueLen = 1 << 16
	// batchLen is the most lines one write takes (one INSERT per store
	// chunk).
	batchLen = 256
	// retryMax bounds the pause between two attempts at a batch.
	retryMax = 2 * time.Second
	// gatherFor is how long the writer lets lines gather after the first
	// of a batch, unless a history query waits for them: a busy room's
	// lines then cost the database (and imcd) one INSERT a tenth of a
	// second, not one each.
	gatherFor = 100 * time.Millisecond
	// MaxWait bounds how long WaitWritten waits for the lines said before
	// a history query to be written.
	MaxWait = time.Second
)

// item is one line to write; or, with forget set, the sign that its room
// was destroyed: what was queued of it before is written first, then
// deleted with the room's topic and marks; or a catch-up mark to store
// (away) or delete.
type item struct {
	line   store.HistoryLine
	forget bool
	mark   *markChange
}

// Config is what the purge keeps.
type Config struct {
	// KeepLines is the most lines kept per room (history_keep_lines); 0
	// keeps all.
	KeepLines int
	// MaxAge is the age beyond which lines are deleted (history_max_age);
	// 0 keeps them.
	MaxAge time.Duration
}

// Writer writes the rooms' chat lines in the background, in batches, so
// that chat never waits for the database: the shards queue lines without
// blocking and one goroutine writes them in order. A batch that fails is
// written again (the store skips lines already there), while newer lines
// wait; when the queue is full, lines are left out of the history rather
// than slowing chat. A second goroutine purges old lines (purge.go).
// New, then Open, then Shutdown.
type Writer struct {
	st  store.HistoryStore
	log *slog.Logger
	cfg Config

	queue   chan item
	dropped atomic.Int64
	written atomic.Int64
	purged  atomic.Int64

	mu      sync.Mutex
	upTo    map[string]int64 // room key → highest seq written
	advance chan struct{}    // closed and replaced after each batch
	urgent  chan struct{}    // a query waits for lines: write without gathering
	// forgetting counts, per room key, the destroyed rooms whose history
	// is queued for deletion: until then upTo is the old room's, which a
	// query of a new room of the same name must not take for its own.
	forgetting map[string]int

	cancel context.CancelFunc
	done   sync.WaitGroup
}

// New returns a writer into st; written holds each room's last seq
// already in the table, which queries need not wait for. Open starts it.
func New(st store.HistoryStore, logger *slog.Logger, cfg Config, written map[string]int64) *Writer {
	upTo := maps.Clone(written)
	if upTo == nil {
		upTo = make(map[string]int64)
	}
	return &Writer{st: st, log: logging.Child(logger, logkey.SystemHistory), cfg: cfg,
		queue: make(chan item, queueLen), upTo: upTo, advance: make(chan struct{}), urgent: make(chan struct{}, 1),
		forgetting: make(map[string]int), cancel: func() {}}
}

// Open starts the writer and the purge; ctx bounds only the opening.
func (w *Writer) Open(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	w.done.Add(2)
	go func() { defer w.done.Done(); w.run(ctx) }()
	go func() { defer w.done.Done(); w.purge(ctx) }()
	return nil
}

// Shutdown writes what is queued within ctx, then stops.
func (w *Writer) Shutdown(ctx context.Context) {
	for len(w.queue) > 0 && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	w.cancel()
	w.done.Wait()
}

// Written, Dropped and Purged count the lines written, left out (queue
// full) and purged; Queued is how many wait. For metrics.
func (w *Writer) Written() int64 { return w.written.Load() }

// Dropped counts the lines left out of the history: the queue was full.
func (w *Writer) Dropped() int64 { return w.dropped.Load() }

// Purged counts the lines the purge deleted.
func (w *Writer) Purged() int64 { return w.purged.Load() }

// Queued is how many lines and marks wait to be written.
func (w *Writer) Queued() int64 { return int64(len(w.queue)) }

// Add queues a line without blocking; a full queue leaves it out.
func (w *Writer) Add(l store.HistoryLine) {
	select {
	case w.queue <- item{line: l}:
	default:
		if w.dropped.Add(1)%1000 == 1 {
			w.log.Warn("history queue full (the database is slow or away): lines are left out of the history",
				logkey.Room, l.Room.String(), logkey.Dropped, w.dropped.Load())
		}
	}
}

// Forget queues the destruction of a room's history behind its lines.
func (w *Writer) Forget(room imc.URI) {
	key := room.Key()
	w.mu.Lock()
	w.forgetting[key]++
	w.mu.Unlock()
	select {
	case w.queue <- item{line: store.HistoryLine{Room: room}, forget: true}:
	default:
		w.mu.Lock()
		w.forgot(key)
		w.mu.Unlock()
		// Full: the destroy's own transaction deleted what was written;
		// what is queued may survive it until the room's lines are purged.
		w.log.Warn("history queue full: a destroyed room's last lines may outlive it until purged", logkey.Room, room.String())
	}
}

// run writes queued lines in batches until ctx ends and the queue is
// empty.
func (w *Writer) run(ctx context.Context) {
	batch := make([]store.HistoryLine, 0, batchLen)
	var marks []markChange
	for {
		var it item
		select {
		case it = <-w.queue:
		case <-ctx.Done():
			return
		}
		// What is queued already, or comes within historyGather, joins
		// the batch: under load batches fill up.
		if !it.forget {
			w.gather(ctx)
		}
		batch, marks = batch[:0], marks[:0]
		for more := true; more; {
			switch {
			case it.forget:
				w.write(ctx, batch)
				w.writeMarks(ctx, marks)
				batch, marks = batch[:0], marks[:0]
				w.forgetRoom(ctx, it.line.Room)
			case it.mark != nil:
				marks = append(marks, *it.mark)
			default:
				batch = append(batch, it.line)
			}
			more = false
			if len(batch) < batchLen {
				select {
				case it = <-w.queue:
					more = true
				default:
				}
			}
		}
		w.write(ctx, batch)
		w.writeMarks(ctx, marks)
	}
}

// gather waits gatherFor for more lines, less when the queue holds a
// batch already, a query waits for the lines (urgent) or imcd stops.
func (w *Writer) gather(ctx context.Context) {
	if len(w.queue) >= batchLen {
		return
	}
	t := time.NewTimer(gatherFor)
	defer t.Stop()
	select {
	case <-t.C:
	case <-w.urgent:
	case <-ctx.Done():
	}
}

// retry runs fn until it succeeds or ctx ends, pausing longer after each
// failure (up to retryMax); fn's own context outlives ctx, so that what is
// being written when imcd stops is finished.
func (w *Writer) retry(ctx context.Context, fn func(context.Context) error, attrs ...any) bool {
	pause := 50 * time.Millisecond
	for {
		err := fn(context.WithoutCancel(ctx))
		if err == nil {
			return true
		}
		w.log.Warn("history not written yet; trying again", append(attrs, logkey.Err, err)...)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(pause):
		}
		pause = min(2*pause, retryMax)
	}
}

// write stores one batch, again and again until it is stored or imcd
// stops: the store skips lines already there, so a retry after an error
// (a commit in doubt included) writes nothing twice.
func (w *Writer) write(ctx context.Context, batch []store.HistoryLine) {
	if len(batch) == 0 {
		return
	}
	if !w.retry(ctx, func(ctx context.Context) error {
		_, err := w.st.AppendHistory(ctx, batch)
		return err
	}, logkey.Lines, len(batch)) {
		return
	}
	w.written.Add(int64(len(batch)))
	w.mu.Lock()
	for i := range batch {
		if k := batch[i].Room.Key(); batch[i].Seq > w.upTo[k] {
			w.upTo[k] = batch[i].Seq
		}
	}
	w.advanced()
	w.mu.Unlock()
}

// Stored tells the writer that room's lines up to seq are in the table
// (written by another instance, in RabbitMQ mode): a history query then
// does not wait for this writer to write them.
func (w *Writer) Stored(room string, seq int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if seq > w.upTo[room] {
		w.upTo[room] = seq
		w.advanced()
	}
}

// advanced wakes whoever waits for lines to be written (WaitWritten);
// w.mu is held.
func (w *Writer) advanced() {
	close(w.advance)
	w.advance = make(chan struct{})
}

func (w *Writer) forgetRoom(ctx context.Context, room imc.URI) {
	if err := w.st.ForgetRoom(context.WithoutCancel(ctx), room); err != nil {
		w.log.Warn("a destroyed room's history could not be deleted again; its lines go with the purge", logkey.Room, room.String(), logkey.Err, err)
	}
	w.mu.Lock()
	delete(w.upTo, room.Key())
	w.forgot(room.Key())
	w.advanced()
	w.mu.Unlock()
}

// forgot counts one destroyed room of key as forgotten; w.mu is held.
func (w *Writer) forgot(key string) {
	if w.forgetting[key]--; w.forgetting[key] <= 0 {
		delete(w.forgetting, key)
	}
}

// WrittenUpTo returns the highest seq of room's lines written.
func (w *Writer) WrittenUpTo(room string) int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.forgetting[room] > 0 {
		return 0 // the old room's, not this one's
	}
	return w.upTo[room]
}

// WaitWritten waits until room's lines up to seq are written, at most
// MaxWait: a query then sees every line said before it.
func (w *Writer) WaitWritten(room string, seq int64) {
	ctx, cancel := context.WithTimeout(context.Background(), MaxWait)
	defer cancel()
	for {
		w.mu.Lock()
		done, advance := w.forgetting[room] == 0 && w.upTo[room] >= seq, w.advance
		w.mu.Unlock()
		if done {
			return
		}
		select {
		case w.urgent <- struct{}{}:
		default:
		}
		select {
		case <-advance:
		case <-ctx.Done():
			return
		}
	}
}
