// Package logging holds what every imcd component's logging shares besides
// the attribute keys (pkg/logkey): how a component gets its child logger
// (Child), and the rate limit of records a flood would repeat (Limit).
package logging

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/imcd-sip/imcd/pkg/logkey"
)

// LevelNotice is the slog level of OpenSIPS's "notice", imcd's default:
// between slog's Info and Warn. What an operator should see on every start
// and stop is logged at it.
const LevelNotice = slog.Level(2)

// Notice logs msg at LevelNotice.
func Notice(l *slog.Logger, msg string, attrs ...any) {
	l.Log(context.Background(), LevelNotice, msg, attrs...)
}

// Child returns l, or a logger that discards everything when l is nil,
// with logkey.System set to system (one of the logkey.System* values): how
// every component gets its logger.
func Child(l *slog.Logger, system string) *slog.Logger {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return l.With(logkey.System, system)
}

// Limit lets one log record through per Interval and counts the ones it
// held back, so that a flood (OpenSIPS down, a noisy sender) costs one line
// per interval, logged with logkey.Suppressed. Safe for concurrent use; the zero
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
