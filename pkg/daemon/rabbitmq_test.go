package daemon

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/internal/testbroker"
	"github.com/imcd-sip/imcd/internal/testbroker/feed"
	"github.com/imcd-sip/imcd/pkg/config"
	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

// RabbitMQ mode against the machine's broker: each test declares an
// exchange and queues of its own and deletes them at the end.

// broker is one test's topology on the machine's broker
// (internal/testbroker/feed), declared by the test.
type broker struct {
	*feed.Feed
	t *testing.T
}

func newBroker(t *testing.T, shards int) *broker {
	t.Helper()
	return &broker{Feed: feed.New(t, testbroker.URL(t), shards, true), t: t}
}

// publish publishes e as the OpenSIPS script does and waits for the
// broker's confirm.
func (b *broker) publish(e opensipstest.Event) {
	b.t.Helper()
	if err := b.Publish(feed.Event(e)); err != nil {
		b.t.Fatal(err)
	}
}

// config is testConfig in RabbitMQ mode on the test's queues, with the
// database file in dir (shared by the daemons of one test).
func (b *broker) config(t *testing.T, f *opensipstest.Server, dir string) config.Config {
	cfg := testConfig(t, f, t.TempDir())
	cfg.DBURL = "sqlite://" + filepath.Join(dir, "imcd.db")
	cfg.CreateTables = true
	cfg.Subscribe = false
	cfg.EventSource = config.SourceRabbitMQ
	cfg.RabbitMQ.URL = b.URL
	cfg.RabbitMQ.Exchange = b.Topology.Exchange
	cfg.RabbitMQ.QueuePrefix = b.Prefix
	cfg.RabbitMQ.Shards = len(b.Topology.Queues)
	cfg.RabbitMQ.StandbyDelay = 100 * time.Millisecond
	cfg.History = config.HistoryOff
	return cfg
}

// send publishes one MESSAGE and waits for n deliveries.
func (b *broker) send(f *opensipstest.Server, from, ruri, body string, n int) []string {
	b.t.Helper()
	f.Reset()
	b.publish(opensipstest.NewEvent(from, ruri, body))
	ds, err := f.WaitDeliveries(ctxTimeout(b.t, 10*time.Second), n)
	if err != nil {
		b.t.Fatalf("%q: waiting for %d deliveries: %v (got %v)", body, n, err, lines(f.Deliveries()))
	}
	return lines(ds)
}

const (
	created = alice + ": *** room was created"
	chatX   = "sip:chat-x@example.com"
)

// TestRabbitMQConversation: events consumed from the broker are applied,
// answered through t_uac_dlg and acknowledged; commands commit with their
// key, the chat line's key goes through the key writer.
func TestRabbitMQConversation(t *testing.T) {
	b := newBroker(t, 1)
	f := opensipstest.New(t, opensipstest.Options{})
	d := openDaemon(t, f, b.config(t, f, t.TempDir()))
	if a := d.Addrs().Events; a != "" {
		t.Errorf("events address %q in RabbitMQ mode", a)
	}
	same(t, "create", b.send(f, alice, manager, "#create chat-1", 1), created)
	same(t, "join", b.send(f, bob, room1, "#join", 2),
		alice+": *** <"+bob+"> has joined the room", bob+": *** <"+bob+"> has joined the room")
	same(t, "chat", b.send(f, bob, room1, "hello", 1), alice+": <bob@example.com>: hello")
	quiet(t, f, 1)
	acked := `opensips_imc_rabbitmq_settled_total{outcome="acked",queue="` + b.Topology.Queues[0] + `"}`
	eventually(t, "every message acknowledged", func() bool { return b.Ready() == 0 && metric(t, d, acked) == 3 })
	if got := metric(t, d, `opensips_imc_rabbitmq_event_keys_total{result="fresh"}`); got != 1 {
		t.Errorf("%v keys stored by the key writer, want 1 (the chat line)", got)
	}
}

// TestRabbitMQAppliedOnce: events applied by one instance and delivered
// again to another (as after a crash before the acknowledgement) change
// nothing and send nothing: the database has their keys.
func TestRabbitMQAppliedOnce(t *testing.T) {
	b := newBroker(t, 1)
	f := opensipstest.New(t, opensipstest.Options{})
	dir := t.TempDir()
	d := openDaemon(t, f, b.config(t, f, dir))
	b.send(f, alice, manager, "#create chat-1", 1)
	exit := opensipstest.NewEvent(bob, room1, "#join")
	f.Reset()
	b.publish(exit)
	f.WaitDeliveries(ctxTimeout(t, 10*time.Second), 2)
	line := opensipstest.NewEvent(bob, room1, "said once")
	f.Reset()
	b.publish(line)
	f.WaitDeliveries(ctxTimeout(t, 10*time.Second), 1)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	d2 := openDaemon(t, f, b.config(t, f, dir))
	f.Reset()
	b.publish(exit)
	b.publish(line)
	eventually(t, "both copies acknowledged", func() bool {
		return metric(t, d2, `opensips_imc_commands_total{command="duplicate",result="refused"}`) == 2 && b.Ready() == 0
	})
	quiet(t, f, 0)
	same(t, "after the copies", b.send(f, bob, room1, "#list", 1), bob+": Members:\n*"+alice+"\n"+bob)
}

// TestRabbitMQFreshRooms: a standby that takes a queue over serves its
// rooms as the database holds them, not as it loaded them at start, and
// goes on with their history where the other instance left it.
func TestRabbitMQFreshRooms(t *testing.T) {
	b := newBroker(t, 1)
	f := opensipstest.New(t, opensipstest.Options{})
	dir := t.TempDir()
	cfg := b.config(t, f, dir)
	cfg.History = config.HistoryOn
	first := openDaemon(t, f, cfg)
	standby := openDaemon(t, f, cfg) // loads no room; registered second, so it waits
	b.send(f, alice, manager, "#create chat-1", 1)
	b.send(f, bob, room1, "#join", 2)
	b.send(f, alice, room1, "before the failover", 1)
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	same(t, "chat at the standby", b.send(f, alice, room1, "still here?", 1), bob+": <alice@example.com>: still here?")
	if got := metric(t, standby, `opensips_imc_rabbitmq_room_rereads_total{result="ok"}`); got != 1 {
		t.Errorf("%v rooms re-read, want 1", got)
	}
	got := b.send(f, carol, room1, "#join", 4)
	same(t, "join at the standby", got[:3], alice+": *** <"+carol+"> has joined the room",
		bob+": *** <"+carol+"> has joined the room", carol+": *** <"+carol+"> has joined the room")
	if replay := got[3]; !regexp.MustCompile(`(?s)^` + regexp.QuoteMeta(carol) + `: What was said before you joined:\n.*alice@example.com: before the failover\n.*alice@example.com: still here\?$`).MatchString(replay) {
		t.Errorf("history replayed to carol: %q", replay)
	}
}

// TestRabbitMQReroute: with several queues, a manager's "#create chat-x"
// is re-published keyed by the room and applied in the room's queue.
func TestRabbitMQReroute(t *testing.T) {
	b := newBroker(t, 4)
	f := opensipstest.New(t, opensipstest.Options{})
	d := openDaemon(t, f, b.config(t, f, t.TempDir()))
	same(t, "create", b.send(f, alice, manager, "#create chat-x", 1), created)
	rerouted := 0.0
	for _, q := range b.Topology.Queues {
		rerouted += metric(t, d, `opensips_imc_rabbitmq_settled_total{outcome="rerouted",queue="`+q+`"}`)
	}
	if rerouted != 1 {
		t.Errorf("%v events re-published, want 1", rerouted)
	}
	same(t, "join", b.send(f, bob, chatX, "#join", 2),
		alice+": *** <"+bob+"> has joined the room", bob+": *** <"+bob+"> has joined the room")
}

// TestRabbitMQNotReady: without a broker /readyz says why, and imcd keeps
// trying.
func TestRabbitMQNotReady(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	cfg := testConfig(t, f, t.TempDir())
	cfg.Subscribe = false
	cfg.EventSource = config.SourceRabbitMQ
	cfg.RabbitMQ.URL = "amqp://guest:guest@127.0.0.1:1/"
	d := New(cfg, testLogger(t))
	if err := d.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	code, body := get(t, d, "/readyz")
	if code != 503 || !strings.Contains(body, "not connected to the broker") {
		t.Fatalf("/readyz: %d %s", code, body)
	}
}

// TestRabbitMQAdminReadsTheRoom: an operator's action in RabbitMQ mode
// reads its room from the database first, so an instance that never served
// the room (another one created it) applies it to the room as it is.
func TestRabbitMQAdminReadsTheRoom(t *testing.T) {
	b := newBroker(t, 1)
	f := opensipstest.New(t, opensipstest.Options{})
	dir := t.TempDir()
	openDaemon(t, f, b.config(t, f, dir))
	other := openDaemon(t, f, b.config(t, f, dir)) // standing by: it never sees the room's events
	b.send(f, alice, manager, "#create chat-1", 1)
	f.Reset()
	if got := miCall(t, other, `{"jsonrpc":"2.0","method":"imc:add_member","params":{"room":"`+room1+`","user":"`+bob+`"},"id":2}`); !strings.Contains(got, `"result"`) {
		t.Fatalf("add_member at the standby: %s", got)
	}
	ds, err := f.WaitDeliveries(ctxTimeout(t, 5*time.Second), 2)
	if err != nil {
		t.Fatal(err)
	}
	same(t, "room told", lines(ds), alice+": *** <"+bob+"> has joined the room", bob+": *** <"+bob+"> has joined the room")
}

// TestRabbitMQPurge: keys older than events_window are deleted, and an
// event whose key is gone is applied again.
func TestRabbitMQPurge(t *testing.T) {
	b := newBroker(t, 1)
	f := opensipstest.New(t, opensipstest.Options{})
	dir := t.TempDir()
	d := openDaemon(t, f, b.config(t, f, dir))
	b.send(f, alice, manager, "#create chat-1", 1)
	b.send(f, bob, room1, "#join", 2)
	line := opensipstest.NewEvent(bob, room1, "twice after the purge")
	f.Reset()
	b.publish(line)
	f.WaitDeliveries(ctxTimeout(t, 10*time.Second), 1)
	// Once the window has passed, every key is older than it.
	d.keyPurge.purge(context.Background(), time.Now().Add(d.cfg.RabbitMQ.EventsWindow+time.Minute))
	if got := metric(t, d, "opensips_imc_rabbitmq_event_keys_purged_total"); got != 3 {
		t.Errorf("%v keys purged, want 3", got)
	}
	d.Close()
	openDaemon(t, f, b.config(t, f, dir)) // its duplicate filter is empty
	f.Reset()
	b.publish(line)
	ds, err := f.WaitDeliveries(ctxTimeout(t, 10*time.Second), 1)
	if err != nil {
		t.Fatal(err)
	}
	same(t, "applied again", lines(ds), alice+": <bob@example.com>: twice after the purge")
}
