package delivery

import (
	"sync"
	"time"
)

// rateLimit lets one log record through per interval and counts the ones it
// held back, so that a flood costs one line per interval.
type rateLimit struct {
	interval   time.Duration
	mu         sync.Mutex
	next       time.Time
	suppressed int
}

// allow reports whether a record may be logged now and, if so, how many were
// held back since the last one.
func (r *rateLimit) allow(now time.Time) (bool, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Before(r.next) {
		r.suppressed++
		return false, 0
	}
	n := r.suppressed
	r.next, r.suppressed = now.Add(r.interval), 0
	return true, n
}
