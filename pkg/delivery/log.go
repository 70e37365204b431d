package delivery

import (
	"sync"
	"time"
)

// Attribute keys used in log records.
const (
	keySystem   = "system"
	keyEndpoint = "endpoint"
	keyReason   = "reason"
	keyInFlight = "in_flight"
	keyDownFor  = "down_for"
	keyMember   = "member"
	keyRoom     = "room"
	keyStatus   = "status"
	keyKept     = "kept"
	keyDropped  = "dropped"
	keyRate     = "rate"
	keyOldRate  = "old_rate"
	keyAway     = "away_for"
	keyPanic    = "panic"
	keyErr      = "err"
)

// systemDelivery is the value of the "system" attribute.
const systemDelivery = "delivery"

const keySuppressed = "suppressed"

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
