package backfill

import "github.com/prometheus/client_golang/prometheus"

// Metrics are a coordinator's Prometheus metrics.
type Metrics struct {
	// Replayed counts the input records replayed, Keys the keys handed
	// to the group, Failures the runs that failed (and were retried).
	Replayed, Keys, Failures *prometheus.CounterVec
	// Remaining is the records a partition's run has left to replay;
	// LagSeconds how far behind the wall clock its last replayed record
	// was (Kafka timestamp); Warming the runs whose merge the group has
	// not finished.
	Remaining, LagSeconds, Warming *prometheus.GaugeVec
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Replayed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "livefeed_backfill_records_replayed_total",
			Help: "Input records replayed by feature backfills."}, []string{"group"}),
		Keys: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "livefeed_backfill_keys_total",
			Help: "Keys whose backfilled feature state was handed to their group."}, []string{"group"}),
		Failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "livefeed_backfill_failures_total",
			Help: "Backfill runs that failed and were retried."}, []string{"group"}),
		Remaining: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "livefeed_backfill_remaining_records",
			Help: "Records a partition's backfill has left to replay."}, []string{"group", "partition"}),
		LagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "livefeed_backfill_lag_seconds",
			Help: "Wall clock minus the timestamp of the last record a partition's backfill replayed."}, []string{"group", "partition"}),
		Warming: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "livefeed_backfill_warming_runs",
			Help: "Backfill runs whose features are still warming up (merge not finished)."}, []string{"group"}),
	}
	if reg != nil {
		reg.MustRegister(m.Replayed, m.Keys, m.Failures, m.Remaining, m.LagSeconds, m.Warming)
	}
	return m
}
