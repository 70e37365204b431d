package rooms

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/metrics"
)

// Fresh rooms, in RabbitMQ mode (rabbitmq.go). Rooms move between queues
// and instances: while another instance was the active consumer of a
// room's queue it may have changed the room, so this instance's copy is
// trusted only for events of the (queue, session) it last served the room
// under. The first event of a room under another origin (this process
// started consuming the queue, reconnected, rewound, took over from a dead
// instance, or the room moved to another queue) makes the shard read the
// room again through its committer (LoadRooms): the event waits behind the
// re-read, so the shard never blocks, and is applied once memory equals
// the database. A redelivered event comes only under a session that has
// served no room yet (a new one, or a standby's that was waiting), so the
// origin rule covers the broker's redelivered flag too.
//
// Operator actions from the MI have no origin: in RabbitMQ mode each one
// reads its room again first, then is applied here and committed; the
// instance active for the room's queue sees it only when it next reads the
// room again (docs/scale-out.md).

// refresh is a re-read of rooms before they are served, a job of the
// committer's: the rooms a shard asks for while the committer has not
// taken the re-read yet join it, so that an instance taking over a queue
// reads the rooms of a burst of events in a few queries rather than one
// each.
type refresh struct {
	mode    *rabbitMQ
	mu      sync.Mutex // between the shard (add) and the committer (take)
	taken   bool
	rooms   []imc.URI
	keys    []string
	origins []servedUnder // zero for an operator action
	seqs    []int64       // with history: the last line's seq of each room, as stored

	// Set by the committer.
	truth  map[string]*imc.Room
	reread error
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

// first runs before an event is applied: an event of a session that failed
// is failed too, and a room not fresh for the event's origin is read again
// first.
func (m *rabbitMQ) first(s *shard, o *Origin, room string) (bool, error) {
	switch {
	case o == nil:
		return false, nil
	case m.rewound(o):
		return false, errRewound
	}
	return room != "" && m.of(s).served[room] != o.servedUnder(), nil
}

// rereadsAdmin: an operator action reads its room again before it runs.
func (m *rabbitMQ) rereadsAdmin() bool { return true }

// reread adds room to the re-read the committer has not taken yet, or
// sends a new one; the re-read's finish releases what waits for the room.
func (m *rabbitMQ) reread(s *shard, room string, o *Origin) error {
	var under servedUnder
	if o != nil {
		under = o.servedUnder()
	}
	ms := m.of(s)
	if r := ms.open; r == nil || !r.add(room, under) {
		if err := s.admit(); err != nil {
			return err
		}
		r = &refresh{mode: m}
		r.add(room, under)
		ms.open = r
		s.toCommitter(r)
	}
	return nil
}

// run is the committer's side of a refresh. With history, the rooms' last
// line numbers are read too: another instance may have written lines
// since this one last numbered them.
func (r *refresh) run(s *shard) {
	start := time.Now()
	r.truth, r.reread = s.store.LoadRooms(context.Background(), r.take())
	if r.reread == nil && s.hist != nil {
		r.seqs = make([]int64, len(r.keys))
		for i, k := range r.keys {
			if room := r.truth[k]; room != nil {
				if r.seqs[i], r.reread = s.hist.LastSeq(context.Background(), room.URI); r.reread != nil {
					break
				}
			}
		}
	}
	s.metrics.DB("reread", time.Since(start))
}

// finish takes a re-read back: memory follows the database and what waited
// behind it moves on; when the database could not be read, what waits
// fails (events come back from the broker).
func (r *refresh) finish(s *shard) {
	m := r.mode
	ms := m.of(s)
	if ms.open == r {
		ms.open = nil
	}
	if r.reread != nil {
		m.metrics.Reread(metrics.RereadError, len(r.keys))
		s.logger.Warn("cannot re-read rooms before serving them: their waiting requests fail (events are redelivered)",
			logkey.Rooms, len(r.keys), logkey.Err, r.reread)
		err := fmt.Errorf("%w: re-reading rooms: %w", ErrNotSaved, r.reread)
		for _, room := range r.keys {
			s.refuseWaiting(room, err)
		}
		return
	}
	m.metrics.Reread(metrics.RereadOK, len(r.keys))
	s.replace(r.truth)
	for i, room := range r.keys {
		if r.origins[i] != (servedUnder{}) {
			ms.served[room] = r.origins[i]
		}
		if r.seqs != nil {
			s.seqs[room] = max(s.seqs[room], r.seqs[i])
			s.history.Stored(room, r.seqs[i])
		}
	}
	for _, room := range r.keys {
		s.release(room)
	}
}

// conflicted makes the next event of room read it again (the database
// refused a change as conflicting with its rows).
func (m *rabbitMQ) conflicted(s *shard, room string) {
	delete(m.of(s).served, room)
}
