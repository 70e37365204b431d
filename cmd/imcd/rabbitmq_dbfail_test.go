package main

import (
	"testing"
	"time"

	"github.com/imcd-sip/imcd/internal/dbproxy"
	"github.com/imcd-sip/imcd/internal/testbroker"
	"github.com/imcd-sip/imcd/internal/testbroker/feed"
	"github.com/imcd-sip/imcd/internal/testdb"
	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

// TestRabbitMQDatabaseOutage: the database goes away in the middle of a
// storm. In RabbitMQ mode nothing is refused to users: the queue rewinds
// (what was not applied goes back, in order) and is consumed again once
// the database answers. While it is gone imcd applies nothing: a whole
// consumer session's deliveries are refused and not one notice more is
// submitted or sent (applyNothing). At the end the tables equal the model
// and every notice was sent once, in order, with none of "try again later".
func TestRabbitMQDatabaseOutage(t *testing.T) {
	url := testbroker.URL(t)
	dbURL := testdb.Need(t, testdb.MySQL)
	tables := testdb.NewTables(t, testdb.MySQL, "imc_events")
	proxy, err := dbproxy.Start(testdb.HostPort(dbURL), dbproxy.Raw)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	r := feed.New(t, url, 1, true)
	f := opensipstest.New(t, opensipstest.Options{})
	events := storm(3000, 16, 12)
	m := modelOf(events)
	p := startIMCD(t, f, procOpts{extra: rabbitLines(r, "db_url = "+testdb.Through(dbURL, proxy.Addr()), "rooms_table = "+tables.Rooms,
		"members_table = "+tables.Members, "events_table = "+tables.Extra[0], "create_tables = yes")})
	// The second half is published during the outage: however far imcd
	// got with the first, it has deliveries to refuse.
	half := len(events) / 2
	if err := r.Publish(events[:half]...); err != nil {
		t.Fatal(err)
	}
	firstHalf := modelOf(events[:half]).total
	if !waitFor(60*time.Second, func() bool { return len(f.Deliveries()) >= firstHalf/2 }) {
		t.Fatalf("only %d notices after 60s", len(f.Deliveries()))
	}
	proxy.Cut()
	if !waitFor(10*time.Second, func() bool { code, _ := p.get("/readyz"); return code == 503 }) {
		t.Error("/readyz still 200 with the database gone")
	}
	if err := r.Publish(events[half:]...); err != nil {
		t.Fatal(err)
	}
	applyNothing(t, p, f, r.Topology.Queues[0])
	proxy.Restore()
	m.waitApplied(t, r, dbURL, tables, " of the database's return")
	settle(f, 20*time.Second) // the notices: checked below
	returned := p.metric(t, `opensips_imc_rabbitmq_settled_total{outcome="returned",queue="`+r.Topology.Queues[0]+`"}`)
	if code := p.stop(); code != 0 {
		t.Errorf("exit code %d", code)
	}
	if missing, unexcused := m.checkNotices(t, f.Deliveries()); unexcused != 0 {
		t.Errorf("%d notices never sent (of %d missing; the others were still queued for a member who then left the room)", unexcused, missing)
	}
	if returned == 0 {
		t.Error("no delivery was given back to the queue: the outage did not rewind it")
	}
	t.Logf("%d events; %v deliveries given back to the queue during the outage", len(events), returned)
}

// applyNothing checks that p, its database gone, applies nothing from
// queue. How many notices were still in delivery at the cut depends on the
// machine's load, so it counts none of them: it waits until a consumer
// session of queue ended after the cut (every event taken before has its
// verdict, so its notices, if any, were submitted) and delivery has sent
// all it was given, then until a further session ended (events were
// offered again and refused), and then nothing may have been submitted to
// delivery or sent meanwhile.
func applyNothing(t *testing.T, p *proc, f *opensipstest.Server, queue string) {
	t.Helper()
	returned := func() float64 {
		return p.metric(t, `opensips_imc_rabbitmq_settled_total{outcome="returned",queue="`+queue+`"}`)
	}
	submitted := func() float64 { return p.metric(t, "opensips_imc_delivery_submitted_total") }
	ended := func() float64 {
		_, body := p.get("/metrics")
		return metricSum(body, "opensips_imc_delivery_results_total")
	}
	nextSession := func(what string) {
		t.Helper()
		before := returned()
		if !waitFor(60*time.Second, func() bool { return returned() > before }) {
			t.Fatalf("no consumer session ended within 60s %s", what)
		}
	}
	nextSession("after /readyz said the database was gone")
	sub := submitted()
	if !waitFor(60*time.Second, func() bool { return ended() >= sub }) {
		t.Fatalf("delivery did not send its %v notices within 60s of the outage", sub-ended())
	}
	sent := len(f.Deliveries())
	nextSession("while the database was gone")
	if n := submitted(); n != sub {
		t.Errorf("%v notices submitted to delivery while the database was gone", n-sub)
	}
	if n := len(f.Deliveries()); n != sent {
		t.Errorf("%d notices sent while the database was gone, delivery being idle", n-sent)
	}
}
