package delivery

import (
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
)

// evictIdle forgets flows, groups and members that have been empty for
// idleAfter. Empty ones are kept that long so that a room's next line finds
// them (creating one allocates its key).
func (e *engine) evictIdle(now time.Time) {
	for _, fi := range e.flowIdx {
		f := &e.flows.v[fi]
		if f.empty() && f.dropped == 0 && now.Sub(f.used) >= idleAfter {
			e.freeFlow(fi)
		}
	}
	for key, gi := range e.groupIdx {
		if g := &e.groups.v[gi]; g.flows == 0 && now.Sub(g.used) >= idleAfter {
			delete(e.groupIdx, key)
			e.groups.release(gi)
		}
	}
	for _, mi := range e.memberIdx {
		if m := &e.members.v[mi]; m.reachable && m.flows == nilIdx && m.inflight == 0 && now.Sub(m.used) >= idleAfter {
			e.freeMember(mi)
		}
	}
}

// empty reports whether flow f holds nothing for its member: no notice
// queued or in flight, no placeholder out, no catch-up owed or asked, no
// mark stored.
func (f *flow) empty() bool {
	return f.head == nilIdx && f.out == 0 && !f.missedOut && !f.stored && !f.behind && !f.asking
}

// freeFlow forgets an empty flow with nothing in flight.
func (e *engine) freeFlow(fi int32) {
	f := &e.flows.v[fi]
	if f.inRing {
		e.ringRemove(fi)
	}
	m := &e.members.v[f.member]
	if m.flows == fi {
		m.flows = f.mnext
	} else {
		for p := m.flows; p != nilIdx; p = e.flows.v[p].mnext {
			if e.flows.v[p].mnext == fi {
				e.flows.v[p].mnext = f.mnext
				break
			}
		}
	}
	e.groups.v[f.group].flows--
	delete(e.flowIdx, f.key)
	e.flows.release(fi)
}

// freeMember forgets a member whose flows are all gone.
func (e *engine) freeMember(mi int32) {
	m := &e.members.v[mi]
	if !m.reachable {
		e.setReachableQuiet(mi)
	}
	delete(e.memberIdx, m.key)
	e.members.release(mi)
}

// setReachableQuiet takes a member off the unreachable list without the
// consequences of its return: alone when it is being forgotten, and as the
// first step of setReachable.
func (e *engine) setReachableQuiet(mi int32) {
	m := &e.members.v[mi]
	m.reachable = true
	if p := m.unreachPos; p >= 0 {
		last := e.unreach[len(e.unreach)-1]
		e.unreach[p] = last
		e.members.v[last].unreachPos = p
		e.unreach = e.unreach[:len(e.unreach)-1]
		e.nAway.Store(int32(len(e.unreach)))
		m.unreachPos = -1
	}
}

// remove drops what waits for member in room (both classes), and forgets
// the member altogether when nothing else waits for them.
func (e *engine) remove(room, u imc.URI, now time.Time) {
	mi, ok := e.memberOf(u)
	if !ok {
		return
	}
	for cls := range nClasses {
		fi, ok := e.flowIdx[string(e.flowKey(cls, room, e.members.v[mi].key))]
		if !ok {
			continue
		}
		for e.flows.v[fi].head != nilIdx {
			ii := e.dequeue(fi)
			if e.items.v[ii].missed {
				e.releasePlaceholder(ii)
				continue
			}
			e.final(ii, Dropped, Outcome{}, now)
		}
		// Nothing is owed any more: the store forgets the member's mark
		// with their membership.
		f := &e.flows.v[fi]
		f.dropped, f.asking, f.behind, f.stored = 0, false, false, false
		e.refreshFlow(fi)
	}
	m := &e.members.v[mi]
	if m.inflight > 0 {
		return
	}
	// Another room may still hold something for them: a notice, a
	// placeholder, a catch-up owed or a mark stored.
	for fi := m.flows; fi != nilIdx; fi = e.flows.v[fi].mnext {
		if !e.flows.v[fi].empty() {
			return
		}
	}
	for fi := m.flows; fi != nilIdx; {
		next := e.flows.v[fi].mnext
		e.freeFlow(fi)
		fi = next
	}
	e.freeMember(mi)
}

// abortAll ends every notice as Aborted (Close).
func (e *engine) abortAll(now time.Time) {
	for ii := range e.items.v {
		it := &e.items.v[ii]
		switch {
		case it.state == stFree:
		case it.missed:
			e.releasePlaceholder(int32(ii))
		default:
			e.final(int32(ii), Aborted, Outcome{}, now)
		}
	}
	// Outcomes that still come are ignored (their items are gone).
	e.inflight = 0
	for i := range e.eps {
		e.eps[i].inflight = 0
	}
	e.closed = true
}

// stats fills s; s.Endpoints is reused.
func (e *engine) stats(now time.Time, s *Stats) {
	// An unreachable member's placeholders wait for them like what is kept
	// (Drain does not wait for them), though Kept counts notices only.
	kept, placeholders := 0, 0
	for _, mi := range e.unreach {
		kept += int(e.members.v[mi].queued)
		for fi := e.members.v[mi].flows; fi != nilIdx; fi = e.flows.v[fi].mnext {
			if e.flows.v[fi].missed != nilIdx {
				placeholders++
			}
		}
	}
	s.Queued, s.Kept, s.InFlight, s.Unreachable = e.live-e.inflight-kept-placeholders, kept, e.inflight, len(e.unreach)
	s.Endpoints = s.Endpoints[:0]
	for i := range e.eps {
		ep := &e.eps[i]
		s.Endpoints = append(s.Endpoints, EndpointStats{Name: ep.name, Up: ep.up, Rate: ep.pacer.rate,
			InFlight: ep.inflight, InWait: ep.wait.count(now), Limit: ep.limit, Shm: ep.shm.last})
	}
}

// memberStatus describes member u as seen from room.
func (e *engine) memberStatus(room, u imc.URI) MemberStatus {
	st := MemberStatus{Member: u, Reachable: true}
	mi, ok := e.memberOf(u)
	if !ok {
		return st
	}
	m := &e.members.v[mi]
	st.InFlight = int(m.inflight)
	if !m.reachable {
		st.Reachable, st.Since, st.NextProbe = false, m.since, m.nextProbe
	}
	for fi := m.flows; fi != nilIdx; fi = e.flows.v[fi].mnext {
		f := &e.flows.v[fi]
		if !f.room.Equal(room) {
			continue
		}
		st.Kept += int(f.n)
		if f.missed != nilIdx {
			st.Kept--
		}
		st.Dropped += int(f.dropped)
	}
	return st
}

// unreachableFor lists the members unreachable for at least d.
func (e *engine) unreachableFor(d time.Duration, now time.Time) []MemberStatus {
	var out []MemberStatus
	for _, mi := range e.unreach {
		m := &e.members.v[mi]
		if now.Sub(m.since) < d {
			continue
		}
		st := MemberStatus{Member: m.uri, Since: m.since, NextProbe: m.nextProbe, Kept: int(m.queued), InFlight: int(m.inflight)}
		for fi := m.flows; fi != nilIdx; fi = e.flows.v[fi].mnext {
			st.Dropped += int(e.flows.v[fi].dropped)
		}
		out = append(out, st)
	}
	return out
}
