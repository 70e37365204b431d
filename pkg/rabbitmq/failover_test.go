package rabbitmq

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/internal/testbroker"
	"github.com/imcd-sip/imcd/pkg/opensips"
)

// Environment of the helper process of TestFailover.
const (
	envHelperURL   = "IMCD_RABBITMQ_HELPER_URL"
	envHelperQueue = "IMCD_RABBITMQ_HELPER_QUEUE"
)

// TestFailoverHelperProcess is the active consumer of TestFailover, run as
// a child process so it can be killed with SIGKILL: it takes deliveries,
// reports each on stdout, and never commits any.
func TestFailoverHelperProcess(t *testing.T) {
	u, q := os.Getenv(envHelperURL), os.Getenv(envHelperQueue)
	if u == "" {
		t.Skip("helper process of TestFailover")
	}
	sink := opensips.SinkFunc(func(ev opensips.Event, done func(error)) error {
		fmt.Printf("failover: got %s\n", ev.Req.Body)
		return nil
	})
	c := &Consumer{URL: u, Queues: []string{q}, Sink: sink}
	if err := c.Open(context.Background()); err != nil {
		fmt.Printf("failover: open %v\n", err)
		return
	}
	for c.Ready() != nil {
		time.Sleep(5 * time.Millisecond)
	}
	fmt.Println("failover: ready")
	select {} // until killed
}

// TestFailover runs an active consumer in a child process and a standby one
// here on the same single-active-consumer queue, kills the child with
// SIGKILL while it holds ten uncommitted deliveries, and checks that the
// standby gets them all, redelivered and in order, then the ones published
// after. The
// time from the kill to the first redelivery is reported.
func TestFailover(t *testing.T) {
	url := testbroker.URL(t)
	a := newAdmin(t, url)
	top := a.topology(url, 1, false)

	cmd := exec.Command(os.Args[0], "-test.run=^TestFailoverHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), envHelperURL+"="+url, envHelperQueue+"="+top.Queues[0])
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if l, ok := strings.CutPrefix(sc.Text(), "failover: "); ok {
				lines <- l
			}
		}
		close(lines)
	}()
	expect := func(want string) {
		t.Helper()
		select {
		case l := <-lines:
			if l != want {
				t.Fatalf("helper said %q, want %q", l, want)
			}
		case <-time.After(patience):
			t.Fatalf("helper silent, want %q", want)
		}
	}
	expect("ready") // the child registered first: it is the active consumer

	rec := newRecorder(applyAll)
	standby, first := rec.stamped()
	obs := newCounter()
	c := openConsumer(t, &Consumer{URL: url, Queues: top.Queues, Sink: standby, Observer: obs})
	eventually(t, "standby consuming", func() bool { return c.Ready() == nil })

	a.publishLines(top.Exchange, 1, 10)
	for i := 1; i <= 10; i++ {
		expect("got " + fmt.Sprint(i))
	}
	if early := rec.count(); early != 0 {
		t.Fatalf("the standby got %d events while the active consumer lived", early)
	}

	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	rec.waitEvents(t, 1)
	took := (<-first).Sub(killed)
	a.publishLines(top.Exchange, 11, 20)
	evs := rec.waitEvents(t, 20)
	inOrder(t, numbers(t, evs), 20)
	for i, ev := range evs {
		if ev.Origin.Redelivered != (i < 10) {
			t.Fatalf("event %s: redelivered %v", ev.Req.Body, ev.Origin.Redelivered)
		}
	}
	eventually(t, "acknowledged", func() bool { return obs.get(OutcomeAcked) == 20 })
	t.Logf("failover: SIGKILL of the active consumer to the first redelivery at the standby: %v", took)
}

// TestStandbySpreads starts two instances together, each with one queue of
// its own and the other's as Standby: each becomes the active consumer of
// its own queue, and when one closes, the other takes its queue over.
func TestStandbySpreads(t *testing.T) {
	url := testbroker.URL(t)
	a := newAdmin(t, url)
	top := a.topology(url, 2, false)
	q0, q1 := top.Queues[0], top.Queues[1]
	rec0, rec1 := newRecorder(applyAll), newRecorder(applyAll)
	c0 := &Consumer{URL: url, Queues: []string{q0}, Standby: []string{q1}, StandbyDelay: 2 * time.Second, Sink: rec0}
	c1 := &Consumer{URL: url, Queues: []string{q1}, Standby: []string{q0}, StandbyDelay: 2 * time.Second, Sink: rec1}
	openConsumer(t, c0)
	openConsumer(t, c1)
	eventually(t, "both consuming both queues", func() bool {
		return c0.Ready() == nil && c1.Ready() == nil && c0.stillWaiting() == 0 && c1.stillWaiting() == 0
	})
	for i := 1; i <= 5; i++ {
		a.publish("", q0, numbered("chat-a", i)) // the default exchange routes by queue name
		a.publish("", q1, numbered("chat-b", i))
	}
	for _, c := range []struct {
		rec   *recorder
		queue string
	}{{rec0, q0}, {rec1, q1}} {
		evs := c.rec.waitEvents(t, 5)
		inOrder(t, numbers(t, evs), 5)
		for _, ev := range evs {
			if ev.Origin.Queue != c.queue {
				t.Fatalf("an instance got %s from %s, want only its own %s", ev.Req.Body, ev.Origin.Queue, c.queue)
			}
		}
	}
	c0.Close()
	for i := 6; i <= 10; i++ {
		a.publish("", q0, numbered("chat-a", i))
	}
	evs := rec1.waitEvents(t, 10)
	for _, ev := range evs[5:] {
		if ev.Origin.Queue != q0 {
			t.Fatalf("after the close the other instance got %s from %s", ev.Req.Body, ev.Origin.Queue)
		}
	}
}

// stillWaiting counts the Standby queues in their first delay.
func (c *Consumer) stillWaiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiting)
}
