package delivery

import (
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logkey"
)

// Reachability. A member whose MESSAGE ends unreachable (404, 408, 480, an
// unresolvable address) stops getting requests: their notices stay in
// their flows, "kept", at most MemberQueue of them and none older than
// MemberQueueAge (the oldest go first, counted per room). The oldest kept
// notice is tried again as a probe after UnreachableRetry, then after
// doubling waits up to UnreachableRetryMax. A delivered probe, any other
// SIP answer, or Reachable (a registration, the member's own MESSAGE) makes
// the member reachable again, and their flows rejoin the rings: what was
// kept leaves in order, paced like everything else, behind the "you missed
// N" notice of each room that dropped some.

// setUnreachable stops sending to member mi, and reports the marks of
// their room flows (catch-up).
func (e *engine) setUnreachable(mi int32, now time.Time, o Outcome) {
	e.goAway(mi, now)
	m := &e.members.v[mi]
	for fi := m.flows; fi != nilIdx; fi = e.flows.v[fi].mnext {
		for ii := e.flows.v[fi].head; ii != nilIdx; ii = e.items.v[ii].next {
			e.hold(ii, o)
		}
		e.reportMark(fi)
	}
	e.trim(mi, now)
	e.refreshMember(mi)
	e.log.Info("member unreachable: keeping their notices", logkey.Member, m.uri.String(), logkey.Status, o.String(),
		logkey.Kept, m.queued, logkey.InFlight, m.inflight)
}

// goAway marks member mi unreachable from now, the first probe due after
// UnreachableRetry.
func (e *engine) goAway(mi int32, now time.Time) {
	m := &e.members.v[mi]
	m.reachable, m.since, m.ghosted = false, now, false
	m.backoff = e.s.retry
	m.nextProbe = now.Add(m.backoff)
	m.unreachPos = int32(len(e.unreach))
	e.unreach = append(e.unreach, mi)
	e.nAway.Store(int32(len(e.unreach)))
}

// setReachable resumes sending to member mi.
func (e *engine) setReachable(mi int32, now time.Time, why string) {
	m := &e.members.v[mi]
	if m.reachable {
		return
	}
	e.setReachableQuiet(mi)
	m.reachableAt, m.probeQueued = now, false
	dropped := 0
	for fi := m.flows; fi != nilIdx; fi = e.flows.v[fi].mnext {
		f := &e.flows.v[fi]
		dropped += int(f.dropped)
		if !e.tells(fi) {
			f.dropped = 0 // nobody to tell: counted and logged only
		}
		e.settleMark(fi)
	}
	e.refreshMember(mi)
	e.log.Info("member reachable again: sending what was kept", logkey.Member, m.uri.String(), logkey.Reason, why,
		logkey.AwayFor, now.Sub(m.since).Round(time.Second).String(), logkey.Kept, m.queued, logkey.Dropped, dropped)
}

// reachable handles an outside sign that member u is back.
func (e *engine) reachable(u imc.URI, now time.Time) {
	if mi, ok := e.memberOf(u); ok {
		e.setReachable(mi, now, "registered or sent a message")
	}
}

// trim drops an unreachable member's oldest kept notices beyond MemberQueue.
// A flow waiting for its catch-up is left alone until it comes (the range
// asked for must not move).
func (e *engine) trim(mi int32, now time.Time) {
	for int(e.members.v[mi].queued) > e.s.memberQueue {
		fi := nilIdx
		var seq uint64
		for f := e.members.v[mi].flows; f != nilIdx; f = e.flows.v[f].mnext {
			if e.flows.v[f].asking {
				continue
			}
			if ii := e.firstReal(f); ii != nilIdx && (fi == nilIdx || e.items.v[ii].seq < seq) {
				fi, seq = f, e.items.v[ii].seq
			}
		}
		if fi == nilIdx {
			return
		}
		e.drop(fi, now)
	}
}

// firstReal returns the oldest kept notice of flow fi: the first queued
// one that is neither a placeholder nor a catch-up notice (those are not
// aged or trimmed: they stand for what was dropped already).
func (e *engine) firstReal(fi int32) int32 {
	ii := e.flows.v[fi].head
	for ii != nilIdx && (e.items.v[ii].missed || e.items.v[ii].catchUp) {
		ii = e.items.v[ii].next
	}
	return ii
}

// drop ends the oldest kept notice of flow fi as Dropped and counts it for
// the member's "you missed N" notice, or their catch-up. Catch-up notices
// still queued go too: the next catch-up, from the same mark, covers them.
func (e *engine) drop(fi int32, now time.Time) {
	prev, ii := nilIdx, e.flows.v[fi].head
	for ii != nilIdx && (e.items.v[ii].missed || e.items.v[ii].catchUp) {
		prev, ii = ii, e.items.v[ii].next
	}
	if ii == nilIdx {
		return
	}
	e.unlink(fi, prev, ii)
	f := &e.flows.v[fi]
	f.dropped++
	e.members.v[f.member].queued--
	seq := e.items.v[ii].seq
	e.final(ii, Dropped, Outcome{}, now)
	if e.flows.v[fi].catchUps > 0 {
		e.dropCatchUps(fi, now)
	}
	e.ensurePlaceholder(fi, now)
	if f := &e.flows.v[fi]; f.missed != nilIdx && e.items.v[f.missed].seq > seq {
		e.items.v[f.missed].seq = seq
	}
}

// ensurePlaceholder puts a "you missed N" placeholder at the head of flow fi
// when it counts drops (or owes a catch-up) and has none queued or in
// flight. The notice is built only when the placeholder is written, with
// the count of that moment; or, in a room flow with FillCatchUp, the
// placeholder becomes a catch-up (catchup.go).
func (e *engine) ensurePlaceholder(fi int32, now time.Time) {
	f := &e.flows.v[fi]
	if !e.tells(fi) || (f.dropped == 0 && !f.behind) || f.missed != nilIdx || f.missedOut {
		return
	}
	var seq uint64
	if f.head != nilIdx {
		seq = e.items.v[f.head].seq
	} else {
		e.seq++
		seq = e.seq
	}
	to := e.members.v[f.member].uri
	ii := e.items.alloc()
	it := &e.items.v[ii]
	*it = item{n: imc.Notice{From: f.room, To: to}, at: now, seq: seq, flow: fi, gen: it.gen,
		state: stQueued, missed: true, held: !e.members.v[f.member].reachable}
	e.linkHead(fi, ii)
	f.missed = ii
	e.live++
	e.refreshFlow(fi)
}

// releasePlaceholder frees a placeholder that is not in any queue.
func (e *engine) releasePlaceholder(ii int32) {
	gen := e.items.v[ii].gen + 1
	e.items.release(ii)
	e.items.v[ii].gen = gen
	e.live--
}

// maybeProbe queues member mi's probe when it is due.
func (e *engine) maybeProbe(mi int32, now time.Time) {
	m := &e.members.v[mi]
	if m.reachable || m.probing || m.probeQueued || now.Before(m.nextProbe) || e.oldestFlow(mi) == nilIdx {
		return
	}
	m.probeQueued = true
	e.probes = append(e.probes, mi)
}

// sweep ages out kept notices, queues due probes and reports ghosts.
func (e *engine) sweep(now time.Time) {
	for _, mi := range e.unreach {
		m := &e.members.v[mi]
		for fi := m.flows; fi != nilIdx; fi = e.flows.v[fi].mnext {
			for !e.flows.v[fi].asking {
				ii := e.firstReal(fi)
				if ii == nilIdx || now.Sub(e.items.v[ii].at) < e.s.memberQueueAge {
					break
				}
				e.drop(fi, now)
			}
		}
		e.maybeProbe(mi, now)
		if e.s.ghostAfter > 0 && !m.ghosted && now.Sub(m.since) >= e.s.ghostAfter {
			m.ghosted = true
			e.ghosts = append(e.ghosts, ghost{member: m.uri, since: m.since})
		}
	}
}
