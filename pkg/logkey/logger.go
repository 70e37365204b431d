package logkey

import (
	"log/slog"
	"sync/atomic"
	"time"
)

// Child returns l, or a logger that discards everything when l is nil,
// with System set: how every component gets its logger.
func Child(l *slog.Logger, system string) *slog.Logger {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return l.With(System, system)
}

// Limit lets one log record through per Interval and counts the ones it
// held back, so that a flood (OpenSIPS down, a noisy sender) costs one line
// per interval, logged with Suppressed. Safe for concurrent use; the zero
// Interval lets everything through.
type Limit struct {
	Interval   time.Duration
	next       atomic.Int64 // unix nanos before which records are held back
	suppressed atomic.Int64
}

// Allow reports whether a record may be logged at now and, if so, how many
// were held back since the last one.
func (r *Limit) Allow(now time.Time) (bool, int64) {
	t, next := now.UnixNano(), r.next.Load()
	if t < next || !r.next.CompareAndSwap(next, t+int64(r.Interval)) {
		r.suppressed.Add(1)
		return false, 0
	}
	return true, r.suppressed.Swap(0)
}
