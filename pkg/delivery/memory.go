package delivery

import (
	"context"
	"time"

	"github.com/imcd-sip/imcd/pkg/logkey"
)

// Capping the transactions alive by OpenSIPS's memory.
//
// Every transaction imcd starts lives in OpenSIPS's shared memory until
// tm's wait timer frees it, seconds after its reply: at a few thousand
// deliveries a second that is tens of thousands of transactions, hundreds
// of megabytes. A fixed cap is either too low for a node given gigabytes
// (it caps the throughput: cap / (reply time + wt_timer)) or too high for
// one given OpenSIPS's default 32 MB, which then runs out of memory and
// stops routing anything, not only imcd's requests. So each ShmEvery the
// scheduler reads the node's shared memory and sets the cap to the
// transactions alive now plus what still fits in ShmShare of it:
//
//	limit = alive + (ShmShare × total − used) / per transaction
//
// Everything else OpenSIPS keeps there (registrations, dialogs, the users'
// own transactions) is in used, so it leaves imcd less room rather than
// being overrun. A transaction's size depends on the path and the body
// (about 5.5 KB straight to a contact, 15.5 KB for the two of the proxy
// loop, more with a long line): until the readings show it, one is
// assumed to take shmUnknownPer, which no usual line exceeds; then it is
// learnt, (used − used when nothing of imcd's was alive) / alive, never
// taken below shmMinPer. Overestimating only makes the cap reach the share
// in a few readings instead of one. And the cap at most doubles from one
// reading to the next (plus shmGrowth), so that a size the readings got
// wrong costs one step, not the node.
const (
	shmUnknownPer = 48 << 10
	shmMinPer     = 8 << 10
	shmGrowth     = 1024
	// minPerSample is the fewest transactions alive for a reading to
	// estimate their size: fewer are lost in the noise of the rest.
	minPerSample = 256
	// minLimit keeps a little delivery going when OpenSIPS's memory is
	// filled by something else; a node out of memory refuses the
	// requests, which cuts the rate (pacer.overloaded).
	minLimit = 64
	// maxOutstanding is the cap when Outstanding is left to the memory:
	// only a bound on imcd's own bookkeeping.
	maxOutstanding = 1 << 22
	// shmReadTimeout bounds one reading.
	shmReadTimeout = time.Second
)

// shmState is what an endpoint knows of its node's memory.
type shmState struct {
	last     Memory
	idleUsed int64 // used at a reading with nothing of imcd's alive; -1 until one
	per      int64 // bytes per transaction, as learnt; 0 until then
	over     bool  // used is past the share
}

// memory sets endpoint ei's cap from a reading of its node's memory,
// taken while alive of imcd's transactions were alive there (counted
// before the reading: those written during it may be missing from m.Used,
// and counting them would let the cap overshoot the share by as many). It
// reports the new cap and whether the node's memory is past the share.
func (e *engine) memory(ei int, m Memory, alive int, now time.Time) (limit int, over bool) {
	ep := &e.eps[ei]
	if m.Total <= 0 || e.s.shmShare <= 0 {
		return ep.limit, false
	}
	if alive == 0 && ep.alive(now) == 0 {
		ep.shm.idleUsed = m.Used
	}
	if ep.shm.idleUsed >= 0 && alive >= minPerSample {
		ep.shm.per = max(shmMinPer, (m.Used-ep.shm.idleUsed)/int64(alive))
	}
	per := ep.shm.per
	if per == 0 {
		per = shmUnknownPer
	}
	free := int64(e.s.shmShare*float64(m.Total)) - m.Used
	grow := min(free/per, int64(max(alive, shmGrowth)))
	ep.limit = max(minLimit, min(e.s.outstanding, alive+int(grow)))
	ep.shm.last, ep.shm.over = m, free < 0
	return ep.limit, free < 0
}

// watchMemory reads endpoint ei's memory every shmEvery until Close.
func (s *Scheduler) watchMemory(ei int, r MemoryReader) {
	defer s.wg.Done()
	name := s.e.eps[ei].name
	timer := s.clock.NewTimer(0)
	defer timer.Stop()
	first, wasOver := true, false
	for {
		select {
		case <-s.stop:
			return
		case <-timer.C():
		}
		s.mu.Lock()
		alive := s.e.eps[ei].alive(s.clock.Now())
		s.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), shmReadTimeout)
		m, err := r.SharedMemory(ctx)
		cancel()
		timer.Reset(s.e.s.shmEvery)
		if err != nil {
			if ok, suppressed := s.memLog.Allow(time.Now()); ok {
				s.log.Warn("cannot read OpenSIPS's shared memory: the cap on transactions stays where it was",
					logkey.Endpoint, name, logkey.Err, err, logkey.Suppressed, suppressed)
			}
			continue
		}
		s.mu.Lock()
		limit, over := s.e.memory(ei, m, alive, s.clock.Now())
		s.mu.Unlock()
		s.signal() // a higher cap may let waiting notices go
		switch {
		case first:
			s.log.Info("OpenSIPS's shared memory read: imcd's transactions there are capped by what fits in their share",
				logkey.Endpoint, name, logkey.ShmTotal, m.Total, logkey.ShmUsed, m.Used, logkey.ShmShare, s.e.s.shmShare, logkey.Outstanding, limit)
		case over && !wasOver:
			s.log.Warn("OpenSIPS's shared memory is past imcd's share: no new transaction there until some end",
				logkey.Endpoint, name, logkey.ShmTotal, m.Total, logkey.ShmUsed, m.Used, logkey.ShmShare, s.e.s.shmShare)
		case !over && wasOver:
			s.log.Info("OpenSIPS's shared memory is back within imcd's share", logkey.Endpoint, name, logkey.ShmUsed, m.Used, logkey.Outstanding, limit)
		}
		first, wasOver = false, over
	}
}
