package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/internal/testbroker"
	"github.com/imcd-sip/imcd/internal/testbroker/feed"
	"github.com/imcd-sip/imcd/internal/testdb"
	"github.com/imcd-sip/imcd/pkg/opensips"
	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

// storm returns n events over rooms rooms and users users, the same for
// every run: mostly #join, #exit and chat lines, some #create and #destroy.
// Rooms stay under max_rooms_per_user, so that no instance's view of other
// rooms matters.
func storm(n, rooms, users int) []opensips.Event {
	rnd := rand.New(rand.NewPCG(15, 15))
	out := make([]opensips.Event, n)
	for i := range out {
		k := rnd.IntN(rooms)
		room := fmt.Sprintf("sip:chat-s%d@127.0.0.1", k)
		user := fmt.Sprintf("sip:u%d@127.0.0.1", rnd.IntN(users))
		var body string
		switch p := rnd.IntN(100); {
		case p < 5:
			body = fmt.Sprintf("#create chat-s%d", k)
		case p < 8:
			body = "#destroy"
		case p < 45:
			body = "#join"
		case p < 65:
			body = "#exit"
		default:
			body = fmt.Sprintf("line %d of the storm", i)
		}
		ev := feed.Event(opensipstest.NewEvent(user, room, body))
		ev.Req.CallID = fmt.Sprintf("storm-%d@127.0.0.1", i)
		out[i] = ev
	}
	return out
}

// rabbitDB is MariaDB tables of the test's own, as imcd configuration
// lines.
func rabbitDB(t *testing.T) (url string, tables testdb.Tables, lines []string) {
	url = testdb.Need(t, testdb.MySQL)
	tables = testdb.NewTables(t, testdb.MySQL, "imc_events")
	return url, tables, []string{"db_url = " + url, "rooms_table = " + tables.Rooms, "members_table = " + tables.Members,
		"events_table = " + tables.Extra[0], "create_tables = yes"}
}

// delivered is how many messages p took from the broker.
func delivered(p *proc) float64 {
	_, body := p.get("/metrics")
	return metricSum(body, "opensips_imc_rabbitmq_deliveries_total")
}

// TestFailoverStorm: three imcd consume one queue, one active and two
// standing by. During a storm of commands and chat lines across rooms the
// active one is killed (SIGKILL), and then its successor. Nothing the
// broker acknowledged is lost: the tables end equal to the model applying
// every published event in order. No notice is sent twice, and per room
// and recipient they arrive in order. Each failover's time, from SIGKILL to
// the successor's first t_uac_dlg, is reported.
func TestFailoverStorm(t *testing.T) { stormFailover(t, false) }

// TestSwitchoverStorm is TestFailoverStorm with SIGTERM, as an upgrade
// stops an instance: the active one drains (what it applied is
// acknowledged and announced), the next takes over, and no notice is
// missing.
func TestSwitchoverStorm(t *testing.T) { stormFailover(t, true) }

func stormFailover(t *testing.T, graceful bool) {
	url := testbroker.URL(t)
	dbURL, tables, dbLines := rabbitDB(t)
	r := feed.New(t, url, 1, true)
	f := opensipstest.New(t, opensipstest.Options{})
	events := storm(6000, 16, 12)
	const backlog = 3000
	m := modelOf(events)
	var procs []*proc
	for range 3 { // one after the other: the first registered is the active one
		procs = append(procs, startIMCD(t, f, procOpts{extra: rabbitLines(r, dbLines...)}))
	}

	// Each kill releases a tail of the storm, published after whatever came
	// before it: however far the instances got with the rest (which
	// depends on the machine's load), the successor has events to take, so
	// its first t_uac_dlg always comes.
	kills := []int{m.total / 4, m.total / 2}
	const tail = 500
	steady := len(events) - tail*len(kills)
	release := make(chan struct{}, len(kills))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() }) // before the feed closes
	wg.Add(1)
	start := time.Now()
	go func() {
		defer wg.Done()
		// A backlog first, so that the active instance has a full
		// prefetch window in hand when it dies, then a steady storm.
		if err := r.Publish(events[:backlog]...); err != nil {
			t.Errorf("publishing: %v", err)
			return
		}
		for i, ev := range events[backlog:steady] {
			if err := r.Publish(ev); err != nil {
				t.Errorf("publishing event %d: %v", backlog+i, err)
				return
			}
			if i%4 == 0 {
				time.Sleep(time.Millisecond) // about 2,000 events/s
			}
		}
		for k := range kills {
			select {
			case <-release:
			case <-ctx.Done(): // the test failed before this kill
				return
			}
			from := steady + k*tail
			if err := r.Publish(events[from : from+tail]...); err != nil {
				t.Errorf("publishing the tail after kill %d: %v", k+1, err)
				return
			}
		}
	}()

	alive := map[*proc]bool{procs[0]: true, procs[1]: true, procs[2]: true}
	for _, at := range kills {
		if !waitFor(60*time.Second, func() bool { return len(f.Deliveries()) >= at }) {
			t.Fatalf("only %d of %d notices after 60s", len(f.Deliveries()), m.total)
		}
		var active *proc
		for p := range alive {
			if delivered(p) > 0 && (active == nil || delivered(p) > delivered(active)) {
				active = p
			}
		}
		calls := f.CallsTo("t_uac_dlg")
		from := calls[len(calls)-1].From
		killed := time.Now()
		if graceful {
			go active.stop()
		} else {
			active.Kill()
		}
		delete(alive, active)
		release <- struct{}{}
		var took time.Duration
		if !waitFor(30*time.Second, func() bool {
			for _, c := range f.CallsTo("t_uac_dlg") {
				if c.Received.After(killed) && c.From != from {
					took = c.Received.Sub(killed)
					return true
				}
			}
			return false
		}) {
			t.Fatal("no instance took over within 30s")
		}
		t.Logf("failover after %d of %d notices: %v from the signal to the successor's first t_uac_dlg", at, m.total, took.Round(time.Millisecond))
		// A graceful stop keeps the queue until its notices are out
		// (rabbitmq_drain_timeout): only a dead instance must be replaced
		// within 5 s.
		if !graceful && took > 5*time.Second {
			t.Errorf("failover took %v, over 5s", took)
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	m.waitApplied(t, r, dbURL, tables, "")
	t.Logf("%d events applied in %v with two failovers", len(events), time.Since(start).Round(time.Millisecond))
	for p := range alive {
		t.Logf("survivor: %v deliveries redelivered, %v events found applied before (duplicates), %v rooms re-read",
			p.metric(t, `opensips_imc_rabbitmq_deliveries_total{queue="`+r.Topology.Queues[0]+`",redelivered="true"}`),
			p.metric(t, `opensips_imc_commands_total{command="duplicate",result="refused"}`),
			p.metric(t, `opensips_imc_rabbitmq_room_rereads_total{result="ok"}`))
		if code := p.stop(); code != 0 {
			t.Errorf("exit code %d", code)
		}
	}
	if n := r.Ready(); n != 0 {
		t.Errorf("%d messages left in the queue after the survivor stopped: not all applied and acknowledged", n)
	}
	if err := m.checkTables(dbURL, tables); err != nil {
		t.Error(err)
	}
	missing, unexcused := m.checkNotices(t, f.Deliveries())
	t.Logf("%d of %d notices sent; %d missing: %d still queued for a member who then left the room, %d queued in a killed instance",
		len(f.Deliveries()), m.total, missing, missing-unexcused, unexcused)
	if graceful && unexcused != 0 {
		t.Errorf("%d notices never sent after graceful stops", unexcused)
	}
}

// TestShardedFailover: three queues behind a consistent-hash exchange, three
// imcd each leading one and standing by for the other two. One instance is
// killed during a storm; its queue goes to another, which serves rooms it
// never served before from the database. Tables, order and duplicates are
// checked as in TestFailoverStorm (each room's events are in one queue, so
// the model applies them in publishing order).
func TestShardedFailover(t *testing.T) {
	url := testbroker.URL(t)
	dbURL, tables, dbLines := rabbitDB(t)
	r := feed.New(t, url, 3, true)
	f := opensipstest.New(t, opensipstest.Options{})
	events := storm(6000, 24, 12)
	m := modelOf(events)
	var procs []*proc
	for i := range 3 {
		var standby []string
		for j := range 3 {
			if j != i {
				standby = append(standby, fmt.Sprint(j))
			}
		}
		p := startIMCD(t, f, procOpts{extra: rabbitLines(r, append(dbLines, fmt.Sprintf("rabbitmq_queues = %d", i),
			"rabbitmq_standby_queues = "+strings.Join(standby, ","), "rabbitmq_standby_delay = 1s")...)})
		// Its own queue first: single-active-consumer makes the first
		// consumer registered the active one, and the others' standby
		// consumers come a second after their start, which a loaded
		// machine may take to start the next instance.
		own := `opensips_imc_rabbitmq_consuming{queue="` + r.Topology.Queues[i] + `"}`
		if !waitFor(60*time.Second, func() bool { return p.metric(t, own) == 1 }) {
			t.Fatalf("instance %d does not consume its queue within 60s", i)
		}
		procs = append(procs, p)
	}
	// Every instance has a consumer on every queue, its own active and the
	// others standing by, before anything is published.
	if !waitFor(60*time.Second, func() bool {
		for _, p := range procs {
			_, body := p.get("/metrics")
			if metricSum(body, "opensips_imc_rabbitmq_consuming") != float64(len(r.Topology.Queues)) {
				return false
			}
		}
		return true
	}) {
		t.Fatal("not every instance consumes every queue within 60s")
	}
	if err := r.Publish(events[:3000]...); err != nil {
		t.Fatal(err)
	}
	if !waitFor(60*time.Second, func() bool { return len(f.Deliveries()) >= m.total/4 }) {
		t.Fatalf("only %d of %d notices after 60s", len(f.Deliveries()), m.total)
	}
	killedQueue := r.Topology.Queues[0]
	taken := func(redelivered string) float64 {
		var n float64
		for _, p := range procs[1:] {
			_, body := p.get("/metrics")
			n += metricSum(body, "opensips_imc_rabbitmq_deliveries_total", `queue="`+killedQueue+`"`, `redelivered="`+redelivered+`"`)
		}
		return n
	}
	if n := taken("true") + taken("false"); n != 0 {
		t.Fatalf("the standby instances took %v deliveries of %s while its active instance was alive", n, killedQueue)
	}
	killed := time.Now()
	procs[0].Kill()
	// The rest is published at once: whether the killed instance still held
	// deliveries of its queue depends on how far it got, which depends on
	// the machine's load; with these, a successor has its queue's events to
	// take either way.
	published := make(chan error, 1)
	go func() { published <- r.Publish(events[3000:]...) }()
	if !waitFor(60*time.Second, func() bool { return taken("true")+taken("false") > 0 }) {
		t.Fatal("nobody took the killed instance's queue over within 60s")
	}
	t.Logf("queue %s taken over %v after SIGKILL (first delivery seen, polled every 100 ms)", killedQueue, time.Since(killed).Round(time.Millisecond))
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	m.waitApplied(t, r, dbURL, tables, "")
	for _, p := range procs[1:] {
		if code := p.stop(); code != 0 {
			t.Errorf("exit code %d", code)
		}
	}
	if n := r.Ready(); n != 0 {
		t.Errorf("%d messages left in the queues after the survivors stopped", n)
	}
	if err := m.checkTables(dbURL, tables); err != nil {
		t.Error(err)
	}
	missing, unexcused := m.checkNotices(t, f.Deliveries())
	t.Logf("%d of %d notices sent; %d missing: %d still queued for a member who then left the room, %d queued in the killed instance; %v of the killed instance's deliveries redelivered",
		len(f.Deliveries()), m.total, missing, missing-unexcused, unexcused, taken("true"))
}
