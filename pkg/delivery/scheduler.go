package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logging"
	"github.com/imcd-sip/imcd/pkg/logkey"
)

// Defaults of the Scheduler's fields (docs/delivery.md gives their config
// keys and how to size them).
const (
	DefaultRateMax             = 10000.0 // requests/s per endpoint
	DefaultRateMin             = 20.0
	DefaultBurst               = 32
	DefaultAdjustEvery         = 100 * time.Millisecond
	DefaultLateAfter           = 10 * time.Millisecond // below what a 212 KB MI buffer holds at 8,000/s (benchmarks.md)
	DefaultOutstanding         = 32768                 // transactions alive per OpenSIPS when its memory is not read: ~256 MB of its shm
	DefaultShmShare            = 0.7                   // of each OpenSIPS's shared memory, imcd's transactions may fill up to
	DefaultShmEvery            = 250 * time.Millisecond
	DefaultWaitTime            = 5 * time.Second
	DefaultMemberInflight      = 4
	DefaultMemberQueue         = 100
	DefaultMemberQueueAge      = 10 * time.Minute
	DefaultQueueLimit          = 65536
	DefaultRoomLimit           = 8192
	DefaultUnreachableRetry    = 30 * time.Second
	DefaultUnreachableRetryMax = 10 * time.Minute
	DefaultLostRetries         = 2
)

// The scheduler's loop writes in rounds at least minQuantum and at most
// maxQuantum apart while it waits for tokens: one wake-up then serves
// every request that became due meanwhile, and each round's requests go
// out in one system call (Sender.Flush).
const (
	minQuantum = 100 * time.Microsecond
	maxQuantum = time.Millisecond
)

// maxPicks bounds the requests chosen under one hold of the lock.
const maxPicks = 64

// Batch is what Submit admits or refuses as a whole: typically the notices
// of one request (a chat line's fan-out, a command's replies).
type Batch struct {
	// Notices are copied; the slice may be reused once Submit returns.
	Notices []imc.Notice
	// Urgent puts every notice ahead of bulk fan-out. A notice with an
	// InReplyTo (a direct reply to a sender) is urgent anyway.
	Urgent bool
	// Done, if not nil, receives each notice's Result.
	Done Done
	// Kept, if not nil, is told when a notice is first kept for its
	// unreachable member.
	Kept Kept
}

// Scheduler paces notices into one or more OpenSIPS (see the package
// comment). Set the fields, Open, Submit, then Drain and Close. A zero
// field takes its Default* value, but for WaitTime and LostRetries, whose
// zero means none (as their configuration keys' does): set them to
// DefaultWaitTime and DefaultLostRetries for what OpenSIPS does by default.
type Scheduler struct {
	// Endpoints are the OpenSIPS nodes to send through; at least one.
	Endpoints []Endpoint
	// Logger is the parent logger; nil discards.
	Logger *slog.Logger
	// Observer is told results and gauges; nil means NopObserver.
	Observer Observer
	// Clock is the time source; nil means SystemClock.
	Clock Clock

	// RateMax and RateMin bound each endpoint's pacing rate (requests per
	// second); it starts at RateStart (RateMax/5) and grows by RateStep
	// (RateMax/100) per AdjustEvery while OpenSIPS keeps up.
	RateMax, RateMin, RateStart, RateStep float64
	// Burst is the most requests written back to back to one endpoint.
	Burst int
	// AdjustEvery is the AIMD interval.
	AdjustEvery time.Duration
	// LateAfter is how much later than a member's usual reply time even the
	// promptest 2xx of an interval must come for OpenSIPS to count as
	// congested.
	LateAfter time.Duration
	// Outstanding caps the transactions imcd keeps alive in each OpenSIPS:
	// awaiting their final reply, plus those tm keeps for WaitTime after it
	// (its wt_timer; 0 counts only the former). Zero leaves the cap to
	// the node's memory where it is read (ShmShare), DefaultOutstanding
	// where it is not.
	Outstanding int
	WaitTime    time.Duration
	// ShmShare (0..1) is how much of each node's shared memory imcd's
	// transactions may fill, for the endpoints whose Memory is set: every
	// ShmEvery the cap becomes what fits in the part of that share still
	// free (memory.go). Zero turns the reading off, as WaitTime's zero
	// does; set DefaultShmShare for the daemon's default.
	ShmShare float64
	ShmEvery time.Duration
	// MemberInflight is the most notices in flight to one member.
	MemberInflight int
	// MemberQueue and MemberQueueAge bound what is kept for an unreachable
	// member (count over all rooms, age of each notice); beyond, the oldest
	// are dropped and counted.
	MemberQueue    int
	MemberQueueAge time.Duration
	// QueueLimit bounds the notices held in all (waiting, kept, in flight);
	// RoomLimit the bulk notices of one room. Submit refuses a batch that
	// would exceed either.
	QueueLimit, RoomLimit int
	// UnreachableRetry is the wait before the first probe of an unreachable
	// member; it doubles up to UnreachableRetryMax.
	UnreachableRetry, UnreachableRetryMax time.Duration
	// LostRetries is how many times a request OpenSIPS never answered is
	// written again; 0 means never.
	LostRetries int
	// GhostAfter, when > 0, makes OnGhost report members unreachable for
	// that long.
	GhostAfter time.Duration
	// MissedNotice, if set, builds the notice telling member how many of
	// room's notices they missed while unreachable; it is sent before what
	// was kept. It runs on the scheduler's goroutine and must not block.
	MissedNotice func(room, member imc.URI, missed int) imc.Notice
	// FillCatchUp, if set, catches members up from the rooms' history
	// (catchup.go): when a room's placeholder comes to be written, the
	// scheduler asks for the lines the member missed, and the flow waits
	// until CatchUp answers; the notices it gives take the placeholder's
	// place. Notices that carry a chat line must have their Seq set. It
	// runs on the scheduler's goroutine and must not block.
	FillCatchUp func(r CatchUpRequest)
	// OnMarks, if set, is told the catch-up marks to store (a member
	// became unreachable) and to delete (they were caught up), in order,
	// on the scheduler's goroutine; the slice is valid during the call.
	// Stored, and given to Away at start, they make catch-up survive a
	// restart.
	OnMarks func(changes []MarkChange)
	// OnGhost, if set, is called once per unreachable episode of a member
	// that lasts GhostAfter, on the scheduler's goroutine.
	OnGhost func(member imc.URI, since time.Time)

	log    *slog.Logger
	obs    Observer
	clock  Clock
	onSent Completion

	mu     sync.Mutex
	e      *engine
	opened bool
	closed bool

	wake chan struct{}
	stop chan struct{}
	// wakeAt is when the loop will run again by itself (under mu; the
	// zero time while it runs); pendingWake, that an outcome of a batch
	// still being reported wants it woken.
	wakeAt      time.Time
	pendingWake bool
	wg          sync.WaitGroup
	closeOnce   sync.Once
	lossLog     logging.Limit
	memLog      logging.Limit

	// Owned by the loop.
	picks  []pick
	reps   []report
	ghosts []ghost
	asks   []CatchUpRequest
	marks  []MarkChange
	stats  Stats
}

// Open checks the configuration and starts the scheduler's goroutine.
func (s *Scheduler) Open(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opened || s.closed {
		return ErrClosed
	}
	if len(s.Endpoints) == 0 {
		return ErrNoEndpoint
	}
	for i, ep := range s.Endpoints {
		if ep.Sender == nil {
			return fmt.Errorf("%w: endpoint %d has no Sender", ErrNoEndpoint, i)
		}
	}
	s.log = logging.Child(s.Logger, logkey.SystemDelivery)
	if s.obs = s.Observer; s.obs == nil {
		s.obs = NopObserver{}
	}
	if s.clock = s.Clock; s.clock == nil {
		s.clock = SystemClock{}
	}
	st := s.settings()
	s.e = newEngine(st, s.Endpoints, s.log, s.clock.Now())
	s.onSent = s.sent
	s.wake = make(chan struct{}, 1)
	s.stop = make(chan struct{})
	s.picks = make([]pick, 0, maxPicks)
	s.lossLog.Interval = 10 * time.Second
	s.memLog.Interval = 10 * time.Second
	s.wg.Add(1)
	go s.run()
	if st.shmShare > 0 {
		for i, ep := range s.Endpoints {
			if ep.Memory != nil {
				s.wg.Add(1)
				go s.watchMemory(i, ep.Memory)
			}
		}
	}
	s.opened = true
	s.log.Info("delivery scheduler ready", logkey.Endpoints, len(s.Endpoints), logkey.RateMax, st.rateMax,
		logkey.Outstanding, st.limit, logkey.ShmShare, st.shmShare, logkey.MemberInflight, st.memberInflight, logkey.MemberQueue, st.memberQueue)
	return nil
}

func (s *Scheduler) settings() settings {
	st := settings{
		rateMax: s.RateMax, rateMin: s.RateMin, rateStart: s.RateStart, rateStep: s.RateStep,
		burst: s.Burst, adjustEvery: s.AdjustEvery, lateAfter: s.LateAfter,
		outstanding: s.Outstanding, waitTime: s.WaitTime, shmShare: s.ShmShare, shmEvery: s.ShmEvery, memberInflight: s.MemberInflight,
		memberQueue: s.MemberQueue, memberQueueAge: s.MemberQueueAge,
		queueLimit: s.QueueLimit, roomLimit: s.RoomLimit,
		retry: s.UnreachableRetry, retryMax: s.UnreachableRetryMax,
		lostRetries: s.LostRetries, ghostAfter: s.GhostAfter, missed: s.MissedNotice != nil, catchUp: s.FillCatchUp != nil,
	}
	setDefault(&st.rateMax, DefaultRateMax)
	setDefault(&st.rateMin, min(DefaultRateMin, st.rateMax))
	setDefault(&st.rateStart, st.rateMax/5)
	setDefault(&st.rateStep, st.rateMax/100)
	st.rateStart = max(st.rateMin, min(st.rateMax, st.rateStart))
	setDefault(&st.burst, DefaultBurst)
	// A round of writes every quantum at most: short enough that the
	// burst's tokens at the highest rate are never wasted, at most 1 ms.
	st.quantum = min(maxQuantum, max(minQuantum, time.Duration(float64(st.burst)/st.rateMax/2*float64(time.Second))))
	setDefault(&st.adjustEvery, DefaultAdjustEvery)
	setDefault(&st.lateAfter, DefaultLateAfter)
	// A cap set by hand is the most the memory may allow; left to the
	// memory, the cap starts at the default until the first reading.
	st.limit = st.outstanding
	setDefault(&st.limit, DefaultOutstanding)
	setDefault(&st.outstanding, maxOutstanding)
	st.shmShare = max(0, min(st.shmShare, 1))
	setDefault(&st.shmEvery, DefaultShmEvery)
	st.waitTime = max(st.waitTime, 0)
	setDefault(&st.memberInflight, DefaultMemberInflight)
	setDefault(&st.memberQueue, DefaultMemberQueue)
	setDefault(&st.memberQueueAge, DefaultMemberQueueAge)
	setDefault(&st.queueLimit, DefaultQueueLimit)
	setDefault(&st.roomLimit, DefaultRoomLimit)
	setDefault(&st.retry, DefaultUnreachableRetry)
	setDefault(&st.retryMax, max(DefaultUnreachableRetryMax, st.retry))
	st.lostRetries = max(st.lostRetries, 0)
	return st
}

// setDefault sets *v to d when it is not positive.
func setDefault[T int | float64 | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// Submit admits the batch whole and returns at once, or refuses it whole
// with an error wrapping ErrBusy (counted by Observer.Shed), or ErrClosed.
// Done then receives one Result per notice, on the scheduler's goroutine.
func (s *Scheduler) Submit(b Batch) error {
	s.mu.Lock()
	if !s.opened {
		s.mu.Unlock()
		return ErrClosed
	}
	now := s.clock.Now()
	err := s.e.admit(b, now)
	// While the loop runs, or will within a quantum, what was admitted
	// goes out with that round: no wake-up of its own.
	wake := s.wakeAt.Sub(now) > s.e.s.quantum
	s.mu.Unlock()
	if err != nil {
		if errors.Is(err, ErrBusy) {
			s.obs.Shed(len(b.Notices))
		}
		return err
	}
	if wake {
		s.signal()
	}
	return nil
}

// Reachable says that member is back (a usrloc registration for their AOR,
// or a MESSAGE they sent): what was kept for them is sent, in order. It
// does nothing for a member not known to be unreachable, and costs
// nothing (neither the lock nor a wake-up) while nobody is.
func (s *Scheduler) Reachable(member imc.URI) {
	if s.e == nil || s.e.nAway.Load() == 0 {
		return
	}
	s.mu.Lock()
	if s.opened && !s.closed {
		s.e.reachable(member, s.clock.Now())
	}
	s.mu.Unlock()
	s.signal()
}

// Remove drops whatever waits for member in room (Dropped results), for a
// member who left or was removed. A member with nothing left anywhere is
// forgotten, reachability included.
func (s *Scheduler) Remove(room, member imc.URI) {
	s.mu.Lock()
	if s.opened && !s.closed {
		s.e.remove(room, member, s.clock.Now())
	}
	s.mu.Unlock()
	s.signal()
}

// MemberStatus describes the given members of room (for the MI command
// imc:member_status).
func (s *Scheduler) MemberStatus(room imc.URI, members []imc.URI) []MemberStatus {
	out := make([]MemberStatus, len(members))
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, m := range members {
		if s.e == nil {
			out[i] = MemberStatus{Member: m, Reachable: true}
			continue
		}
		out[i] = s.e.memberStatus(room, m)
	}
	return out
}

// Unreachable lists the members unreachable for at least d (ghosts, for a
// removal policy); Kept and Dropped count all their rooms.
func (s *Scheduler) Unreachable(d time.Duration) []MemberStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.e == nil {
		return nil
	}
	return s.e.unreachableFor(d, s.clock.Now())
}

// Stats returns a snapshot of the gauges.
func (s *Scheduler) Stats() Stats {
	var st Stats
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.e != nil {
		s.e.stats(s.clock.Now(), &st)
	}
	return st
}

// Drain waits until nothing is waiting or in flight for reachable members,
// or ctx ends. Notices kept for unreachable members do not hold it up: Close
// aborts them.
func (s *Scheduler) Drain(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		s.mu.Lock()
		pending := 0
		if s.e != nil {
			var st Stats
			s.e.stats(s.clock.Now(), &st)
			pending = st.Queued + st.InFlight
		}
		s.mu.Unlock()
		if pending == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("delivery: %d notices still pending: %w", pending, ctx.Err())
		case <-t.C:
		}
	}
}

// Close stops the scheduler: every notice still waiting, kept or in flight
// ends Aborted (their Done is called before Close returns), and OnMarks is
// told the last marks; outcomes and replies that arrive later are
// ignored. Safe to call more than once.
func (s *Scheduler) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		wasOpen := s.opened
		s.closed = true
		s.opened = false
		s.mu.Unlock()
		if !wasOpen {
			return
		}
		close(s.stop)
		s.wg.Wait()
		s.mu.Lock()
		s.e.abortAll(s.clock.Now())
		reps := s.e.reports
		s.e.reports = nil
		// The last marks still go out (a member who just became
		// unreachable is owed a catch-up after the restart); requests
		// are moot.
		s.marks, s.e.marks = s.e.marks, nil
		s.e.asks = nil
		s.mu.Unlock()
		s.deliver(reps)
		s.catchUps()
	})
	return nil
}

// sent is the Senders' completion callback. The loop is woken only when
// the outcome matters to it soon: what it ended lets more be written (a
// member or an endpoint was at its cap) while the loop sleeps longer than
// a quantum, or it is the first result waiting to be reported; and, when
// replies come in a batch (more), only after the last of them.
func (s *Scheduler) sent(tag uint64, o Outcome, more bool) {
	s.mu.Lock()
	now := s.clock.Now()
	reported := len(s.e.reports)
	s.e.complete(tag, o, now)
	s.pendingWake = s.pendingWake || (reported == 0 && len(s.e.reports) > 0) ||
		(s.e.hasWork() && s.wakeAt.Sub(now) > s.e.s.quantum)
	wake := s.pendingWake && !more
	if wake {
		s.pendingWake = false
	}
	s.mu.Unlock()
	if o.Lost() {
		if ok, suppressed := s.lossLog.Allow(time.Now()); ok {
			s.log.Warn("OpenSIPS did not answer t_uac_dlg requests: slowing down, retrying", logkey.Status, o.String(), logkey.Suppressed, suppressed)
		}
	}
	if wake {
		s.signal()
	}
}

func (s *Scheduler) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}
