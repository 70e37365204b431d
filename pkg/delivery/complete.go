package delivery

import (
	"errors"
	"time"
)

// verdict is what the scheduler makes of an outcome.
type verdict uint8

const (
	vDelivered   verdict = iota // 2xx
	vUnreachable                // the member is away: keep it for them
	vLost                       // no reply: retry a few times
	vNotSent                    // never reached OpenSIPS: safe to send again
	vOverloaded                 // OpenSIPS out of resources: slow down, retry
	vAborted                    // the Sender closed
	vFailed                     // a final refusal of this notice
)

func verdictOf(o Outcome) verdict {
	switch {
	case o.Delivered():
		return vDelivered
	case o.MemberUnreachable():
		return vUnreachable
	case o.Lost():
		return vLost
	case o.NotSent():
		return vNotSent
	case o.Overloaded():
		return vOverloaded
	case o.Aborted():
		return vAborted
	}
	return vFailed
}

// complete applies the outcome of the request tag names. A tag that names
// no request in flight (already ended, or from before Close) is ignored.
func (e *engine) complete(tag uint64, o Outcome, now time.Time) {
	ii := e.itemOf(tag)
	if ii == nilIdx {
		return
	}
	it := &e.items.v[ii]
	fi := it.flow
	f := &e.flows.v[fi]
	mi := f.member
	m := &e.members.v[mi]
	ei := int(it.ep)
	v := verdictOf(o)

	f.out--
	if it.unordered {
		f.unordered--
		it.unordered = false
	}
	m.inflight--
	e.eps[ei].inflight--
	e.inflight--
	f.used, m.used = now, now
	wasProbe, wasEpProbe, wasMissed := it.probe, it.epProbe, it.missed
	it.probe, it.epProbe = false, false
	if wasProbe {
		m.probing = false
	}
	if wasEpProbe {
		e.eps[ei].probing = false
	}
	var excess time.Duration
	known := false
	if v == vDelivered {
		at := now
		if !o.At.IsZero() && o.At.Before(now) {
			at = o.At
		}
		excess, known = m.excess(at.Sub(it.sentAt), now)
	}
	e.endpointOutcome(ei, it.sentAt, v, o, excess, known, wasEpProbe, now)

	requeued := false
	switch v {
	case vDelivered:
		e.grow(m)
		f.delivered = max(f.delivered, it.seq)
		if s := it.n.Seq; s > 0 && (s > f.mark || !f.marked) {
			f.mark, f.marked, f.guessed = s, true, false // where a catch-up would start
		}
		if !m.reachable {
			e.setReachable(mi, now, "a notice was delivered")
		}
		e.final(ii, Delivered, o, now)
	case vUnreachable:
		e.shrink(m)
		it.held = true
		switch {
		case m.reachable && it.sentAt.Before(m.reachableAt):
			// Written before the member came back: stale news.
		case m.reachable:
			e.setUnreachable(mi, now, o)
		case wasProbe:
			m.backoff = min(2*m.backoff, e.s.retryMax)
			m.nextProbe = now.Add(m.backoff)
		}
		if !e.members.v[mi].reachable {
			e.hold(ii, o) // not stale news: it waits for them
		}
		e.requeue(ii)
		requeued = true
		if !e.members.v[mi].reachable {
			e.trim(mi, now)
		}
	case vLost, vOverloaded:
		e.shrink(m)
		// A lost request is tried again only while that cannot put it
		// behind a later notice the member already has.
		if int(it.attempts) <= e.s.lostRetries && (v == vOverloaded || it.seq > f.delivered) {
			e.requeue(ii)
			requeued = true
		} else if v == vLost {
			e.final(ii, Lost, o, now)
		} else {
			e.final(ii, Failed, o, now)
		}
		if wasProbe {
			m.nextProbe = now
		}
	case vNotSent:
		if it.bounces++; it.bounces < maxBounces {
			e.requeue(ii)
			requeued = true
		} else {
			e.final(ii, Failed, o, now)
		}
		if wasProbe {
			m.nextProbe = now
		}
	case vAborted:
		e.final(ii, Aborted, o, now)
	default:
		if o.Err == nil && !m.reachable {
			// Something answered for the member: they are there.
			e.setReachable(mi, now, o.Reason)
		}
		e.final(ii, Failed, o, now)
	}
	if wasMissed && !requeued {
		f := &e.flows.v[fi]
		f.missedOut = false
		if f.dropped > 0 {
			e.ensurePlaceholder(fi, now)
		}
		e.settleMark(fi)
	}
	e.refreshMember(mi)
	e.maybeProbe(mi, now)
}

// endpointOutcome feeds an outcome to the endpoint's health and pacer.
func (e *engine) endpointOutcome(ei int, sentAt time.Time, v verdict, o Outcome, excess time.Duration, known, wasProbe bool, now time.Time) {
	ep := &e.eps[ei]
	switch v {
	case vLost:
		// Down only when nothing at all was answered since this request
		// was written: then the endpoint was silent for a whole reply
		// timeout. Losses amid answers are congestion, for the pacer.
		if !ep.lastAnswer.After(sentAt) {
			ep.lostRun++
		}
		ep.pacer.lostOne(sentAt)
		// It may have been executed: count its transaction as on wait.
		ep.wait.add(now)
		if wasProbe {
			e.epProbeFailed(ei, now)
		} else if ep.lostRun >= downAfterLost {
			e.epDown(ei, now, "requests go unanswered")
		}
	case vNotSent:
		if wasProbe {
			e.epProbeFailed(ei, now)
		} else {
			e.epDown(ei, now, o.String())
		}
	case vAborted:
	default:
		ep.lostRun, ep.lastAnswer = 0, now
		if o.Err == nil {
			ep.wait.add(now)
		}
		if v == vOverloaded {
			ep.pacer.overloaded(sentAt)
		} else {
			ep.pacer.reply(sentAt, excess, known)
		}
		if !ep.up {
			e.epUp(ei, now)
		}
	}
}

// excess returns how much later than the member's usual reply time a 2xx
// came, and learns from it. known is false until there is a baseline.
// The baseline is the least reply time over the current and the previous
// epoch of baseWindow, so it follows a member who moved to a slower network.
func (m *member) excess(lat time.Duration, now time.Time) (time.Duration, bool) {
	if now.Sub(m.epoch) >= baseWindow {
		m.basePrev, m.base, m.epoch = m.base, 0, now
	}
	base := m.base
	if base == 0 || (m.basePrev != 0 && m.basePrev < base) {
		base = m.basePrev
	}
	if m.base == 0 || lat < m.base {
		m.base = max(lat, 1)
	}
	if base == 0 {
		return 0, false
	}
	return lat - base, true
}

// faultOf is the Fault a Sender's error says it is (Sender); any other
// error refuses the notice.
func faultOf(err error) Fault {
	var f interface{ Fault() Fault }
	if errors.As(err, &f) {
		return f.Fault()
	}
	return FaultRefused
}

// sendFailed handles a request the Sender refused: it was not written.
func (e *engine) sendFailed(tag uint64, err error, now time.Time) {
	ii := e.itemOf(tag)
	if ii == nilIdx {
		return
	}
	it := &e.items.v[ii]
	if it.attempts > 0 {
		it.attempts--
	}
	e.complete(tag, Outcome{Fault: faultOf(err), Err: err, Reason: err.Error()}, now)
}
