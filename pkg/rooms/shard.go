package rooms

import (
	"log/slog"
	"sync"
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/logkey"
)

// shard owns a subset of the rooms (by hash of the room key). Only its
// goroutine writes rooms; it takes mu for writing only around Rooms.Apply so
// that other shards and the MI can read a consistent set of immutable rooms.
//
// Commands never make the shard wait for the database: their changes go to
// the shard's committer goroutine, and the shard goes on with other rooms,
// and with chat lines in the same room, while the commit runs. A room with
// a commit in flight keeps its later commands (and the later lines of the
// command's sender) waiting behind it, so each room's changes are
// committed, applied and announced in order.
type shard struct {
	*env
	mode   Mode // how events are acknowledged and rooms kept fresh
	id     int
	queue  chan task
	mu     sync.RWMutex
	rooms  *imc.Rooms
	view   imc.View // a shardView, boxed once: converting it per request would allocate
	logger *slog.Logger

	// commits feeds the committer; committed brings its jobs back. Both
	// hold every job that can exist at once (maxJobs), so neither side
	// ever blocks on the other.
	commits   chan job
	committed chan job
	// returned brings back what the mode took from the shard (RabbitMQ
	// mode: event keys being stored); nil, never ready, when nothing.
	returned chan []*commitJob
	// strict: every event of a room waits while the room has anything in
	// flight (the mode's), not only commands and their sender's lines.
	strict bool

	// Owned by the shard goroutine.
	behind     map[string]*waiters      // rooms with a commit in flight → what waits behind it
	nBehind    int                      // tasks waiting behind commits
	inProgress map[uint64][]func(error) // events being committed: the done of copies that came meanwhile
	doubtful   map[string]*doubt        // rooms whose rows are unknown after a commit in doubt
	jobs       int                      // jobs at the committer (commits and reads)
	seqs       map[string]int64         // room key → the seq of its last history line
	stopping   bool
}

// waiters is what waits behind the commit in flight of one room: later
// commands, operator actions and invitation withdrawals, and the chat lines
// of senders who have a command of their own waiting or in flight (so that
// "#join" then "hello" keeps its order). Other senders' chat lines do not
// wait: they see the room as last committed.
type waiters struct {
	tasks   []task
	senders map[string]int // sender key → its tasks here, the one being committed included
	// all: every chat line waits too. The commit gives a new member the
	// room's last lines (history on join): a line said meanwhile would be
	// neither among them nor sent to them, and one said after would
	// overtake them.
	all bool
}

// newWaiters is what waits behind a job for the MESSAGE in (nil for
// none): its sender's later chat lines wait too.
func newWaiters(in *imc.Input) *waiters {
	w := &waiters{senders: make(map[string]int, 1)}
	if in != nil {
		w.senders[in.From.Key()]++
	}
	return w
}

func (w *waiters) push(t task) {
	w.tasks = append(w.tasks, t)
	if t.kind == taskEvent {
		w.senders[t.in.From.Key()]++
	}
}

func (w *waiters) hasSender(u imc.URI) bool {
	var buf [imc.KeyBufLen]byte
	return w.senders[string(u.AppendKey(buf[:0]))] > 0 // no allocation: map lookup by a converted []byte
}

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

// job is one unit of work for a shard's committer: run there, in the order
// jobs come, then handed back to the shard goroutine (finish). A command's
// commit is one (commitJob); reads are others (a re-read after a commit in
// doubt, a catch-up, RabbitMQ mode's re-read of rooms to serve).
type job interface {
	// run does the job's store calls, on the committer: it touches
	// nothing the shard goroutine owns.
	run(s *shard)
	// finish takes the job back, on the shard goroutine.
	finish(s *shard)
}

// maxJobs is the most jobs one shard has at its committer (commands being
// saved, reads); a command beyond it is answered "try again later".
const maxJobs = 64

// maxWaiting is the most tasks that wait behind commits in one shard; a
// command beyond it is answered "try again later" at once.
const maxWaiting = 1024

func newShard(e *env, mode Mode, id, queue int) *shard {
	return &shard{env: e, mode: mode, id: id, queue: make(chan task, queue), rooms: imc.NewRooms(),
		logger:     e.log.With(logkey.System, logkey.SystemShard, logkey.Shard, id),
		commits:    make(chan job, maxJobs),
		committed:  make(chan job, maxJobs),
		behind:     make(map[string]*waiters),
		inProgress: make(map[uint64][]func(error)),
		doubtful:   make(map[string]*doubt),
		seqs:       make(map[string]int64),
		strict:     mode.strict(),
	}
}

// offer queues t on s without blocking: false when the queue is full (the
// event intake and the scheduler's callbacks must never wait).
func (s *shard) offer(t task) bool {
	select {
	case s.queue <- t:
		return true
	default:
		return false
	}
}
