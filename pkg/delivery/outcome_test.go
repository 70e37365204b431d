package delivery

import (
	"errors"
	"strings"
	"testing"
)

// TestOutcomeClass: an outcome's class is its status's, or its fault's.
func TestOutcomeClass(t *testing.T) {
	f := func(o Outcome, want string) {
		t.Helper()
		if got := o.Class(); got != want {
			t.Fatalf("%+v: class %s, want %s", o, got, want)
		}
		if o.Delivered() != (want == Class2xx) {
			t.Fatalf("%+v: Delivered %v", o, o.Delivered())
		}
	}
	f(Outcome{Status: 200, Reason: "200 OK"}, Class2xx)
	f(Outcome{Status: 180}, ClassError)
	f(Outcome{Status: 302}, Class3xx)
	f(Outcome{Status: 404}, Class4xx)
	f(Outcome{Status: 503}, Class5xx)
	f(Outcome{Status: 603}, Class6xx)
	f(Outcome{Fault: FaultLost}, ClassTimeout)
	f(Outcome{Fault: FaultNotSent}, ClassUnreachable)
	f(Outcome{Fault: FaultAborted}, ClassAborted)
	f(Outcome{Fault: FaultRefused}, ClassError)
	f(Outcome{Fault: FaultNoRoute}, ClassError)
	f(Outcome{Fault: FaultOverloaded}, ClassError)
	if !strings.Contains(Outcome{Status: 404, Reason: "404 Not Found"}.String(), "404") {
		t.Fatal("String")
	}
	if got := (Outcome{Fault: FaultLost, Err: errors.New("no reply in 10s"), Reason: "no reply"}).String(); got != "no reply in 10s" {
		t.Fatalf("String with an error: %q", got)
	}
}

// TestOutcomePredicates: at most one of the predicates the scheduler acts
// on holds for an outcome.
func TestOutcomePredicates(t *testing.T) {
	const (
		unreachable = "unreachable"
		overloaded  = "overloaded"
		lost        = "lost"
		notSent     = "not-sent"
		aborted     = "aborted"
		other       = "other"
	)
	g := func(o Outcome, want string) {
		t.Helper()
		n, k := 0, other
		for _, c := range []struct {
			ok   bool
			name string
		}{{o.MemberUnreachable(), unreachable}, {o.Overloaded(), overloaded}, {o.Lost(), lost}, {o.NotSent(), notSent}, {o.Aborted(), aborted}} {
			if c.ok {
				n, k = n+1, c.name
			}
		}
		if n > 1 {
			t.Fatalf("%+v: %d predicates hold", o, n)
		}
		if k != want {
			t.Fatalf("%+v: %s, want %s", o, k, want)
		}
	}
	g(Outcome{Status: 200, Reason: "200 OK"}, other)
	g(Outcome{Status: 486, Reason: "486 Busy Here"}, other)
	g(Outcome{Status: 603}, other)
	for _, st := range []int{404, 408, 410, 480, 604} {
		g(Outcome{Status: st}, unreachable)
	}
	g(Outcome{Fault: FaultNoRoute}, unreachable)
	g(Outcome{Fault: FaultOverloaded}, overloaded)
	g(Outcome{Fault: FaultLost}, lost)
	g(Outcome{Fault: FaultNotSent}, notSent)
	g(Outcome{Fault: FaultAborted}, aborted)
	g(Outcome{Fault: FaultRefused}, other)
}

// TestFaultOfSendError: a Sender's error says its fault; any other refuses
// the notice.
func TestFaultOfSendError(t *testing.T) {
	if f := faultOf(errors.New("unsafe header")); f != FaultRefused {
		t.Fatalf("a plain error: %v", f)
	}
	if f := faultOf(fmtWrap(faultErr(FaultNotSent))); f != FaultNotSent {
		t.Fatalf("a wrapped fault: %v", f)
	}
}

type faultErr Fault

func (e faultErr) Error() string { return "fault" }
func (e faultErr) Fault() Fault  { return Fault(e) }

func fmtWrap(err error) error { return errors.Join(errors.New("context"), err) }
