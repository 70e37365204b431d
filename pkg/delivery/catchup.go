package delivery

import (
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logkey"
)

// Catch-up from the history. With FillCatchUp set, what an away member
// misses of a room's chat lines is not lost with the notices dropped for
// them: the room's history holds every line. Each room flow keeps a mark,
// the history number (imc.Notice.Seq) of the last line delivered to the
// member; when the member becomes unreachable the marks are reported
// (OnMarks, for the daemon to store, so that a restart keeps them), and
// when the flow's placeholder comes to be written, the scheduler asks
// (FillCatchUp) for the lines between the mark and the first line still
// kept, and holds the flow until CatchUp hands back the notices that take
// the placeholder's place. A failed query falls back to the "you missed N"
// notice. Away restores the marks at start: those members are away until
// they come back, then caught up from their marks.

// Mark is where a member's catch-up in a room starts: the history number
// of the last line delivered to them (or of the line before the first one
// they did not get).
type Mark struct {
	Room   imc.URI
	Member imc.URI
	Seq    int64
}

// MarkChange is one change of the marks, in the order they happened.
type MarkChange struct {
	Mark
	// Away: the member became unreachable with this mark; store it. Else
	// the member is caught up (or owed nothing): delete it.
	Away bool
}

// CatchUpRequest asks for the lines Member missed in Room: those with
// After < seq < Before (Before 0: up to the newest). Token identifies the
// request in the reply.
type CatchUpRequest struct {
	Room, Member  imc.URI
	After, Before int64
	Token         uint64
}

// CatchUpReply answers a CatchUpRequest (Scheduler.CatchUp).
type CatchUpReply struct {
	// Room, Member and Token are the request's.
	Room, Member imc.URI
	Token        uint64
	// Notices take the placeholder's place at the head of the flow, in
	// order; none: nothing to catch up. Their Seq is the newest line each
	// carries.
	Notices []imc.Notice
	// UpTo is the newest line the notices cover: a notice still waiting in
	// the flow for a line up to it ends Dropped, the catch-up carries it.
	UpTo int64
	// Err, when set, makes the member get the "you missed N" notice
	// instead.
	Err error
}

// CatchUp answers a CatchUpRequest: the notices take the place of the
// flow's placeholder, or, with r.Err, the member is told how many they
// missed. A reply to a request that no longer waits (the member left) is
// ignored. It never blocks.
func (s *Scheduler) CatchUp(r CatchUpReply) {
	s.mu.Lock()
	if s.opened && !s.closed {
		s.e.catchUp(&r, s.clock.Now())
	}
	s.mu.Unlock()
	s.signal()
}

// Away restores the marks stored before a restart (OnMarks): each member
// is unreachable from now, nothing is sent to them until they come back
// (Reachable, a probe), and they are then caught up in each room from its
// mark. Call it after Open, before Submit. It does nothing without
// FillCatchUp.
func (s *Scheduler) Away(marks []Mark) {
	s.mu.Lock()
	if s.opened && !s.closed && s.e.s.catchUp {
		now := s.clock.Now()
		for _, mk := range marks {
			s.e.away(mk, now)
		}
	}
	s.mu.Unlock()
	s.signal()
}

// tells reports whether flow fi's drops are told to its member: by a
// catch-up (room flows, with FillCatchUp) or a "you missed N" notice.
func (e *engine) tells(fi int32) bool {
	return e.s.missed || e.catchUpFlow(fi)
}

// catchUpFlow reports whether flow fi is caught up from the history.
func (e *engine) catchUpFlow(fi int32) bool {
	return e.s.catchUp && e.flows.v[fi].cls == bulk
}

// asksFor reports whether flow fi's head is a placeholder waiting to be
// turned into a catch-up (not one falling back to "you missed N").
func (e *engine) asksFor(fi int32) bool {
	f := &e.flows.v[fi]
	return f.head != nilIdx && f.head == f.missed && e.catchUpFlow(fi) && !e.items.v[f.head].fallback
}

// ask requests the catch-up of flow fi, whose head is its placeholder,
// unless it is asked already or notices of it are in flight (one that
// comes back would go ahead of the placeholder).
func (e *engine) ask(fi int32) {
	f := &e.flows.v[fi]
	if f.asking || f.out > 0 {
		return
	}
	var before int64
	for ii := e.items.v[f.head].next; ii != nilIdx; ii = e.items.v[ii].next {
		if it := &e.items.v[ii]; it.n.Seq > 0 && !it.catchUp {
			before = it.n.Seq
			break
		}
	}
	if !f.marked || (before > 0 && before <= f.mark+1) {
		// Nothing in the history to give: the drops were other notices.
		e.noCatchUp(fi)
		return
	}
	e.askSeq++
	f.asking, f.askTok = true, e.askSeq
	e.asks = append(e.asks, CatchUpRequest{Room: f.room, Member: e.members.v[f.member].uri, After: f.mark, Before: before, Token: f.askTok})
}

// noCatchUp settles flow fi's placeholder without a catch-up: "you missed
// N" when some notices were dropped and MissedNotice is set, else nothing.
func (e *engine) noCatchUp(fi int32) {
	f := &e.flows.v[fi]
	f.behind = false
	if f.dropped > 0 && e.s.missed {
		e.items.v[f.missed].fallback = true
		return
	}
	f.dropped = 0
	e.removePlaceholder(fi)
	e.settleMark(fi)
}

// removePlaceholder frees flow fi's queued placeholder, wherever it is.
func (e *engine) removePlaceholder(fi int32) {
	f := &e.flows.v[fi]
	ph := f.missed
	if ph == nilIdx {
		return
	}
	prev := nilIdx
	for ii := f.head; ii != ph; ii = e.items.v[ii].next {
		prev = ii
	}
	e.unlink(fi, prev, ph)
	f.missed = nilIdx
	e.releasePlaceholder(ph)
}

// unlink takes item ii, which follows prev (nilIdx: the head), out of
// flow fi.
func (e *engine) unlink(fi, prev, ii int32) {
	f := &e.flows.v[fi]
	next := e.items.v[ii].next
	if prev == nilIdx {
		f.head = next
	} else {
		e.items.v[prev].next = next
	}
	if f.tail == ii {
		f.tail = prev
	}
	e.items.v[ii].next = nilIdx
	f.n--
}

// catchUp applies the daemon's reply to a CatchUpRequest.
func (e *engine) catchUp(r *CatchUpReply, now time.Time) {
	mi, ok := e.memberOf(r.Member)
	if !ok {
		return
	}
	fi, ok := e.flowIdx[string(e.flowKey(bulk, r.Room, e.members.v[mi].key))]
	if !ok {
		return
	}
	f := &e.flows.v[fi]
	if !f.asking || f.askTok != r.Token {
		return // removed meanwhile, or an older request
	}
	f.asking = false
	if f.missed == nilIdx {
		return
	}
	if r.Err != nil || len(r.Notices) == 0 {
		if r.Err != nil {
			e.log.Warn("catch-up from the history failed: telling the member how many they missed instead", logkey.Room, r.Room.String(),
				logkey.Member, r.Member.String(), logkey.Err, r.Err)
		}
		e.noCatchUp(fi)
	} else {
		e.cover(fi, r.UpTo, now)
		seq := e.items.v[f.missed].seq
		e.removePlaceholder(fi)
		m := &e.members.v[mi]
		for i := len(r.Notices) - 1; i >= 0; i-- {
			ii := e.items.alloc()
			it := &e.items.v[ii]
			*it = item{n: r.Notices[i], at: now, seq: seq, flow: fi, gen: it.gen, state: stQueued,
				held: !m.reachable, catchUp: true}
			e.linkHead(fi, ii)
			f.catchUps++
			m.queued++
			e.groups.v[f.group].items++
			e.live++
		}
		// Not trimmed now, even for a member away again: the next line
		// kept for them is, and drops the catch-up with a line (drop).
		f.dropped, f.behind = 0, false
	}
	e.settleMark(fi)
	e.refreshFlow(fi)
	e.maybeProbe(mi, now)
}

// dropCatchUps ends flow fi's queued catch-up notices as Dropped: a line
// kept after them was dropped, and the catch-up owed now (behind) covers
// both.
func (e *engine) dropCatchUps(fi int32, now time.Time) {
	prev := nilIdx
	for ii := e.flows.v[fi].head; ii != nilIdx; {
		next := e.items.v[ii].next
		if !e.items.v[ii].catchUp {
			prev, ii = ii, next
			continue
		}
		e.unlink(fi, prev, ii)
		e.members.v[e.flows.v[fi].member].queued--
		e.flows.v[fi].behind = true
		e.final(ii, Dropped, Outcome{}, now)
		ii = next
	}
}

// cover ends, as Dropped, the notices waiting in flow fi for lines up to
// upTo: a catch-up that reached them carries them.
func (e *engine) cover(fi int32, upTo int64, now time.Time) {
	prev := nilIdx
	for ii := e.flows.v[fi].head; ii != nilIdx; {
		it := &e.items.v[ii]
		next := it.next
		if it.missed || it.catchUp || it.n.Seq <= 0 || it.n.Seq > upTo {
			prev, ii = ii, next
			continue
		}
		e.unlink(fi, prev, ii)
		e.members.v[e.flows.v[fi].member].queued--
		e.final(ii, Dropped, Outcome{}, now)
		ii = next
	}
}

// reportMark reports flow fi's mark for OnMarks once it is known and
// differs from what was reported. Unknown (the flow delivered no line
// since it was made), it is the line before the first one waiting.
func (e *engine) reportMark(fi int32) {
	if !e.catchUpFlow(fi) {
		return
	}
	f := &e.flows.v[fi]
	if !f.marked {
		for ii := f.head; ii != nilIdx; ii = e.items.v[ii].next {
			if it := &e.items.v[ii]; it.n.Seq > 0 && !it.catchUp {
				f.mark, f.marked, f.guessed = it.n.Seq-1, true, true
				break
			}
		}
	}
	if !f.marked || (f.stored && f.storedAt == f.mark) {
		return
	}
	f.stored, f.storedAt = true, f.mark
	e.marks = append(e.marks, MarkChange{Mark: Mark{Room: f.room, Member: e.members.v[f.member].uri, Seq: f.mark}, Away: true})
}

// settleMark reports that flow fi's stored mark is no longer needed: the
// member is reachable and owed nothing more from the history.
func (e *engine) settleMark(fi int32) {
	f := &e.flows.v[fi]
	if !f.stored || f.asking || f.behind || f.missed != nilIdx || f.missedOut || f.catchUps > 0 || !e.members.v[f.member].reachable {
		return
	}
	f.stored = false
	e.marks = append(e.marks, MarkChange{Mark: Mark{Room: f.room, Member: e.members.v[f.member].uri, Seq: f.storedAt}})
}

// away restores a mark at start: the member is away from the room, and
// owed a catch-up from the mark when they come back.
func (e *engine) away(mk Mark, now time.Time) {
	mi := e.memberFor(mk.Member, now)
	fi := e.flowFor(bulk, mk.Room, mi, now)
	f := &e.flows.v[fi]
	f.mark, f.marked, f.stored, f.storedAt, f.behind, f.used = mk.Seq, true, true, mk.Seq, true, now
	if e.members.v[mi].reachable {
		e.goAway(mi, now)
	}
	e.ensurePlaceholder(fi, now)
	e.refreshFlow(fi)
}
