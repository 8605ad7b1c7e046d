package drift

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the monitor's own counters; the per-feature gauges are
// collected from the windows at scrape time (Collect).
type metrics struct {
	samples *prometheus.CounterVec
}

func newMetrics() *metrics {
	return &metrics{samples: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "livefeed_feature_monitor_samples_total",
		Help: "Samples of the served feature values taken for drift monitoring, by result (ok, error).",
	}, []string{"result"})}
}

var (
	psiDesc = prometheus.NewDesc("livefeed_feature_drift_psi",
		"Population stability index of the feature's served values over the rolling window against its reference (reference quantile bins plus a null bin): < 0.1 no change, 0.1-0.25 moderate, >= 0.25 significant. Absent without a reference or with too few observations.",
		[]string{"feature", "entity"}, nil)
	nullRateDesc = prometheus.NewDesc("livefeed_feature_null_rate",
		"Share of the feature's served values in the rolling window that are null (empty window, no number).",
		[]string{"feature", "entity"}, nil)
	refNullRateDesc = prometheus.NewDesc("livefeed_feature_reference_null_rate",
		"Share of the feature's reference values that are null.",
		[]string{"feature", "entity"}, nil)
	observationsDesc = prometheus.NewDesc("livefeed_feature_observations",
		"Observations of the feature in the rolling window (entities sampled times samples).",
		[]string{"feature", "entity"}, nil)
)

// Describe implements prometheus.Collector.
func (m *Monitor) Describe(ch chan<- *prometheus.Desc) {
	m.metrics.samples.Describe(ch)
	for _, d := range []*prometheus.Desc{psiDesc, nullRateDesc, refNullRateDesc, observationsDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: the windows as of the last
// sample.
func (m *Monitor) Collect(ch chan<- prometheus.Metric) {
	m.metrics.samples.Collect(ch)
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, s := range m.series {
		d := s.last
		if d.Feature == "" {
			continue
		}
		ch <- prometheus.MustNewConstMetric(observationsDesc, prometheus.GaugeValue, float64(d.Current.Count), k.feature, k.entity)
		if d.Current.Count > 0 {
			ch <- prometheus.MustNewConstMetric(nullRateDesc, prometheus.GaugeValue, d.Current.NullRate, k.feature, k.entity)
		}
		if d.Reference != nil {
			ch <- prometheus.MustNewConstMetric(refNullRateDesc, prometheus.GaugeValue, d.Reference.NullRate, k.feature, k.entity)
		}
		if d.PSI != nil {
			ch <- prometheus.MustNewConstMetric(psiDesc, prometheus.GaugeValue, *d.PSI, k.feature, k.entity)
		}
	}
}
