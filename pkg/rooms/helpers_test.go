package rooms

import (
	"context"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imcd-sip/imcd/internal/testdb"
	"github.com/imcd-sip/imcd/pkg/dbhealth"
	"github.com/imcd-sip/imcd/pkg/delivery"
	"github.com/imcd-sip/imcd/pkg/flood"
	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/metrics"
	"github.com/imcd-sip/imcd/pkg/store"
)

// The runtime's tests build it alone: a real store (a temporary SQLite
// file, or the machine's MariaDB through a proxy the test controls), the
// real engine, and a recorder in place of delivery.

const (
	alice   = "sip:alice@example.com"
	bob     = "sip:bob@example.com"
	carol   = "sip:carol@example.com"
	manager = "sip:chat-manager@example.com"
	room1   = "sip:chat-1@example.com"
)

// recorder is the runtime's Delivery in tests: it keeps every notice
// submitted, and can refuse every batch (busy) or fail the notices to
// chosen members (their Done is told, as delivery would).
type recorder struct {
	mu      sync.Mutex
	notices []imc.Notice
	changed chan struct{} // closed and replaced at each batch
	busy    bool
	fail    map[string]string // member URI → the status their notices fail with
	// away lists members who cannot be reached now: a notice to them in a
	// batch with Kept is kept (its Kept told at once, with the answer
	// given here) until the test ends it (end).
	away     map[string]delivery.Outcome
	kept     []keptNotice
	keptSeen int // notices of batches with Kept that went to a member not away
}

// keptNotice is a notice the recorder keeps for a member away.
type keptNotice struct {
	n    imc.Notice
	done delivery.Done
}

func newRecorder() *recorder {
	return &recorder{changed: make(chan struct{}), fail: map[string]string{}, away: map[string]delivery.Outcome{}}
}

// end gives the notices kept for member their result, as delivery would.
func (r *recorder) end(member string, res delivery.Result) {
	r.mu.Lock()
	var ended []keptNotice
	rest := r.kept[:0]
	for _, k := range r.kept {
		if k.n.To.String() == member {
			ended = append(ended, k)
		} else {
			rest = append(rest, k)
		}
	}
	r.kept = rest
	r.mu.Unlock()
	for _, k := range ended {
		if k.done != nil {
			k.done(k.n, res)
		}
	}
}

func (r *recorder) Submit(b delivery.Batch) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.busy {
		return delivery.ErrBusy
	}
	for _, n := range b.Notices {
		r.notices = append(r.notices, n)
		if status, ok := r.fail[n.To.String()]; ok && b.Done != nil {
			res := delivery.Result{Kind: delivery.Failed, Outcome: delivery.Outcome{Status: 403, Reason: status}, Attempts: 1}
			go b.Done(n, res) // on delivery's goroutine, as the scheduler does
		}
		if o, ok := r.away[n.To.String()]; ok && b.Kept != nil {
			r.kept = append(r.kept, keptNotice{n: n, done: b.Done})
			go b.Kept(n, delivery.Keep{Outcome: o, Until: time.Now().Add(10 * time.Minute)})
		} else if b.Kept != nil {
			r.keptSeen++
		}
	}
	close(r.changed)
	r.changed = make(chan struct{})
	return nil
}

func (r *recorder) Remove(room, member imc.URI)   {}
func (r *recorder) CatchUp(delivery.CatchUpReply) {}

var _ Delivery = (*recorder)(nil)

// reset forgets what was recorded.
func (r *recorder) reset() {
	r.mu.Lock()
	r.notices = nil
	r.mu.Unlock()
}

// wait waits for n notices and returns them as "to: body" lines, sorted.
func (r *recorder) wait(t *testing.T, what string, n int) []string {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		r.mu.Lock()
		got, changed := lines(r.notices), r.changed
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("%s: waiting for %d notices, got %q", what, n, got)
		}
	}
}

func lines(ns []imc.Notice) []string {
	out := make([]string, 0, len(ns))
	for _, n := range ns {
		out = append(out, n.To.String()+": "+n.Body)
	}
	slices.Sort(out)
	return out
}

// harness is one runtime under test.
type harness struct {
	t      *testing.T
	rt     *Runtime
	engine *imc.Engine
	store  *store.DB
	db     *dbhealth.Monitor
	out    *recorder
	reg    *prometheus.Registry
	calls  atomic.Int64 // Call-IDs given
}

// options adjust a harness's runtime.
type options struct {
	commandTimeout time.Duration
	dedup          time.Duration
}

// openSQLite opens a runtime on a temporary SQLite file.
func openSQLite(t *testing.T, o options) *harness {
	t.Helper()
	return openRuntime(t, store.Config{URL: testdb.Need(t, testdb.SQLite), CreateTables: true}, o)
}

// openRuntime opens a store with sc, then a runtime on it with every room
// loaded; it is shut down, and the store closed, at the end of the test.
func openRuntime(t *testing.T, sc store.Config, o options) *harness {
	t.Helper()
	sc.Logger = testLogger(t)
	st, err := store.Open(context.Background(), sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if o.commandTimeout == 0 {
		o.commandTimeout = 3 * time.Second
	}
	h := &harness{t: t, engine: imc.NewEngine(imc.DefaultConfig()), store: st, out: newRecorder()}
	h.db = dbhealth.New(st, testLogger(t))
	if err := h.db.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.db.Close() })
	m := metrics.New(func() (int, int) { return 0, 0 })
	h.reg = m.Registry
	h.rt = New(Config{Shards: 4, Queue: 256, CommandTimeout: o.commandTimeout, CatchUpMax: 50},
		Deps{Engine: h.engine, Store: st, Delivery: h.out, Metrics: m, Dedup: &flood.Dedup{Window: o.dedup},
			DB: h.db, Logger: testLogger(t)})
	loaded, err := st.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	h.rt.Load(loaded)
	if err := h.rt.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h.rt.Shutdown(ctx)
	})
	return h
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// raise submits one MESSAGE from "from" to ruri; done, if not nil, is told
// how it ended.
func (h *harness) raise(from, ruri, body string, done func(error)) {
	h.t.Helper()
	h.raiseEvent(imc.Request{From: from, RURI: ruri, To: ruri, Body: body, ContentType: "text/plain", CallID: "call-" + strconv.FormatInt(h.calls.Add(1), 10)}, done)
}

func (h *harness) raiseEvent(req imc.Request, done func(error)) {
	h.t.Helper()
	in, err := h.engine.Prepare(req)
	if err != nil {
		h.t.Fatal(err)
	}
	if done == nil {
		done = func(error) {}
	}
	if err := h.rt.Submit(&Event{In: in, Done: done}); err != nil {
		h.t.Fatalf("submit %q: %v", req.Body, err)
	}
}

// send raises one MESSAGE and waits for n notices; it returns them as
// "to: body" lines, sorted.
func (h *harness) send(from, ruri, body string, n int) []string {
	h.t.Helper()
	h.out.reset()
	h.raise(from, ruri, body, nil)
	return h.out.wait(h.t, body, n)
}

// aliceAndBob makes room1 with alice as its owner and bob a member, and
// forgets the notices that took.
func (h *harness) aliceAndBob() {
	h.t.Helper()
	h.send(alice, manager, "#create chat-1", 1)
	h.send(bob, room1, "#join", 2)
	h.out.reset()
}

// quiet fails if more than after notices are recorded within a short
// while: the runtime must not send what the test did not expect.
func (h *harness) quiet(after int) {
	h.t.Helper()
	time.Sleep(50 * time.Millisecond)
	h.out.mu.Lock()
	defer h.out.mu.Unlock()
	if len(h.out.notices) > after {
		h.t.Fatalf("unexpected notices: %q", lines(h.out.notices[after:]))
	}
}

// same fails unless got and want hold the same lines (want is sorted here).
func same(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("%s:\n got  %q\n want %q", what, got, want)
	}
}

// eventually waits until cond holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
