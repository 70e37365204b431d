package opensips_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/opensips"
	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

const wire = "../../testdata/opensips-wire"

func readWire(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(wire, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testLogger logs to the test's output, at debug level when -v.
func testLogger(t testing.TB) *slog.Logger {
	level := slog.LevelWarn
	if testing.Verbose() {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: level}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// recordingSink records events; it acknowledges them at once when auto is
// set, else it keeps their done functions for the test to call.
type recordingSink struct {
	auto bool

	mu      sync.Mutex
	refuse  error  // returned by Submit when set
	panicOn string // Submit panics on an event with this body
	events  []opensips.Event
	dones   []func(error)
	ch      chan struct{}
}

func newSink(auto bool) *recordingSink {
	return &recordingSink{auto: auto, ch: make(chan struct{}, 1)}
}

// set changes what Submit does.
func (s *recordingSink) set(refuse error, panicOn string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse, s.panicOn = refuse, panicOn
}

func (s *recordingSink) Submit(ev opensips.Event, done func(error)) error {
	s.mu.Lock()
	if s.panicOn != "" && ev.Req.Body == s.panicOn {
		s.mu.Unlock()
		panic("sink exploded")
	}
	if s.refuse != nil {
		s.mu.Unlock()
		return s.refuse
	}
	s.events = append(s.events, ev)
	s.dones = append(s.dones, done)
	s.mu.Unlock()
	select {
	case s.ch <- struct{}{}:
	default:
	}
	if s.auto {
		done(nil)
	}
	return nil
}

func (s *recordingSink) snapshot() ([]opensips.Event, []func(error)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]opensips.Event(nil), s.events...), append([]func(error){}, s.dones...)
}

// wait waits until n events were submitted.
func (s *recordingSink) wait(t testing.TB, n int) []opensips.Event {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		evs, _ := s.snapshot()
		if len(evs) >= n {
			return evs
		}
		select {
		case <-s.ch:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("got %d events, want %d", len(evs), n)
		}
	}
}

// countingObserver counts what it is told.
type countingObserver struct {
	mu         sync.Mutex
	events     map[string]int
	deliveries map[string]int
}

func newObserver() *countingObserver {
	return &countingObserver{events: map[string]int{}, deliveries: map[string]int{}}
}

func (o *countingObserver) EventReceived(transport, result string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.events[transport+"/"+result]++
}

func (o *countingObserver) DeliveryDone(status string, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.deliveries[status]++
}

func (o *countingObserver) event(key string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.events[key]
}

// String prints the counts (for failure messages).
func (o *countingObserver) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return fmt.Sprint(o.events, o.deliveries)
}

func (o *countingObserver) delivery(class string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.deliveries[class]
}

var _ opensips.Observer = (*countingObserver)(nil)
var _ opensips.Sink = (*recordingSink)(nil)

// waitFor polls cond for up to 5 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func startFake(t testing.TB, opts opensipstest.Options) *opensipstest.Server {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	return opensipstest.New(t, opts)
}

func openClient(t testing.TB, addr string, mutate func(*opensips.MIClient)) *opensips.MIClient {
	t.Helper()
	c := &opensips.MIClient{Addr: addr, Logger: testLogger(t), Timeout: 2 * time.Second, CallTimeout: time.Second}
	if mutate != nil {
		mutate(c)
	}
	if err := c.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func mustf(t testing.TB, err error, format string, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", fmt.Sprintf(format, args...), err)
	}
}
