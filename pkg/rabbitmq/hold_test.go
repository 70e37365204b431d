package rabbitmq

import (
	"slices"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/internal/testbroker"
)

// TestStopIntakeHoldsTheQueue: after StopIntake the consumer takes nothing
// more but keeps the queue, and acknowledges what its Sink commits
// meanwhile; the standby gets the queue only at Close, with what was
// neither committed nor submitted.
func TestStopIntakeHoldsTheQueue(t *testing.T) {
	url := testbroker.URL(t)
	a := newAdmin(t, url)
	top := a.topology(url, 1, false)
	held := newRecorder(holdAll)
	obs := newCounter()
	active := openConsumer(t, &Consumer{URL: url, Queues: top.Queues, Sink: held, Observer: obs, DrainTimeout: patience})
	eventually(t, "the active consumer ready", func() bool { return active.Ready() == nil })
	standby := newRecorder(applyAll)
	openConsumer(t, &Consumer{URL: url, Queues: top.Queues, Sink: standby})
	for i := 1; i <= 3; i++ {
		a.publish(top.Exchange, "k", numbered("chat-1", i))
	}
	held.waitEvents(t, 3)

	active.StopIntake()
	for i := 4; i <= 5; i++ {
		a.publish(top.Exchange, "k", numbered("chat-1", i))
	}
	for _, done := range held.held() {
		done(nil)
	}
	eventually(t, "the three committed deliveries acknowledged", func() bool { return obs.get(OutcomeAcked) == 3 })
	if n := standby.count(); n != 0 {
		t.Fatalf("the standby got %d events while the stopped consumer held the queue", n)
	}
	active.Close()
	if got := numbers(t, standby.waitEvents(t, 2)); !slices.Equal(got, []int{4, 5}) {
		t.Errorf("the standby got %v, want [4 5]", got)
	}
}

// TestStopIntakeDrainTimeout: a stopped consumer whose Sink does not finish
// gives its queue up at the end of DrainTimeout, Close or not.
func TestStopIntakeDrainTimeout(t *testing.T) {
	url := testbroker.URL(t)
	a := newAdmin(t, url)
	top := a.topology(url, 1, false)
	held := newRecorder(holdAll)
	active := openConsumer(t, &Consumer{URL: url, Queues: top.Queues, Sink: held, DrainTimeout: 200 * time.Millisecond})
	eventually(t, "the active consumer ready", func() bool { return active.Ready() == nil })
	standby := newRecorder(applyAll)
	openConsumer(t, &Consumer{URL: url, Queues: top.Queues, Sink: standby})
	a.publish(top.Exchange, "k", numbered("chat-1", 1))
	held.waitEvents(t, 1)
	active.StopIntake()
	if got := numbers(t, standby.waitEvents(t, 1)); !slices.Equal(got, []int{1}) {
		t.Errorf("the standby got %v, want [1]", got)
	}
}
