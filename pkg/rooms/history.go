package rooms

import (
	"context"
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/store"
)

// The history, on the shard's side: chat lines numbered and handed to the
// history writer (pkg/history), history queries and topics saved and read
// on the committer.

// record numbers a chat line in its room (of key room, which the caller
// has at hand: computing it again would allocate per line), queues it for
// the history and stamps its number on the line's notices (left 0 without
// history).
func (s *shard) record(room string, l *imc.Line, notices []imc.Notice, now time.Time) {
	if s.history == nil {
		return
	}
	seq := s.seqs[room] + 1
	s.seqs[room] = seq
	s.history.Add(store.HistoryLine{Room: l.Room, Seq: seq, Kind: store.HistoryChat, Sender: l.Sender.String(),
		Time: now, ContentType: l.ContentType, Body: []byte(l.Text)})
	// Each notice carries the line's number: delivery knows from it where
	// a member's catch-up starts.
	for i := range notices {
		notices[i].Seq = seq
	}
}

// readHistory answers a history query on the committer: it waits for the
// lines said before the query to be written, then reads them.
func (s *shard) readHistory(job *commitJob) {
	q := job.res.History
	s.history.WaitWritten(q.Room.Key(), job.upTo)
	lines, err := s.hist.LastLines(context.Background(), q.Room, q.After, q.Last)
	job.history.fill(lines, err, q.Last, func() (int64, error) { return s.hist.CountHistory(context.Background(), q.Room, q.After) })
}

// storeTopic stores a topic change on the committer.
func (s *shard) storeTopic(job *commitJob) error {
	t := job.res.Topic
	job.topicAt = time.Now()
	return s.hist.SetTopic(context.Background(), store.Topic{Room: t.Room, Text: []byte(t.Text), SetBy: t.SetBy.String(), Time: job.topicAt})
}

// historyApplied follows a committed job in memory and on the wire: the
// new topic, a destroyed room's numbering and history, then the history
// lines the job read (after the job's own notices).
func (s *shard) historyApplied(job *commitJob) {
	if t := job.res.Topic; t != nil {
		s.mu.Lock()
		s.rooms.SetTopic(t.Room.Key(), imc.Topic{Text: t.Text, SetBy: t.SetBy, At: job.topicAt})
		s.mu.Unlock()
	}
	for _, c := range job.res.Changes {
		if c.Op == imc.OpDeleteRoom && s.history != nil {
			delete(s.seqs, c.Room.Key())
			s.history.Forget(c.Room)
		}
	}
	q := job.res.History
	if q == nil {
		return
	}
	if job.history.err != nil {
		s.logger.Warn("history not read", logkey.Room, q.Room.String(), logkey.Err, job.history.err)
		if q.Purpose == imc.HistoryAsked && job.in != nil {
			s.send(s.engine.Unavailable(*job.in).Notices, nil, false)
		}
		return
	}
	s.send(s.engine.HistoryNotices(*q, job.history.stored, job.history.total), nil, false)
}
