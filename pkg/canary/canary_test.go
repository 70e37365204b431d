package canary

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// loop plays OpenSIPS and its event path: what Send sends comes back to
// Seen (after delay), unless the test breaks a leg.
type loop struct {
	mu      sync.Mutex
	p       *Prober
	miErr   error // the MI refuses
	status  int   // the script's answer (202 when 0)
	drop    bool  // accepted, never back
	sent    int
	verdict []string
}

func (l *loop) send(_ context.Context, body string) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sent++
	if l.miErr != nil {
		return 0, l.miErr
	}
	if l.status != 0 {
		return l.status, nil
	}
	if !l.drop {
		go l.p.Seen(User, body) // the event arrives on another goroutine
	}
	return 202, nil
}

func (l *loop) Probed(ok bool, leg Leg) {
	l.mu.Lock()
	defer l.mu.Unlock()
	v := "ok"
	if !ok {
		v = string(leg)
	}
	l.verdict = append(l.verdict, v)
}

func (l *loop) set(f func(*loop)) {
	l.mu.Lock()
	f(l)
	l.mu.Unlock()
}

// last waits until a verdict other than the n before it is recorded and
// returns the latest.
func (l *loop) next(t *testing.T, after int) (string, int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		n := len(l.verdict)
		v := ""
		if n > after {
			v = l.verdict[n-1]
		}
		l.mu.Unlock()
		if n > after {
			return v, n
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("no verdict")
	return "", 0
}

func TestLegs(t *testing.T) {
	l := &loop{}
	p := &Prober{Interval: 20 * time.Millisecond, Timeout: 50 * time.Millisecond, Send: l.send, Observer: l}
	l.p = p
	if err := p.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	v, n := l.next(t, 0)
	if v != "ok" || p.Err() != nil {
		t.Fatalf("healthy path: %s %v", v, p.Err())
	}
	for _, c := range []struct {
		leg    Leg
		break_ func(*loop)
	}{
		{LegMI, func(l *loop) { l.miErr = errors.New("no reply from OpenSIPS") }},
		{LegScript, func(l *loop) { l.status = 500 }},
		{LegEvents, func(l *loop) { l.drop = true }},
	} {
		l.set(c.break_)
		for v != string(c.leg) {
			v, n = l.next(t, n)
		}
		if err := p.Err(); err == nil || !strings.Contains(err.Error(), "("+string(c.leg)+")") {
			t.Fatalf("%s broken: Err() = %v", c.leg, err)
		}
		l.set(func(l *loop) { l.miErr, l.status, l.drop = nil, 0, false })
		for v != "ok" {
			v, n = l.next(t, n)
		}
		if err := p.Err(); err != nil {
			t.Fatalf("%s healed: Err() = %v", c.leg, err)
		}
	}
}

// Probes are swallowed whoever sent them; anything else is not.
func TestSeen(t *testing.T) {
	p := &Prober{id: "abc"}
	for _, c := range []struct {
		from, body string
		probe      bool
	}{
		{User, "imcd-canary abc 1", true},
		{User, "imcd-canary other-instance 7", true},
		{"alice", "imcd-canary abc 1", false},
		{User, "hello", false},
	} {
		if got := p.Seen(c.from, c.body); got != c.probe {
			t.Errorf("Seen(%q, %q) = %v", c.from, c.body, got)
		}
	}
	var nilProber *Prober // canary off: probes of other instances are still dropped
	if !nilProber.Seen(User, "imcd-canary abc 1") || nilProber.Err() != nil {
		t.Error("a nil Prober")
	}
}

// Several instances sharing queues: a probe consumed by another counts
// when Returned says so.
func TestReturnedElsewhere(t *testing.T) {
	l := &loop{drop: true}
	var asked string
	var mu sync.Mutex
	p := &Prober{Interval: 20 * time.Millisecond, Timeout: 20 * time.Millisecond, Send: l.send, Observer: l,
		Returned: func(_ context.Context, body string) (bool, error) {
			mu.Lock()
			asked = body
			mu.Unlock()
			return true, nil
		}}
	l.p = p
	if err := p.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if v, _ := l.next(t, 0); v != "ok" {
		t.Fatalf("verdict %s", v)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.HasPrefix(asked, "imcd-canary "+p.id+" ") {
		t.Fatalf("Returned asked about %q", asked)
	}
}

// Nothing is probed while Ready says the path is not set up yet; then the
// probes go, and go on when it no longer is (a path broken later is the
// canary's to find).
func TestReady(t *testing.T) {
	l := &loop{}
	var mu sync.Mutex
	ready, asked := false, 0
	p := &Prober{Interval: 10 * time.Millisecond, Timeout: 50 * time.Millisecond, Send: l.send, Observer: l,
		Ready: func() bool {
			mu.Lock()
			defer mu.Unlock()
			asked++
			return ready
		}}
	l.p = p
	if err := p.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		mu.Lock()
		n := asked
		mu.Unlock()
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Ready not asked")
		}
	}
	l.mu.Lock()
	sent := l.sent
	l.mu.Unlock()
	if sent != 0 || p.Err() != nil {
		t.Fatalf("%d probes sent before the path was set up (Err %v)", sent, p.Err())
	}
	mu.Lock()
	ready = true
	mu.Unlock()
	v, n := l.next(t, 0)
	if v != "ok" {
		t.Fatalf("verdict %s", v)
	}
	mu.Lock()
	ready = false
	mu.Unlock()
	l.set(func(l *loop) { l.drop = true })
	for v != string(LegEvents) {
		v, n = l.next(t, n)
	}
}
