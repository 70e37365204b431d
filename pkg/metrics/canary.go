package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imcd-sip/imcd/pkg/canary"
)

// Canary counts the canary's probes (pkg/canary) through each OpenSIPS
// node; its collectors exist only while the canary runs.
type Canary struct {
	probes *prometheus.CounterVec
	up     *prometheus.GaugeVec
}

// ProbeOK is the result of a probe that came back; one that did not is
// counted by its leg (canary.LegMI, LegScript, LegEvents).
const ProbeOK = "ok"

// canaryOnce guards the registration of a Metrics' canary collectors.
type canaryOnce struct {
	once sync.Once
	c    *Canary
}

// Canary returns the canary's collectors, registering them on the first
// call.
func (m *Metrics) Canary() *Canary {
	m.canary.once.Do(func() {
		c := &Canary{
			probes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "canary_probes_total",
				Help: "The canary's probes through each OpenSIPS (endpoint: its opensips_mi), by result: ok (back as an event), mi (OpenSIPS's MI did not take it), script (OpenSIPS answered it, not 202: its route did not hand it to imcd), events (accepted, never back: the subscription, the event transport, or RabbitMQ's exchange and queue)."},
				[]string{"endpoint", "result"}),
			up: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "event_path_up",
				Help: "1 while the canary's last probe through this OpenSIPS (endpoint) came back as an event: a MESSAGE to a room reaches imcd; 0 while it does not."},
				[]string{"endpoint"}),
		}
		m.Registry.MustRegister(c.probes, c.up)
		m.canary.c = c
	})
	return m.canary.c
}

// Observer is the canary.Observer of the probes through endpoint. Its
// series exist from now, every result at 0, so that a rate over them has a
// start before the first probe.
func (c *Canary) Observer(endpoint string) canary.Observer {
	for _, r := range []string{ProbeOK, string(canary.LegMI), string(canary.LegScript), string(canary.LegEvents)} {
		c.probes.WithLabelValues(endpoint, r)
	}
	return canaryObserver{ok: c.probes.WithLabelValues(endpoint, ProbeOK), probes: c.probes, up: c.up.WithLabelValues(endpoint), endpoint: endpoint}
}

// canaryObserver counts one endpoint's probes.
type canaryObserver struct {
	ok       prometheus.Counter
	up       prometheus.Gauge
	probes   *prometheus.CounterVec
	endpoint string
}

// Probed counts a probe and sets the gauge of the event path.
func (o canaryObserver) Probed(ok bool, leg canary.Leg) {
	if ok {
		o.ok.Inc()
	} else {
		o.probes.WithLabelValues(o.endpoint, string(leg)).Inc()
	}
	o.up.Set(b2f(ok))
}
