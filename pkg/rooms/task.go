package rooms

import (
	"time"

	"github.com/imcd-sip/imcd/pkg/delivery"
	"github.com/imcd-sip/imcd/pkg/imc"
)

type taskKind uint8

const (
	taskEvent taskKind = iota + 1
	taskInvitationFailed
	taskInvitationExpired
	taskInvitationKept
	taskInvitationDelivered
	taskAdmin
	taskReload
	taskGhost
	taskCatchUp
	taskStop
)

// task is one unit of work for a shard. It travels by value through the
// shard's channel, so handing an event over allocates nothing; the rare
// kinds hold their payload by pointer to keep every queue slot small (each
// shard allocates shard_queue slots up front).
type task struct {
	kind  taskKind
	in    imc.Input
	done  func(error) // taskEvent: called once, after commit (or failure)
	dedup uint64      // taskEvent: the event's identity for the duplicate filter, 0 for none

	// The taskInvitation* kinds: delivery's news of an invitation
	// (feedback.go). status is the answer a failed or kept one got; span
	// how long a kept one may wait, or how long an expired or delivered
	// one waited.
	inv    *imc.Invitation
	status string
	span   time.Duration

	op    *imc.AdminOp // taskAdmin
	reply chan error

	reload *reloadPart // taskReload

	ghost *imc.URI // taskGhost: a member unreachable for ghost_after, to remove

	// origin is where an event of RabbitMQ mode came from (nil otherwise);
	// fresh says that an operator action's room was read again.
	origin *Origin
	fresh  bool

	catchUp *catchUp // taskCatchUp: what a member back from being away missed

	// queued is when the task began to wait behind a commit (zero while it
	// has not): a task waits at most command_timeout.
	queued time.Time
}

// Origin is where an event of RabbitMQ mode came from, and the key that
// makes it applied once.
type Origin struct {
	// Key is the event's key (store.EventKey of Call-ID, CSeq, From tag).
	Key string
	// Queue and Session are the queue and consumer session it was
	// delivered under.
	Queue   string
	Session uint64
}

// catchUp is one catch-up request on its way through the room's shard
// and committer.
type catchUp struct {
	req  delivery.CatchUpRequest
	upTo int64 // the newest line it covers
}

// ReloadReport is what a reload of the rooms from the database changed in
// memory.
type ReloadReport struct {
	// Rooms is how many rooms the database holds.
	Rooms int
	// Added, Removed and Changed count the rooms that differed from memory.
	Added, Removed, Changed int
	// Busy counts rooms left as they were because a command of theirs was
	// being saved.
	Busy int
	// Took is how long the reload took.
	Took time.Duration
}

// reloadPart is one shard's share of a reload.
type reloadPart struct {
	rooms  map[string]*imc.Room // the database's rooms of this shard
	report ReloadReport         // what the shard did, once done says nil
	done   chan error
}

// answer tells the origin of t how it ended, unless t handed its origin
// on (handOff): then the new holder answers it, once.
func (t *task) answer(e *env, err error) {
	switch {
	case t.done != nil:
		t.done(err)
	case t.reply != nil:
		t.reply <- err
	case t.catchUp != nil:
		e.catchUpFailed(t.catchUp.req, err)
	case t.reload != nil:
		t.reload.done <- err
	}
}

// handOff records that whoever t's origin waits on (t.done, t.reply) now
// sits elsewhere (waiting behind a commit, a commit job, a duplicate's
// original): what happens to t after this, a panic included, must not
// answer it again.
func (t *task) handOff() { t.done, t.reply, t.catchUp, t.reload = nil, nil, nil, nil }

// name is how a log line calls t.
func (t *task) name() string {
	switch t.kind {
	case taskEvent:
		return t.in.Command()
	case taskAdmin:
		return t.op.Kind.String()
	case taskInvitationFailed, taskInvitationExpired:
		return "invitation-failed"
	case taskInvitationKept:
		return "invitation-waiting"
	case taskInvitationDelivered:
		return "invitation-delivered"
	}
	return "task"
}
