package history

import (
	"context"
	"time"

	"github.com/imcd-sip/imcd/pkg/logkey"
)

// purgeEvery is how often old lines are purged.
const purgeEvery = 5 * time.Minute

// purge deletes lines beyond KeepLines or older than MaxAge, in small
// statements: at start (imcd may have been stopped for long, or the limits
// lowered), then every purgeEvery.
func (w *Writer) purge(ctx context.Context) {
	if w.cfg.KeepLines <= 0 && w.cfg.MaxAge <= 0 {
		return
	}
	w.Purge(ctx, time.Now())
	t := time.NewTicker(purgeEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			w.Purge(ctx, now)
		}
	}
}

// Purge deletes, now, the lines beyond KeepLines or older than MaxAge at
// now: what the purge goroutine does every purgeEvery.
func (w *Writer) Purge(ctx context.Context, now time.Time) {
	var olderThan time.Time
	if w.cfg.MaxAge > 0 {
		olderThan = now.Add(-w.cfg.MaxAge)
	}
	n, err := w.st.PurgeHistory(ctx, w.cfg.KeepLines, olderThan, 0)
	w.purged.Add(int64(n))
	if err != nil {
		w.log.Warn("history purge failed; trying again later", logkey.Err, err)
		return
	}
	if n > 0 {
		w.log.Info("old history lines purged", logkey.Lines, n)
	}
}
