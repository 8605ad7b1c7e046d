package serving

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	requests     *prometheus.HistogramVec // route, code
	indexUpdates *prometheus.CounterVec   // op
	indexed      prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "livefeed_http_request_seconds",
			Help:    "HTTP request latency by route and status code.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"route", "code"}),
		indexUpdates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "livefeed_index_updates_total",
			Help: "Livestream table updates applied to the serving index, by operation.",
		}, []string{"op"}),
		indexed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "livefeed_index_streams",
			Help: "Livestreams (scheduled or live) in the serving index.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.indexUpdates, m.indexed)
	}
	return m
}
