package metrics

import "github.com/prometheus/client_golang/prometheus"

// HistoryReadings are the history writer's counts, read at scrape time.
type HistoryReadings struct {
	// Written and Dropped count chat lines written, and left out because
	// the queue was full (the database slow or away for long).
	Written, Dropped func() int64
	// Purged counts lines deleted by the retention limits.
	Purged func() int64
	// Queued is the lines waiting to be written.
	Queued func() int64
}

// Results of a catch-up (CatchUp).
const (
	// CatchUpRead: the lines the member missed were read from the history
	// (none, when nothing was said they had not got).
	CatchUpRead = "read"
	// CatchUpFailed: the history could not be read (the database, a full
	// shard, imcd stopping); the member is told how many lines they
	// missed instead.
	CatchUpFailed = "failed"
)

type catchUpMetrics struct {
	results *prometheus.CounterVec
	lines   prometheus.Counter
}

// History registers the history's collectors; imcd calls it only when the
// history is on.
func (m *Metrics) History(r HistoryReadings) {
	m.catchUp = &catchUpMetrics{
		results: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "catchup_total",
			Help: "Catch-ups of members back from being away, by result (read, failed: told how many they missed instead)."}, []string{"result"}),
		lines: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "catchup_lines_total",
			Help: "History lines read for catch-ups (at most catchup_max each)."}),
	}
	counter := func(name, help string, f func() int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help},
			func() float64 { return float64(f()) })
	}
	m.Registry.MustRegister(m.catchUp.results, m.catchUp.lines,
		counter("history_lines_written_total", "Chat lines written to the history.", r.Written),
		counter("history_lines_dropped_total", "Chat lines left out of the history: its queue was full (the database slow or away for long).", r.Dropped),
		counter("history_lines_purged_total", "History lines deleted by history_keep_lines and history_max_age.", r.Purged),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: "history_queue",
			Help: "Chat lines waiting to be written to the history."}, func() float64 { return float64(r.Queued()) }),
	)
}

// CatchUp counts one catch-up by result, and the history lines it read.
func (m *Metrics) CatchUp(result string, lines int) {
	if m.catchUp == nil {
		return
	}
	m.catchUp.results.WithLabelValues(result).Inc()
	m.catchUp.lines.Add(float64(lines))
}
