package main

// What the RabbitMQ-mode end-to-end tests share: a broker of the test's own
// (its exchange and queues, deleted at the end), a publisher that publishes
// as the OpenSIPS script does, and a model of what imcd must end up with
// (the pure engine applying the same events in queue order).

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/imcd-sip/imcd/internal/testdb"
	"github.com/imcd-sip/imcd/pkg/config"
	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/opensips"
	"github.com/imcd-sip/imcd/pkg/opensipstest"
	"github.com/imcd-sip/imcd/pkg/rabbitmq"
	"github.com/imcd-sip/imcd/pkg/store"
)

// rabbitURL returns the machine's test broker; without one the test is
// skipped, unless IMCD_TEST_REQUIRE_DB or IMCD_TEST_REQUIRE_RABBITMQ says
// it must run.
func rabbitURL(t *testing.T) string {
	t.Helper()
	url := os.Getenv("IMCD_TEST_RABBITMQ_URL")
	if url == "" {
		url = config.DefaultRabbitMQURL
	}
	conn, err := amqp.Dial(url)
	if err != nil {
		if os.Getenv("IMCD_TEST_REQUIRE_DB") != "" || os.Getenv("IMCD_TEST_REQUIRE_RABBITMQ") != "" {
			t.Fatalf("RabbitMQ: %v", err)
		}
		t.Skipf("no RabbitMQ (%v); scripts/test-services.sh starts one", err)
	}
	conn.Close()
	return url
}

// rabbit is one test's topology on a broker, and the test's connection to
// it, which publishes as OpenSIPS's rabbitmq_publish does.
type rabbit struct {
	t    *testing.T
	url  string
	top  *rabbitmq.Topology
	conn *amqp.Connection
	ch   *amqp.Channel
}

// newRabbit names a topology of shards queues on url; declare says whether
// the test declares it (else imcd does, rabbitmq_declare). It is deleted
// when the test ends.
func newRabbit(t *testing.T, url string, shards int, declare bool) *rabbit {
	t.Helper()
	var b [4]byte
	rand.Read(b[:])
	name := "imcdtest.e2e." + hex.EncodeToString(b[:])
	r := &rabbit{t: t, url: url, top: &rabbitmq.Topology{Exchange: name, Queues: rabbitmq.ShardQueues(name, shards)}}
	t.Cleanup(r.remove)
	if declare {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := r.top.Declare(ctx, url); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// connect (re)opens the test's publishing channel, with confirms.
func (r *rabbit) connect() error {
	if r.conn != nil {
		r.conn.Close()
	}
	conn, err := amqp.Dial(r.url)
	if err != nil {
		return err
	}
	ch, err := conn.Channel()
	if err == nil {
		err = ch.Confirm(false)
	}
	if err != nil {
		conn.Close()
		return err
	}
	r.conn, r.ch = conn, ch
	return nil
}

func (r *rabbit) channel() *amqp.Channel {
	r.t.Helper()
	if r.ch == nil || r.ch.IsClosed() {
		if err := r.connect(); err != nil {
			r.t.Fatal(err)
		}
	}
	return r.ch
}

func (r *rabbit) remove() {
	if r.conn != nil {
		r.conn.Close()
	}
	conn, err := amqp.Dial(r.url)
	if err != nil {
		r.t.Logf("cleaning up the topology: %v", err)
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return
	}
	for _, q := range r.top.Queues {
		ch.QueueDelete(q, false, false, false)
	}
	ch.ExchangeDelete(r.top.Exchange, false, false)
}

// lines are imcd's configuration for this topology.
func (r *rabbit) lines(more ...string) []string {
	return append([]string{
		"event_source = rabbitmq",
		"rabbitmq_url = " + r.url,
		"rabbitmq_exchange = " + r.top.Exchange,
		"rabbitmq_queue_prefix = " + strings.TrimSuffix(r.top.Queues[0], ".0"),
		fmt.Sprintf("rabbitmq_shards = %d", len(r.top.Queues)),
		"rabbitmq_heartbeat = 1s",
		"history = off", // the model keeps none
		// The fake OpenSIPS answers at once: delivery keeps up with the
		// storms instead of pacing them from a fifth of 10,000/s.
		"delivery_rate_max = 100000",
		"opensips_wt_timer = 0",
	}, more...)
}

// toEvent is an opensipstest event as the decoder gives it back.
func toEvent(e opensipstest.Event) opensips.Event {
	return opensips.Event{Req: imc.Request{From: e.From, To: e.To, RURI: e.RURI, CallID: e.CallID, ContentType: e.CType, Body: e.Body},
		FromTag: e.FromTag, CSeq: e.CSeq, SrcIP: e.SrcIP, SrcPort: e.SrcPort, Proto: e.Proto}
}

// publish publishes ev as the OpenSIPS script does: the JSON form, routing
// key the R-URI, not persistent; it waits for the broker's confirm.
func (r *rabbit) publish(ev opensips.Event) error {
	return r.publishRaw(ev.Req.RURI, amqp.Publishing{ContentType: rabbitmq.ContentTypeJSON, Body: rabbitmq.AppendJSON(nil, &ev)})
}

// publishAll publishes events as publish does, without waiting for each
// confirm before the next publish: a backlog builds at once.
func (r *rabbit) publishAll(events []opensips.Event) error {
	var dcs []*amqp.DeferredConfirmation
	for _, ev := range events {
		dc, err := r.channel().PublishWithDeferredConfirm(r.top.Exchange, ev.Req.RURI, true, false,
			amqp.Publishing{ContentType: rabbitmq.ContentTypeJSON, Body: rabbitmq.AppendJSON(nil, &ev)})
		if err != nil {
			return err
		}
		dcs = append(dcs, dc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, dc := range dcs {
		if ok, err := dc.WaitContext(ctx); err != nil || !ok {
			return fmt.Errorf("publish not confirmed (%v)", err)
		}
	}
	return nil
}

// publishRaw publishes one message and waits for the broker's confirm.
func (r *rabbit) publishRaw(key string, msg amqp.Publishing) error {
	dc, err := r.channel().PublishWithDeferredConfirm(r.top.Exchange, key, true, false, msg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ok, err := dc.WaitContext(ctx)
	if err == nil && !ok {
		err = fmt.Errorf("publish refused by the broker")
	}
	return err
}

// ready is the number of messages waiting in the topology's queues (given
// back ones included).
func (r *rabbit) ready() int {
	r.t.Helper()
	n := 0
	for _, q := range r.top.Queues {
		st, err := r.channel().QueueDeclarePassive(q, true, false, false, false, nil)
		if err != nil {
			r.t.Fatal(err)
		}
		n += st.Messages
	}
	return n
}

// model applies events as one imcd applying a queue in order would, with
// imcd's default rules, and keeps the notices it must send.
type model struct {
	engine  *imc.Engine
	rooms   *imc.Rooms
	notices map[string][]string // noticeKey → bodies, in order
	total   int
	// droppable counts, per fan-out sequence, the notices that delivery
	// may drop: those still queued when their member left the room
	// (pkg/delivery's Remove).
	droppable map[string]int
}

// newModel is imcd's engine as the daemon builds it from its default
// configuration (history off), changed by each of set.
func newModel(set ...func(*config.Config)) *model {
	cfg := config.Default()
	for _, f := range set {
		f(&cfg)
	}
	return &model{
		engine: imc.NewEngine(imc.Config{StartChar: cfg.StartChar, MaxBody: cfg.MaxBody, CreateOnJoin: cfg.CreateOnJoin,
			ManagerUser: cfg.ManagerUser, MaxRoomsListed: imc.DefaultConfig().MaxRoomsListed,
			MaxMembers: cfg.MaxMembers, MaxOwnedRooms: cfg.MaxOwnedRooms,
			RoomPrefix: cfg.RoomPrefix, Domains: cfg.Domains, MemberDomains: cfg.MemberDomains}),
		rooms:     imc.NewRooms(),
		notices:   map[string][]string{},
		droppable: map[string]int{},
	}
}

func (m *model) apply(ev opensips.Event) {
	in, err := m.engine.Prepare(ev.Req)
	if err != nil {
		return
	}
	res := m.engine.Handle(m.rooms, in)
	for _, c := range res.Changes {
		if c.Op == imc.OpRemoveMember {
			for _, reply := range []bool{false, true} {
				k := noticeKey(c.Room.String(), c.Member.String(), reply)
				m.droppable[k] = len(m.notices[k])
			}
		}
	}
	m.rooms.Apply(res.Changes)
	for _, n := range res.Notices {
		k := noticeKey(n.From.String(), n.To.String(), n.InReplyTo != "")
		m.notices[k] = append(m.notices[k], n.Body)
		m.total++
	}
}

// noticeKey names the sequence a notice belongs to: its room (or the URI a
// command was sent to), its recipient, and whether it is a direct reply to
// a command, which delivery sends ahead of fan-out (pkg/delivery): order
// holds within each.
func noticeKey(from, to string, reply bool) string {
	if reply {
		return from + " → " + to + " (replies)"
	}
	return from + " → " + to
}

// checkNotices checks what the fake OpenSIPS was asked to send against the
// model: for each room, recipient and kind (replies, fan-out), what arrived
// is the model's sequence in order with nothing added or repeated, at most
// some notices missing. It returns how many are missing, and how many of
// those delivery was not allowed to drop (it drops what is still queued
// for a member who leaves the room): only an instance killed with notices
// queued loses those.
func (m *model) checkNotices(t *testing.T, ds []opensipstest.Delivery) (missing, unexcused int) {
	t.Helper()
	got := map[string][]string{}
	for _, d := range ds {
		k := noticeKey(d.From, d.To, d.InReplyTo != "")
		got[k] = append(got[k], d.Body)
	}
	for k := range got {
		if _, ok := m.notices[k]; !ok {
			t.Errorf("%s: %d notices the model never sends: %q", k, len(got[k]), got[k])
		}
	}
	for k, want := range m.notices {
		bodies := got[k]
		missing += len(want) - len(bodies)
		cost, ok := align(want, bodies, m.droppable[k])
		if !ok {
			t.Errorf("%s: what arrived is not the model's sequence in order (something repeated, out of order or unexpected)\n got  %q\n want %q", k, bodies, want)
			continue
		}
		if cost > 0 && unexcused < 5 {
			t.Logf("%s: %d notices never sent\n got  %q\n want %q", k, cost, bodies, want)
		}
		unexcused += cost
	}
	return missing, unexcused
}

// align matches got against want as a subsequence, in order, skipping
// notices of want that were not sent; skipping one at index droppable or
// later costs 1 (delivery may drop only the earlier ones). It returns the
// least cost, and false when got is not a subsequence of want at all.
func align(want, got []string, droppable int) (int, bool) {
	const never = 1 << 30
	// row[j]: the least cost of matching got[:j] within want[:i].
	row := make([]int, len(got)+1)
	for j := 1; j <= len(got); j++ {
		row[j] = never
	}
	for i := 1; i <= len(want); i++ {
		skip := 0
		if i-1 >= droppable {
			skip = 1
		}
		for j := len(got); j >= 0; j-- {
			best := row[j] + skip // want[i-1] not sent
			if j > 0 && want[i-1] == got[j-1] && row[j-1] < best {
				best = row[j-1] // want[i-1] is got[j-1]
			}
			row[j] = min(best, never)
		}
	}
	return row[len(got)], row[len(got)] < never
}

// checkTables compares the database's rooms with the model's.
func (m *model) checkTables(url string, tables testdb.Tables) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	db, err := store.Open(ctx, store.Config{URL: url, RoomsTable: tables.Rooms, MembersTable: tables.Members})
	if err != nil {
		return err
	}
	defer db.Close()
	rooms, err := db.Load(ctx)
	if err != nil {
		return err
	}
	got := map[string]string{}
	for _, r := range rooms {
		got[r.Key()] = describe(r)
	}
	want := map[string]string{}
	m.rooms.EachRoom(func(r *imc.Room) bool { want[r.Key()] = describe(r); return true })
	var diffs []string
	for k, w := range want {
		if got[k] != w {
			diffs = append(diffs, fmt.Sprintf("%s: tables %q, model %q", k, got[k], w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: tables %q, not in the model", k, g))
		}
	}
	if len(diffs) > 0 {
		slices.Sort(diffs)
		return fmt.Errorf("%d rooms differ:\n%s", len(diffs), strings.Join(diffs, "\n"))
	}
	return nil
}

// describe writes a room as the tables keep it: flags and members with
// their stored flags, in a fixed order.
func describe(r *imc.Room) string {
	var ms []string
	for _, mb := range r.Members() {
		ms = append(ms, fmt.Sprintf("%s=%d", mb.URI.Key(), mb.Flags&imc.MemberStored))
	}
	slices.Sort(ms)
	return fmt.Sprintf("flags=%d %s", r.Flags, strings.Join(ms, ","))
}

// settle waits until the fake OpenSIPS has received no request for half a
// second (at most limit): delivery has sent what it will.
func settle(f *opensipstest.Server, limit time.Duration) {
	last, since := len(f.Deliveries()), time.Now()
	for deadline := time.Now().Add(limit); time.Now().Before(deadline) && time.Since(since) < 500*time.Millisecond; {
		time.Sleep(50 * time.Millisecond)
		if n := len(f.Deliveries()); n != last {
			last, since = n, time.Now()
		}
	}
}

// waitFor polls cond every 100 ms until it holds or limit passes.
func waitFor(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}
