package delivery_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/imcd-sip/imcd/pkg/delivery"
	"github.com/imcd-sip/imcd/pkg/imc"
)

// TestOrderThroughAProxy: a room's notices to a member whose requests may
// be reordered on the way (a proxy's workers) are written one at a time,
// each after the last was answered; to a member whose requests keep their
// order, up to MemberInflight at once. Either way they are written in the
// room's order, and another room's notices to the same member do not wait.
func TestOrderThroughAProxy(t *testing.T) {
	held := func(*imc.Notice) (delivery.Outcome, bool) { return delivery.Outcome{}, false }
	snd := newFakeSender(held)
	snd.unordered = map[string]bool{"viaproxy": true}
	res := newResults()
	s := open(t, &delivery.Scheduler{Endpoints: []delivery.Endpoint{{Sender: snd}}, MemberInflight: 4})
	for i := range 6 {
		if err := s.Submit(delivery.Batch{Notices: notices("chat-1", []string{"viaproxy", "direct"}, fmt.Sprint(i)), Done: res.done}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Submit(delivery.Batch{Notices: notices("chat-2", []string{"viaproxy"}, "other room"), Done: res.done}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first writes", func() bool { return len(snd.sentTo("direct")) == 4 && len(snd.sentTo("viaproxy")) == 2 })
	if got := snd.sentTo("viaproxy"); !slices.Equal(got, []string{"0", "other room"}) {
		t.Fatalf("through the proxy, written before any answer: %v", got)
	}
	if got := snd.sentTo("direct"); !slices.Equal(got, []string{"0", "1", "2", "3"}) {
		t.Fatalf("in order, written before any answer: %v", got)
	}
	for i := 1; i < 6; i++ {
		// Each answer lets the next line of chat-1 go to viaproxy, and no more.
		snd.answer(func(n imc.Notice) bool { return n.To.User == "viaproxy" && n.From.User == "chat-1" }, ok200)
		waitFor(t, fmt.Sprintf("line %d to viaproxy", i), func() bool { return len(snd.sentTo("viaproxy")) == 2+i })
		if got := snd.sentTo("viaproxy"); got[len(got)-1] != fmt.Sprint(i) {
			t.Fatalf("after answer %d: %v", i, got)
		}
	}
}

// TestOrderWhenThePathChanges: a member's requests start through the
// proxy (their contact is not known yet) and then keep their order (it is):
// nothing is written while one written through the proxy is in flight.
func TestOrderWhenThePathChanges(t *testing.T) {
	held := func(*imc.Notice) (delivery.Outcome, bool) { return delivery.Outcome{}, false }
	snd := newFakeSender(held)
	snd.unordered = map[string]bool{"bob": true}
	res := newResults()
	s := open(t, &delivery.Scheduler{Endpoints: []delivery.Endpoint{{Sender: snd}}, MemberInflight: 4})
	submit := func(body string) {
		if err := s.Submit(delivery.Batch{Notices: notices("chat-1", []string{"bob"}, body), Done: res.done}); err != nil {
			t.Fatal(err)
		}
	}
	submit("0")
	waitFor(t, "the first write", func() bool { return len(snd.sentTo("bob")) == 1 })
	snd.mu.Lock()
	snd.unordered = nil // bob's contact became known
	snd.mu.Unlock()
	submit("1")
	submit("2")
	s.Reachable(uri("bob")) // a nudge: the scheduler looks again
	if got := snd.sentTo("bob"); len(got) != 1 {
		t.Fatalf("written while a request through the proxy was in flight: %v", got)
	}
	snd.answer(func(n imc.Notice) bool { return n.Body == "0" }, ok200)
	waitFor(t, "the rest, together", func() bool { return len(snd.sentTo("bob")) == 3 })
}
