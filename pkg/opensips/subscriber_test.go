package opensips_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/internal/imcdproc"
	"github.com/imcd-sip/imcd/pkg/opensips"
	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

// TestSubscriberRenewAndRestart: subscribe, renew, survive an OpenSIPS
// restart (which forgets subscriptions) within Renew, unsubscribe on Close.
func TestSubscriberRenewAndRestart(t *testing.T) {
	fake := startFake(t, opensipstest.Options{})
	c := openClient(t, fake.MISocket(), nil)
	const socket = "tcp:127.0.0.1:9998"
	renew := 300 * time.Millisecond
	sub := &opensips.Subscriber{Client: c, Socket: socket, Renew: renew, Expire: 5 * time.Second, Logger: testLogger(t)}
	mustf(t, sub.Open(context.Background()), "open")
	mustf(t, fake.WaitSubscribed(ctxTimeout(t, 2*time.Second), "E_IMC_MESSAGE", socket), "first subscription")
	waitFor(t, "active", sub.Active)
	subs := fake.Subscriptions("E_IMC_MESSAGE")
	if len(subs) != 1 || subs[0].Expire != 5 {
		t.Fatalf("subscriptions %+v", subs)
	}
	waitFor(t, "a renewal", func() bool { return len(fake.CallsTo("event_subscribe")) >= 2 })
	call := string(fake.CallsTo("event_subscribe")[0].Raw)
	if !strings.HasPrefix(call, `{"jsonrpc":"2.0","method":"event_subscribe","params":{"event":"E_IMC_MESSAGE","socket":"tcp:127.0.0.1:9998","expire":5},"id":`) {
		t.Fatalf("request %s", call)
	}

	mustf(t, fake.Restart(), "restart")
	if len(fake.Subscriptions("")) != 0 {
		t.Fatal("restart kept subscriptions")
	}
	restarted := time.Now()
	mustf(t, fake.WaitSubscribed(ctxTimeout(t, 3*time.Second), "E_IMC_MESSAGE", socket), "subscription after restart")
	if d := time.Since(restarted); d > renew+200*time.Millisecond {
		t.Fatalf("resubscribed %v after the restart, renew is %v", d, renew)
	}

	mustf(t, sub.Close(), "close")
	mustf(t, sub.Close(), "second close")
	if sub.Active() || len(fake.Subscriptions("")) != 0 {
		t.Fatal("still subscribed after Close")
	}
	calls := fake.CallsTo("event_subscribe")
	if last := string(calls[len(calls)-1].Raw); !strings.Contains(last, `"expire":0}`) {
		t.Fatalf("last call %s", last)
	}
}

// TestSubscriberDown: OpenSIPS unreachable at start, then up.
func TestSubscriberDown(t *testing.T) {
	fake := startFake(t, opensipstest.Options{})
	fake.Down()
	c := openClient(t, fake.MISocket(), func(c *opensips.MIClient) { c.CallTimeout = 200 * time.Millisecond })
	const socket = "udp:127.0.0.1:9999"
	sub := &opensips.Subscriber{Client: c, Socket: socket, Renew: 2 * time.Second, Logger: testLogger(t)}
	mustf(t, sub.Open(context.Background()), "open")
	defer sub.Close()
	time.Sleep(300 * time.Millisecond)
	if sub.Active() {
		t.Fatal("active while OpenSIPS is down")
	}
	mustf(t, fake.Up(), "up")
	up := time.Now()
	mustf(t, fake.WaitSubscribed(ctxTimeout(t, 4*time.Second), "E_IMC_MESSAGE", socket), "subscribed")
	// Backoff 0.5, 1, 2 s: healed well before the next full Renew.
	if d := time.Since(up); d > 2500*time.Millisecond {
		t.Fatalf("subscribed %v after OpenSIPS came up", d)
	}
	waitFor(t, "active", sub.Active)
}

// TestSubscriberRefused: an error reply is logged with OpenSIPS's message.
func TestSubscriberRefused(t *testing.T) {
	fake := startFake(t, opensipstest.Options{})
	c := openClient(t, fake.MISocket(), nil)
	var logs imcdproc.LogBuffer
	sub := &opensips.Subscriber{Client: c, Event: "E_NO_SUCH_EVENT", Socket: "udp:127.0.0.1:9999",
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	mustf(t, sub.Open(context.Background()), "open")
	waitFor(t, "the error logged", func() bool { return strings.Contains(logs.String(), "Bad parameter value") })
	sub.Close()
	if sub.Active() {
		t.Fatal("active")
	}
	out := logs.String()
	if !strings.Contains(out, `msg="OpenSIPS refused the event subscription"`) || !strings.Contains(out, "code=400") ||
		!strings.Contains(out, "system=subscriber") {
		t.Fatalf("log:\n%s", out)
	}
	if strings.Contains(out, "unsubscribed") {
		t.Fatal("unsubscribed a subscription that never existed")
	}

	if err := (&opensips.Subscriber{Socket: "x"}).Open(context.Background()); err == nil {
		t.Fatal("no client accepted")
	}
	if err := (&opensips.Subscriber{Client: c}).Open(context.Background()); err == nil {
		t.Fatal("no socket accepted")
	}
}
