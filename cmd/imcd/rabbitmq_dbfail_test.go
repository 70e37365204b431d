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
// the database answers. At the end the tables equal the model and every
// notice was sent once, in order, with none of "try again later".
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
	if err := r.Publish(events...); err != nil {
		t.Fatal(err)
	}
	if !waitFor(60*time.Second, func() bool { return len(f.Deliveries()) >= m.total/4 }) {
		t.Fatalf("only %d notices after 60s", len(f.Deliveries()))
	}
	proxy.Cut()
	if !waitFor(10*time.Second, func() bool { code, _ := p.get("/readyz"); return code == 503 }) {
		t.Error("/readyz still 200 with the database gone")
	}
	cut := len(f.Deliveries())
	time.Sleep(2 * time.Second)
	if n := len(f.Deliveries()); n > cut+m.total/20 {
		t.Errorf("%d notices sent while the database was gone", n-cut)
	}
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
