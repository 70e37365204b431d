package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

// TestMetricsMove drives a short conversation and checks that the counters
// an operator watches moved by exactly what happened.
func TestMetricsMove(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	p := startIMCD(t, f, procOpts{})
	r := room1
	step(t, f, alice, r, r, "#create chat-1", want{to: alice, body: "*** room was created", reply: true})
	step(t, f, bob, r, r, "#join",
		want{to: alice, body: "*** <" + bob + "> has joined the room"}, want{to: bob, body: "*** <" + bob + "> has joined the room", reply: true})
	f.SetStatus(bob, "480 Temporarily Unavailable")
	step(t, f, alice, r, r, "hi bob", want{to: bob, body: "<alice@127.0.0.1>: hi bob", ctype: "text/plain;charset=UTF-8"})
	step(t, f, zed, r, r, "#destroy", want{to: zed, body: "You are not a member of " + r, reply: true})
	if err := f.RaiseRaw(p.events, []byte(`{"jsonrpc":"2.0","method":"E_IMC_MESSAGE","params":{"from":7}}`)); err != nil {
		t.Fatal(err)
	}

	deadline := time.Now().Add(3 * time.Second)
	check := func(series string, want float64) {
		t.Helper()
		for {
			got := p.metric(t, series)
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("%s = %g, want %g", series, got, want)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	check(`opensips_imc_events_total{result="ok",transport="stream"}`, 4)
	check(`opensips_imc_events_total{result="decode_error",transport="stream"}`, 1)
	check(`opensips_imc_decode_errors_total{transport="stream"}`, 1)
	check(`opensips_imc_commands_total{command="create",result="ok"}`, 1)
	check(`opensips_imc_commands_total{command="join",result="ok"}`, 1)
	check(`opensips_imc_commands_total{command="chat",result="ok"}`, 1)
	check(`opensips_imc_commands_total{command="destroy",result="refused"}`, 1)
	check(`opensips_imc_deliveries_total{status="2xx"}`, 4)
	check(`opensips_imc_deliveries_total{status="4xx"}`, 1)
	check(`opensips_imc_active_rooms`, 1)
	check(`opensips_imc_members`, 2)
	check(`opensips_imc_db_latency_seconds_count{op="apply"}`, 2)
	check(`opensips_imc_delivery_latency_seconds_count`, 5)
	if code, body := p.get("/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
}

// TestSIGTERMKeepsWhatWasAcknowledged: OpenSIPS (reliable event_stream)
// pushes a storm of #create commands; SIGTERM arrives in the middle. imcd
// must exit 0 within the grace period, and after a restart on the same
// database every room whose event was acknowledged must exist.
func TestSIGTERMKeepsWhatWasAcknowledged(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{Reliable: true})
	dir := t.TempDir()
	// Flood control and the room policy off: the storm is one user's
	// thousand rooms named storm-N.
	p := startIMCD(t, f, procOpts{dir: dir, extra: []string{"rate_limit = 0", "fanout_limit = 0", "max_rooms_per_user = 0", `room_prefix = ""`}})

	acked := make(chan string, 1000)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 1000; i++ {
			name := fmt.Sprintf("storm-%d", i)
			ev := opensipstest.NewEvent(alice, "sip:chat-manager@127.0.0.1", "#create "+name)
			replies, err := f.Raise(ev)
			if err != nil || len(replies) != 1 {
				return // imcd stopped listening
			}
			if want := fmt.Sprintf(`{"jsonrpc":"2.0","result":"OK","id":%d}`, replies[0].ID); string(replies[0].Raw) == want {
				acked <- name
			}
		}
	}()
	// Let some commands through, then stop imcd while they keep coming.
	for len(acked) < 20 {
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	if code := p.stop(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM\n%s", code, p.log.String())
	}
	if took := time.Since(start); took > 6*time.Second {
		t.Fatalf("stop took %s, grace is 5s", took)
	}
	<-done
	close(acked)
	var names []string
	for n := range acked {
		names = append(names, n)
	}
	if len(names) < 20 {
		t.Fatalf("only %d acknowledged", len(names))
	}

	p2 := startIMCD(t, f, procOpts{dir: dir})
	var res struct {
		Result struct {
			ROOMS []struct{ URI string }
		}
	}
	raw := p2.mi(t, `{"jsonrpc":"2.0","method":"imc_list_rooms","id":1}`)
	if err := json.Unmarshal([]byte(raw), &res); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	have := map[string]bool{}
	for _, r := range res.Result.ROOMS {
		have[r.URI] = true
	}
	for _, n := range names {
		if !have["sip:"+n+"@127.0.0.1"] {
			t.Errorf("room %s was acknowledged but is gone after the restart", n)
		}
	}
	t.Logf("%d acknowledged before SIGTERM, %d rooms after restart", len(names), len(have))
}

// TestResubscribeAfterOpenSIPSRestart: OpenSIPS keeps subscriptions in
// memory only; after its restart imcd must be subscribed again within the
// renewal interval, and events flow again.
func TestResubscribeAfterOpenSIPSRestart(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	p := startIMCD(t, f, procOpts{})
	step(t, f, alice, room1, room1, "#create chat-1", want{to: alice, body: "*** room was created", reply: true})
	if err := f.Restart(); err != nil {
		t.Fatal(err)
	}
	if subs := f.Subscriptions("E_IMC_MESSAGE"); len(subs) != 0 {
		t.Fatalf("fake kept %d subscriptions over a restart", len(subs))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second) // renew is 300ms
	defer cancel()
	if err := f.WaitSubscribed(ctx, "E_IMC_MESSAGE", p.events); err != nil {
		t.Fatalf("not subscribed again: %v", err)
	}
	step(t, f, bob, room1, room1, "#join",
		want{to: alice, body: "*** <" + bob + "> has joined the room"}, want{to: bob, body: "*** <" + bob + "> has joined the room", reply: true})
}

// TestUnsubscribeOnStop: a clean stop tells OpenSIPS to stop sending
// (event_subscribe with expire 0).
func TestUnsubscribeOnStop(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	p := startIMCD(t, f, procOpts{})
	p.stop()
	for _, c := range f.CallsTo("event_subscribe") {
		if strings.Contains(string(c.Raw), `"expire":0`) && strings.Contains(string(c.Raw), p.events) {
			return
		}
	}
	t.Fatalf("no event_subscribe with expire 0 for %s: %v", p.events, f.CallsTo("event_subscribe"))
}

// TestReadyMeansSubscribed: the moment /readyz first says ready, OpenSIPS
// already has the subscription (startIMCD returns at that moment). The
// metrics server starts early in Open, and once answered "ready" before the
// subscriber existed, so the first events of a fresh imcd were lost.
func TestReadyMeansSubscribed(t *testing.T) {
	for i := 0; i < 5; i++ {
		f := opensipstest.New(t, opensipstest.Options{})
		p := startIMCD(t, f, procOpts{})
		if subs := f.Subscriptions("E_IMC_MESSAGE"); len(subs) != 1 || subs[0].Socket != p.events {
			t.Fatalf("start %d: ready, but OpenSIPS has subscriptions %+v", i, subs)
		}
		p.stop()
	}
}
