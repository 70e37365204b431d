package daemon

import (
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logkey"
)

// doubt is a set of rooms whose rows are unknown: a commit touching them
// was in doubt and the re-read failed too. Chat goes on with the rooms as
// memory last knew them; commands for them are refused until a re-read
// succeeds, which the shard tries again with a backoff.
type doubt struct {
	rooms   []imc.URI
	err     error
	next    time.Time // when to re-read again
	backoff time.Duration
	reading bool // a re-read is at the committer
}

// Re-read backoff after a commit in doubt.
const (
	firstReread = 200 * time.Millisecond
	maxReread   = 5 * time.Second
)

// markDoubtful records the rooms of job as doubtful.
func (s *shard) markDoubtful(job *commitJob, err error) {
	d := &doubt{rooms: affected(job.res.Changes), err: err, backoff: firstReread, next: time.Now().Add(firstReread)}
	for _, r := range d.rooms {
		s.doubtful[r.Key()] = d
	}
}

// retryDoubts sends the doubtful rooms that are due to the committer for a
// re-read.
func (s *shard) retryDoubts(now time.Time) {
	for _, d := range s.doubtful {
		if d.reading || now.Before(d.next) || s.jobs >= maxCommits {
			continue
		}
		d.reading = true
		s.toCommitter(&commitJob{doubt: d, queued: now})
	}
}

// settleDoubt takes a re-read back: memory follows the database and the
// rooms take commands again, or the next attempt is scheduled.
func (s *shard) settleDoubt(job *commitJob) {
	d := job.doubt
	d.reading = false
	if job.reread != nil {
		d.err = job.reread
		d.backoff = min(2*d.backoff, maxReread)
		d.next = time.Now().Add(d.backoff)
		return
	}
	s.replace(job.truth) // d.rooms, each mapped
	s.logger.Warn("rooms re-read after a commit in doubt: memory follows the database again", logkey.Rooms, len(d.rooms))
}
