package delivery

import (
	"context"
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
)

// Sender writes notices as t_uac_dlg requests to one OpenSIPS:
// *opensips.MIClient is one. Send queues one request and Flush writes what
// was queued; the scheduler calls Flush once after each round of Sends, so
// that a round can cost one system call. Poll reads the outcomes that have
// arrived, without waiting; the scheduler calls it each time it runs, so
// that under load outcomes need no wake-up of their own (a Sender reports
// them by itself too, when nobody polls). When Send returns nil, done must
// be called exactly once with tag and the outcome, from any goroutine,
// possibly before Flush returns; when it returns an error, done must not
// be called, and the error says which Fault it is by a Fault() Fault
// method anywhere in its chain (FaultNotSent: tried again; FaultAborted:
// the Sender is closed); an error without one refuses the notice
// (FaultRefused).
type Sender interface {
	Send(n *imc.Notice, tag uint64, done Completion) error
	Flush()
	Poll() int
	// InOrder reports whether the Sender's requests to member reach them
	// in the order they are written (through one MI process straight to
	// their contact), so that several may be in flight without a room's
	// notices overtaking each other; false when a proxy's workers may
	// swap two (then the scheduler keeps one of a room's in flight to
	// them at a time). It must not block.
	InOrder(member imc.URI) bool
}

// Completion receives the outcome of one request. more says that other
// outcomes follow at once (replies read together): the scheduler waits
// for the last of them before it wakes up, so a batch of replies costs it
// one wake-up.
type Completion func(tag uint64, o Outcome, more bool)

// Endpoint is one OpenSIPS node the scheduler may send through. All
// endpoints are equivalent: any of them can deliver any notice.
type Endpoint struct {
	// Name identifies the endpoint in logs and Stats ("udp:10.0.0.1:8080").
	Name string
	// Sender writes the requests.
	Sender Sender
	// Memory, if set, reads how much of the node's shared memory is used,
	// so that the transactions imcd keeps alive there are capped by what
	// it has left (Scheduler.ShmShare); nil leaves the cap at Outstanding.
	Memory MemoryReader
}

// Memory is what an OpenSIPS node reports of its shared memory (opensips
// -m), in bytes.
type Memory struct {
	Used, Total int64
}

// MemoryReader reads a node's shared memory: *opensips.MIClient is one
// (MI get_statistics shmem:). It may block up to ctx's deadline.
type MemoryReader interface {
	SharedMemory(ctx context.Context) (Memory, error)
}

// Kind is how a notice ended.
type Kind uint8

// Kinds of Result. Every notice Submit admitted ends in exactly one.
const (
	// Delivered: the MESSAGE got a 2xx.
	Delivered Kind = iota + 1
	// Failed: it got a final status that does not say the member is away
	// (403, 486, 500, …), OpenSIPS refused the request (a JSON-RPC error),
	// or it could not be sent at all after several tries.
	Failed
	// Dropped: it was kept for an unreachable member and fell out of their
	// bounded queue (too many kept, or kept too long), or Remove dropped it.
	// The member is told how many they missed when they come back.
	Dropped
	// Lost: OpenSIPS never answered the request, after the retries.
	// Whether the member got it is unknown.
	Lost
	// Aborted: it was still waiting, kept or in flight at Close.
	Aborted
)

// String returns the metrics label: "delivered", "failed", "dropped",
// "lost", "aborted".
func (k Kind) String() string {
	switch k {
	case Delivered:
		return "delivered"
	case Failed:
		return "failed"
	case Dropped:
		return "dropped"
	case Lost:
		return "lost"
	case Aborted:
		return "aborted"
	}
	return "unknown"
}

// Result is the end of one notice.
type Result struct {
	Kind Kind
	// Outcome is the last MI outcome of the notice; zero when it was never
	// answered by OpenSIPS (Dropped or Aborted before it was sent).
	Outcome Outcome
	// Held reports that the notice waited while its member was
	// unreachable ("held, then delivered" when Kind is Delivered).
	Held bool
	// Kept reports that the batch's Kept was told the notice was kept
	// (Held may be set without it: a notice written before its member
	// came back, which they then got).
	Kept bool
	// Missed is set on the notices the scheduler made itself to tell a
	// member what they missed: the "you missed N" notice
	// (Scheduler.MissedNotice) and the catch-up notices that take its
	// place (Scheduler.FillCatchUp). They were not submitted.
	Missed bool
	// CatchUp is set on a catch-up notice (Missed is too).
	CatchUp bool
	// Attempts is the number of t_uac_dlg requests written for the notice.
	Attempts int
	// Waited is the time from Submit to this result.
	Waited time.Duration
}

// Done receives the end of one notice. It is called on the scheduler's
// goroutine: keep it short and do not block; it may call Submit.
type Done func(n imc.Notice, r Result)

// Keep is what Kept is told of a notice kept for its unreachable member.
type Keep struct {
	// Outcome is the answer that showed the member unreachable (404, 408,
	// 480, …); zero when they were known to be unreachable when the notice
	// was submitted, so that it was never written.
	Outcome Outcome
	// Until is when the notice is dropped unless the member is back by
	// then (MemberQueueAge after Submit). It may be dropped sooner, when
	// more than MemberQueue notices are kept for the member.
	Until time.Time
}

// Kept is told of a notice, once, the first time it is kept for its
// unreachable member instead of being sent: its MESSAGE ended
// unreachable, or the member was known unreachable when it was submitted
// or went away before it was written. Its Result comes later, as for any
// notice (Delivered, with Held and Kept, once the member is back; Dropped
// when it waited too long). It is called on the scheduler's goroutine,
// before that Result: keep it short and do not block; it may call Submit.
type Kept func(n imc.Notice, k Keep)

// Observer is told what happens, for metrics. Its methods are called on the
// scheduler's goroutine (Shed on the caller's) and must be cheap.
type Observer interface {
	// Finished counts one notice's result (by r.Kind, r.Outcome.Class(),
	// r.Held).
	Finished(r Result)
	// Shed counts the notices of a batch Submit refused with ErrBusy.
	Shed(notices int)
	// Gauges reports the current state about once a second; s is valid only
	// during the call.
	Gauges(s *Stats)
}

// NopObserver is an Observer that does nothing.
type NopObserver struct{}

// Finished does nothing.
func (NopObserver) Finished(Result) {}

// Shed does nothing.
func (NopObserver) Shed(int) {}

// Gauges does nothing.
func (NopObserver) Gauges(*Stats) {}

var _ Observer = NopObserver{}

// Stats is a snapshot of the scheduler.
type Stats struct {
	// Queued notices wait for their turn (their member is reachable).
	Queued int
	// Kept notices wait for an unreachable member.
	Kept int
	// InFlight notices were written and await OpenSIPS's final reply.
	InFlight int
	// Unreachable is the number of members marked unreachable.
	Unreachable int
	// Endpoints describe each OpenSIPS endpoint, in configuration order.
	Endpoints []EndpointStats
}

// EndpointStats describes one endpoint.
type EndpointStats struct {
	Name string
	// Up is false while the endpoint's requests go unanswered; it then
	// only gets a probe now and then.
	Up bool
	// Rate is the current pacing rate, in requests per second.
	Rate float64
	// InFlight requests await their final reply.
	InFlight int
	// InWait estimates the transactions OpenSIPS still keeps after their
	// final reply (tm's wt_timer).
	InWait int
	// Limit is the cap on InFlight+InWait: Outstanding, or what the
	// node's shared memory has room for (Scheduler.ShmShare).
	Limit int
	// Shm is the node's shared memory at its last reading; zero when it
	// is not watched or was never read.
	Shm Memory
}

// MemberStatus is the delivery state of one member, as seen from one room.
type MemberStatus struct {
	Member imc.URI
	// Reachable is false from a MESSAGE that ended unreachable until the
	// member is reachable again.
	Reachable bool
	// Since is when the member became unreachable (zero when reachable).
	Since time.Time
	// NextProbe is when the oldest kept notice will be tried again (zero
	// when reachable).
	NextProbe time.Time
	// Kept counts this room's notices waiting for the member.
	Kept int
	// Dropped counts this room's notices dropped since the member was last
	// told what they missed.
	Dropped int
	// InFlight counts the member's notices in OpenSIPS, all rooms.
	InFlight int
}
