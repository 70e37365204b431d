// Package metrics is imcd's Prometheus instrumentation: one registry per
// daemon (never the global default), the counters and histograms the
// operations guide documents, and the HTTP handlers for /metrics, /healthz
// and /readyz.
package metrics

import (
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/imcd-sip/imcd/pkg/delivery"
	"github.com/imcd-sip/imcd/pkg/opensips"
)

// Namespace prefixes every metric: the native module's statistics live
// under opensips_imc_ too (active_rooms), so dashboards carry over.
const Namespace = "opensips_imc"

// Metrics holds imcd's collectors.
type Metrics struct {
	Registry *prometheus.Registry

	events          *prometheus.CounterVec
	decodeErrors    *prometheus.CounterVec
	commands        *prometheus.CounterVec
	deliveries      *prometheus.CounterVec
	panics          *prometheus.CounterVec
	dbLatency       *prometheus.HistogramVec
	deliveryLatency prometheus.Histogram
	delivery        *deliveryMetrics

	// byStatus holds the delivery counters of the usual classes resolved
	// once: looking a label value up costs more than the count itself.
	byStatus map[string]prometheus.Counter

	rabbit  rabbitOnce      // RabbitMQ mode's collectors (rabbitmq.go)
	canary  canaryOnce      // the canary's collectors (canary.go)
	catchUp *catchUpMetrics // with history (history.go)
}

// deliveryClasses are the status labels DeliveryDone usually sees: the
// classes pkg/opensips reports.
var deliveryClasses = [...]string{delivery.Class2xx, delivery.Class3xx, delivery.Class4xx, delivery.Class5xx, delivery.Class6xx,
	delivery.ClassError, delivery.ClassTimeout, delivery.ClassUnreachable, delivery.ClassAborted}

// Label values the daemon counts with, besides the engine's command names
// and outcomes (imc.Outcome: ok, refused) and pkg/opensips's results and
// classes.
const (
	// ResultDBError: a command whose changes could not be committed.
	ResultDBError = "db_error"
	// CommandDuplicate, CommandRateLimited: events dropped before any
	// command ran (a retransmission; a sender over the rate limit).
	CommandDuplicate   = "duplicate"
	CommandRateLimited = "rate_limited"
	// CommandAdmin: an operator's MI command refused before it ran.
	CommandAdmin = "admin"
	// ComponentShard, ComponentEvents: where a recovered panic happened.
	ComponentShard  = "shard"
	ComponentEvents = "events"
)

// Counts reports the current number of rooms and members; it is called at
// scrape time.
type Counts func() (rooms, members int)

// New builds the collectors and registers them, with Go and process
// collectors, on a registry of its own.
func New(counts Counts) *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "events_total",
			Help: "Events received (E_IMC_MESSAGE; usrloc events as result usrloc), by transport (stream, datagram) and result."}, []string{"transport", "result"}),
		decodeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "decode_errors_total",
			Help: "Events that could not be decoded or had missing or malformed params, by transport."}, []string{"transport"}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "commands_total",
			Help: "Requests handled, by command (chat for a chat line) and result (ok, refused, db_error)."}, []string{"command", "result"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "deliveries_total",
			Help: "t_uac_dlg requests written to OpenSIPS, by final status class (2xx..6xx, error, timeout, unreachable, aborted); a notice written again (a retry, a probe of an unreachable member) counts once per request. Notices: delivery_results_total."}, []string{"status"}),
		panics: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "panics_recovered_total",
			Help: "Panics recovered while handling one request, by component."}, []string{"component"}),
		dbLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "db_latency_seconds",
			Help:    "Database operations' latency, by operation (load, apply).",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5, 10}}, []string{"op"}),
		deliveryLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "delivery_latency_seconds",
			Help:    "Time from writing a t_uac_dlg request to OpenSIPS until its final status came back.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2, 4, 8, 16, 32}}),
		delivery: newDeliveryMetrics(),
	}
	m.byStatus = make(map[string]prometheus.Counter, len(deliveryClasses))
	for _, c := range deliveryClasses {
		m.byStatus[c] = m.deliveries.WithLabelValues(c)
	}
	m.Registry.MustRegister(m.delivery.collectors()...)
	m.Registry.MustRegister(m.events, m.decodeErrors, m.commands, m.deliveries, m.panics, m.dbLatency, m.deliveryLatency,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: "active_rooms",
			Help: "Rooms in memory (the native module's active_rooms statistic)."},
			func() float64 { r, _ := counts(); return float64(r) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: "members",
			Help: "Members of all rooms, pending invitees included."},
			func() float64 { _, n := counts(); return float64(n) }),
	)
	return m
}

// EventReceived counts one event by transport and result; a decode error is
// also counted on its own.
func (m *Metrics) EventReceived(transport, result string) {
	m.events.WithLabelValues(transport, result).Inc()
	switch result {
	case opensips.ResultDecodeError:
		m.decodeErrors.WithLabelValues(transport).Inc()
	case opensips.ResultPanic:
		m.panics.WithLabelValues(ComponentEvents).Inc()
	}
}

// DeliveryDone counts one delivery's final status class and latency.
func (m *Metrics) DeliveryDone(status string, d time.Duration) {
	if c, ok := m.byStatus[status]; ok {
		c.Inc()
	} else {
		m.deliveries.WithLabelValues(status).Inc()
	}
	if d > 0 {
		m.deliveryLatency.Observe(d.Seconds())
	}
}

// Command counts one handled request.
func (m *Metrics) Command(command, result string) {
	m.commands.WithLabelValues(command, result).Inc()
}

// Panic counts one recovered panic.
func (m *Metrics) Panic(component string) { m.panics.WithLabelValues(component).Inc() }

// DB observes one database operation's latency.
func (m *Metrics) DB(op string, d time.Duration) {
	m.dbLatency.WithLabelValues(op).Observe(d.Seconds())
}

// Handler serves /metrics, /healthz (the process is up) and /readyz (ready
// returns nil: the database answers and the subscription is active); with
// profiles, Go's /debug/pprof/ too (metrics_pprof).
func (m *Metrics) Handler(ready func() error, profiles bool) http.Handler {
	mux := http.NewServeMux()
	if profiles {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.Handle("/metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		if err := ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready: " + err.Error() + "\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return mux
}

// b2f is a gauge's value for b: 1 or 0.
func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
