package rooms

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
	// take wraps the done of an event of origin as Submit takes it, on
	// the caller's goroutine.
	take(origin *Origin, done func(error)) func(error)
	// first says, on the shard, what comes before an event of origin is
	// applied in room: nothing (false, nil), reading the room again first
	// (reread), or failing it with fail.
	first(s *shard, origin *Origin, room string) (reread bool, fail error)
	// rereadsAdmin reports whether an operator action reads its room
	// again first.
	rereadsAdmin() bool
	// reread has room read again, what comes for it waiting meanwhile
	// (readFirst); the room is then served under origin (nil for an
	// operator action). An error says why it cannot be now.
	reread(s *shard, room string, origin *Origin) error
	// keyFirst reports whether an event of origin whose Result saves
	// nothing has its key stored before its notices go out (storeKey,
	// which sends them once it is).
	keyFirst(origin *Origin) bool
	storeKey(s *shard, job *commitJob)
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

func (singleNode) open([]*shard)                                {}
func (singleNode) close()                                       {}
func (singleNode) strict() bool                                 { return false }
func (singleNode) take(_ *Origin, done func(error)) func(error) { return done }
func (singleNode) first(*shard, *Origin, string) (bool, error)  { return false, nil }
func (singleNode) rereadsAdmin() bool                           { return false }
func (singleNode) reread(*shard, string, *Origin) error         { return nil }
func (singleNode) keyFirst(*Origin) bool                        { return false }
func (singleNode) storeKey(*shard, *commitJob)                  {}
func (singleNode) apply(*shard, *commitJob) bool                { return false }
func (singleNode) appliedBefore(*shard, *commitJob)             {}
func (singleNode) settled(*shard, *commitJob, error)            {}
func (singleNode) redelivers(*Origin, error) bool               { return false }
func (singleNode) conflicted(*shard, string)                    {}
func (singleNode) idle(*shard) bool                             { return true }
func (singleNode) returned(*shard, []*commitJob)                {}
