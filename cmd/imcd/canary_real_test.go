package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// subscriptionTTL returns the seconds OpenSIPS gives imcd's E_IMC_MESSAGE
// subscription on socket (MI subscribers_list), -1 when there is none.
func (l *realLab) subscriptionTTL(socket string) int {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := l.os.Call(ctx, "subscribers_list", map[string]any{"event": "E_IMC_MESSAGE"})
	if err != nil {
		l.t.Fatal(err)
	}
	var list struct {
		Event struct {
			Subscribers []struct {
				Socket string `json:"socket"`
				TTL    int    `json:"ttl"`
			}
		}
	}
	if err := json.Unmarshal(res, &list); err != nil {
		l.t.Fatalf("subscribers_list %s: %v", res, err)
	}
	for _, s := range list.Event.Subscribers {
		if s.Socket == socket {
			return s.TTL
		}
	}
	return -1
}

// TestRealOpenSIPSCanary: the canary's probes go through the real
// OpenSIPS and its fragment (t_uac_dlg, the script's route, raise_event,
// event_stream) and come back. The subscription dropped by MI
// (event_subscribe with expire 0) right after imcd renewed it stays
// dropped until imcd's next renewal (event_renew, 5 s here): meanwhile
// /readyz fails naming the events leg; the renewal heals it, and /readyz
// is ready again.
func TestRealOpenSIPSCanary(t *testing.T) {
	l := startLab(t, labOpts{imcd: []string{"canary_interval = 200ms", "canary_timeout = 1s", "event_renew = 5s", "event_expire = 60s"}})
	p := l.imcd
	probes := func(result string) float64 {
		return metricSum(p.Metrics(), "opensips_imc_canary_probes_total", `result="`+result+`"`)
	}
	waitUntil(t, "probes back", 30*time.Second, func() bool { return probes("ok") >= 2 })

	// Right after a renewal: the drop lasts until the next one.
	last := l.subscriptionTTL(p.Addrs.Events)
	waitUntil(t, "a renewal", 30*time.Second, func() bool {
		ttl := l.subscriptionTTL(p.Addrs.Events)
		renewed := ttl > last
		last = ttl
		return renewed
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := l.os.Call(ctx, "event_subscribe", []any{"E_IMC_MESSAGE", p.Addrs.Events, 0}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "/readyz naming the events leg", 30*time.Second, func() bool {
		code, body := p.Get("/readyz")
		return code == 503 && strings.Contains(body, "event path broken (events)")
	})
	waitUntil(t, "/readyz ready after imcd's renewal", 30*time.Second, func() bool {
		code, _ := p.Get("/readyz")
		return code == 200 && l.subscriptionTTL(p.Addrs.Events) > 0
	})
	if probes("events") < 1 {
		t.Fatal("no probe counted lost on the events leg")
	}
}
