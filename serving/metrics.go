package serving

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	requests     *prometheus.HistogramVec // route, code
	indexUpdates *prometheus.CounterVec   // op
	indexed      prometheus.Gauge
	namedQueries *prometheus.CounterVec // query
	reranked     prometheus.Histogram
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
		namedQueries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "livefeed_named_query_requests_total",
			Help: "Answered named-query requests (GET /v1/queries/{name}), by query.",
		}, []string{"query"}),
		reranked: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "livefeed_rerank_candidates",
			Help:    "Candidates re-ranked per request with a formula or a per-seller cap.",
			Buckets: prometheus.ExponentialBuckets(10, 2, 9),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.indexUpdates, m.indexed, m.namedQueries, m.reranked)
	}
	return m
}
