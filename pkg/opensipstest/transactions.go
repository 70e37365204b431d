package opensipstest

import (
	"container/heap"
	"net/netip"
	"sync"
	"time"
)

// transaction is one t_uac_dlg "transaction" in progress: its final reply
// is due at at.
type transaction struct {
	at    time.Time
	gen   int // the txTable generation it began in
	miGen int // the MI socket generation its request came in on
	to    netip.AddrPort
	reply []byte // nil for a notification: the transaction runs, nothing is sent
}

// txHeap orders transactions by due time.
type txHeap []*transaction

func (h txHeap) Len() int           { return len(h) }
func (h txHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h txHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *txHeap) Push(x any)        { *h = append(*h, x.(*transaction)) }
func (h *txHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return x
}

// txTable is tm's transaction table in miniature: it counts the
// transactions in progress and holds their final replies until they are
// due. One goroutine (runTransactions) sends them, so a thousand pending
// transactions cost no thousand goroutines.
type txTable struct {
	wake chan struct{} // capacity 1: an earlier deadline or a reset

	mu          sync.Mutex
	pending     txHeap
	gen         int // bumped by reset: older transactions vanish
	outstanding int
	peak        int
	refused     int
}

func newTxTable() *txTable { return &txTable{wake: make(chan struct{}, 1)} }

// begin counts a new transaction unless limit (> 0) are already in progress,
// in which case it counts a refusal. It returns the generation to schedule
// the transaction's end with.
func (t *txTable) begin(limit int) (gen int, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if limit > 0 && t.outstanding >= limit {
		t.refused++
		return 0, false
	}
	t.outstanding++
	t.peak = max(t.peak, t.outstanding)
	return t.gen, true
}

// schedule ends tx at tx.at: its reply is sent then and it stops counting.
func (t *txTable) schedule(tx *transaction) {
	t.mu.Lock()
	heap.Push(&t.pending, tx)
	first := t.pending[0] == tx
	t.mu.Unlock()
	if first {
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
}

// due pops the transactions due at now that belong to the current
// generation into dst, and returns the next deadline (zero when none).
func (t *txTable) due(now time.Time, dst []*transaction) ([]*transaction, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for len(t.pending) > 0 && !t.pending[0].at.After(now) {
		tx := heap.Pop(&t.pending).(*transaction)
		if tx.gen != t.gen {
			continue
		}
		t.outstanding--
		dst = append(dst, tx)
	}
	if len(t.pending) == 0 {
		return dst, time.Time{}
	}
	return dst, t.pending[0].at
}

// reset forgets every transaction in progress, as a restart of OpenSIPS
// does: their replies are never sent.
func (t *txTable) reset() {
	t.mu.Lock()
	t.gen++
	t.pending = nil
	t.outstanding = 0
	t.mu.Unlock()
}

// resetCounts restarts the peak and refusal counts from now.
func (t *txTable) resetCounts() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.peak, t.refused = t.outstanding, 0
}

func (t *txTable) counts() (outstanding, peak, refused int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.outstanding, t.peak, t.refused
}

// runTransactions sends each final reply when its transaction ends.
func (s *Server) runTransactions() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var batch []*transaction
	for {
		var next time.Time
		batch, next = s.tx.due(time.Now(), batch[:0])
		for i, tx := range batch {
			if tx.reply != nil {
				s.sendMI(tx.miGen, tx.to, tx.reply)
			}
			batch[i] = nil
		}
		if len(batch) > 0 {
			s.rec.notify()
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = time.Until(next)
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-s.tx.wake:
		case <-s.quit:
			return
		}
	}
}
