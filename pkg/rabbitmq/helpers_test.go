package rabbitmq

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/imcd-sip/imcd/internal/testbroker"
	"github.com/imcd-sip/imcd/pkg/opensips"
)

const wire = "../../testdata/opensips-wire/rabbitmq"

// patience bounds every wait for something the broker or a consumer must do.
const patience = 30 * time.Second

// admin is the test's own connection to the broker, for declaring,
// publishing and inspecting.
type admin struct {
	*testbroker.Conn
	t testing.TB
}

func newAdmin(t testing.TB, url string) *admin {
	t.Helper()
	return &admin{Conn: testbroker.Dial(t, url), t: t}
}

// topology declares a fresh topology with names of the test's own and
// deletes it at the end of the test.
func (a *admin) topology(url string, queues int, deadLetter bool) *Topology {
	a.t.Helper()
	top := &Topology{Exchange: testbroker.Name(a.t, "x"), Queues: ShardQueues(testbroker.Name(a.t, "q"), queues)}
	if deadLetter {
		top.DeadLetter = testbroker.Name(a.t, "dlq")
	}
	deleteAtEnd(a.t, url, top)
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := top.Declare(ctx, url); err != nil {
		a.t.Fatal(err)
	}
	return top
}

// deleteAtEnd deletes top's exchanges and queues when the test ends.
func deleteAtEnd(t testing.TB, url string, top *Topology) {
	queues := append(slices.Clip(top.Queues), top.DeadLetter)
	testbroker.DeleteAtEnd(t, url, []string{top.Exchange, top.DeadLetter}, queues)
}

// publish sends one message as OpenSIPS's rabbitmq_publish does: content
// type and (string) headers only, not persistent, and waits for the confirm.
func (a *admin) publish(exchange, key string, m message) {
	a.t.Helper()
	pub := amqp.Publishing{ContentType: m.ContentType, Body: m.Body}
	if len(m.Headers) > 0 {
		pub.Headers = m.table()
	}
	if err := a.Publish(exchange, testbroker.Message{Key: key, Publishing: pub}); err != nil {
		a.t.Fatal(err)
	}
}

// publishLines publishes the lines from … to of room chat-1 (numbered),
// keyed by its URI, in order.
func (a *admin) publishLines(exchange string, from, to int) {
	a.t.Helper()
	for i := from; i <= to; i++ {
		a.publish(exchange, "sip:chat-1@127.0.0.1", numbered("chat-1", i))
	}
}

// message is one captured publish: meta.json and body.
type message struct {
	Name        string
	Queue       string            `json:"queue"`
	Exchange    string            `json:"exchange"`
	RoutingKey  string            `json:"routing_key"`
	ContentType string            // properties.content_type
	Headers     map[string]string // properties.headers
	Body        []byte
}

// captures reads every capture, in file order.
func captures(t testing.TB) []message {
	t.Helper()
	metas, err := filepath.Glob(filepath.Join(wire, "*.meta.json"))
	if err != nil || len(metas) != 10 {
		t.Fatalf("captures: %d, %v", len(metas), err)
	}
	var out []message
	for _, name := range metas {
		raw, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			message
			Properties struct {
				ContentType string            `json:"content_type"`
				Headers     map[string]string `json:"headers"`
			} `json:"properties"`
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		msg := m.message
		msg.ContentType, msg.Headers = m.Properties.ContentType, m.Properties.Headers
		msg.Name = strings.TrimSuffix(filepath.Base(name), ".meta.json")
		if msg.Body, err = os.ReadFile(strings.TrimSuffix(name, ".meta.json") + ".body"); err != nil {
			t.Fatal(err)
		}
		out = append(out, msg)
	}
	return out
}

// table converts captured headers as the consumer sees them.
func (m message) table() amqp.Table {
	if m.Headers == nil {
		return nil
	}
	h := amqp.Table{}
	for k, v := range m.Headers {
		h[k] = v
	}
	return h
}

// recorder is a Sink that records what it is given; policy decides, per
// submit, what to return and whether to call done at once.
type recorder struct {
	mu     sync.Mutex
	events []opensips.Event
	dones  []func(error)
	offers int
	policy func(n int, ev opensips.Event) (submitErr, doneErr error, hold bool)
	wake   chan struct{}
}

func newRecorder(policy func(n int, ev opensips.Event) (error, error, bool)) *recorder {
	return &recorder{policy: policy, wake: make(chan struct{}, 1)}
}

// applyAll is a policy that commits everything at once.
func applyAll(int, opensips.Event) (error, error, bool) { return nil, nil, false }

// holdAll is a policy that accepts everything and holds every verdict.
func holdAll(int, opensips.Event) (error, error, bool) { return nil, nil, true }

func (r *recorder) Submit(ev opensips.Event, done func(error)) error {
	r.mu.Lock()
	r.offers++
	serr, derr, hold := r.policy(r.offers, ev)
	if serr == nil {
		r.events = append(r.events, ev)
		if hold {
			r.dones = append(r.dones, done)
		}
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
	if serr == nil && !hold {
		done(derr)
	}
	return serr
}

var _ opensips.Sink = (*recorder)(nil)

// waitEvents waits until n events were accepted and returns them.
func (r *recorder) waitEvents(t testing.TB, n int) []opensips.Event {
	t.Helper()
	deadline := time.After(patience)
	for {
		r.mu.Lock()
		if len(r.events) >= n {
			ev := append([]opensips.Event(nil), r.events...)
			r.mu.Unlock()
			return ev
		}
		have := len(r.events)
		r.mu.Unlock()
		select {
		case <-r.wake:
		case <-deadline:
			t.Fatalf("%d events after %v, want %d", have, patience, n)
		}
	}
}

// count is the number of events accepted so far.
func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// stamped is r as a Sink that also sends the time of its first offer on
// the channel returned.
func (r *recorder) stamped() (opensips.Sink, <-chan time.Time) {
	first := make(chan time.Time, 1)
	return opensips.SinkFunc(func(ev opensips.Event, done func(error)) error {
		select {
		case first <- time.Now():
		default:
		}
		return r.Submit(ev, done)
	}), first
}

// held returns the done callbacks held so far.
func (r *recorder) held() []func(error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]func(error){}, r.dones...)
}

// openConsumer opens a Consumer for the test and closes it at the end.
func openConsumer(t testing.TB, c *Consumer) *Consumer {
	t.Helper()
	if err := c.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// eventually waits until cond holds.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still not %s after %v", what, patience)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// rabbitmqctl runs the broker's CLI (root, on the broker's machine).
func rabbitmqctl(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("rabbitmqctl", append([]string{"-q"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("rabbitmqctl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// counter is an Observer that counts.
type counter struct {
	mu          sync.Mutex
	delivered   int
	redelivered int
	settled     map[string]int
	retried     int
	connected   int // ups minus downs
	ups         int
}

func newCounter() *counter { return &counter{settled: map[string]int{}} }

func (c *counter) Delivered(_ string, redelivered bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.delivered++
	if redelivered {
		c.redelivered++
	}
}

func (c *counter) Settled(_, outcome string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.settled[outcome]++
}

func (c *counter) Retried(string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.retried++
}

func (c *counter) Connected(up bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if up {
		c.connected++
		c.ups++
	} else {
		c.connected--
	}
}

func (c *counter) Consuming(string, bool) {}

func (c *counter) get(outcome string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.settled[outcome]
}

func (c *counter) retries() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.retried
}

func (c *counter) upCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ups
}

var _ Observer = (*counter)(nil)
