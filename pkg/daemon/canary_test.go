package daemon

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/config"
	"github.com/imcd-sip/imcd/pkg/jsonrpc"
	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

// The canary against the fake OpenSIPS, which plays the fragment's route:
// a t_uac_dlg to the manager is answered 202 and raised as an event to its
// subscribers (Looped), as the real OpenSIPS does.

// canaryConfig is testConfig with the canary on, probing often.
func canaryConfig(t *testing.T, f *opensipstest.Server) config.Config {
	cfg := testConfig(t, f, t.TempDir())
	cfg.Canary.Interval = 100 * time.Millisecond
	cfg.Canary.Timeout = 500 * time.Millisecond
	return cfg
}

// readyz waits until /readyz answers code with a body containing want.
func readyz(t *testing.T, d *Daemon, code int, want string) {
	t.Helper()
	var got int
	var body string
	eventually(t, "/readyz "+want, func() bool {
		got, body = get(t, d, "/readyz")
		return got == code && strings.Contains(body, want)
	})
}

// probes returns the canary's count of result through f's MI.
func probes(t *testing.T, d *Daemon, f *opensipstest.Server, result string) float64 {
	t.Helper()
	return metric(t, d, `opensips_imc_canary_probes_total{endpoint="`+f.MISocket()+`",result="`+result+`"}`)
}

// TestCanarySubscriptionDropped: the probes come back while OpenSIPS
// raises them to imcd; when the subscription is dropped behind imcd's back
// (MI event_subscribe with expire 0; imcd renews only hourly here),
// /readyz fails naming the events leg, the event path's gauge is 0; when
// OpenSIPS restarts, imcd subscribes again, and /readyz is ready again. The
// probes never show up as deliveries, nor as chat.
func TestCanarySubscriptionDropped(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	cfg := canaryConfig(t, f)
	cfg.SubscribeRenew, cfg.SubscribeExpire = time.Hour, 2*time.Hour
	d := openDaemon(t, f, cfg)
	eventually(t, "probes back", func() bool { return probes(t, d, f, "ok") >= 2 })
	readyz(t, d, 200, "ready")

	if got := datagramCall(t, f.MIAddr(), `{"jsonrpc":"2.0","method":"event_subscribe","params":["E_IMC_MESSAGE","`+d.Addrs().Events+`",0],"id":1}`); !strings.Contains(got, `"OK"`) {
		t.Fatalf("dropping the subscription: %s", got)
	}
	readyz(t, d, 503, "event path broken (events)")
	if v := metric(t, d, `opensips_imc_event_path_up{endpoint="`+f.MISocket()+`"}`); v != 0 {
		t.Fatalf("event_path_up %g while broken", v)
	}
	if probes(t, d, f, "events") < 1 {
		t.Fatal("no probe counted lost on the events leg")
	}

	if err := f.Restart(); err != nil { // its event connection closes: imcd subscribes again at once
		t.Fatal(err)
	}
	readyz(t, d, 200, "ready")
	if v := metric(t, d, `opensips_imc_event_path_up{endpoint="`+f.MISocket()+`"}`); v != 1 {
		t.Fatalf("event_path_up %g once healed", v)
	}
	if ds := f.Deliveries(); len(ds) != 0 {
		t.Fatalf("probes delivered: %v", lines(ds))
	}
	if len(f.Looped()) == 0 {
		t.Fatal("no probe went through the fake's script")
	}
	if v := readCounterSum(d.metrics.Registry, "opensips_imc_commands_total", "", ""); v != 0 {
		t.Fatalf("%g commands counted: the probes went to the rooms", v)
	}
}

// TestCanaryLegs: OpenSIPS's script refusing the probe (raise_event fails:
// 500) is the script leg; its MI not answering is the MI leg; each heals.
// A MESSAGE that looks like another instance's probe is dropped unseen.
func TestCanaryLegs(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	d := openDaemon(t, f, canaryConfig(t, f))
	eventually(t, "probes back", func() bool { return probes(t, d, f, "ok") >= 1 })

	f.Handle("t_uac_dlg", func([]byte) ([]byte, *jsonrpc.Error) {
		return []byte(`{"Status":"500 Server Internal Error"}`), nil
	})
	readyz(t, d, 503, "event path broken (script)")
	f.Handle("t_uac_dlg", nil) // the built-in, the fragment's route, again
	readyz(t, d, 200, "ready")

	f.SetSilent(true)
	eventually(t, "a probe lost on the MI leg", func() bool { return probes(t, d, f, "mi") >= 1 })
	f.SetSilent(false)
	readyz(t, d, 200, "ready")

	f.Reset()
	if _, err := f.Raise(opensipstest.NewEvent("sip:imcd-canary@example.com", room1, "imcd-canary 0123456789ab 7")); err != nil {
		t.Fatal(err)
	}
	send(t, f, alice, manager, "#create chat-1", 1) // what follows it is handled
	quiet(t, f, 1)
}

// TestCanaryOff: with canary_interval 0 nothing is probed, and /readyz
// says nothing of the event path.
func TestCanaryOff(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	d := openDaemon(t, f, testConfig(t, f, t.TempDir()))
	aliceAndBob(t, f)
	if n := len(f.Looped()); n != 0 {
		t.Fatalf("%d probes with the canary off", n)
	}
	if _, body := get(t, d, "/metrics"); strings.Contains(body, "canary") {
		t.Fatal("canary metrics with the canary off")
	}
}

// TestCanaryPerNode: each OpenSIPS of opensips_mi is a path of its own:
// the one whose script does not hand the probe to imcd (answered, never
// raised) is named by /readyz and its metrics, the other is up.
func TestCanaryPerNode(t *testing.T) {
	good := opensipstest.New(t, opensipstest.Options{})
	bad := opensipstest.New(t, opensipstest.Options{NoScript: true})
	cfg := canaryConfig(t, good)
	cfg.OpenSIPSMI = good.MISocket() + "," + bad.MISocket()
	d := New(cfg, testLogger(t))
	if err := d.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	readyz(t, d, 503, "through OpenSIPS "+bad.MISocket()+": event path broken (events)")
	eventually(t, "the good node's probes back", func() bool { return probes(t, d, good, "ok") >= 2 })
	if v := metric(t, d, `opensips_imc_event_path_up{endpoint="`+good.MISocket()+`"}`); v != 1 {
		t.Fatalf("the good node's event_path_up %g", v)
	}
	if v := metric(t, d, `opensips_imc_event_path_up{endpoint="`+bad.MISocket()+`"}`); v != 0 {
		t.Fatalf("the bad node's event_path_up %g", v)
	}
	if _, body := get(t, d, "/readyz"); strings.Contains(body, good.MISocket()) {
		t.Fatalf("/readyz names the good node: %s", body)
	}
}
