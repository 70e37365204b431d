package daemon

import (
	"context"
	"fmt"
	"strings"
	"sync"
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
// database. A redelivered event comes only under a session that has served
// no room yet (a new one, or a standby's that was waiting), so the origin
// rule covers the broker's redelivered flag too.
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
	// open is the last re-read sent to the committer, which may still
	// take more rooms.
	open *refresh
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

// refresh is a re-read of rooms before they are served: the rooms a shard
// asks for while the committer has not taken the re-read yet join it, so
// that an instance taking over a queue reads the rooms of a burst of events
// in a few queries rather than one each.
type refresh struct {
	mu      sync.Mutex // between the shard (add) and the committer (take)
	taken   bool
	rooms   []imc.URI
	keys    []string
	origins []servedUnder // zero for an operator action
	seqs    []int64       // with history: the last line's seq of each room, as stored
}

// maxRefresh bounds the rooms of one re-read.
const maxRefresh = 500

// add adds a room unless the committer took the re-read already.
func (r *refresh) add(room string, o servedUnder) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.taken || len(r.keys) >= maxRefresh {
		return false
	}
	user, host, _ := strings.Cut(room, "@")
	r.rooms = append(r.rooms, imc.URI{User: user, Host: host})
	r.keys = append(r.keys, room)
	r.origins = append(r.origins, o)
	return true
}

// take closes the re-read to new rooms and returns them.
func (r *refresh) take() []imc.URI {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.taken = true
	return r.rooms
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
	s.refresh(t, room, origin(o))
	return true
}

func origin(o opensips.Origin) servedUnder { return servedUnder{queue: o.Queue, session: o.Session} }

// refreshAdmin re-reads an operator action's room before it runs.
func (s *shard) refreshAdmin(t *task, room string) {
	t.fresh = true
	s.refresh(t, room, servedUnder{})
}

// refresh parks t in a new line of room and has the committer re-read the
// room, in the re-read it has not taken yet or a new one; refreshed
// releases the line.
func (s *shard) refresh(t *task, room string, o servedUnder) {
	now := time.Now()
	if !s.d.db.up() {
		s.refuse(t, errDBDown)
		return
	}
	if r := s.rmq.open; r == nil || !r.add(room, o) {
		if err := s.admit(); err != nil {
			s.refuse(t, err)
			return
		}
		r = &refresh{}
		r.add(room, o)
		s.rmq.open = r
		s.toCommitter(&commitJob{queued: now, refresh: r})
	}
	s.lines[room] = newLine(nil)
	s.wait(s.lines[room], t, now)
}

// reread is the committer's side of a refresh. With history, the rooms'
// last line numbers are read too: another instance may have written lines
// since this one last numbered them.
func (s *shard) reread(st store.Store, job *commitJob) {
	start := time.Now()
	r := job.refresh
	job.truth, job.reread = st.LoadRooms(context.Background(), r.take())
	if job.reread == nil && s.d.hist != nil {
		r.seqs = make([]int64, len(r.keys))
		for i, k := range r.keys {
			if room := job.truth[k]; room != nil {
				if r.seqs[i], job.reread = s.d.hist.LastSeq(context.Background(), room.URI); job.reread != nil {
					break
				}
			}
		}
	}
	s.d.metrics.DB("reread", time.Since(start))
}

// refreshed takes a re-read back: memory follows the database and the
// room's line moves on; when the database could not be read, what waits
// fails (events come back from the broker).
func (s *shard) refreshed(job *commitJob) {
	r := job.refresh
	if s.rmq.open == r {
		s.rmq.open = nil
	}
	if job.reread != nil {
		s.d.broker.metrics.Reread(metrics.RereadError, len(r.keys))
		s.logger.Warn("cannot re-read rooms before serving them: their waiting requests fail (events are redelivered)",
			logkey.Rooms, len(r.keys), logkey.Err, job.reread)
		err := fmt.Errorf("%w: re-reading rooms: %w", ErrNotSaved, job.reread)
		for _, room := range r.keys {
			s.refuseLine(room, err)
		}
		return
	}
	s.d.broker.metrics.Reread(metrics.RereadOK, len(r.keys))
	s.replace(job.truth)
	for i, room := range r.keys {
		if r.origins[i] != (servedUnder{}) {
			s.rmq.served[room] = r.origins[i]
		}
		if r.seqs != nil {
			s.seqs[room] = max(s.seqs[room], r.seqs[i])
			s.d.history.stored(room, r.seqs[i])
		}
	}
	for _, room := range r.keys {
		s.release(room)
	}
}

// forget makes the next event of room re-read it (after the database
// refused a change as conflicting with its rows).
func (s *shard) forget(room string) {
	if s.rmq.on {
		delete(s.rmq.served, room)
	}
}
