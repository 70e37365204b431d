package delivery

import (
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
)

// Fairness. Each class (urgent, then bulk) has a ring of groups that have a
// notice ready; each group has a ring of its ready flows. A pick takes the
// head of the current flow of the current group, then moves both cursors
// on: rooms take turns one notice at a time (deficit round robin with a
// quantum of one request, which is what every notice costs OpenSIPS), and
// within a room its members do. A burst in one room therefore delays another
// room's notice by at most one pick per other busy room. A flow is ready when
// it has a notice, its member is reachable and has fewer than MemberInflight
// notices in flight, and, unless the Sender keeps a member's requests in
// order (Sender.InOrder), nothing of its own in flight: a room's notices
// reach each member in the order the room made them. Otherwise it is out
// of the rings and costs nothing.

// pick is one request for the loop to write once the lock is released.
type pick struct {
	tag uint64
	ep  int
	n   imc.Notice
	// missed > 0 marks the placeholder of a "you missed N" notice, built by
	// the loop with this count.
	missed int32
}

// pick chooses up to cap(out) requests to write now, in order, and marks
// them in flight.
func (e *engine) pick(now time.Time, out []pick) []pick {
	for len(out) < cap(out) {
		ei, epProbe, rateBound := e.chooseEndpoint(now)
		if ei < 0 {
			if rateBound && e.hasWork() {
				e.markLimited(now)
			}
			break
		}
		ii := e.nextItem()
		if ii == nilIdx {
			break
		}
		e.eps[ei].pacer.take()
		out = append(out, e.dispatch(ii, ei, epProbe, now))
	}
	return out
}

// hasWork reports whether some notice could be written if the pacing
// allowed it.
func (e *engine) hasWork() bool {
	return e.active[urgent] != nilIdx || e.active[bulk] != nilIdx || e.probeHead < len(e.probes)
}

// markLimited tells the pacers of the endpoints that only lacked a token
// that work waited for them: their rate may grow.
func (e *engine) markLimited(now time.Time) {
	for i := range e.eps {
		ep := &e.eps[i]
		if ep.up && ep.alive(now) < ep.limit && !ep.pacer.ready(now) {
			ep.pacer.limited = true
		}
	}
}

// nextItem takes the next notice to write: a due probe of an unreachable
// member, else the fair choice among urgent, then bulk, notices.
func (e *engine) nextItem() int32 {
	for e.probeHead < len(e.probes) {
		mi := e.probes[e.probeHead]
		e.probeHead++
		if e.probeHead == len(e.probes) {
			e.probes, e.probeHead = e.probes[:0], 0
		}
		m := &e.members.v[mi]
		if !m.probeQueued {
			continue
		}
		m.probeQueued = false
		if m.reachable || m.probing {
			continue
		}
		fi := e.oldestFlow(mi)
		if fi == nilIdx {
			continue
		}
		if e.asksFor(fi) {
			// The catch-up comes first: CatchUp queues the probe again.
			e.ask(fi)
			continue
		}
		ii := e.dequeue(fi)
		e.items.v[ii].probe = true
		m.probing = true
		return ii
	}
	for c := range nClasses {
		gi := e.active[c]
		if gi == nilIdx {
			continue
		}
		g := &e.groups.v[gi]
		fi := g.cursor
		e.active[c] = g.next
		g.cursor = e.flows.v[fi].next
		return e.dequeue(fi)
	}
	return nilIdx
}

// dispatch marks item ii in flight to endpoint ei.
func (e *engine) dispatch(ii int32, ei int, epProbe bool, now time.Time) pick {
	it := &e.items.v[ii]
	f := &e.flows.v[it.flow]
	m := &e.members.v[f.member]
	ep := &e.eps[ei]
	it.state, it.sentAt, it.ep, it.epProbe = stInflight, now, int16(ei), epProbe
	if it.attempts < 255 {
		it.attempts++
	}
	if epProbe {
		ep.probing = true
	}
	f.out++
	if it.unordered = !e.inOrder(m.uri); it.unordered {
		f.unordered++
	}
	m.inflight++
	ep.inflight++
	e.inflight++
	p := pick{tag: tagOf(ii, it.gen), ep: ei, n: it.n}
	if it.missed {
		it.missedN, f.dropped, f.missedOut = f.dropped, 0, true
		p.missed = max(it.missedN, 1)
	}
	if m.inflight >= e.windowOf(m) {
		e.refreshMember(f.member)
	} else {
		e.refreshFlow(it.flow)
	}
	return p
}

// dequeue unlinks the head of flow fi.
func (e *engine) dequeue(fi int32) int32 {
	f := &e.flows.v[fi]
	ii := f.head
	it := &e.items.v[ii]
	f.head = it.next
	if f.head == nilIdx {
		f.tail = nilIdx
	}
	it.next = nilIdx
	f.n--
	if it.missed {
		f.missed = nilIdx
	} else {
		e.members.v[f.member].queued--
	}
	return ii
}

// requeue puts an in-flight item back into its flow at its place in
// submission order (ahead of everything submitted after it).
func (e *engine) requeue(ii int32) {
	it := &e.items.v[ii]
	fi := it.flow
	f := &e.flows.v[fi]
	it.state = stQueued
	if it.missed {
		f.missedOut = false
		f.dropped += it.missedN
		it.missedN = 0
		if f.missed != nilIdx {
			// Another placeholder was made meanwhile: it carries the count.
			e.releasePlaceholder(ii)
			return
		}
		f.missed = ii
	} else {
		e.members.v[f.member].queued++
	}
	prev, cur := nilIdx, f.head
	for cur != nilIdx && e.items.v[cur].seq < it.seq {
		prev, cur = cur, e.items.v[cur].next
	}
	it.next = cur
	if prev == nilIdx {
		f.head = ii
	} else {
		e.items.v[prev].next = ii
	}
	if cur == nilIdx {
		f.tail = ii
	}
	f.n++
	if f.guessed && it.n.Seq > 0 && !it.catchUp && it.n.Seq <= f.mark {
		// It was in flight when the member went away: the catch-up must
		// start before it.
		f.mark = it.n.Seq - 1
		e.reportMark(fi)
	}
}

// oldestFlow returns the member's flow whose head was submitted first.
func (e *engine) oldestFlow(mi int32) int32 {
	best := nilIdx
	var seq uint64
	for fi := e.members.v[mi].flows; fi != nilIdx; fi = e.flows.v[fi].mnext {
		f := &e.flows.v[fi]
		if f.head == nilIdx {
			continue
		}
		if s := e.items.v[f.head].seq; best == nilIdx || s < seq {
			best, seq = fi, s
		}
	}
	return best
}

// windowGrowth bounds a member's window: windowGrowth × member_inflight (16
// by default: at a few milliseconds a round trip, more than a room's
// worth of lines a second for each member).
const windowGrowth = 4

// windowOf is how many of m's notices may be in flight now.
func (e *engine) windowOf(m *member) int32 {
	return max(m.window, int32(e.s.memberInflight))
}

// grow widens m's window after a delivery; shrink narrows it back.
func (e *engine) grow(m *member) {
	m.window = min(max(m.window, int32(e.s.memberInflight))+1, int32(windowGrowth*e.s.memberInflight))
}

func (e *engine) shrink(m *member) { m.window = int32(e.s.memberInflight) }

// refreshFlow puts flow fi in its group's ring when it has a notice that
// may be written now, and takes it out otherwise. A placeholder at the
// head of a room flow caught up from the history is never written: it is
// asked to be filled, and the flow waits for CatchUp.
func (e *engine) refreshFlow(fi int32) {
	f := &e.flows.v[fi]
	m := &e.members.v[f.member]
	ready := f.head != nilIdx && m.reachable && m.inflight < e.windowOf(m) &&
		f.unordered == 0 && (f.out == 0 || e.inOrder(m.uri))
	if ready && f.head == f.missed && e.asksFor(fi) {
		e.ask(fi)
		// Asked: wait. Nothing to ask for: the placeholder is gone, or
		// a "you missed N" after all.
		ready = f.head != nilIdx && !e.asksFor(fi)
	}
	switch {
	case ready && !f.inRing:
		e.ringAdd(fi)
	case !ready && f.inRing:
		e.ringRemove(fi)
	}
}

func (e *engine) refreshMember(mi int32) {
	for fi := e.members.v[mi].flows; fi != nilIdx; fi = e.flows.v[fi].mnext {
		e.refreshFlow(fi)
	}
}

// ringAdd puts a flow in its group's ring, just before the cursor: it is
// served last in the current round.
func (e *engine) ringAdd(fi int32) {
	f := &e.flows.v[fi]
	gi := f.group
	g := &e.groups.v[gi]
	if c := g.cursor; c == nilIdx {
		f.prev, f.next, g.cursor = fi, fi, fi
	} else {
		p := e.flows.v[c].prev
		f.prev, f.next = p, c
		e.flows.v[p].next = fi
		e.flows.v[c].prev = fi
	}
	f.inRing = true
	g.ready++
	if !g.active {
		e.activate(gi)
	}
}

func (e *engine) ringRemove(fi int32) {
	f := &e.flows.v[fi]
	gi := f.group
	g := &e.groups.v[gi]
	if f.next == fi {
		g.cursor = nilIdx
	} else {
		e.flows.v[f.prev].next = f.next
		e.flows.v[f.next].prev = f.prev
		if g.cursor == fi {
			g.cursor = f.next
		}
	}
	f.inRing, f.prev, f.next = false, nilIdx, nilIdx
	g.ready--
	if g.ready == 0 && g.active {
		e.deactivate(gi)
	}
}

// activate puts a group in its class's ring, just before the cursor.
func (e *engine) activate(gi int32) {
	g := &e.groups.v[gi]
	c := &e.active[g.cls]
	if *c == nilIdx {
		g.prev, g.next, *c = gi, gi, gi
	} else {
		p := e.groups.v[*c].prev
		g.prev, g.next = p, *c
		e.groups.v[p].next = gi
		e.groups.v[*c].prev = gi
	}
	g.active = true
}

func (e *engine) deactivate(gi int32) {
	g := &e.groups.v[gi]
	c := &e.active[g.cls]
	if g.next == gi {
		*c = nilIdx
	} else {
		e.groups.v[g.prev].next = g.next
		e.groups.v[g.next].prev = g.prev
		if *c == gi {
			*c = g.next
		}
	}
	g.active, g.prev, g.next = false, nilIdx, nilIdx
}
