package history

import (
	"context"

	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/store"
)

// markChange is a catch-up mark to store (away) or delete.
type markChange struct {
	mark store.Mark
	away bool
}

// Mark queues a catch-up mark to store (away: the member became
// unreachable with this line the last delivered to them) or delete (they
// were caught up), without blocking; a full queue leaves it out (logged):
// the member's catch-up after a restart would start from an older mark, or
// not at all.
func (w *Writer) Mark(m store.Mark, away bool) {
	select {
	case w.queue <- item{mark: &markChange{mark: m, away: away}}:
	default:
		w.log.Warn("history queue full: a catch-up mark is not stored", logkey.Room, m.Room.String(), logkey.Member, m.Member.String())
	}
}

// writeMarks stores and deletes marks in the order they came, again and
// again until done or imcd stops, like write.
func (w *Writer) writeMarks(ctx context.Context, marks []markChange) {
	for len(marks) > 0 {
		n := 1
		for n < len(marks) && marks[n].away == marks[0].away {
			n++
		}
		run := make([]store.Mark, n)
		for i := range run {
			run[i] = marks[i].mark
		}
		away := marks[0].away
		w.retry(ctx, func(ctx context.Context) error {
			if away {
				return w.st.SetMarks(ctx, run)
			}
			return w.st.DeleteMarks(ctx, run)
		}, logkey.Marks, len(run))
		marks = marks[n:]
	}
}
