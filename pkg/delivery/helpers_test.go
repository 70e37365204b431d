package delivery_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/delivery"
	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/opensips"
)

var (
	ok200 = delivery.Outcome{Status: 200, Reason: "200 OK"}
	st408 = delivery.Outcome{Status: 408, Reason: "408 Request Timeout"}
)

func uri(user string) imc.URI { return imc.URI{User: user, Host: "127.0.0.1"} }

func notices(room string, to []string, body string) []imc.Notice {
	ns := make([]imc.Notice, len(to))
	for i, u := range to {
		ns[i] = imc.Notice{From: uri(room), To: uri(u), Body: body, ContentType: "text/plain"}
	}
	return ns
}

// missedNotice is a Scheduler.MissedNotice whose body is "missed".
func missedNotice(room, member imc.URI, _ int) imc.Notice {
	return imc.Notice{From: room, To: member, Body: "missed", ContentType: "text/plain"}
}

func users(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

func testLogger(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// fakeSender is a Sender the test controls: rule decides each request's
// outcome at once, or holds it (ok false) until answer.
type fakeSender struct {
	mu   sync.Mutex
	rule func(n *imc.Notice) (delivery.Outcome, bool)
	// unordered lists the members whose requests may be reordered on the
	// way (InOrder false): through a proxy.
	unordered map[string]bool
	err       error
	sent      []imc.Notice
	held      map[uint64]heldReq
}

type heldReq struct {
	n    imc.Notice
	done delivery.Completion
}

func newFakeSender(rule func(n *imc.Notice) (delivery.Outcome, bool)) *fakeSender {
	return &fakeSender{rule: rule, held: map[uint64]heldReq{}}
}

func (f *fakeSender) Flush() {}

func (f *fakeSender) Poll() int { return 0 }

func (f *fakeSender) InOrder(u imc.URI) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.unordered[u.User]
}

func (f *fakeSender) Send(n *imc.Notice, tag uint64, done delivery.Completion) error {
	f.mu.Lock()
	if f.err != nil {
		f.mu.Unlock()
		return f.err
	}
	f.sent = append(f.sent, *n)
	o, now := ok200, true
	if f.rule != nil {
		o, now = f.rule(n)
	}
	if !now {
		f.held[tag] = heldReq{*n, done}
		f.mu.Unlock()
		return nil
	}
	f.mu.Unlock()
	done(tag, o, false)
	return nil
}

// answer completes the held requests whose notice pred accepts.
func (f *fakeSender) answer(pred func(n imc.Notice) bool, o delivery.Outcome) int {
	f.mu.Lock()
	var todo []func()
	for tag, h := range f.held {
		if pred(h.n) {
			delete(f.held, tag)
			todo = append(todo, func() { h.done(tag, o, false) })
		}
	}
	f.mu.Unlock()
	for _, g := range todo {
		g()
	}
	return len(todo)
}

func (f *fakeSender) sentTo(user string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, n := range f.sent {
		if n.To.User == user {
			out = append(out, n.Body)
		}
	}
	return out
}

func (f *fakeSender) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sent)
}

// results collects Done calls.
type results struct {
	mu  sync.Mutex
	all []delivery.Result
	by  map[string][]string // member -> bodies delivered, in order
}

func newResults() *results { return &results{by: map[string][]string{}} }

func (r *results) done(n imc.Notice, res delivery.Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all = append(r.all, res)
	if res.Kind == delivery.Delivered {
		r.by[n.To.User] = append(r.by[n.To.User], n.Body)
	}
}

func (r *results) count(k delivery.Kind) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, x := range r.all {
		if x.Kind == k {
			n++
		}
	}
	return n
}

func (r *results) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.all)
}

func (r *results) delivered(user string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.by[user]...)
}

// waitFor polls cond for up to 10 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func open(t testing.TB, s *delivery.Scheduler) *delivery.Scheduler {
	t.Helper()
	if s.Logger == nil {
		s.Logger = testLogger(t)
	}
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fakeClock is a Clock moved by hand.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c     *fakeClock
	ch    chan time.Time
	at    time.Time
	armed bool
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) delivery.Timer {
	t := &fakeTimer{c: c, ch: make(chan time.Time, 1)}
	c.mu.Lock()
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	t.Reset(d)
	return t
}

// Advance moves the clock on and fires the timers that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for _, t := range c.timers {
		t.fireLocked()
	}
}

func (t *fakeTimer) fireLocked() {
	if t.armed && !t.at.After(t.c.now) {
		t.armed = false
		select {
		case t.ch <- t.c.now:
		default:
		}
	}
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Reset(d time.Duration) {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	t.at, t.armed = t.c.now.Add(d), true
	t.fireLocked()
}

func (t *fakeTimer) Stop() {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	t.armed = false
}

// observer counts what the scheduler reports.
type observer struct {
	mu       sync.Mutex
	finished map[string]int
	shed     int
	gauges   int
	last     delivery.Stats
}

func newObserver() *observer { return &observer{finished: map[string]int{}} }

func (o *observer) Finished(r delivery.Result) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.finished[r.Kind.String()]++
}

func (o *observer) Shed(n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.shed += n
}

func (o *observer) Gauges(s *delivery.Stats) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.gauges++
	o.last = *s
	o.last.Endpoints = append([]delivery.EndpointStats(nil), s.Endpoints...)
}

var (
	_ delivery.Sender   = (*fakeSender)(nil)
	_ delivery.Sender   = (*opensips.MIClient)(nil)
	_ delivery.Observer = (*observer)(nil)
	_ delivery.Clock    = (*fakeClock)(nil)
)
