package rooms

import (
	"context"
	"errors"
	"fmt"
	"github.com/imcd-sip/imcd/pkg/batch"
	"time"

	"github.com/imcd-sip/imcd/pkg/delivery"
	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/metrics"
	"github.com/imcd-sip/imcd/pkg/store"
)

// Applied once, in RabbitMQ mode (rabbitmq.go). A command's changes are
// committed together with the event's key by the shard's committer
// (apply). An event without changes has its key stored before its notices
// go out (unchanged): one key writer goroutine per runtime takes the keys
// of every shard and stores whatever has queued since its last write in
// one MarkEvents call, then hands each shard its verdicts (returned).
// While a key is being stored the event's room holds what comes for it, so
// the room's later events wait and its notices keep their order. A chat
// line therefore waits for one batched write before it is relayed
// (docs/benchmarks.md measures it); in the single-node modes chat never
// waits for the database.

// Bounds of the key writer.
const (
	// maxStoring is the most keys one shard has at the writer; an event
	// beyond it fails (the queue rewinds). The consumer's prefetch keeps
	// far fewer events in imcd.
	maxStoring = 256
	// keyBatch is the most keys one MarkEvents call stores: one INSERT.
	keyBatch = 256
	// maxUnsent bounds the notices one shard keeps for writes in doubt.
	maxUnsent = 4096
)

// open starts the key writer, before the shards start.
func (m *rabbitMQ) open(all []*shard) {
	m.env = all[0].env
	m.shards = make([]rabbitMQShard, len(all))
	for i, s := range all {
		m.shards[i] = rabbitMQShard{served: make(map[string]servedUnder), unsent: make(map[string][]imc.Notice)}
		s.returned = make(chan []*commitJob, maxStoring)
	}
	m.keys = make(chan *commitJob, len(all)*maxStoring)
	m.writerDone = make(chan struct{})
	go m.writeKeys()
}

// close ends the key writer; the shards must be done.
func (m *rabbitMQ) close() {
	m.closeOnce.Do(func() {
		if m.keys == nil {
			return // never opened
		}
		close(m.keys)
		<-m.writerDone
	})
}

// keyFirst: an event from a queue has its key stored before its notices
// go out.
func (m *rabbitMQ) keyFirst(o *Origin) bool { return o != nil }

// storeKey stores the key of job's event before its notices go out: the
// room holds what comes for it, and the key goes to the key writer;
// returned sends the notices.
func (m *rabbitMQ) storeKey(s *shard, job *commitJob) {
	ms := m.of(s)
	if !s.dbUp() || ms.storing >= maxStoring {
		err := errDBDown
		if s.dbUp() {
			err = fmt.Errorf("%w (%d event keys being stored in shard %d)", ErrBusy, ms.storing, s.id)
		}
		s.metrics.Command(job.res.Command, metrics.ResultDBError)
		job.done(err)
		return
	}
	job.queued, job.returnTo = time.Now(), s.returned
	ms.storing++
	s.holdRoom(job)
	m.keys <- job // never blocks: it holds maxStoring per shard
}

// returned takes verdicts back from the key writer: a fresh key's notices
// go out, a duplicate's do not, a failure rewinds the queue.
func (m *rabbitMQ) returned(s *shard, jobs []*commitJob) {
	for _, job := range jobs {
		m.of(s).storing--
		m.keyStored(s, job)
	}
}

func (m *rabbitMQ) keyStored(s *shard, job *commitJob) {
	defer s.release(job.room)
	switch {
	case job.err != nil:
		s.metrics.Command(job.res.Command, metrics.ResultDBError)
		s.settle(job, job.err)
	case job.dup:
		s.metrics.Command(metrics.CommandDuplicate, imc.Refused.String())
		s.logger.Debug("event applied before (here or by another instance): acknowledged", logkey.CallID, job.in.Req.CallID)
		s.settle(job, m.sendUnsent(s, job))
	default:
		if job.res.Record != nil {
			s.record(job.room, job.res.Record, job.res.Notices, time.Now())
		}
		s.metrics.Command(job.res.Command, job.res.Outcome.String()) // no fan-out charge: the budget is off in this mode
		s.settle(job, m.sendKept(s, job.origin.Key, job.res.Notices))
	}
}

// sendKept hands an event's notices to delivery. When delivery is
// saturated (it refuses a batch whole), they are kept and the event fails:
// the queue rewinds and holds the line until delivery takes it (the
// redelivery finds the key stored and sends what was kept), rather than
// the line being dropped with a "busy" reply as in the single-node modes.
func (m *rabbitMQ) sendKept(s *shard, key string, notices []imc.Notice) error {
	err := s.send(notices, nil, false)
	if !errors.Is(err, delivery.ErrBusy) {
		return nil
	}
	if unsent := m.of(s).unsent; len(unsent) < maxUnsent {
		unsent[key] = notices
	}
	return fmt.Errorf("%w: %w", ErrBusy, err)
}

// writeKeys is the key writer: it stores the keys that queued since its
// last write in one call and hands each shard its verdicts.
func (m *rabbitMQ) writeKeys() {
	defer close(m.writerDone)
	taken := make([]*commitJob, 0, keyBatch)
	keys := make([]string, 0, keyBatch)
	byShard := make(map[chan []*commitJob][]*commitJob)
	for {
		var ok bool
		if taken, ok = batch.Next(m.keys, taken, keyBatch); !ok {
			return
		}
		keys = keys[:0]
		for _, j := range taken {
			keys = append(keys, j.origin.Key)
		}
		m.storeKeys(taken, keys)
		for _, j := range taken {
			byShard[j.returnTo] = append(byShard[j.returnTo], j)
		}
		for back, jobs := range byShard {
			back <- jobs // never blocks: a shard has at most maxStoring jobs out
			delete(byShard, back)
		}
	}
}

// storeKeys stores one batch of keys and sets each job's verdict.
func (m *rabbitMQ) storeKeys(batch []*commitJob, keys []string) {
	e := m.env
	var fresh []bool
	err := errDBDown
	if e.dbUp() {
		start := time.Now()
		fresh, err = m.events.MarkEvents(context.Background(), keys)
		e.metrics.DB("mark", time.Since(start))
		if err != nil {
			e.log.Error("cannot store the keys of applied events: their queues rewind", logkey.Err, err, logkey.Keys, len(keys))
			if errors.Is(err, store.ErrUnavailable) {
				e.dbFailed(err)
			}
			err = fmt.Errorf("%w: %w", ErrNotSaved, err)
		}
	}
	if err != nil {
		m.metrics.Marked(metrics.MarkError, len(batch))
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
	m.metrics.Marked(metrics.MarkFresh, len(batch)-dups)
	m.metrics.Marked(metrics.MarkDuplicate, dups)
}

// apply commits an event's changes (none for a topic or a history query)
// with its key, on the committer; other commands (operator actions,
// feedback) are left to applyChanges, as in the single-node modes. When the key was stored already
// (some instance applied the event), nothing changes, and the rooms are
// read again: that instance may have committed after this one last read
// them.
func (m *rabbitMQ) apply(s *shard, job *commitJob) bool {
	if job.origin == nil {
		return false
	}
	if job.res.Topic != nil {
		// First: the topic is no part of the key's transaction, and storing
		// it again when the event comes back is harmless, whereas a topic
		// lost after the key was stored would stay lost.
		if job.err = s.storeTopic(job); job.err != nil {
			return true
		}
	}
	applied, err := m.events.ApplyOnce(context.Background(), job.origin.Key, job.res.Changes)
	job.err = err
	if err == nil && !applied {
		job.dup = true
		job.truth, job.reread = s.store.LoadRooms(context.Background(), affected(job.res.Changes))
	}
	return true
}

// appliedBefore: the event's key was stored already. Memory follows the
// database, and the event is acknowledged with no notice.
func (m *rabbitMQ) appliedBefore(s *shard, job *commitJob) {
	s.metrics.Command(metrics.CommandDuplicate, imc.Refused.String())
	if job.reread != nil {
		s.markDoubtful(job.res.Changes, job.reread)
		s.logger.Warn("a redelivered command was applied before, and its rooms could not be re-read: commands for them are refused until they can be",
			logkey.Room, job.room, logkey.Err, job.reread)
	} else {
		s.replace(job.truth)
		s.logger.Debug("a redelivered command was applied before (here or by another instance): acknowledged",
			logkey.Room, job.room, logkey.Command, job.res.Command)
	}
	s.settle(job, m.sendUnsent(s, job))
}

// settled keeps the notices of an event whose key may be stored though its
// write failed: a commit in doubt, or a key that reached a database that
// then stopped answering. The event comes back (the queue rewinds); if its
// key is then found stored, the write had landed and these notices, never
// sent, go out at that point of the room's order (sendUnsent). An event
// that is applied or stored afresh drops them.
func (m *rabbitMQ) settled(s *shard, job *commitJob, err error) {
	if job.origin == nil {
		return
	}
	key, unsent := job.origin.Key, m.of(s).unsent
	switch {
	case err == nil:
		delete(unsent, key) // sent
	case errors.Is(err, store.ErrInDoubt) || job.returnTo != nil && errors.Is(err, store.ErrUnavailable):
		if len(job.res.Notices) > 0 && len(unsent) < maxUnsent {
			unsent[key] = job.res.Notices
		}
	}
}

// sendUnsent sends the notices kept for job's event (its write was in
// doubt, or delivery was saturated), now that its key is found stored.
func (m *rabbitMQ) sendUnsent(s *shard, job *commitJob) error {
	unsent := m.of(s).unsent
	ns, ok := unsent[job.origin.Key]
	if !ok {
		return nil
	}
	delete(unsent, job.origin.Key)
	s.logger.Debug("an event found applied has notices not sent yet: they go out now", logkey.Room, job.room, logkey.Command, job.res.Command)
	return m.sendKept(s, job.origin.Key, ns)
}
