package main

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/imcd-sip/imcd/pkg/opensipstest"
)

// The canary on the real binary, against the fake OpenSIPS (which plays
// the fragment's route for a t_uac_dlg to the manager: 202, then the
// MESSAGE raised as an event).

// canaryLines turn the canary on, probing often; imcd renews its
// subscription only hourly, so that a subscription dropped behind its back
// stays dropped until OpenSIPS restarts.
var canaryLines = []string{"canary_interval = 200ms", "canary_timeout = 1s", "event_renew = 1h", "event_expire = 2h"}

// waitReadyz waits until /readyz answers code with a body containing
// want, and returns the body.
func (p *proc) waitReadyz(t *testing.T, code int, want string) string {
	t.Helper()
	var body string
	waitUntil(t, "/readyz "+want, 30*time.Second, func() bool {
		var got int
		got, body = p.get("/readyz")
		return got == code && strings.Contains(body, want)
	})
	return body
}

// dropSubscription removes imcd's E_IMC_MESSAGE subscription from the fake
// OpenSIPS as an operator would: MI event_subscribe with expire 0.
func dropSubscription(t *testing.T, f *opensipstest.Server, socket string) {
	t.Helper()
	c, err := net.Dial("udp", f.MIAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(`{"jsonrpc":"2.0","method":"event_subscribe","params":["E_IMC_MESSAGE","` + socket + `",0],"id":1}`)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil || !strings.Contains(string(buf[:n]), `"OK"`) {
		t.Fatalf("event_subscribe expire 0: %q %v", buf[:n], err)
	}
}

// TestCanaryEventPath: imcd is ready while its probes come back; with its
// subscription dropped, /readyz turns red naming the events leg, the
// metrics and the log say so; once OpenSIPS restarts (and imcd subscribes
// again) it is ready again, and the log says the path works again. No
// probe is ever a delivery, and the rooms go on meanwhile.
func TestCanaryEventPath(t *testing.T) {
	f := opensipstest.New(t, opensipstest.Options{})
	p := startIMCD(t, f, procOpts{extra: canaryLines})
	ok := `opensips_imc_canary_probes_total{endpoint="` + f.MISocket() + `",result="ok"}`
	waitUntil(t, "probes back", 30*time.Second, func() bool { return p.metric(t, ok) >= 2 })
	p.waitReadyz(t, 200, "ready")

	dropSubscription(t, f, p.events)
	body := p.waitReadyz(t, 503, "event path broken (events)")
	if !strings.Contains(body, f.MISocket()) || !strings.Contains(body, "subscription") {
		t.Errorf("/readyz %q: want the node and what to check", body)
	}
	if v := p.metric(t, `opensips_imc_event_path_up{endpoint="`+f.MISocket()+`"}`); v != 0 {
		t.Errorf("event_path_up %g while broken", v)
	}
	waitUntil(t, "the log line", 10*time.Second, func() bool {
		l := p.log.String()
		return strings.Contains(l, `"msg":"the event path is broken: MESSAGEs to rooms do not reach imcd"`) && strings.Contains(l, `"leg":"events"`)
	})

	if err := f.Restart(); err != nil {
		t.Fatal(err)
	}
	p.waitReadyz(t, 200, "ready")
	waitUntil(t, "the log line", 10*time.Second, func() bool {
		return strings.Contains(p.log.String(), `"msg":"the event path works again: a probe came back"`)
	})
	step(t, f, alice, manager1, room1, "#create chat-1", want{to: alice, body: "*** room was created", reply: true})
	if n := len(f.Looped()); n == 0 {
		t.Fatal("no probe went through the fake's script")
	}
}
