package opensips

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/imcd-sip/imcd/pkg/logkey"
)

// childLogger returns l (or a discarding logger when l is nil) with the
// system attribute set.
func childLogger(l *slog.Logger, system string) *slog.Logger {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return l.With(logkey.System, system)
}

// rateLimit lets one log record through per interval and counts the ones it
// held back, so that a flood (OpenSIPS down, a noisy sender) costs one line
// per interval.
type rateLimit struct {
	interval   time.Duration
	next       atomic.Int64 // unix nanos before which records are held back
	suppressed atomic.Int64
}

// allow reports whether a record may be logged now and, if so, how many were
// held back since the last one.
func (r *rateLimit) allow() (bool, int64) {
	now := time.Now().UnixNano()
	next := r.next.Load()
	if now < next || !r.next.CompareAndSwap(next, now+int64(r.interval)) {
		r.suppressed.Add(1)
		return false, 0
	}
	return true, r.suppressed.Swap(0)
}
