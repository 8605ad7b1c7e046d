package embedding

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the embedding worker's Prometheus metrics.
type Metrics struct {
	BatchSize   prometheus.Histogram   // records per batch
	CacheHits   prometheus.Counter     // texts answered by the cache (or by a repeat in the batch)
	CacheMisses prometheus.Counter     // distinct texts sent to the model
	Embedded    prometheus.Counter     // texts the model embedded
	EmbedTime   prometheus.Histogram   // seconds per model call (one per batch)
	Records     *prometheus.CounterVec // outcome: vector, dead_letter
	DeadLetters *prometheus.CounterVec // reason
	Lag         prometheus.Gauge       // records behind the high watermarks of the assigned partitions
	Age         prometheus.Histogram   // record timestamp → its vector acknowledged
}

// NewMetrics creates the metrics and registers them with reg (if not nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		BatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "livefeed_embedding_batch_records", Help: "Records per embedding batch.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
		}),
		CacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "livefeed_embedding_cache_hits_total", Help: "Stream texts whose vector came from the cache (or an identical text in the same batch).",
		}),
		CacheMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "livefeed_embedding_cache_misses_total", Help: "Distinct stream texts sent to the model.",
		}),
		Embedded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "livefeed_embedding_texts_embedded_total", Help: "Texts the model embedded.",
		}),
		EmbedTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "livefeed_embedding_model_seconds", Help: "Time of one model call (one per batch with misses).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		Records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "livefeed_embedding_records_total", Help: "Livestream records handled by the embedding worker, by outcome.",
		}, []string{"outcome"}),
		DeadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "livefeed_embedding_dead_letters_total", Help: "Livestream records the embedding worker dead-lettered, by reason.",
		}, []string{"reason"}),
		Lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "livefeed_embedding_lag_records", Help: "Livestream records not yet embedded on the worker's partitions (as of its last fetch).",
		}),
		Age: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "livefeed_embedding_record_age_seconds", Help: "From a livestream record's timestamp to its vector acknowledged by Kafka.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.BatchSize, m.CacheHits, m.CacheMisses, m.Embedded, m.EmbedTime, m.Records, m.DeadLetters, m.Lag, m.Age)
	}
	return m
}
