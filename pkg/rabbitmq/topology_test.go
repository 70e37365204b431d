package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/imcd-sip/imcd/internal/testbroker"
	amqp "github.com/rabbitmq/amqp091-go"
)

// TestDeclare declares both topologies twice (idempotent) and checks where
// messages go: with four queues every room hashes to one queue, the same
// each time, and the rooms spread over all four; with one queue everything
// lands in it.
func TestDeclare(t *testing.T) {
	url := testbroker.URL(t)
	a := newAdmin(t, url)
	f := func(queues int) {
		t.Helper()
		top := a.topology(url, queues, true)
		if err := top.Declare(context.Background(), url); err != nil {
			t.Fatalf("second declare: %v", err)
		}
		if want := map[bool]string{true: KindFanout, false: KindConsistentHash}[queues == 1]; top.Kind() != want {
			t.Fatalf("kind %s, want %s", top.Kind(), want)
		}
		const rooms = 200
		for i := range rooms {
			key := fmt.Sprintf("sip:chat-%d@127.0.0.1", i)
			a.publish(top.Exchange, key, message{Body: []byte(key)})
			a.publish(top.Exchange, key, message{Body: []byte(key)})
		}
		total := 0
		for _, q := range top.Queues {
			n := a.Ready(q)
			if n == 0 {
				t.Fatalf("%d queues: %s got nothing", queues, q)
			}
			total += n
		}
		if total != 2*rooms {
			t.Fatalf("%d messages in the queues, want %d", total, 2*rooms)
		}
		// Both copies of a room are in the same queue.
		seen := map[string]string{}
		for _, q := range top.Queues {
			_, ds := rawConsume(t, url, q)
			for range a.Ready(q) {
				d := next(t, ds)
				if other, ok := seen[string(d.Body)]; ok && other != q {
					t.Fatalf("%s in %s and %s", d.Body, other, q)
				}
				seen[string(d.Body)] = q
				d.Ack(false)
			}
		}
	}
	f(4)
	f(1)
}

// TestDeclareRefusesOtherArguments: a queue that exists with other
// arguments is an error naming it, not a silent mismatch.
func TestDeclareRefusesOtherArguments(t *testing.T) {
	url := testbroker.URL(t)
	a := newAdmin(t, url)
	top := a.topology(url, 2, false)
	other := *top
	other.DeliveryLimit = 3
	err := other.Declare(context.Background(), url)
	var ae *amqp.Error
	if !errors.As(err, &ae) || ae.Code != amqp.PreconditionFailed || !strings.Contains(err.Error(), top.Queues[0]) {
		t.Fatalf("declare with another delivery limit: %v", err)
	}
	if err := (&Topology{}).Declare(context.Background(), url); !errors.Is(err, ErrConfig) {
		t.Fatalf("empty topology: %v", err)
	}
}

// TestSetupScript runs scripts/rabbitmq-setup.sh twice (idempotent) and
// checks that it sets up what Topology.Declare does: declaring the same
// topology from Go afterwards succeeds only if every argument is
// equivalent. The script uses the HTTP API (management plugin).
func TestSetupScript(t *testing.T) {
	url := testbroker.URL(t)
	a := newAdmin(t, url)
	if err := exec.Command("rabbitmqadmin", "-q", "list", "vhosts").Run(); err != nil {
		testbroker.Unavailable(t, "rabbitmqadmin: no HTTP API (rabbitmq_management not enabled?): %v", err)
	}
	f := func(shards, limit int) {
		t.Helper()
		top := &Topology{Exchange: testbroker.Name(t, "x"), Queues: ShardQueues(testbroker.Name(t, "q"), shards), DeadLetter: testbroker.Name(t, "dlq"), DeliveryLimit: limit}
		deleteAtEnd(t, url, top)
		prefix := strings.TrimSuffix(top.Queues[0], ".0")
		args := []string{"--shards", strconv.Itoa(shards), "--exchange", top.Exchange, "--queue-prefix", prefix, "--dead-letter", top.DeadLetter}
		if limit > 0 {
			args = append(args, "--delivery-limit", strconv.Itoa(limit))
		}
		for range 2 {
			out, err := exec.Command("../../scripts/rabbitmq-setup.sh", args...).CombinedOutput()
			if err != nil {
				t.Fatalf("rabbitmq-setup.sh %v: %v\n%s", args, err, out)
			}
		}
		if err := top.Declare(context.Background(), url); err != nil {
			t.Fatalf("%d shards: the script's topology differs from Declare's: %v", shards, err)
		}
		for range top.Queues {
			a.publish(top.Exchange, "sip:chat-1@127.0.0.1", message{Body: []byte("x")})
		}
		total := 0
		for _, q := range top.Queues {
			total += a.Ready(q)
		}
		if total != len(top.Queues) {
			t.Fatalf("%d messages routed, want %d", total, len(top.Queues))
		}
	}
	f(3, 0)
	f(1, 50)
}
