package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/imcd-sip/imcd/pkg/delivery"
	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/metrics"
	"github.com/imcd-sip/imcd/pkg/store"
)

// Catch-up (docs/delivery.md, "Members who are away"). With history on
// and catchup_max > 0, the scheduler keeps, per member and room, the
// history number of the last line delivered. When a member becomes
// unreachable it reports those marks (onMarks), which the history writer
// stores; when they are back, it asks (fillCatchUp) for the lines they
// missed, which the room's committer reads once the lines before the
// bound are written, and the shard hands back as notices (caughtUp). At
// start the stored marks make those members away again (restoreMarks), so
// a restart loses nothing of what they missed.

// catchUp is one catch-up request on its way through the room's shard
// and committer.
type catchUp struct {
	req  delivery.CatchUpRequest
	upTo int64 // the newest line it covers
}

// markChange is a catch-up mark to store (away) or delete.
type markChange struct {
	mark store.Mark
	away bool
}

// mark queues a catch-up mark to store (away) or delete, without
// blocking; a full queue leaves it out (logged): the member's catch-up
// after a restart would start from an older mark, or not at all.
func (w *historyWriter) mark(m store.Mark, away bool) {
	select {
	case w.queue <- historyItem{mark: &markChange{mark: m, away: away}}:
	default:
		w.log.Warn("history queue full: a catch-up mark is not stored", logkey.Room, m.Room.String(), logkey.Member, m.Member.String())
	}
}

// writeMarks stores and deletes marks in the order they came, again and
// again until done or imcd stops, like write.
func (w *historyWriter) writeMarks(ctx context.Context, marks []markChange) {
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

// catchUpOn reports whether members are caught up from the history.
func (d *Daemon) catchUpOn() bool { return d.history != nil && d.cfg.CatchUpMax > 0 }

// wireCatchUp gives the scheduler the catch-up callbacks, before it opens.
func (d *Daemon) wireCatchUp() {
	if !d.catchUpOn() {
		return
	}
	d.sched.FillCatchUp = d.fillCatchUp
	d.sched.OnMarks = d.onMarks
}

// restoreMarks tells the scheduler, once it is open, which members were
// away when imcd stopped, with the last line delivered to them in each
// room. Marks of rooms or members that are gone are deleted.
func (d *Daemon) restoreMarks() {
	marks := d.marksAtStart
	d.marksAtStart = nil
	if !d.catchUpOn() || len(marks) == 0 {
		return
	}
	var away []delivery.Mark
	var stale []delivery.MarkChange
	view := globalView{d}
	for _, m := range marks {
		if r := view.Room(m.Room.Key()); r != nil {
			if mem, ok := r.Member(m.Member); ok && mem.Active() {
				// As the room spells them: the flows are keyed by these.
				away = append(away, delivery.Mark{Room: r.URI, Member: mem.URI, Seq: m.Seq})
				continue
			}
		}
		stale = append(stale, delivery.MarkChange{Mark: delivery.Mark{Room: m.Room, Member: m.Member, Seq: m.Seq}})
	}
	d.sched.Away(away)
	d.onMarks(stale)
	d.notice("members away when imcd stopped: caught up from the history when they are back", logkey.Marks, len(away), logkey.StaleMarks, len(stale))
}

// onMarks is the scheduler's OnMarks: the marks to store or delete go to
// the history writer, in order, without blocking.
func (d *Daemon) onMarks(changes []delivery.MarkChange) {
	for _, c := range changes {
		d.history.mark(store.Mark{Room: c.Room, Member: c.Member, Seq: c.Seq}, c.Away)
	}
}

// fillCatchUp is the scheduler's FillCatchUp, on its goroutine: the
// request goes to the room's shard without blocking; when it cannot, the
// member is told how many they missed instead.
func (d *Daemon) fillCatchUp(r delivery.CatchUpRequest) {
	if d.isStopping() {
		d.catchUpFailed(r, ErrStopping)
		return
	}
	if s := d.shardFor(r.Room.Key()); !s.offer(task{kind: taskCatchUp, catchUp: &catchUp{req: r}}) {
		d.catchUpFailed(r, fmt.Errorf("%w (shard %d)", ErrBusy, s.id))
	}
}

func (d *Daemon) catchUpFailed(r delivery.CatchUpRequest, err error) {
	d.metrics.CatchUp(metrics.CatchUpFailed, 0)
	d.sched.CatchUp(delivery.CatchUpReply{Room: r.Room, Member: r.Member, Token: r.Token, Err: err})
}

// handleCatchUp sends a catch-up request to the committer, bounded by the
// room's newest line when the member has no line kept: every line up to
// it has been submitted already, and the scheduler ends what the catch-up
// covers. It takes no room line: it changes nothing.
func (s *shard) handleCatchUp(c *catchUp) {
	if err := s.admit(); err != nil {
		s.d.catchUpFailed(c.req, err)
		return
	}
	c.upTo = c.req.Before - 1
	if c.req.Before <= 0 {
		c.upTo = s.seqs[c.req.Room.Key()]
	}
	s.toCommitter(&commitJob{room: c.req.Room.Key(), catchUp: c, queued: time.Now()})
}

// readCatchUp reads, on the committer, the newest catchup_max lines the
// member missed and how many there were, once the lines up to the bound
// are written (those not written within historyWait are left to the
// member's flow: the bound comes down to what is written).
func (s *shard) readCatchUp(job *commitJob) {
	c := job.catchUp
	r := c.req
	key := r.Room.Key()
	s.d.history.waitWritten(key, c.upTo)
	c.upTo = min(c.upTo, s.d.history.writtenUpTo(key))
	if c.upTo <= r.After {
		return
	}
	limit, member := s.d.cfg.CatchUpMax, r.Member.String()
	lines, err := s.d.hist.MissedLines(context.Background(), r.Room, member, r.After, c.upTo, limit)
	job.page(lines, err, limit, func() (int64, error) {
		return s.d.hist.CountMissed(context.Background(), r.Room, member, r.After, c.upTo)
	})
}

// caughtUp hands what the committer read back to the scheduler, as the
// catch-up notices (none when nothing was missed), or the error.
func (s *shard) caughtUp(job *commitJob) {
	c := job.catchUp
	r := c.req
	reply := delivery.CatchUpReply{Room: r.Room, Member: r.Member, Token: r.Token, UpTo: c.upTo, Err: job.histErr}
	if job.histErr == nil {
		reply.Notices = s.d.engine.HistoryNotices(s.d.engine.CatchUpQuery(r.Room, r.Member, r.After), job.stored, job.total)
		s.d.metrics.CatchUp(metrics.CatchUpRead, len(job.stored))
	} else {
		s.d.metrics.CatchUp(metrics.CatchUpFailed, 0)
		s.logger.Warn("catch-up not read from the history", logkey.Room, r.Room.String(), logkey.Member, r.Member.String(), logkey.Err, job.histErr)
	}
	s.d.sched.CatchUp(reply)
}
