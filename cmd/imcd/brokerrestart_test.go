package main

import (
	"testing"
	"time"

	"github.com/imcd-sip/imcd/internal/testbroker/feed"
	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

// TestBrokerRestartMidStorm: the broker restarts (stop_app, start_app of a
// node of the test's own) while two imcd apply a storm. They reconnect and
// /readyz says when they are back; events the broker confirmed before the
// restart and after it are all applied (the tables equal the model), once,
// and every notice is sent once, in order per room and recipient.
func TestBrokerRestartMidStorm(t *testing.T) {
	pb := startPrivateBroker(t)
	dbURL, tables, dbLines := rabbitDB(t)
	r := feed.New(t, pb.URL(), 1, false) // imcd declares the topology
	f := opensipstest.New(t, opensipstest.Options{})
	events := storm(8000, 16, 12)
	m := modelOf(events)
	lines := rabbitLines(r, append(dbLines, "rabbitmq_declare = yes")...)
	a := startIMCD(t, f, procOpts{extra: lines})
	b := startIMCD(t, f, procOpts{extra: lines})

	half := 6000 // a backlog of several seconds' work when the broker stops
	if err := r.Publish(events[:half]...); err != nil {
		t.Fatal(err)
	}
	if !waitFor(60*time.Second, func() bool { return len(f.Deliveries()) >= m.total/10 }) {
		t.Fatalf("only %d notices after 60s", len(f.Deliveries()))
	}
	backlog := r.Ready()
	stopped := time.Now()
	pb.stopApp()
	sent := len(f.Deliveries())
	for _, p := range []*proc{a, b} {
		if !waitFor(10*time.Second, func() bool { code, _ := p.get("/readyz"); return code == 503 }) {
			t.Error("/readyz still 200 with the broker stopped")
		}
	}
	pb.startApp()
	restarted := time.Now()
	for _, p := range []*proc{a, b} {
		if !waitFor(30*time.Second, func() bool { code, _ := p.get("/readyz"); return code == 200 }) {
			code, body := p.get("/readyz")
			t.Fatalf("not ready 30s after the broker came back: %d %s", code, body)
		}
	}
	t.Logf("broker stopped with %d of %d events queued (%d of %d notices sent), down %v; both imcd ready again %v after start_app",
		backlog, half, sent, m.total, restarted.Sub(stopped).Round(time.Millisecond), time.Since(restarted).Round(time.Millisecond))
	if backlog == 0 {
		t.Error("the broker stopped after the backlog was applied: not a restart mid-storm")
	}
	if err := r.Publish(events[half:]...); err != nil {
		t.Fatalf("publishing after the restart: %v", err)
	}
	m.waitApplied(t, r, dbURL, tables, "")
	settle(f, 20*time.Second) // the notices: checked below
	var dups float64
	for _, p := range []*proc{a, b} {
		dups += p.metric(t, `opensips_imc_commands_total{command="duplicate",result="refused"}`)
		if code := p.stop(); code != 0 {
			t.Errorf("exit code %d", code)
		}
	}
	if n := r.Ready(); n != 0 {
		t.Errorf("%d messages left in the queue after imcd stopped", n)
	}
	if err := m.checkTables(dbURL, tables); err != nil {
		t.Error(err)
	}
	missing, unexcused := m.checkNotices(t, f.Deliveries())
	t.Logf("%d notices not sent, %d of them still queued for a member who then left the room", missing, missing-unexcused)
	if unexcused != 0 {
		t.Errorf("%d notices never sent (of %d missing)", unexcused, missing)
	}
	t.Logf("%d events, %d notices; %v redelivered events found applied before", len(events), m.total, dups)
}
