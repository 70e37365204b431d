package rooms

import (
	"context"
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logkey"
)

// markDoubtful records the rooms changes touch as doubtful.
func (s *shard) markDoubtful(changes []imc.Change, err error) {
	d := &doubt{rooms: affected(changes), err: err, backoff: firstReread, next: time.Now().Add(firstReread)}
	for _, r := range d.rooms {
		s.doubtful[r.Key()] = d
	}
}

// retryDoubts sends the doubtful rooms that are due to the committer for a
// re-read.
func (s *shard) retryDoubts(now time.Time) {
	for _, d := range s.doubtful {
		if d.reading || now.Before(d.next) || s.jobs >= maxJobs {
			continue
		}
		d.reading = true
		s.toCommitter(&rereadJob{doubt: d})
	}
}

// rereadJob reads doubtful rooms again, on the committer.
type rereadJob struct {
	doubt  *doubt
	truth  map[string]*imc.Room
	reread error
}

func (j *rereadJob) run(s *shard) {
	j.truth, j.reread = s.store.LoadRooms(context.Background(), j.doubt.rooms)
}

// finish takes a re-read back: memory follows the database and the rooms
// take commands again, or the next attempt is scheduled.
func (j *rereadJob) finish(s *shard) {
	d := j.doubt
	d.reading = false
	if j.reread != nil {
		d.err = j.reread
		d.backoff = min(2*d.backoff, maxReread)
		d.next = time.Now().Add(d.backoff)
		return
	}
	s.replace(j.truth) // d.rooms, each mapped
	s.logger.Warn("rooms re-read after a commit in doubt: memory follows the database again", logkey.Rooms, len(d.rooms))
}
