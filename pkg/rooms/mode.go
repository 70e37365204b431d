package rooms

import "github.com/imcd-sip/imcd/pkg/imc"

// Mode is how a runtime's events are acknowledged and applied once, and how
// a room is made fresh before it is served: what differs between imcd alone
// on its tables (SingleNode) and several imcd consuming shared RabbitMQ
// queues (RabbitMQ, rabbitmq.go). The shards call it at a few points of an
// event's way; SingleNode's answers leave that way as it is.
type Mode interface {
	// open starts the mode's goroutines for the runtime's shards, before
	// they run; close ends them once the shards stopped.
	open(all []*shard)
	close()
	// strict reports whether every event of a room waits while the room
	// has anything in flight, not only commands and their sender's lines.
	strict() bool
	// take prepares an event's task as Submit takes it, on the caller's
	// goroutine.
	take(t *task)
	// first runs on the shard before an event is applied (firstAdmin
	// before an operator action): true when it took t over, failing it or
	// holding it until its room is read again.
	first(s *shard, t *task, room string) bool
	firstAdmin(s *shard, t *task, room string) bool
	// unchanged takes over an event whose Result saves nothing when its
	// notices may not go out at once (true): they go once the mode says.
	unchanged(s *shard, t *task, room string, res imc.Result) bool
	// apply saves a command's changes its own way, on the committer:
	// false leaves them to applyChanges.
	apply(s *shard, job *commitJob) bool
	// appliedBefore ends a command the store found applied already
	// (job.dup).
	appliedBefore(s *shard, job *commitJob)
	// settled runs as a command is answered with err.
	settled(s *shard, job *commitJob, err error)
	// redelivers reports whether an event of origin that fails with err
	// comes back, so that its sender must not be told.
	redelivers(origin *Origin, err error) bool
	// conflicted: the database refused a change of room as contradicting
	// its rows.
	conflicted(s *shard, room string)
	// idle reports whether the mode holds nothing of s (s may end);
	// returned takes back what it held (s.returned).
	idle(s *shard) bool
	returned(s *shard, jobs []*commitJob)
}

// SingleNode is the mode of imcd alone on its tables (event_stream,
// event_datagram): an event is acknowledged once applied, the duplicate
// filter is what remembers it, and memory is the truth between commits.
func SingleNode() Mode { return singleNode{} }

type singleNode struct{}

func (singleNode) open([]*shard)                                    {}
func (singleNode) close()                                           {}
func (singleNode) strict() bool                                     { return false }
func (singleNode) take(*task)                                       {}
func (singleNode) first(*shard, *task, string) bool                 { return false }
func (singleNode) firstAdmin(*shard, *task, string) bool            { return false }
func (singleNode) unchanged(*shard, *task, string, imc.Result) bool { return false }
func (singleNode) apply(*shard, *commitJob) bool                    { return false }
func (singleNode) appliedBefore(*shard, *commitJob)                 {}
func (singleNode) settled(*shard, *commitJob, error)                {}
func (singleNode) redelivers(*Origin, error) bool                   { return false }
func (singleNode) conflicted(*shard, string)                        {}
func (singleNode) idle(*shard) bool                                 { return true }
func (singleNode) returned(*shard, []*commitJob)                    {}
