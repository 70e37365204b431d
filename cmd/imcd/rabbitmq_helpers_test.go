package main

// What the RabbitMQ-mode end-to-end tests share, besides their topology on
// the broker (internal/testbroker/feed): imcd's configuration for it, and a
// model of what imcd must end up with (the pure engine applying the same
// events in queue order).

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/internal/testbroker/feed"
	"github.com/imcd-sip/imcd/internal/testdb"
	"github.com/imcd-sip/imcd/pkg/config"
	"github.com/imcd-sip/imcd/pkg/daemon"
	"github.com/imcd-sip/imcd/pkg/imc"
	"github.com/imcd-sip/imcd/pkg/opensips"
	"github.com/imcd-sip/imcd/pkg/opensipstest"
	"github.com/imcd-sip/imcd/pkg/store"
)

// rabbitLines are imcd's configuration for r's topology.
func rabbitLines(r *feed.Feed, more ...string) []string {
	return append([]string{
		"event_source = rabbitmq",
		"rabbitmq_url = " + r.URL,
		"rabbitmq_exchange = " + r.Topology.Exchange,
		"rabbitmq_queue_prefix = " + r.Prefix,
		fmt.Sprintf("rabbitmq_shards = %d", len(r.Topology.Queues)),
		"rabbitmq_heartbeat = 1s",
		"history = off", // the model keeps none
		// The fake OpenSIPS answers at once: delivery keeps up with the
		// storms instead of pacing them from a fifth of 10,000/s.
		"delivery_rate_max = 100000",
		"opensips_wt_timer = 0",
	}, more...)
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
		engine:    imc.NewEngine(daemon.EngineConfig(cfg, false)),
		rooms:     imc.NewRooms(),
		notices:   map[string][]string{},
		droppable: map[string]int{},
	}
}

// modelOf is the model having applied events, in order.
func modelOf(events []opensips.Event) *model {
	m := newModel()
	for _, ev := range events {
		m.apply(ev)
	}
	return m
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

// waitApplied waits, at most 120 s (since: after what), until the tables
// at url equal the model and r's queues are empty.
func (m *model) waitApplied(t *testing.T, r *feed.Feed, url string, tables testdb.Tables, since string) {
	t.Helper()
	var err error
	if !waitFor(120*time.Second, func() bool { err = m.checkTables(url, tables); return err == nil && r.Ready() == 0 }) {
		t.Fatalf("not applied within 120s%s (%d messages still queued): %v", since, r.Ready(), err)
	}
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
