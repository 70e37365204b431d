package metrics

import (
	"testing"

	"github.com/imcd-sip/imcd/pkg/delivery"
)

// TestDeliveryObserver: the scheduler's results, refusals and gauges come
// out under the documented names, with label values from delivery.Kind.
func TestDeliveryObserver(t *testing.T) {
	m := New(func() (int, int) { return 0, 0 })
	m.Submitted(5)
	m.Finished(delivery.Result{Kind: delivery.Delivered})
	m.Finished(delivery.Result{Kind: delivery.Delivered, Held: true})
	m.Finished(delivery.Result{Kind: delivery.Dropped, Held: true})
	m.Finished(delivery.Result{Kind: delivery.Lost})
	m.Finished(delivery.Result{Kind: delivery.Aborted, Held: true})
	m.Finished(delivery.Result{Kind: delivery.Delivered, Missed: true}) // not a submitted notice
	m.Shed(7)
	m.Gauges(&delivery.Stats{Queued: 3, Kept: 4, InFlight: 2, Unreachable: 1, Endpoints: []delivery.EndpointStats{
		{Name: "udp:10.0.0.1:8080", Up: true, Rate: 2500, InFlight: 2, InWait: 40, Limit: 100,
			Shm: delivery.Memory{Used: 300 << 20, Total: 1 << 30}},
		{Name: "udp:10.0.0.2:8080", Up: false, Rate: 20},
	}})
	f := expect(t, m)
	f("opensips_imc_delivery_results_total", 1, "kind", "delivered", "held", "false")
	f("opensips_imc_delivery_results_total", 1, "kind", "delivered", "held", "true")
	f("opensips_imc_delivery_results_total", 1, "kind", "dropped", "held", "true")
	f("opensips_imc_delivery_results_total", 1, "kind", "lost", "held", "false")
	f("opensips_imc_delivery_results_total", 1, "kind", "aborted", "held", "true")
	f("opensips_imc_delivery_results_total", 0, "kind", "failed", "held", "false")
	f("opensips_imc_delivery_submitted_total", 5)
	f("opensips_imc_delivery_missed_notices_total", 1, "kind", "delivered")
	f("opensips_imc_delivery_shed_total", 7)
	f("opensips_imc_delivery_queued", 3)
	f("opensips_imc_delivery_kept", 4)
	f("opensips_imc_members_unreachable", 1)
	f("opensips_imc_delivery_in_flight", 2, "endpoint", "udp:10.0.0.1:8080")
	f("opensips_imc_delivery_transactions_alive", 42, "endpoint", "udp:10.0.0.1:8080")
	f("opensips_imc_delivery_rate", 2500, "endpoint", "udp:10.0.0.1:8080")
	f("opensips_imc_delivery_transactions_limit", 100, "endpoint", "udp:10.0.0.1:8080")
	f("opensips_imc_opensips_shm_used_bytes", 300<<20, "endpoint", "udp:10.0.0.1:8080")
	f("opensips_imc_opensips_shm_total_bytes", 1<<30, "endpoint", "udp:10.0.0.1:8080")
	f("opensips_imc_delivery_endpoint_up", 1, "endpoint", "udp:10.0.0.1:8080")
	f("opensips_imc_delivery_endpoint_up", 0, "endpoint", "udp:10.0.0.2:8080")
	f("opensips_imc_delivery_rate", 20, "endpoint", "udp:10.0.0.2:8080")
}
