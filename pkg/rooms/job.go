package rooms

import (
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/store"
)

// commitJob is one command's change set on its way to the database and
// back: the shard fills the first part, the committer the second.
type commitJob struct {
	room   string     // the room key the changes concern
	res    imc.Result // changes to commit, notices to send once committed
	in     *imc.Input // the MESSAGE it answers (&event), nil for operator actions and feedback
	event  imc.Input
	done   func(error)
	reply  chan error // an operator action's answer
	dedup  uint64
	queued time.Time

	// RabbitMQ mode: where the event came from, and, for an event key at
	// the key writer, where its verdict goes back (its shard's returned).
	origin   *Origin
	returnTo chan []*commitJob

	// Set by the committer.
	upTo    int64 // a history query waits for the room's lines up to this seq to be written
	err     error
	skipped bool                 // not attempted: the database was known down, or the job waited too long
	truth   map[string]*imc.Room // after a commit in doubt: the rooms as the database holds them
	reread  error                // why truth could not be read
	dup     bool                 // RabbitMQ mode: the event's key was stored already
	topicAt time.Time            // when a topic change was stored
	history page                 // what a history query read
}

// page is what a history read found: the lines, oldest first, and how
// many matched; or why it failed (the job itself did not).
type page struct {
	stored []imc.StoredLine
	total  int64
	err    error
}

// fill keeps what a read of at most limit lines found, or why it failed;
// how many lines matched is asked of the table (count) only when the read
// came back full.
func (p *page) fill(lines []store.HistoryLine, err error, limit int, count func() (int64, error)) {
	total := int64(len(lines))
	if err == nil && len(lines) == limit {
		total, err = count()
	}
	if err != nil {
		p.err = err
		return
	}
	p.stored, p.total = storedLines(lines), total
}

// storedLines turns the store's lines into the engine's.
func storedLines(lines []store.HistoryLine) []imc.StoredLine {
	out := make([]imc.StoredLine, len(lines))
	for i, l := range lines {
		out[i] = imc.StoredLine{Seq: l.Seq, Sender: l.Sender, At: l.Time, ContentType: l.ContentType, Body: string(l.Body)}
	}
	return out
}
