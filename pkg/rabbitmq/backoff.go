package rabbitmq

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is a doubling delay between Min and Max, with up to a fifth taken
// off at random so that instances that lost the broker together do not come
// back in lockstep.
type Backoff struct {
	// Min is the first delay; Max caps the doubling.
	Min, Max time.Duration
}

// next returns the delay after prev (0 for the first).
func (b Backoff) next(prev time.Duration) time.Duration {
	d := min(max(2*prev, b.Min), b.Max)
	if j := int64(d / 5); j > 0 {
		d -= time.Duration(rand.Int64N(j))
	}
	return d
}

// orDefault returns b with lo and hi where b has no bounds.
func (b Backoff) orDefault(lo, hi time.Duration) Backoff {
	if b.Min <= 0 {
		b.Min = lo
	}
	if b.Max <= 0 {
		b.Max = hi
	}
	b.Max = max(b.Max, b.Min)
	return b
}

// sleep waits d or until ctx is done; false when ctx ended it.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
