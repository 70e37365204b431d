package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imcd-sip/imcd/pkg/delivery"
)

// deliveryKinds are the kinds of delivery.Result, in the order of their
// values: every notice the scheduler admitted ends in one.
var deliveryKinds = [...]delivery.Kind{delivery.Delivered, delivery.Failed, delivery.Dropped, delivery.Lost, delivery.Aborted}

// deliveryMetrics are the scheduler's (pkg/delivery) counters and gauges.
type deliveryMetrics struct {
	results     *prometheus.CounterVec
	missed      *prometheus.CounterVec
	submitted   prometheus.Counter
	shed        prometheus.Counter
	queued      prometheus.Gauge
	kept        prometheus.Gauge
	inFlight    *prometheus.GaugeVec
	alive       *prometheus.GaugeVec
	limit       *prometheus.GaugeVec
	shmUsed     *prometheus.GaugeVec
	shmTotal    *prometheus.GaugeVec
	rate        *prometheus.GaugeVec
	up          *prometheus.GaugeVec
	unreachable prometheus.Gauge

	// byKind holds the result counters resolved once, by Kind and held:
	// Finished runs once per notice.
	byKind   [len(deliveryKinds) + 1][2]prometheus.Counter
	missedBy [len(deliveryKinds) + 1]prometheus.Counter
}

func newDeliveryMetrics() *deliveryMetrics {
	m := &deliveryMetrics{
		results: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "delivery_results_total",
			Help: "Notices admitted for delivery, by how each ended (delivered, failed, dropped, lost, aborted) and whether it was held for an unreachable member first."},
			[]string{"kind", "held"}),
		missed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "delivery_missed_notices_total",
			Help: "Notices telling a member how many lines they missed while unreachable, by how each ended (not in delivery_results_total)."},
			[]string{"kind"}),
		submitted: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "delivery_submitted_total",
			Help: "Notices admitted for delivery: each ends in one delivery_results_total, or is still queued, kept or in flight."}),
		shed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "delivery_shed_total",
			Help: "Notices refused at admission because delivery was saturated (their sender was told the room is busy)."}),
		queued: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "delivery_queued",
			Help: "Notices waiting for their turn to be written to OpenSIPS (reachable members)."}),
		kept: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "delivery_kept",
			Help: "Notices kept for unreachable members."}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "delivery_in_flight",
			Help: "t_uac_dlg requests awaiting their final reply, by OpenSIPS endpoint."}, []string{"endpoint"}),
		alive: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "delivery_transactions_alive",
			Help: "Transactions imcd keeps in each OpenSIPS (in flight, or on wait after their reply); capped by delivery_transactions_limit."}, []string{"endpoint"}),
		limit: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "delivery_transactions_limit",
			Help: "Cap on delivery_transactions_alive for each OpenSIPS: what fits in delivery_shm_share of its shared memory, at most delivery_outstanding."}, []string{"endpoint"}),
		shmUsed: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "opensips_shm_used_bytes",
			Help: "Shared memory each OpenSIPS uses (real_used_size), at imcd's last reading."}, []string{"endpoint"}),
		shmTotal: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "opensips_shm_total_bytes",
			Help: "Shared memory each OpenSIPS has (opensips -m), at imcd's last reading."}, []string{"endpoint"}),
		rate: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "delivery_rate",
			Help: "Current pacing rate of t_uac_dlg writes to each OpenSIPS endpoint, requests per second."}, []string{"endpoint"}),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "delivery_endpoint_up",
			Help: "1 while an OpenSIPS endpoint answers, 0 while it is down (only probed)."}, []string{"endpoint"}),
		unreachable: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "members_unreachable",
			Help: "Members marked unreachable: what is sent to them is kept until they come back."}),
	}
	for _, k := range deliveryKinds {
		for h := range 2 {
			m.byKind[k][h] = m.results.WithLabelValues(k.String(), strconv.FormatBool(h == 1))
		}
		m.missedBy[k] = m.missed.WithLabelValues(k.String())
	}
	return m
}

func (m *deliveryMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.results, m.missed, m.submitted, m.shed, m.queued, m.kept, m.inFlight, m.alive, m.limit, m.shmUsed, m.shmTotal, m.rate, m.up, m.unreachable}
}

// Finished counts one notice's result (delivery.Observer).
func (m *Metrics) Finished(r delivery.Result) {
	d := m.delivery
	if int(r.Kind) < 1 || int(r.Kind) > len(deliveryKinds) {
		d.results.WithLabelValues(r.Kind.String(), strconv.FormatBool(r.Held)).Inc()
		return
	}
	if r.Missed {
		d.missedBy[r.Kind].Inc()
		return
	}
	h := 0
	if r.Held {
		h = 1
	}
	d.byKind[r.Kind][h].Inc()
}

// Shed counts the notices of a refused batch (delivery.Observer).
func (m *Metrics) Shed(notices int) { m.delivery.shed.Add(float64(notices)) }

// Submitted counts the notices of an admitted batch.
func (m *Metrics) Submitted(notices int) { m.delivery.submitted.Add(float64(notices)) }

// Gauges sets the scheduler's gauges (delivery.Observer, about once a
// second).
func (m *Metrics) Gauges(s *delivery.Stats) {
	d := m.delivery
	d.queued.Set(float64(s.Queued))
	d.kept.Set(float64(s.Kept))
	d.unreachable.Set(float64(s.Unreachable))
	for _, ep := range s.Endpoints {
		d.inFlight.WithLabelValues(ep.Name).Set(float64(ep.InFlight))
		d.alive.WithLabelValues(ep.Name).Set(float64(ep.InFlight + ep.InWait))
		d.limit.WithLabelValues(ep.Name).Set(float64(ep.Limit))
		if ep.Shm.Total > 0 {
			d.shmUsed.WithLabelValues(ep.Name).Set(float64(ep.Shm.Used))
			d.shmTotal.WithLabelValues(ep.Name).Set(float64(ep.Shm.Total))
		}
		d.rate.WithLabelValues(ep.Name).Set(ep.Rate)
		d.up.WithLabelValues(ep.Name).Set(b2f(ep.Up))
	}
}

var _ delivery.Observer = (*Metrics)(nil)
