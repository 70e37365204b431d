package daemon

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/internal/testbroker"
	"github.com/imcd-sip/imcd/internal/testbroker/feed"
	"github.com/imcd-sip/imcd/pkg/jsonrpc"
	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

// publishingScript makes the fake OpenSIPS play scripts/opensips/
// imcd-rabbitmq.cfg for t_uac_dlg: a MESSAGE to the manager is published
// to b's exchange, keyed by its R-URI, and answered 202 whether the broker
// took it or not (rabbitmq_publish has no confirms: a publish to an
// exchange that is gone is dropped by the broker); any other MESSAGE is
// delivered (200).
func publishingScript(t *testing.T, f *opensipstest.Server, b *broker) {
	f.Handle("t_uac_dlg", func(params []byte) ([]byte, *jsonrpc.Error) {
		var p struct{ RURI, Headers, Body string }
		if err := json.Unmarshal(params, &p); err != nil {
			return nil, jsonrpc.InvalidParams(err.Error())
		}
		if !strings.HasPrefix(p.RURI, "sip:chat-manager@") {
			return []byte(`{"Status":"200 OK"}`), nil
		}
		from, _, _ := strings.Cut(strings.TrimPrefix(p.Headers, "From: <"), ">")
		if err := b.Publish(feed.Event(opensipstest.NewEvent(from, p.RURI, p.Body))); err != nil {
			t.Logf("the script's publish: %v", err)
		}
		return []byte(`{"Status":"202 Accepted"}`), nil
	})
}

// TestCanaryRabbitMQTwoInstances: two instances share one queue; the
// active one consumes the probes of both, and stores the standby's key, so
// that the standby, which consumes nothing, finds its probes back
// (Returned): both are ready. With the exchange gone (OpenSIPS publishes
// into nothing, and answers 202), both say the events leg is broken; once
// it is declared again, both are ready again.
func TestCanaryRabbitMQTwoInstances(t *testing.T) {
	b := newBroker(t, 1)
	f := opensipstest.New(t, opensipstest.Options{})
	publishingScript(t, f, b)
	dir := t.TempDir()
	cfg := b.config(t, f, dir)
	cfg.Canary.Interval, cfg.Canary.Timeout = 200*time.Millisecond, time.Second
	active := openDaemon(t, f, cfg)
	standby := openDaemon(t, f, cfg) // registered second: it waits
	for _, d := range []*Daemon{active, standby} {
		eventually(t, "probes back", func() bool { return probes(t, d, f, "ok") >= 3 })
		readyz(t, d, 200, "ready")
	}
	if n := metric(t, standby, `opensips_imc_rabbitmq_deliveries_total{queue="`+b.Topology.Queues[0]+`",redelivered="false"}`); n != 0 {
		t.Fatalf("the standby consumed %g messages: it must have found its probes in the table", n)
	}

	if err := testbroker.Delete(b.URL, []string{b.Topology.Exchange}, nil); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*Daemon{active, standby} {
		readyz(t, d, 503, "event path broken (events)")
	}

	ctx, cancel := context.WithTimeout(context.Background(), testbroker.Patience)
	defer cancel()
	if err := b.Topology.Declare(ctx, b.URL); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*Daemon{active, standby} {
		readyz(t, d, 200, "ready")
	}
}
