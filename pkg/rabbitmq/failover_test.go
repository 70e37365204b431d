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
	url := brokerURL(t)
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

	first := make(chan time.Time, 1)
	rec := newRecorder(applyAll)
	standby := opensips.SinkFunc(func(ev opensips.Event, done func(error)) error {
		select {
		case first <- time.Now():
		default:
		}
		return rec.Submit(ev, done)
	})
	obs := newCounter()
	c := openConsumer(t, &Consumer{URL: url, Queues: top.Queues, Sink: standby, Observer: obs})
	eventually(t, "standby consuming", func() bool { return c.Ready() == nil })

	for i := 1; i <= 10; i++ {
		a.publish(top.Exchange, "sip:chat-1@127.0.0.1", numbered("chat-1", i))
	}
	for i := 1; i <= 10; i++ {
		expect("got " + fmt.Sprint(i))
	}
	rec.mu.Lock()
	early := len(rec.events)
	rec.mu.Unlock()
	if early != 0 {
		t.Fatalf("the standby got %d events while the active consumer lived", early)
	}

	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	rec.waitEvents(t, 1)
	took := (<-first).Sub(killed)
	for i := 11; i <= 20; i++ {
		a.publish(top.Exchange, "sip:chat-1@127.0.0.1", numbered("chat-1", i))
	}
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
