package metrics

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// RabbitMQ counts what RabbitMQ mode does: it is the Consumer's observer
// (pkg/rabbitmq's Observer: deliveries, their outcomes, the connection and
// the consumers) and counts the daemon's own work for that mode (rooms
// re-read, keys of applied events). Its collectors exist only in RabbitMQ
// mode, so the single-node modes export none of them.
type RabbitMQ struct {
	deliveries *prometheus.CounterVec
	settled    *prometheus.CounterVec
	retries    *prometheus.CounterVec
	connected  prometheus.Gauge
	consuming  *prometheus.GaugeVec
	rereads    *prometheus.CounterVec
	marked     *prometheus.CounterVec
	purged     prometheus.Counter
}

// Label values of RabbitMQ mode's counters.
const (
	// RereadOK, RereadError: a room re-read from the database before
	// serving an event under a new consumer session (or an operator's
	// action), and one that failed.
	RereadOK    = "ok"
	RereadError = "error"
	// MarkFresh, MarkDuplicate, MarkError: an event key stored by this
	// instance, one found stored already (applied before, here or by
	// another instance), and one that could not be stored.
	MarkFresh     = "fresh"
	MarkDuplicate = "duplicate"
	MarkError     = "error"
)

// rabbitOnce guards the registration of a Metrics' RabbitMQ collectors.
type rabbitOnce struct {
	once sync.Once
	r    *RabbitMQ
}

// RabbitMQ returns the collectors of RabbitMQ mode, registering them on
// the first call.
func (m *Metrics) RabbitMQ() *RabbitMQ {
	m.rabbit.once.Do(func() { m.rabbit.r = newRabbitMQ(m.Registry) })
	return m.rabbit.r
}

func newRabbitMQ(reg *prometheus.Registry) *RabbitMQ {
	r := &RabbitMQ{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "rabbitmq_deliveries_total",
			Help: "Messages taken from a RabbitMQ queue, by queue and redelivered (true: delivered before, to this or another instance)."},
			[]string{"queue", "redelivered"}),
		settled: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "rabbitmq_settled_total",
			Help: "What became of deliveries, by queue and outcome (acked, rejected, returned to the queue, rerouted)."},
			[]string{"queue", "outcome"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "rabbitmq_submit_retries_total",
			Help: "Deliveries offered again because imcd was busy (a shard queue full), by queue."}, []string{"queue"}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "rabbitmq_connected",
			Help: "1 while the consumer is connected to the broker."}),
		consuming: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "rabbitmq_consuming",
			Help: "1 while a consumer is registered on the queue (active or standing by)."}, []string{"queue"}),
		rereads: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "rabbitmq_room_rereads_total",
			Help: "Rooms re-read from the database before serving them under a new consumer session, by result."}, []string{"result"}),
		marked: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "rabbitmq_event_keys_total",
			Help: "Keys of applied events recorded in the events table, by result (fresh, duplicate: applied before, error)."}, []string{"result"}),
		purged: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "rabbitmq_event_keys_purged_total",
			Help: "Keys deleted from the events table once older than events_window."}),
	}
	reg.MustRegister(r.deliveries, r.settled, r.retries, r.connected, r.consuming, r.rereads, r.marked, r.purged)
	return r
}

// Delivered counts one message taken from queue.
func (r *RabbitMQ) Delivered(queue string, redelivered bool) {
	r.deliveries.WithLabelValues(queue, strconv.FormatBool(redelivered)).Inc()
}

// Settled counts what became of one delivery.
func (r *RabbitMQ) Settled(queue, outcome string) { r.settled.WithLabelValues(queue, outcome).Inc() }

// Retried counts one delivery offered again.
func (r *RabbitMQ) Retried(queue string) { r.retries.WithLabelValues(queue).Inc() }

// Connected sets the connection gauge.
func (r *RabbitMQ) Connected(up bool) { r.connected.Set(b2f(up)) }

// Consuming sets a queue's consumer gauge.
func (r *RabbitMQ) Consuming(queue string, up bool) { r.consuming.WithLabelValues(queue).Set(b2f(up)) }

// Reread counts n rooms re-read (RereadOK) or not (RereadError).
func (r *RabbitMQ) Reread(result string, n int) { r.rereads.WithLabelValues(result).Add(float64(n)) }

// Marked counts n event keys by result (MarkFresh, MarkDuplicate,
// MarkError).
func (r *RabbitMQ) Marked(result string, n int) { r.marked.WithLabelValues(result).Add(float64(n)) }

// Purged counts keys deleted from the events table.
func (r *RabbitMQ) Purged(n int) { r.purged.Add(float64(n)) }
