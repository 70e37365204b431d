package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/imcd-sip/imcd/pkg/delivery"
	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/metrics"
	"github.com/imcd-sip/imcd/pkg/store"
)

// Applied once, in RabbitMQ mode (rabbitmq.go). A command's changes are
// committed together with the event's key by the shard's committer
// (applyOnce). An event without changes has its key stored before its
// notices go out (mark): one writer goroutine per daemon takes the keys of
// every shard and stores whatever has queued since its last write in one
// MarkEvents call, then hands each shard its verdicts. While a key is being
// stored the event's room has a line, so the room's later events wait and
// its notices keep their order. A chat line therefore waits for one batched
// write before it is relayed (docs/benchmarks.md measures it); in the
// single-node modes chat never waits for the database.

// Bounds of the marks writer.
const (
	// maxMarks is the most keys one shard has at the writer; an event
	// beyond it fails (the queue rewinds). The consumer's prefetch keeps
	// far fewer events in imcd.
	maxMarks = 256
	// markBatch is the most keys one MarkEvents call stores: one INSERT.
	markBatch = 256
	// purgeEvery is how often keys older than events_window are deleted.
	purgeEvery = time.Minute
	// maxUnsent bounds the notices one shard keeps for writes in doubt.
	maxUnsent = 4096
)

// mark stores t's key before res's notices go out: the room takes a line
// and the key goes to the marks writer; finishMarks sends the notices.
func (s *shard) mark(t *task, room string, res imc.Result) {
	if !s.d.db.up() || s.rmq.marking >= maxMarks {
		err := errDBDown
		if s.d.db.up() {
			err = fmt.Errorf("%w (%d event keys being stored in shard %d)", ErrBusy, s.rmq.marking, s.id)
		}
		s.d.metrics.Command(res.Command, metrics.ResultDBError)
		t.done(err)
		return
	}
	job := eventJob(t, room, res)
	job.queued, job.owner = time.Now(), s
	s.rmq.marking++
	s.hold(job)
	s.d.broker.marks <- job // never blocks: it holds maxMarks per shard
}

// finishMarks takes verdicts back from the marks writer: a fresh key's
// notices go out, a duplicate's do not, a failure rewinds the queue.
func (s *shard) finishMarks(jobs []*commitJob) {
	for _, job := range jobs {
		s.rmq.marking--
		s.marked(job)
	}
}

func (s *shard) marked(job *commitJob) {
	defer s.release(job.room)
	switch {
	case job.err != nil:
		s.d.metrics.Command(job.res.Command, metrics.ResultDBError)
		s.settle(job, job.err)
	case job.dup:
		s.d.metrics.Command(metrics.CommandDuplicate, imc.Refused.String())
		s.logger.Debug("event applied before (here or by another instance): acknowledged", logkey.CallID, job.in.Req.CallID)
		s.settle(job, s.sendUnsent(job))
	default:
		if job.res.Record != nil {
			s.record(job.room, job.res.Record, job.res.Notices, time.Now())
		}
		s.d.metrics.Command(job.res.Command, job.res.Outcome.String()) // no fan-out charge: the budget is off in this mode (Open)
		s.settle(job, s.sendKept(job.broker.key, job.res.Notices))
	}
}

// sendKept hands a brokered event's notices to delivery. When delivery is
// saturated (it refuses a batch whole), they are kept and the event fails:
// the queue rewinds and holds the line until delivery takes it (the
// redelivery finds the key stored and sends what was kept), rather than
// the line being dropped with a "busy" reply as in the single-node modes.
func (s *shard) sendKept(key string, notices []imc.Notice) error {
	err := s.send(notices, nil, false)
	if !errors.Is(err, delivery.ErrBusy) {
		return nil
	}
	if len(s.rmq.unsent) < maxUnsent {
		s.rmq.unsent[key] = notices
	}
	return fmt.Errorf("%w: %w", ErrBusy, err)
}

// writeMarks is the marks writer: it stores the keys that queued since its
// last write in one call and hands each shard its verdicts.
func (b *brokerMode) writeMarks() {
	defer close(b.writerDone)
	batch := make([]*commitJob, 0, markBatch)
	keys := make([]string, 0, markBatch)
	byShard := make(map[*shard][]*commitJob)
	for job := range b.marks {
		batch = append(batch[:0], job)
	more:
		for len(batch) < markBatch {
			select {
			case j, ok := <-b.marks:
				if !ok {
					break more
				}
				batch = append(batch, j)
			default:
				break more
			}
		}
		keys = keys[:0]
		for _, j := range batch {
			keys = append(keys, j.broker.key)
		}
		b.store(batch, keys)
		for _, j := range batch {
			byShard[j.owner] = append(byShard[j.owner], j)
		}
		for s, jobs := range byShard {
			s.rmq.marked <- jobs // never blocks: a shard has at most maxMarks jobs out
			delete(byShard, s)
		}
	}
}

// store stores one batch of keys and sets each job's verdict.
func (b *brokerMode) store(batch []*commitJob, keys []string) {
	d := b.d
	var fresh []bool
	err := errDBDown
	if d.db.up() {
		start := time.Now()
		fresh, err = b.events.MarkEvents(context.Background(), keys)
		d.metrics.DB("mark", time.Since(start))
		if err != nil {
			d.logger.Error("cannot store the keys of applied events: their queues rewind", logkey.Err, err, logkey.Keys, len(keys))
			if isUnavailable(err) {
				d.db.failed(err)
			}
			err = fmt.Errorf("%w: %w", ErrNotSaved, err)
		}
	}
	if err != nil {
		b.metrics.Marked(metrics.MarkError, len(batch))
		for _, j := range batch {
			j.err = err
		}
		return
	}
	dups := 0
	for i, j := range batch {
		if !fresh[i] {
			j.dup = true
			dups++
		}
	}
	b.metrics.Marked(metrics.MarkFresh, len(batch)-dups)
	b.metrics.Marked(metrics.MarkDuplicate, dups)
}

// applyOnce commits a brokered command's changes (none for a topic or a
// history query) with its key, on the committer. When the key was stored already (some instance applied the
// event), nothing changes, and the rooms are re-read: that instance may
// have committed after this one last read them.
func (s *shard) applyOnce(st store.Store, job *commitJob) {
	if job.res.Topic != nil {
		// First: the topic is no part of the key's transaction, and storing
		// it again when the event comes back is harmless, whereas a topic
		// lost after the key was stored would stay lost.
		if job.err = s.storeTopic(job); job.err != nil {
			return
		}
	}
	applied, err := s.d.broker.events.ApplyOnce(context.Background(), job.broker.key, job.res.Changes)
	job.err = err
	if err == nil && !applied {
		job.dup = true
		job.truth, job.reread = st.LoadRooms(context.Background(), affected(job.res.Changes))
	}
}

// appliedElsewhere: the event's key was stored already. Memory follows the
// database, and the event is acknowledged with no notice.
func (s *shard) appliedElsewhere(job *commitJob) {
	s.d.metrics.Command(metrics.CommandDuplicate, imc.Refused.String())
	if job.reread != nil {
		s.markDoubtful(job, job.reread)
		s.logger.Warn("a redelivered command was applied before, and its rooms could not be re-read: commands for them are refused until they can be",
			logkey.Room, job.room, logkey.Err, job.reread)
	} else {
		s.replace(job.truth)
		s.logger.Debug("a redelivered command was applied before (here or by another instance): acknowledged",
			logkey.Room, job.room, logkey.Command, job.res.Command)
	}
	s.settle(job, s.sendUnsent(job))
}

// keepUnsent keeps the notices of a brokered event whose key may be stored
// though its write failed: a commit in doubt, or a mark that reached a
// database that then stopped answering. The event comes back (the queue
// rewinds); if its key is then found stored, the write had landed and
// these notices, never sent, go out at that point of the room's order
// (sendUnsent). An event that is applied or marked afresh drops them.
func (s *shard) keepUnsent(job *commitJob, err error) {
	key := job.broker.key
	switch {
	case err == nil:
		delete(s.rmq.unsent, key) // sent
	case errors.Is(err, store.ErrInDoubt) || job.owner != nil && isUnavailable(err):
		if len(job.res.Notices) > 0 && len(s.rmq.unsent) < maxUnsent {
			s.rmq.unsent[key] = job.res.Notices
		}
	}
}

// sendUnsent sends the notices kept for job's event (its write was in
// doubt, or delivery was saturated), now that its key is found stored.
func (s *shard) sendUnsent(job *commitJob) error {
	ns, ok := s.rmq.unsent[job.broker.key]
	if !ok {
		return nil
	}
	delete(s.rmq.unsent, job.broker.key)
	s.logger.Debug("an event found applied has notices not sent yet: they go out now", logkey.Room, job.room, logkey.Command, job.res.Command)
	return s.sendKept(job.broker.key, ns)
}

// purgeOnce deletes the keys stored before now minus events_window.
func (b *brokerMode) purgeOnce(ctx context.Context, now time.Time) {
	start := time.Now()
	n, err := b.events.PurgeEvents(ctx, now.Add(-b.cfg.EventsWindow), store.DefaultPurgeBatch)
	b.d.metrics.DB("purge", time.Since(start))
	b.metrics.Purged(n)
	if err != nil && ctx.Err() == nil {
		b.d.logger.Warn("cannot purge old keys of applied events (tried again in a minute)", logkey.Err, err, logkey.Purged, n)
	}
}

// isUnavailable reports whether err says the database did not answer.
func isUnavailable(err error) bool { return errors.Is(err, store.ErrUnavailable) }
