package delivery

import "time"

// pacer is one endpoint's write rate: a token bucket (a request costs one
// token; at most burst are saved up, so a burst never exceeds what
// OpenSIPS's MI socket buffer takes) whose rate is set by AIMD.
//
// Why AIMD. The limit that matters is one imcd cannot see: how fast the
// single MI process of OpenSIPS drains its socket, which moves with
// OpenSIPS's other work. Past it, requests first queue in the socket buffer
// (replies come later) and then are dropped by the kernel (replies never
// come). Additive increase, multiplicative decrease is the rule that finds
// such a moving limit without knowing it and stays stable when several
// senders share it (several imcd, or imcd beside other MI users): each
// interval in which OpenSIPS kept up and imcd had more to send than the rate
// let through, the rate grows by a constant step; a sign of congestion cuts
// it by a factor. Delay-based alternatives (Vegas, BBR) need a clean
// round-trip signal, and ours mixes MI queueing with each member's network;
// we use delay only as one more congestion sign, measured per member
// against its own minimum so that a far or slow phone is not mistaken for a
// congested OpenSIPS.
//
// Signs of congestion, each cutting the rate at most once per interval and
// only for requests written after the previous cut (as TCP reacts once per
// window):
//   - a request OpenSIPS never answered (lost): × 1/2;
//   - OpenSIPS refused a request for want of memory (JSON-RPC 500): × 1/2;
//   - in the interval even the least delayed 2xx came lateAfter or more
//     behind its member's usual reply time (MI queueing): × 4/5.
type pacer struct {
	rate, minRate, maxRate, step float64 // requests per second
	burst, tokens                float64
	last                         time.Time // last refill

	every     time.Duration // AIMD interval
	lateAfter time.Duration
	next      time.Time // end of the current interval

	// Signs seen in the current interval.
	lost, overload bool
	answered       int           // requests answered with a SIP status
	samples        int           // 2xx with a known member baseline
	minExcess      time.Duration // least delay over the baseline among them
	limited        bool          // work waited for a token
	cutAt          time.Time     // last decrease
	// starting: no sign of congestion yet, so the rate grows by a
	// quarter an interval instead of by step (TCP's slow start): from its
	// start, a fifth of the ceiling, it reaches the ceiling in 0.7 s
	// rather than in 8, and a first burst of fan-out does not queue for
	// seconds behind a rate still climbing. The first cut ends it.
	starting bool
}

// Factors and thresholds of the AIMD rule.
const (
	cutLost         = 0.5
	cutLate         = 0.8
	slowStartGrowth = 1.25
	minLateSamples  = 3
)

func (p *pacer) init(now time.Time, start, minRate, maxRate, step float64, burst int, every, lateAfter time.Duration) {
	*p = pacer{rate: start, minRate: minRate, maxRate: maxRate, step: step, burst: float64(burst),
		tokens: float64(burst), last: now, every: every, lateAfter: lateAfter, next: now.Add(every), starting: true}
}

func (p *pacer) refill(now time.Time) {
	if d := now.Sub(p.last); d > 0 {
		p.tokens = min(p.burst, p.tokens+p.rate*d.Seconds())
		p.last = now
	}
}

// ready reports whether a request may be written now.
func (p *pacer) ready(now time.Time) bool {
	p.refill(now)
	return p.tokens >= 1
}

// take spends the token of one request; call after ready.
func (p *pacer) take() { p.tokens-- }

// wait returns how long until the next token.
func (p *pacer) wait(now time.Time) time.Duration {
	p.refill(now)
	if p.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - p.tokens) / p.rate * float64(time.Second))
}

// answered notes a request OpenSIPS answered with a SIP status. excess is
// how much later than its member's baseline a 2xx came; known is false
// when there is no baseline yet (or the reply is not a 2xx).
func (p *pacer) reply(sentAt time.Time, excess time.Duration, known bool) {
	p.answered++
	if !known || sentAt.Before(p.cutAt) {
		return
	}
	if p.samples == 0 || excess < p.minExcess {
		p.minExcess = excess
	}
	p.samples++
}

// lostOne notes a request OpenSIPS never answered.
func (p *pacer) lostOne(sentAt time.Time) {
	if !sentAt.Before(p.cutAt) {
		p.lost = true
	}
}

// overloaded notes a request OpenSIPS refused for want of resources.
func (p *pacer) overloaded(sentAt time.Time) {
	if !sentAt.Before(p.cutAt) {
		p.overload = true
	}
}

// adjust applies the AIMD rule when the interval is over. It returns the
// new rate and why it changed ("" when it did not).
func (p *pacer) adjust(now time.Time) (rate float64, why string) {
	if now.Before(p.next) {
		return p.rate, ""
	}
	old := p.rate
	switch {
	case p.lost:
		p.rate, why = p.rate*cutLost, "lost"
	case p.overload:
		p.rate, why = p.rate*cutLost, "overloaded"
	case p.samples >= minLateSamples && p.minExcess >= p.lateAfter:
		p.rate, why = p.rate*cutLate, "late"
	case p.answered > 0 && p.limited && p.starting:
		p.rate, why = max(p.rate*slowStartGrowth, p.rate+p.step), "increase (starting)"
	case p.answered > 0 && p.limited:
		p.rate, why = p.rate+p.step, "increase"
	}
	p.rate = max(p.minRate, min(p.maxRate, p.rate))
	if p.rate < old {
		p.cutAt, p.starting = now, false
	}
	if p.rate == old {
		why = ""
	}
	p.next = now.Add(p.every)
	p.lost, p.overload, p.limited = false, false, false
	p.answered, p.samples, p.minExcess = 0, 0, 0
	return p.rate, why
}

// waitRing estimates how many transactions OpenSIPS keeps after their final
// reply: tm puts a completed transaction "on wait" for wt_timer (5 s by
// default) before freeing it, so its shared memory is still in use. It
// counts completions over the last span in buckets of waitBucket.
type waitRing struct {
	counts []int32
	base   time.Time // bucket numbers count from here (monotonic clock)
	cur    int64     // number of the newest bucket
	total  int
}

const waitBucket = 100 * time.Millisecond

func (w *waitRing) init(now time.Time, span time.Duration) {
	*w = waitRing{base: now}
	if span > 0 {
		w.counts = make([]int32, int(span/waitBucket)+1)
	}
}

func (w *waitRing) advance(now time.Time) {
	b := int64(now.Sub(w.base) / waitBucket)
	if len(w.counts) == 0 || b <= w.cur {
		return
	}
	n := int64(len(w.counts))
	if b-w.cur >= n {
		clear(w.counts)
		w.total, w.cur = 0, b
		return
	}
	for w.cur < b {
		w.cur++
		i := w.cur % n
		w.total -= int(w.counts[i])
		w.counts[i] = 0
	}
}

// add notes one completed transaction.
func (w *waitRing) add(now time.Time) {
	if len(w.counts) == 0 {
		return
	}
	w.advance(now)
	w.counts[w.cur%int64(len(w.counts))]++
	w.total++
}

// count returns the transactions still in their wait state.
func (w *waitRing) count(now time.Time) int {
	w.advance(now)
	return w.total
}
