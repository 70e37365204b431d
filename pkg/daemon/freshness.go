package daemon

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/metrics"
	"github.com/imcd-sip/imcd/pkg/opensips"
	"github.com/imcd-sip/imcd/pkg/store"
)

// Fresh rooms, in RabbitMQ mode (rabbitmq.go). Rooms move between queues
// and instances: while another instance was the active consumer of a
// room's queue it may have changed the room, so this instance's copy is
// trusted only for events of the (queue, session) it last served the room
// under. The first event of a room under another origin (this process
// started consuming the queue, reconnected, rewound, took over from a dead
// instance, or the room moved to another queue) makes the shard re-read the
// room through its committer (LoadRooms): the event waits in the room's
// line, so the shard never blocks, and is applied once memory equals the
// database. A redelivered event always comes under a new session, so the
// origin rule covers the broker's redelivered flag too.
//
// Operator actions from the MI have no origin: in RabbitMQ mode each one
// re-reads its room first, then is applied here and committed; the
// instance active for the room's queue sees it only when it next re-reads
// the room (docs/scale-out.md).

// servedUnder is the part of an origin that a room's freshness depends on.
type servedUnder struct {
	queue   string
	session uint64
}

// shardBroker is a shard's state in RabbitMQ mode; its zero value (off) is
// the single-node modes'.
type shardBroker struct {
	on bool
	// served maps a room key to the origin it was last read or served
	// under.
	served map[string]servedUnder
	// marking counts this shard's keys at the marks writer; marked brings
	// their verdicts back (nil when off: never ready).
	marking int
	marked  chan []*commitJob
	// unsent holds, by event key, the notices of events whose key may
	// have been stored though the write failed (a commit in doubt, a mark
	// the database may have taken): if the event comes back and its key
	// is found stored, they are sent then (once.go).
	unsent map[string][]imc.Notice
}

func newShardBroker(on bool) shardBroker {
	if !on {
		return shardBroker{}
	}
	return shardBroker{on: true, served: make(map[string]servedUnder), marked: make(chan []*commitJob, maxMarks),
		unsent: make(map[string][]imc.Notice)}
}

// refresh is a re-read of a room before it is served.
type refresh struct {
	rooms  []imc.URI
	origin servedUnder // zero for an operator action
}

// brokerFirst runs before a brokered event is applied: an event of a
// session that failed is failed too, and a room not fresh for the event's
// origin is re-read first. It reports whether it took t over.
func (s *shard) brokerFirst(t *task, room string) bool {
	o := t.broker.origin
	if s.d.broker.rewound(o) {
		s.d.metrics.Command(t.in.Command(), metrics.ResultDBError)
		t.done(errRewound)
		return true
	}
	if room == "" || s.rmq.served[room] == origin(o) {
		return false
	}
	return s.refresh(t, room, origin(o))
}

func origin(o opensips.Origin) servedUnder { return servedUnder{queue: o.Queue, session: o.Session} }

// refreshAdmin re-reads an operator action's room before it runs.
func (s *shard) refreshAdmin(t *task, room string) bool {
	t.fresh = true
	return s.refresh(t, room, servedUnder{})
}

// refresh parks t in a new line of room and sends a re-read of the room to
// the committer; refreshed releases the line.
func (s *shard) refresh(t *task, room string, o servedUnder) bool {
	now := time.Now()
	if !s.d.db.up() || s.jobs >= maxCommits {
		err := fmt.Errorf("%w: the database is not answering", ErrNotSaved)
		if s.d.db.up() {
			err = fmt.Errorf("%w (%d commits in flight in shard %d)", ErrBusy, s.jobs, s.id)
		}
		s.refuse(t, err)
		return true
	}
	user, host, _ := strings.Cut(room, "@")
	s.jobs++
	s.lines[room] = newLine("")
	s.wait(s.lines[room], t, now)
	s.commits <- &commitJob{room: room, queued: now, // never blocks: at most maxCommits jobs exist
		refresh: &refresh{rooms: []imc.URI{{User: user, Host: host}}, origin: o}}
	return true
}

// reread is the committer's side of a refresh.
func (s *shard) reread(st store.Store, job *commitJob) {
	start := time.Now()
	job.truth, job.reread = st.LoadRooms(context.Background(), job.refresh.rooms)
	s.d.metrics.DB("reread", time.Since(start))
}

// refreshed takes a re-read back: memory follows the database and the
// room's line moves on; when the database could not be read, what waits
// fails (events come back from the broker).
func (s *shard) refreshed(job *commitJob) {
	if job.reread != nil {
		s.d.broker.metrics.Reread(metrics.RereadError)
		s.logger.Warn("cannot re-read a room before serving it: its waiting requests fail (events are redelivered)",
			logkey.Room, job.room, logkey.Err, job.reread)
		l := s.lines[job.room]
		delete(s.lines, job.room)
		if l == nil {
			return
		}
		s.waiting -= len(l.tasks)
		err := fmt.Errorf("%w: re-reading room %s: %w", ErrNotSaved, job.room, job.reread)
		for i := range l.tasks {
			s.refuse(&l.tasks[i], err)
		}
		return
	}
	s.d.broker.metrics.Reread(metrics.RereadOK)
	s.replace(job.truth)
	for k := range job.truth {
		delete(s.doubtful, k)
	}
	if job.refresh.origin != (servedUnder{}) {
		s.rmq.served[job.room] = job.refresh.origin
	}
	s.release(job.room)
}

// forget makes the next event of room re-read it (after the database
// refused a change as conflicting with its rows).
func (s *shard) forget(room string) {
	if s.rmq.on {
		delete(s.rmq.served, room)
	}
}
