package metrics

import (
	"testing"

	"github.com/imcd-sip/imcd/pkg/canary"
)

// TestCanaryObserver: each node's probes are counted by result (the
// canary's legs as labels), every result at 0 from the start, and the
// event path's gauge follows the last probe.
func TestCanaryObserver(t *testing.T) {
	m := New(func() (int, int) { return 0, 0 })
	a, b := m.Canary().Observer("udp:10.0.0.1:8080"), m.Canary().Observer("udp:10.0.0.2:8080")
	for _, r := range []string{"ok", "mi", "script", "events"} {
		if v := value(t, m, "opensips_imc_canary_probes_total", "endpoint", "udp:10.0.0.2:8080", "result", r); v != 0 {
			t.Fatalf("%s before any probe: %g", r, v)
		}
	}
	a.Probed(true, "")
	a.Probed(false, canary.LegEvents)
	b.Probed(false, canary.LegMI)
	b.Probed(true, "")
	f := expect(t, m)
	f("opensips_imc_canary_probes_total", 1, "endpoint", "udp:10.0.0.1:8080", "result", "ok")
	f("opensips_imc_canary_probes_total", 1, "endpoint", "udp:10.0.0.1:8080", "result", "events")
	f("opensips_imc_canary_probes_total", 1, "endpoint", "udp:10.0.0.2:8080", "result", "mi")
	f("opensips_imc_event_path_up", 0, "endpoint", "udp:10.0.0.1:8080")
	f("opensips_imc_event_path_up", 1, "endpoint", "udp:10.0.0.2:8080")
}
