package opensipstest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/valyala/fastjson"

	"github.com/imcd-sip/imcd/pkg/logkey"
)

// miItem is one datagram read from the MI socket, waiting for the MI worker.
type miItem struct {
	gen      int // the socket generation it came in on
	from     netip.AddrPort
	raw      []byte
	received time.Time
}

// miQueue stands for the MI socket's receive buffer. The reader pushes
// every datagram it reads, at once; what does not fit under the bounds is
// dropped there, so the drop point is the queue's bound and not the
// scheduling of the fake's goroutines. The MI worker pops.
type miQueue struct {
	maxItems, maxBytes int           // 0 = no bound
	wake               chan struct{} // capacity 1: "something changed"

	mu        sync.Mutex
	ring      []miItem
	head, n   int
	bytes     int
	paused    bool
	resumedAt time.Time
	received  int
	dropped   int
	served    int
}

func newMIQueue(maxItems, maxBytes int) *miQueue {
	q := &miQueue{maxItems: maxItems, maxBytes: maxBytes, wake: make(chan struct{}, 1)}
	if maxItems > 0 {
		q.ring = make([]miItem, maxItems)
	}
	return q
}

func (q *miQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// push queues it, or drops it when a bound would be exceeded; it reports
// whether it was queued.
func (q *miQueue) push(it miItem) bool {
	q.mu.Lock()
	q.received++
	if q.maxItems > 0 && q.n >= q.maxItems || q.maxBytes > 0 && q.bytes+len(it.raw) > q.maxBytes {
		q.dropped++
		q.mu.Unlock()
		return false
	}
	if q.n == len(q.ring) { // unbounded in datagrams: grow
		grown := make([]miItem, max(16, 2*len(q.ring)))
		for i := range q.n {
			grown[i] = q.ring[(q.head+i)%len(q.ring)]
		}
		q.ring, q.head = grown, 0
	}
	q.ring[(q.head+q.n)%len(q.ring)] = it
	q.n++
	q.bytes += len(it.raw)
	q.mu.Unlock()
	q.signal()
	return true
}

// pop waits for the oldest datagram while the queue is empty or paused. It
// returns false when quit is closed. resumedAt is the last ResumeMI.
func (q *miQueue) pop(quit <-chan struct{}) (it miItem, resumedAt time.Time, ok bool) {
	for {
		q.mu.Lock()
		if q.n > 0 && !q.paused {
			it = q.ring[q.head]
			q.ring[q.head] = miItem{}
			q.head = (q.head + 1) % len(q.ring)
			q.n--
			q.bytes -= len(it.raw)
			q.served++
			resumedAt = q.resumedAt
			q.mu.Unlock()
			return it, resumedAt, true
		}
		q.mu.Unlock()
		select {
		case <-q.wake:
		case <-quit:
			return miItem{}, time.Time{}, false
		}
	}
}

// clear forgets every queued datagram, as closing a socket discards its
// receive buffer.
func (q *miQueue) clear() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.n > 0 {
		q.ring[q.head] = miItem{}
		q.head = (q.head + 1) % len(q.ring)
		q.n--
	}
	q.bytes = 0
}

func (q *miQueue) setPaused(p bool) {
	q.mu.Lock()
	if q.paused && !p {
		q.resumedAt = time.Now()
	}
	q.paused = p
	q.mu.Unlock()
	q.signal()
}

// readMI reads one MI socket until it is closed, into the queue. gen is
// the generation the socket belongs to: what it read is discarded once the
// server restarted.
func (s *Server) readMI(mi *net.UDPConn, gen int) {
	buf := make([]byte, 65536)
	for {
		n, from, err := mi.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		it := miItem{gen: gen, from: from, raw: append([]byte(nil), buf[:n]...), received: time.Now()}
		if !s.miq.push(it) {
			s.log.Debug("MI request dropped: receive buffer full", logkey.From, from.String())
		}
		s.rec.notify()
	}
}

// serveMIQueue is the fake's one MI process: it takes the requests in
// arrival order and serves each, then, with a rate set, stays busy for
// 1/MIRate before it takes the next. Its clock is virtual: a request starts
// when the previous one is done or when it arrived, whichever is later, so a
// timer that fires late is caught up on instead of slowing the rate down.
func (s *Server) serveMIQueue() {
	var p, q fastjson.Parser
	var interval time.Duration
	if s.opts.MIRate > 0 {
		interval = time.Duration(float64(time.Second) / s.opts.MIRate)
	}
	var busy time.Time // when the request being served is done
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		it, resumedAt, ok := s.miq.pop(s.quit)
		if !ok {
			return
		}
		s.mu.Lock()
		current := it.gen == s.gen && !s.down && !s.closed
		s.mu.Unlock()
		if current {
			s.serveRequest(&p, &q, it)
		}
		s.rec.notify()
		if interval <= 0 {
			continue
		}
		start := busy
		if it.received.After(start) {
			start = it.received
		}
		if resumedAt.After(start) {
			start = resumedAt
		}
		busy = start.Add(interval)
		if d := time.Until(busy); d > 0 {
			t.Reset(d)
			select {
			case <-t.C:
			case <-s.quit:
				return
			}
		}
	}
}

// PauseMI stops the fake's MI process from taking requests, as if it were
// stuck in a long command: requests pile up in the receive buffer and
// overflow it. Tests use it to fill the buffer deterministically.
func (s *Server) PauseMI() { s.miq.setPaused(true) }

// ResumeMI lets the MI process take requests again, at MIRate.
func (s *Server) ResumeMI() { s.miq.setPaused(false) }

// MIStats counts what became of the MI requests and t_uac_dlg transactions.
type MIStats struct {
	// Received counts the datagrams read from the MI socket; Dropped those
	// of them that found the receive buffer full; Queued those waiting in
	// it now; Served those the MI process took.
	Received, Dropped, Queued, Served int
	// Outstanding is the number of t_uac_dlg transactions in progress,
	// PeakOutstanding its highest value, and Refused the t_uac_dlg
	// requests refused because MaxTransactions were in progress.
	Outstanding, PeakOutstanding, Refused int
}

// MIStats returns the counters since Start (or the last Reset).
func (s *Server) MIStats() MIStats {
	s.miq.mu.Lock()
	st := MIStats{Received: s.miq.received, Dropped: s.miq.dropped, Queued: s.miq.n, Served: s.miq.served}
	s.miq.mu.Unlock()
	st.Outstanding, st.PeakOutstanding, st.Refused = s.tx.counts()
	return st
}

// Dropped returns how many MI requests were dropped because the receive
// buffer was full (MIRecvBuffer, MIRecvBufferBytes). They got no reply.
func (s *Server) Dropped() int { return s.MIStats().Dropped }

// Outstanding returns the number of t_uac_dlg transactions in progress.
func (s *Server) Outstanding() int { return s.MIStats().Outstanding }

// PeakOutstanding returns the highest number of t_uac_dlg transactions in
// progress at once.
func (s *Server) PeakOutstanding() int { return s.MIStats().PeakOutstanding }

// WaitMIStats waits until cond holds for the counters and returns them.
func (s *Server) WaitMIStats(ctx context.Context, cond func(MIStats) bool) (MIStats, error) {
	for {
		ch := s.rec.changed()
		st := s.MIStats()
		if cond(st) {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("opensipstest: MI counters %+v: %w", st, ctx.Err())
		case <-ch:
		}
	}
}

func (q *miQueue) resetCounts() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.received, q.dropped, q.served = q.n, 0, 0
}
