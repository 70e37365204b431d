package delivery

import (
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
)

// nilIdx marks the end of an index-linked list.
const nilIdx int32 = -1

// class orders the two queues: urgent notices (direct replies) are always
// picked before bulk ones (a room's fan-out).
type class uint8

const (
	urgent class = iota
	bulk
	nClasses
)

type itemState uint8

const (
	stFree itemState = iota
	stQueued
	stInflight
)

// item is one notice from Submit to its Result. Items live in a slab and
// are linked by index, so queueing allocates nothing once the slab has
// grown.
type item struct {
	n      imc.Notice
	done   Done
	kept   Kept
	at     time.Time // submitted
	sentAt time.Time // last written
	seq    uint64    // submission order, global
	next   int32     // next in its flow
	flow   int32
	gen    uint32 // bumped on release, so that a late outcome is recognised
	ep     int16
	state  itemState
	// attempts counts the requests written; bounces the writes that never
	// reached OpenSIPS.
	attempts, bounces uint8
	held              bool  // waited for an unreachable member
	told              bool  // kept was told of it (hold)
	missed            bool  // placeholder for the "you missed N" notice, or for a catch-up
	fallback          bool  // placeholder of a room flow told "you missed N" after all
	catchUp           bool  // a catch-up notice, in place of a placeholder
	probe             bool  // in flight as the member's probe
	unordered         bool  // in flight through a path that may reorder (Sender.InOrder)
	epProbe           bool  // in flight as a down endpoint's probe
	missedN           int32 // placeholder in flight: the count it carries
}

// flow is the queue of one member's notices from one room, in one class.
// Its order is the order the member sees.
type flow struct {
	key    string
	room   imc.URI // From of the flow's notices
	member int32
	group  int32
	cls    class

	head, tail int32
	n          int32 // items queued, the placeholder included
	out        int32 // items in flight
	unordered  int32 // of which written through a path that may reorder
	delivered  uint64
	dropped    int32 // drops not yet told to the member
	missed     int32 // queued placeholder, or nilIdx
	missedOut  bool  // a placeholder is in flight

	// Catch-up (catchup.go). mark is the history number of the last line
	// delivered (known when marked); storedAt the mark reported to
	// OnMarks while stored; behind says a catch-up is owed though nothing
	// was dropped (a mark restored at start, a catch-up notice dropped).
	mark, storedAt         int64
	askTok                 uint64 // the pending CatchUpRequest
	catchUps               int32  // catch-up notices queued or in flight
	marked, stored, behind bool
	// guessed: mark is not a line delivered but the one before the first
	// waiting when the member went away (reportMark); a line in flight
	// then that comes back moves it down (requeue).
	guessed bool
	asking  bool // the placeholder waits for CatchUp

	inRing     bool  // in its group's ring of ready flows
	prev, next int32 // that ring
	mnext      int32 // the member's list of flows
	used       time.Time
}

// group is what takes turns within a class: a room for bulk notices, a
// recipient for urgent ones. Its ready flows form a ring served one notice
// at a time.
type group struct {
	cls        class
	cursor     int32 // next flow to serve, nilIdx when none is ready
	ready      int32
	active     bool  // in the class's ring of groups
	prev, next int32 // that ring
	items      int32 // queued and in-flight bulk items, for RoomLimit
	flows      int32
	used       time.Time
}

// member is one recipient: reachability, window and baseline reply time
// are per member, across rooms.
type member struct {
	key   string
	uri   imc.URI
	flows int32 // head of the member's flows, linked by flow.mnext

	queued   int32 // real items queued, all flows (placeholders excluded)
	inflight int32
	// window is how many of the member's notices may be in flight: it
	// starts at member_inflight (what a member who never answers ties up)
	// and grows by one with each notice delivered, up to
	// windowGrowth × member_inflight, so that a member who answers is not
	// held to one round trip per member_inflight notices; it falls back
	// when the member goes away or a request is lost.
	window int32

	reachable   bool
	since       time.Time // unreachable since
	reachableAt time.Time // last became reachable
	backoff     time.Duration
	nextProbe   time.Time
	probing     bool
	probeQueued bool
	ghosted     bool
	unreachPos  int32

	base, basePrev time.Duration // least reply times, this and the last epoch
	epoch          time.Time
	used           time.Time
}

// report is a Result waiting to be handed to its Done on the loop; or,
// when kept is set, the news that a notice is kept (hold), for its Kept.
type report struct {
	done Done
	kept Kept
	n    imc.Notice
	r    Result
	keep Keep
}

// ghost is a member unreachable for longer than GhostAfter.
type ghost struct {
	member imc.URI
	since  time.Time
}

// slab is a growable array of T with a free list.
type slab[T any] struct {
	v    []T
	free []int32
}

func (s *slab[T]) alloc() int32 {
	if n := len(s.free); n > 0 {
		i := s.free[n-1]
		s.free = s.free[:n-1]
		return i
	}
	var zero T
	s.v = append(s.v, zero)
	return int32(len(s.v) - 1)
}

func (s *slab[T]) release(i int32) {
	var zero T
	s.v[i] = zero
	s.free = append(s.free, i)
}

// engine is the scheduler's state and rules, without goroutines or locks:
// the Scheduler guards it with its mutex and feeds it the time, so tests
// can drive it step by step.
type engine struct {
	s   settings
	log *slog.Logger
	// inOrder says whether requests to a member reach them in the order
	// they are written: then a flow of theirs may have several in flight;
	// otherwise one at a time, so that the proxy's workers cannot swap
	// two lines of a room (refreshFlow).
	inOrder func(imc.URI) bool

	items   slab[item]
	flows   slab[flow]
	groups  slab[group]
	members slab[member]

	flowIdx   map[string]int32
	groupIdx  map[string]int32
	memberIdx map[string]int32

	active    [nClasses]int32 // cursor of each class's ring of groups
	probes    []int32         // members whose probe is due, FIFO from probeHead
	probeHead int
	unreach   []int32 // unreachable members
	// nAway mirrors len(unreach) for readers without the scheduler's lock
	// (Reachable's fast path: most MESSAGEs come from members never away).
	nAway atomic.Int32
	eps   []endpoint

	live     int // items not yet reported
	inflight int
	seq      uint64
	key      []byte  // scratch for map keys
	room     imc.URI // the room whose key roomKey holds (flowKey)
	roomKey  []byte

	reports []report
	ghosts  []ghost
	asks    []CatchUpRequest
	marks   []MarkChange
	askSeq  uint64

	nextSweep, nextIdle time.Time
	closed              bool
}

func newEngine(s settings, eps []Endpoint, log *slog.Logger, now time.Time) *engine {
	e := &engine{
		s:         s,
		log:       log,
		flowIdx:   make(map[string]int32),
		groupIdx:  make(map[string]int32),
		memberIdx: make(map[string]int32),
		active:    [nClasses]int32{nilIdx, nilIdx},
		key:       make([]byte, 0, 2*imc.KeyBufLen+2),
		roomKey:   make([]byte, 0, imc.KeyBufLen),
		nextSweep: now.Add(sweepEvery),
		nextIdle:  now.Add(idleEvery),
	}
	for i, ep := range eps {
		e.eps = append(e.eps, newEndpoint(i, ep, s, now))
	}
	// One MI process writes one endpoint's requests in the order given;
	// two endpoints are two processes, with no order between them.
	e.inOrder = func(imc.URI) bool { return false }
	if len(eps) == 1 {
		e.inOrder = eps[0].Sender.InOrder
	}
	return e
}

// admit queues a batch whole, or refuses it whole with ErrBusy.
func (e *engine) admit(b Batch, now time.Time) error {
	if e.closed {
		return ErrClosed
	}
	if len(b.Notices) == 0 {
		return nil
	}
	if e.live+len(b.Notices) > e.s.queueLimit {
		return fmt.Errorf("%w: %d notices waiting, limit %d", ErrBusy, e.live, e.s.queueLimit)
	}
	// The room limit counts bulk notices per room; a batch is one chat
	// line's fan-out, so its notices usually share one room.
	for i := 0; i < len(b.Notices); {
		n := &b.Notices[i]
		j := i + 1
		for j < len(b.Notices) && b.Notices[j].From == n.From {
			j++
		}
		if e.classOf(b, n) == bulk {
			if g, ok := e.groupIdx[string(e.groupKey(bulk, n.From))]; ok {
				items := int(e.groups.v[g].items)
				if items > 0 && items+(j-i) > e.s.roomLimit {
					return fmt.Errorf("%w: %d notices waiting for room %s, limit %d", ErrBusy, items, n.From.String(), e.s.roomLimit)
				}
			}
		}
		i = j
	}
	for i := range b.Notices {
		e.enqueue(&b.Notices[i], e.classOf(b, &b.Notices[i]), b.Done, b.Kept, now)
	}
	return nil
}

func (e *engine) classOf(b Batch, n *imc.Notice) class {
	if b.Urgent || n.InReplyTo != "" {
		return urgent
	}
	return bulk
}

// enqueue appends one notice to its flow.
func (e *engine) enqueue(n *imc.Notice, cls class, done Done, kept Kept, now time.Time) {
	mi := e.memberFor(n.To, now)
	fi := e.flowFor(cls, n.From, mi, now)
	ii := e.items.alloc()
	e.seq++
	it := &e.items.v[ii]
	*it = item{n: *n, done: done, kept: kept, at: now, seq: e.seq, next: nilIdx, flow: fi, gen: it.gen, state: stQueued}
	e.live++
	f := &e.flows.v[fi]
	e.link(fi, ii)
	f.used = now
	m := &e.members.v[mi]
	m.queued++
	m.used = now
	if cls == bulk {
		e.groups.v[f.group].items++
	}
	if !m.reachable {
		e.hold(ii, Outcome{})
		if n.Seq > 0 && !f.marked {
			e.reportMark(fi)
		}
		e.trim(mi, now)
		e.maybeProbe(mi, now)
	}
	e.refreshFlow(fi)
}

// link appends item ii to the tail of flow fi.
func (e *engine) link(fi, ii int32) {
	f := &e.flows.v[fi]
	e.items.v[ii].next = nilIdx
	if f.tail == nilIdx {
		f.head = ii
	} else {
		e.items.v[f.tail].next = ii
	}
	f.tail = ii
	f.n++
}

// linkHead puts item ii at the head of flow fi.
func (e *engine) linkHead(fi, ii int32) {
	f := &e.flows.v[fi]
	e.items.v[ii].next = f.head
	f.head = ii
	if f.tail == nilIdx {
		f.tail = ii
	}
	f.n++
}

// memberOf returns the member for u, if there is one; e.key holds u's key
// afterwards.
func (e *engine) memberOf(u imc.URI) (int32, bool) {
	e.key = u.AppendKey(e.key[:0])
	mi, ok := e.memberIdx[string(e.key)]
	return mi, ok
}

// memberFor returns the member for u, creating it (reachable) if needed.
func (e *engine) memberFor(u imc.URI, now time.Time) int32 {
	if mi, ok := e.memberOf(u); ok {
		return mi
	}
	mi := e.members.alloc()
	key := string(e.key)
	e.members.v[mi] = member{key: key, uri: u, flows: nilIdx, reachable: true, unreachPos: -1, epoch: now, used: now}
	e.memberIdx[key] = mi
	return mi
}

// groupKey builds the key of the group a notice from room (bulk) or to a
// recipient (urgent) belongs to.
func (e *engine) groupKey(cls class, u imc.URI) []byte {
	e.key = append(e.key[:0], byte('0'+cls))
	return u.AppendKey(e.key)
}

func (e *engine) groupFor(cls class, u imc.URI, now time.Time) int32 {
	k := e.groupKey(cls, u)
	if gi, ok := e.groupIdx[string(k)]; ok {
		return gi
	}
	gi := e.groups.alloc()
	e.groups.v[gi] = group{cls: cls, cursor: nilIdx, prev: nilIdx, next: nilIdx, used: now}
	e.groupIdx[string(k)] = gi
	return gi
}

// flowKey builds the key of the flow of room's notices in class cls to the
// member whose key is mkey. The room's key is kept from one call to the
// next: a batch is one room's fan-out, so it is built once per batch, not
// once per notice.
func (e *engine) flowKey(cls class, room imc.URI, mkey string) []byte {
	if room != e.room || len(e.roomKey) == 0 {
		e.room, e.roomKey = room, room.AppendKey(e.roomKey[:0])
	}
	e.key = append(e.key[:0], byte('0'+cls))
	e.key = append(e.key, e.roomKey...)
	e.key = append(e.key, 0)
	e.key = append(e.key, mkey...)
	return e.key
}

// flowFor returns the flow of room's notices in class cls to member mi.
func (e *engine) flowFor(cls class, room imc.URI, mi int32, now time.Time) int32 {
	k := e.flowKey(cls, room, e.members.v[mi].key)
	if fi, ok := e.flowIdx[string(k)]; ok {
		return fi
	}
	key := string(k)
	gu := room
	if cls == urgent {
		gu = e.members.v[mi].uri
	}
	gi := e.groupFor(cls, gu, now)
	fi := e.flows.alloc()
	m := &e.members.v[mi]
	e.flows.v[fi] = flow{key: key, room: room, member: mi, group: gi, cls: cls,
		head: nilIdx, tail: nilIdx, missed: nilIdx, prev: nilIdx, next: nilIdx, mnext: m.flows, used: now}
	m.flows = fi
	e.groups.v[gi].flows++
	e.flowIdx[key] = fi
	return fi
}

// tag names an item to a Sender: its index and generation.
func tagOf(ii int32, gen uint32) uint64 { return uint64(gen)<<32 | uint64(uint32(ii)) }

// itemOf returns the in-flight item a tag names, or nilIdx when it has
// already ended (a late or duplicate outcome).
func (e *engine) itemOf(tag uint64) int32 {
	ii := int32(uint32(tag))
	if ii < 0 || int(ii) >= len(e.items.v) {
		return nilIdx
	}
	it := &e.items.v[ii]
	if it.gen != uint32(tag>>32) || it.state != stInflight {
		return nilIdx
	}
	return ii
}

// final reports item ii's result and frees it.
func (e *engine) final(ii int32, kind Kind, o Outcome, now time.Time) {
	it := &e.items.v[ii]
	f := &e.flows.v[it.flow]
	if f.cls == bulk && !it.missed {
		e.groups.v[f.group].items--
	}
	e.reports = append(e.reports, report{done: it.done, n: it.n, r: Result{
		Kind: kind, Outcome: o, Held: it.held, Kept: it.told, Missed: it.missed || it.catchUp, CatchUp: it.catchUp,
		Attempts: int(it.attempts), Waited: now.Sub(it.at),
	}})
	e.live--
	cu, fi := it.catchUp, it.flow
	gen := it.gen + 1
	e.items.release(ii)
	e.items.v[ii].gen = gen
	if cu {
		e.flows.v[fi].catchUps--
		if kind != Aborted {
			e.settleMark(fi)
		}
	}
}

// hold marks item ii as kept for its unreachable member (o: the answer
// that showed it, zero when they were known away) and, the first time,
// reports it to the batch's Kept: before its Result, which may follow in
// the same round (trim).
func (e *engine) hold(ii int32, o Outcome) {
	it := &e.items.v[ii]
	it.held = true
	if it.kept == nil || it.told {
		return
	}
	it.told = true
	e.reports = append(e.reports, report{kept: it.kept, n: it.n, keep: Keep{Outcome: o, Until: it.at.Add(e.s.memberQueueAge)}})
}
