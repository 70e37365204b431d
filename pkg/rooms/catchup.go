package rooms

import (
	"context"

	"github.com/imcd-sip/imcd/pkg/delivery"
	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/metrics"
)

// Catch-up, on the shard's side (docs/delivery.md, "Members who are
// away"): delivery asks (Runtime.FillCatchUp) for the lines a member who
// is back missed; the room's committer reads them once the lines before
// the bound are written, and the shard hands them back to delivery as
// notices.

// handleCatchUp sends a catch-up request to the committer, bounded by the
// room's newest line when the member has no line kept: every line up to
// it has been submitted already, and delivery ends what the catch-up
// covers. Nothing waits behind it: it changes nothing.
func (s *shard) handleCatchUp(c *catchUp) {
	if err := s.admit(); err != nil {
		s.catchUpFailed(c.req, err)
		return
	}
	c.upTo = c.req.Before - 1
	if c.req.Before <= 0 {
		c.upTo = s.seqs[c.req.Room.Key()]
	}
	s.toCommitter(&catchUpJob{catchUp: c})
}

// catchUpJob reads what a member missed, on the committer.
type catchUpJob struct {
	catchUp *catchUp
	read    page
}

// run reads the newest catchup_max lines the member missed and how many
// there were, once the lines up to the bound are written (those not
// written within history.MaxWait are left to the member's flow: the bound
// comes down to what is written).
func (j *catchUpJob) run(s *shard) {
	c := j.catchUp
	r := c.req
	key := r.Room.Key()
	s.history.WaitWritten(key, c.upTo)
	c.upTo = min(c.upTo, s.history.WrittenUpTo(key))
	if c.upTo <= r.After {
		return
	}
	limit, member := s.cfg.CatchUpMax, r.Member.String()
	lines, err := s.hist.MissedLines(context.Background(), r.Room, member, r.After, c.upTo, limit)
	j.read.fill(lines, err, limit, func() (int64, error) {
		return s.hist.CountMissed(context.Background(), r.Room, member, r.After, c.upTo)
	})
}

// finish hands what the committer read back to delivery, as the catch-up
// notices (none when nothing was missed), or the error.
func (j *catchUpJob) finish(s *shard) {
	c := j.catchUp
	r := c.req
	reply := delivery.CatchUpReply{Room: r.Room, Member: r.Member, Token: r.Token, UpTo: c.upTo, Err: j.read.err}
	if j.read.err == nil {
		reply.Notices = s.engine.HistoryNotices(s.engine.CatchUpQuery(r.Room, r.Member, r.After), j.read.stored, j.read.total)
		s.metrics.CatchUp(metrics.CatchUpRead, len(j.read.stored))
	} else {
		s.metrics.CatchUp(metrics.CatchUpFailed, 0)
		s.logger.Warn("catch-up not read from the history", logkey.Room, r.Room.String(), logkey.Member, r.Member.String(), logkey.Err, j.read.err)
	}
	s.delivery.CatchUp(reply)
}
