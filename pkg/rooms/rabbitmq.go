package rooms

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/metrics"
	"github.com/imcd-sip/imcd/pkg/store"
)

// RabbitMQ mode (event_source = rabbitmq, docs/scale-out.md). Several imcd
// consume the same broker queues, so the rooms are run differently from the
// single-node modes in four ways:
//
//   - applied once: a command's changes commit with the event's key
//     (store.ApplyOnce), and an event without changes (a chat line, a
//     refusal) has its key stored by the key writer before its notices go
//     out (rabbitmq_keys.go). A redelivered event that some instance
//     applied already is acknowledged with no change and no notice;
//   - fresh rooms: a room is read again from the database before it is
//     served under a consumer session other than the one it was last
//     served under (rabbitmq_fresh.go), because another instance may have
//     changed it;
//   - strict order: every event of a room waits while the room has a
//     commit, a key being stored or a re-read in flight, so a room's
//     notices leave in the order of its queue; and once an event failed
//     (done with an error: the queue rewinds), the later events of its
//     session fail too without being applied, to come back in order;
//   - a failure that the broker will retry (database down, busy) tells the
//     sender nothing: the event comes back. Only a permanent one (a
//     conflict with the stored rows) is told, and its message rejected.

// RabbitMQ returns the mode of imcd consuming the shared RabbitMQ queues
// named (every queue, active or standing by): events keys stored in
// events, counted in m.
func RabbitMQ(events store.EventLog, queues []string, m *metrics.RabbitMQ) Mode {
	r := &rabbitMQ{events: events, metrics: m, failed: make(map[string]*atomic.Uint64, len(queues))}
	for _, q := range queues {
		r.failed[q] = new(atomic.Uint64)
	}
	return r
}

// rabbitMQ is RabbitMQ mode's state.
type rabbitMQ struct {
	events  store.EventLog
	metrics *metrics.RabbitMQ

	// failed holds, per queue, the session of the last event that failed:
	// the later events of that session fail too. Built by RabbitMQ,
	// read-only after that (its values are atomics).
	failed map[string]*atomic.Uint64

	// Set by open.
	env    *env
	shards []rabbitMQShard // by shard id
	// keys feeds the key writer; it holds every key that can be at the
	// writer at once, so a shard never blocks on it.
	keys       chan *commitJob
	writerDone chan struct{}
	closeOnce  sync.Once
}

// rabbitMQShard is a shard's state in RabbitMQ mode, owned by the shard's
// goroutine.
type rabbitMQShard struct {
	// served maps a room key to the origin it was last read or served
	// under.
	served map[string]servedUnder
	// storing counts this shard's keys at the key writer.
	storing int
	// open is the last re-read sent to the committer, which may still
	// take more rooms.
	open *refresh
	// unsent holds, by event key, the notices of events whose key may
	// have been stored though the write failed (a commit in doubt, a key
	// the database may have taken): if the event comes back and its key
	// is found stored, they are sent then (rabbitmq_keys.go).
	unsent map[string][]imc.Notice
}

// servedUnder is the part of an origin that a room's freshness depends on.
type servedUnder struct {
	queue   string
	session uint64
}

func (o *Origin) servedUnder() servedUnder { return servedUnder{queue: o.Queue, session: o.Session} }

// errRewound answers the events of a consumer session after one of its
// events failed: the broker brings them back, in order.
var errRewound = errors.New("an earlier event of this queue could not be applied: it is redelivered, in order, with this one")

// of returns s's state.
func (m *rabbitMQ) of(s *shard) *rabbitMQShard { return &m.shards[s.id] }

// strict: every event of a room waits behind what the room has in flight.
func (m *rabbitMQ) strict() bool { return true }

// take makes an event's done record a failed session: the later events of
// the session then fail too (first), but for a conflict with the stored
// rows, which no retry can cure (the intake rejects the message).
func (m *rabbitMQ) take(o *Origin, done func(error)) func(error) {
	if o == nil {
		return done
	}
	return func(err error) {
		if err != nil && !errors.Is(err, store.ErrConflict) {
			if f := m.failed[o.Queue]; f != nil {
				f.Store(o.Session)
			}
		}
		done(err)
	}
}

// rewound reports whether an earlier event of o's session failed.
func (m *rabbitMQ) rewound(o *Origin) bool {
	f := m.failed[o.Queue]
	return f != nil && f.Load() == o.Session
}

// redelivers reports whether the broker brings an event back after err, so
// that its sender must not be told to try again: every failure of an
// event from a queue but a conflict with the stored rows.
func (m *rabbitMQ) redelivers(o *Origin, err error) bool {
	return o != nil && err != nil && !errors.Is(err, store.ErrConflict)
}

// idle reports whether s has no key at the key writer.
func (m *rabbitMQ) idle(s *shard) bool { return m.of(s).storing == 0 }
