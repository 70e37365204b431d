package delivery

import (
	"fmt"
	"time"

	"github.com/imcd-sip/imcd/pkg/logkey"
)

// settings are the Scheduler's fields with defaults applied.
type settings struct {
	rateMax, rateMin, rateStart, rateStep float64
	burst                                 int
	quantum                               time.Duration // least time between rounds of writes
	adjustEvery, lateAfter                time.Duration
	outstanding                           int // most transactions alive per endpoint, whatever the memory says
	limit                                 int // the cap before the memory is read
	waitTime                              time.Duration
	shmShare                              float64
	shmEvery                              time.Duration
	memberInflight                        int
	memberQueue                           int
	memberQueueAge                        time.Duration
	queueLimit, roomLimit                 int
	retry, retryMax                       time.Duration
	lostRetries                           int
	ghostAfter                            time.Duration
	missed                                bool // a MissedNotice callback is set
	catchUp                               bool // a FillCatchUp callback is set
}

// Timers of the engine that are not configuration.
const (
	sweepEvery      = time.Second      // ages, probes and ghosts of unreachable members
	idleEvery       = 10 * time.Second // forgetting idle flows, groups and members
	idleAfter       = time.Minute      // how long an empty flow or member is kept for reuse
	baseWindow      = 2 * time.Minute  // epoch of a member's baseline reply time
	endpointRetry   = time.Second      // first probe of a down endpoint
	endpointRetryTo = 30 * time.Second // longest wait between its probes
	downAfterLost   = 3                // lost requests with no answer since they were written: endpoint down
	maxBounces      = 8                // writes that never reached OpenSIPS before a notice fails
)

// endpoint is one OpenSIPS: its pacer, its outstanding transactions, its
// health.
type endpoint struct {
	name     string
	pacer    pacer
	wait     waitRing
	inflight int
	limit    int // cap on alive: settings.limit, then what the memory allows
	shm      shmState

	up         bool
	probing    bool
	probeAt    time.Time
	backoff    time.Duration
	lostRun    int       // lost requests written after the last answer
	lastAnswer time.Time // when OpenSIPS last answered anything
	downSince  time.Time
}

func newEndpoint(i int, ep Endpoint, s settings, now time.Time) endpoint {
	name := ep.Name
	if name == "" {
		name = fmt.Sprintf("opensips%d", i)
	}
	e := endpoint{name: name, up: true, backoff: endpointRetry, limit: s.limit, shm: shmState{idleUsed: -1}}
	e.pacer.init(now, s.rateStart, s.rateMin, s.rateMax, s.rateStep, s.burst, s.adjustEvery, s.lateAfter)
	e.wait.init(now, s.waitTime)
	return e
}

// alive returns the transactions imcd keeps in this OpenSIPS: awaiting
// their final reply, or on wait after it.
func (ep *endpoint) alive(now time.Time) int { return ep.inflight + ep.wait.count(now) }

// chooseEndpoint returns the endpoint the next request goes to: a down
// endpoint whose probe is due (one request, to see whether it answers
// again), else among the endpoints that are up, under their cap and have a
// token, the one with the fewest requests in flight. It returns -1 when none
// may send now, and reports whether an endpoint under its cap lacked only a
// token (the rate held work back).
func (e *engine) chooseEndpoint(now time.Time) (ei int, probe, rateBound bool) {
	for i := range e.eps {
		ep := &e.eps[i]
		if !ep.up && !ep.probing && !now.Before(ep.probeAt) && ep.pacer.ready(now) {
			return i, true, false
		}
	}
	ei = -1
	for i := range e.eps {
		ep := &e.eps[i]
		if !ep.up || ep.alive(now) >= ep.limit {
			continue
		}
		if !ep.pacer.ready(now) {
			rateBound = true
			continue
		}
		if ei < 0 || ep.inflight < e.eps[ei].inflight {
			ei = i
		}
	}
	return ei, false, rateBound
}

// epDown stops sending to an endpoint but for a probe now and then.
func (e *engine) epDown(ei int, now time.Time, why string) {
	ep := &e.eps[ei]
	if !ep.up {
		return
	}
	ep.up, ep.downSince = false, now
	ep.backoff = endpointRetry
	ep.probeAt = now.Add(ep.backoff)
	e.log.Warn("OpenSIPS endpoint down: sending only a probe now and then", logkey.Endpoint, ep.name, logkey.Reason, why, logkey.InFlight, ep.inflight)
}

// epUp resumes sending to an endpoint that answered.
func (e *engine) epUp(ei int, now time.Time) {
	ep := &e.eps[ei]
	if ep.up {
		return
	}
	ep.up, ep.lostRun = true, 0
	e.log.Info("OpenSIPS endpoint answers again", logkey.Endpoint, ep.name, logkey.DownFor, now.Sub(ep.downSince).String())
}

// epProbeFailed waits longer before the next probe of a down endpoint.
func (e *engine) epProbeFailed(ei int, now time.Time) {
	ep := &e.eps[ei]
	ep.backoff = min(2*ep.backoff, endpointRetryTo)
	ep.probeAt = now.Add(ep.backoff)
}
