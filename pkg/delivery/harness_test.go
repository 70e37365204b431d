package delivery

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/imc"
)

// The engine tests drive the engine step by step with a synthetic clock:
// no goroutine, no sleep. Requests the engine picks are recorded; the test
// answers them (or not) explicitly.

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

// Outcomes as OpenSIPS reports them.
var (
	ok200    = Outcome{Status: 200, Reason: "200 OK"}
	st403    = Outcome{Status: 403, Reason: "403 Forbidden"}
	st404    = Outcome{Status: 404, Reason: "404 Not Found"}
	st408    = Outcome{Status: 408, Reason: "408 Request Timeout"}
	st480    = Outcome{Status: 480, Reason: "480 Temporarily Unavailable"}
	lost     = Outcome{Fault: FaultLost, Err: errors.New("no reply in 10s"), Reason: "no reply"}
	notSent  = Outcome{Fault: FaultNotSent, Err: errors.New("connection refused")}
	overload = Outcome{Fault: FaultOverloaded, Err: errors.New("500 Server error occurred (1/MI/UAC)")}
	err476   = Outcome{Fault: FaultNoRoute, Err: errors.New("476 Unresolvable destination (476/MI/UAC)")}
)

type harness struct {
	t   *testing.T
	e   *engine
	now time.Time
	// sent holds every request picked, in order; out the ones not yet
	// answered: tag -> index in sent (a retried notice keeps its tag).
	sent []pick
	out  map[uint64]int
	// results by notice body, in the order they came; kept the news of
	// notices kept for unreachable members (Batch.Kept), in order too.
	results []result
	kept    []keptNews
	buf     []pick
}

// keptNews is one call of a batch's Kept.
type keptNews struct {
	body, to string
	k        Keep
	before   int // results reported before it
}

type result struct {
	body string
	to   string
	r    Result
}

// newHarness builds an engine with n endpoints; mutate adjusts the
// Scheduler fields before defaults apply.
func newHarness(t *testing.T, n int, mutate func(*Scheduler)) *harness {
	s := &Scheduler{MissedNotice: missedText}
	if mutate != nil {
		mutate(s)
	}
	eps := make([]Endpoint, n)
	for i := range eps {
		eps[i] = Endpoint{Name: fmt.Sprintf("ep%d", i), Sender: nopSender{}}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	h := &harness{t: t, now: t0, out: map[uint64]int{}, buf: make([]pick, 0, maxPicks)}
	h.e = newEngine(s.settings(), eps, log, t0)
	return h
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

type nopSender struct{}

func (nopSender) Send(*imc.Notice, uint64, Completion) error { return nil }

func (nopSender) Flush() {}

func (nopSender) Poll() int { return 0 }

func (nopSender) InOrder(imc.URI) bool { return true }

func missedText(room, member imc.URI, n int) imc.Notice {
	return imc.Notice{From: room, To: member, Body: fmt.Sprintf("missed %d", n), ContentType: "text/plain"}
}

func uri(user string) imc.URI { return imc.URI{User: user, Host: "example.com"} }

func notices(room string, to []string, body string) []imc.Notice {
	ns := make([]imc.Notice, len(to))
	for i, u := range to {
		ns[i] = imc.Notice{From: uri(room), To: uri(u), Body: body, ContentType: "text/plain"}
	}
	return ns
}

func users(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

// submit admits one batch at the current time.
func (h *harness) submit(room string, to []string, body string, urgent bool) error {
	return h.e.admit(Batch{Notices: notices(room, to, body), Urgent: urgent, Done: h.done, Kept: h.onKept}, h.now)
}

func (h *harness) mustSubmit(room string, to []string, body string) {
	h.t.Helper()
	if err := h.submit(room, to, body, false); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) done(n imc.Notice, r Result) {
	h.results = append(h.results, result{body: n.Body, to: n.To.User, r: r})
}

func (h *harness) onKept(n imc.Notice, k Keep) {
	h.kept = append(h.kept, keptNews{body: n.Body, to: n.To.User, k: k, before: len(h.results)})
}

// collect moves the engine's reports to h.results (and h.kept), as the
// loop would.
func (h *harness) collect() {
	for _, r := range h.e.reports {
		if r.kept != nil {
			r.kept(r.n, r.keep)
			continue
		}
		if r.done != nil {
			r.done(r.n, r.r)
		} else {
			h.results = append(h.results, result{body: r.n.Body, to: r.n.To.User, r: r.r}) // the scheduler's own
		}
	}
	h.e.reports = h.e.reports[:0]
}

// advance moves time on by d, applies the timers and picks what the engine
// writes now; it returns the new requests.
func (h *harness) advance(d time.Duration) []pick {
	h.now = h.now.Add(d)
	h.e.tick(h.now)
	var got []pick
	for {
		h.buf = h.e.pick(h.now, h.buf[:0])
		for _, p := range h.buf {
			if p.missed > 0 {
				p.n = missedText(p.n.From, p.n.To, int(p.missed))
			}
			h.out[p.tag] = len(h.sent)
			h.sent = append(h.sent, p)
			got = append(got, p)
		}
		if len(h.buf) < cap(h.buf) {
			break
		}
	}
	h.collect()
	return got
}

// reply answers one request.
func (h *harness) reply(p pick, o Outcome) {
	h.t.Helper()
	if _, ok := h.out[p.tag]; !ok {
		h.t.Fatalf("reply to %q for %s: not in flight", p.n.Body, p.n.To.User)
	}
	delete(h.out, p.tag)
	h.e.complete(p.tag, o, h.now)
	h.collect()
}

// replyAll answers every request in flight with f's outcome.
func (h *harness) replyAll(f func(p pick) Outcome) {
	for _, p := range h.inflight() {
		if o := f(p); o != (Outcome{}) {
			h.reply(p, o)
		}
	}
}

// inflight returns the unanswered requests in the order they were sent.
func (h *harness) inflight() []pick {
	idx := make([]int, 0, len(h.out))
	for _, i := range h.out {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	out := make([]pick, len(idx))
	for k, i := range idx {
		out[k] = h.sent[i]
	}
	return out
}

// sentTo returns the bodies sent to user, in order.
func (h *harness) sentTo(user string) []string {
	var out []string
	for _, p := range h.sent {
		if p.n.To.User == user {
			out = append(out, p.n.Body)
		}
	}
	return out
}

// count returns how many results of kind k came.
func (h *harness) count(k Kind) int {
	n := 0
	for _, r := range h.results {
		if r.r.Kind == k {
			n++
		}
	}
	return n
}

func (h *harness) status(room, user string) MemberStatus {
	return h.e.memberStatus(uri(room), uri(user))
}

func isBusy(err error) bool { return errors.Is(err, ErrBusy) }
