package daemon

import (
	"context"
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logkey"
	"github.com/imcd-sip/imcd/pkg/mi"
	"github.com/imcd-sip/imcd/pkg/store"
)

// record numbers a chat line in its room (of key room, which the caller
// has at hand: computing it again would allocate per line), queues it for
// the history and stamps its number on the line's notices (left 0 without
// history).
func (s *shard) record(room string, l *imc.Line, notices []imc.Notice, now time.Time) {
	if s.d.history == nil {
		return
	}
	seq := s.seqs[room] + 1
	s.seqs[room] = seq
	s.d.history.add(store.HistoryLine{Room: l.Room, Seq: seq, Kind: store.HistoryChat, Sender: l.Sender.String(),
		Time: now, ContentType: l.ContentType, Body: []byte(l.Text)})
	// Each notice carries the line's number: delivery knows from it where
	// a member's catch-up starts.
	for i := range notices {
		notices[i].Seq = seq
	}
}

// historyWait bounds how long a history query waits for the lines said
// before it to be written.
const historyWait = time.Second

// readHistory answers a history query on the committer: it waits for the
// lines said before the query to be written, then reads them.
func (s *shard) readHistory(job *commitJob) {
	q := job.res.History
	s.d.history.waitWritten(q.Room.Key(), job.upTo)
	lines, err := s.d.hist.LastLines(context.Background(), q.Room, q.After, q.Last)
	job.page(lines, err, q.Last, func() (int64, error) { return s.d.hist.CountHistory(context.Background(), q.Room, q.After) })
}

// page keeps what a history read of at most limit lines found, or why it
// failed; how many lines matched is asked of the table (count) only when
// the read came back full.
func (job *commitJob) page(lines []store.HistoryLine, err error, limit int, count func() (int64, error)) {
	total := int64(len(lines))
	if err == nil && len(lines) == limit {
		total, err = count()
	}
	if err != nil {
		job.histErr = err
		return
	}
	job.stored, job.total = storedLines(lines), total
}

// storeTopic stores a topic change on the committer.
func (s *shard) storeTopic(job *commitJob) error {
	t := job.res.Topic
	job.topicAt = time.Now()
	return s.d.hist.SetTopic(context.Background(), store.Topic{Room: t.Room, Text: []byte(t.Text), SetBy: t.SetBy.String(), Time: job.topicAt})
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
		if c.Op == imc.OpDeleteRoom && s.d.history != nil {
			delete(s.seqs, c.Room.Key())
			s.d.history.forget(c.Room)
		}
	}
	q := job.res.History
	if q == nil {
		return
	}
	if job.histErr != nil {
		s.logger.Warn("history not read", logkey.Room, q.Room.String(), logkey.Err, job.histErr)
		if q.Purpose == imc.HistoryAsked && job.in != nil {
			s.send(s.d.engine.Unavailable(*job.in).Notices, nil, false)
		}
		return
	}
	s.send(s.d.engine.HistoryNotices(*q, job.stored, job.total), nil, false)
}

// History reads a room's last n lines for an operator (MI imc:history).
func (d *Daemon) History(ctx context.Context, room imc.URI, n int) ([]imc.StoredLine, int64, error) {
	if d.hist == nil {
		return nil, 0, mi.ErrNoHistory
	}
	r := globalView{d}.Room(room.Key())
	if r == nil {
		return nil, 0, imc.ErrNoSuchRoom
	}
	lines, err := d.hist.LastLines(ctx, r.URI, 0, n)
	if err != nil {
		return nil, 0, err
	}
	total, err := d.hist.CountHistory(ctx, r.URI, 0)
	if err != nil {
		return nil, 0, err
	}
	return storedLines(lines), total, nil
}

// storedLines turns the store's lines into the engine's.
func storedLines(lines []store.HistoryLine) []imc.StoredLine {
	out := make([]imc.StoredLine, len(lines))
	for i, l := range lines {
		out[i] = imc.StoredLine{Seq: l.Seq, Sender: l.Sender, At: l.Time, ContentType: l.ContentType, Body: string(l.Body)}
	}
	return out
}
