package rooms

import "fmt"

// admit returns why the committer cannot take another job now (the
// database is known down, or the shard has maxJobs jobs there), nil
// when it can.
func (s *shard) admit() error {
	switch {
	case !s.dbUp():
		return errDBDown
	case s.jobs >= maxJobs:
		return fmt.Errorf("%w (%d commits in flight in shard %d)", ErrBusy, s.jobs, s.id)
	}
	return nil
}

// toCommitter hands j to the committer, which admit (or a bound of the
// caller's own) said has room for it.
func (s *shard) toCommitter(j job) {
	s.jobs++
	s.commits <- j // never blocks: at most maxJobs jobs exist
}

// commitLoop is the shard's committer: it runs the jobs in the order they
// come and hands each back.
func (s *shard) commitLoop() {
	for j := range s.commits {
		j.run(s)
		s.committed <- j // never blocks: at most maxJobs jobs exist
	}
}
