package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 1000; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 500 * time.Millisecond}, {99, 990 * time.Millisecond}, {99.9, 999 * time.Millisecond}, {100, time.Second}, {0.01, time.Millisecond}} {
		if got := Percentile(d, c.p); got != c.want {
			t.Errorf("p%v = %v, want %v", c.p, got, c.want)
		}
	}
	if Percentile(nil, 50) != 0 {
		t.Error("empty slice: want 0")
	}
}

func TestUserIDMatchesSimulator(t *testing.T) {
	if got := UserID(7, 110_000); got != "u-000007" {
		t.Errorf("UserID(7, 110000) = %q", got)
	}
	if got := UserID(7, 2000); got != "u-0007" {
		t.Errorf("UserID(7, 2000) = %q", got)
	}
}

func TestSumMetric(t *testing.T) {
	text := `# HELP x
livefeed_processor_events_total{group="a",topic="t",outcome="ok"} 10
livefeed_processor_events_total{group="b",topic="t",outcome="ok"} 5.5
livefeed_processor_events_total_other 100
process_resident_memory_bytes 1.048576e+06
`
	if v, err := sumMetric(strings.NewReader(text), "livefeed_processor_events_total"); err != nil || v != 15.5 {
		t.Errorf("sum = %v, %v; want 15.5", v, err)
	}
	if v, err := sumMetric(strings.NewReader(text), "process_resident_memory_bytes"); err != nil || v != 1<<20 {
		t.Errorf("rss = %v, %v", v, err)
	}
	if _, err := sumMetric(strings.NewReader(text), "missing"); err == nil {
		t.Error("missing metric: want an error")
	}
}

// TestRunLoadOpenLoop runs the generator against a real local HTTP server
// that answers every tenth request slowly: the open-loop schedule must keep
// the rate, count every request, and show the slow ones in the tail
// latencies measured from the scheduled time.
func TestRunLoadOpenLoop(t *testing.T) {
	var n, bad atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/metrics":
			_, _ = w.Write([]byte("process_resident_memory_bytes 2.097152e+06\nlivefeed_processor_events_total{a=\"b\"} 1\n"))
			return
		case "/v1/recommendations", "/v1/queries/for_you":
		default:
			bad.Add(1)
		}
		q := r.URL.Query()
		if !strings.HasPrefix(q.Get("user_id"), "u-") || q.Get("k") != "20" {
			bad.Add(1)
		}
		if n.Add(1)%10 == 0 {
			time.Sleep(50 * time.Millisecond)
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(`{"results":[]}`))
	}))
	defer srv.Close()

	res, err := RunLoad(context.Background(), LoadConfig{
		URL: srv.URL, Rate: 200, Duration: 2 * time.Second, Conns: 16,
		CategoryShare: 0.5, MinViewersShare: 0.2, ForYouShare: 0.1,
		ProcMetrics: []string{srv.URL + "/metrics"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if bad.Load() != 0 {
		t.Errorf("%d malformed requests", bad.Load())
	}
	if res.Scheduled != 400 {
		t.Errorf("scheduled %d, want 400 (200/s for 2s)", res.Scheduled)
	}
	if res.Sent+res.Dropped != res.Scheduled || res.Completed+sumErrors(res) != res.Sent {
		t.Errorf("accounting: %+v", res)
	}
	if res.Completed < 390 {
		t.Errorf("completed %d of 400", res.Completed)
	}
	if got := int64(res.Completed); got != n.Load() {
		t.Errorf("completed %d, server saw %d", got, n.Load())
	}
	if s := res.Status[http.StatusServiceUnavailable]; s < 35 || s > 45 {
		t.Errorf("503s = %d, want ~40", s)
	}
	if res.OK.N != res.Status[http.StatusOK] || res.All.N != res.Completed {
		t.Errorf("latency counts %d/%d vs status %v", res.OK.N, res.All.N, res.Status)
	}
	if res.All.P99 < 50*time.Millisecond || res.OK.P50 > 50*time.Millisecond {
		t.Errorf("all p99 %v (want >= 50ms, the slow tenth), ok p50 %v", res.All.P99, res.OK.P50)
	}
	if res.AchievedRate < 150 || res.AchievedRate > 210 {
		t.Errorf("achieved %.1f req/s, want ~200", res.AchievedRate)
	}
	if res.RSSMetrics.N == 0 || res.RSSMetrics.Max != 2<<20 {
		t.Errorf("RSS samples %+v", res.RSSMetrics)
	}
}

// TestRunLoadCountsConnectionErrors: a server that is gone yields errors,
// not latencies.
func TestRunLoadCountsConnectionErrors(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	res, err := RunLoad(context.Background(), LoadConfig{URL: url, Rate: 100, Duration: 300 * time.Millisecond, Conns: 4})
	if err != nil {
		t.Fatal(err)
	}
	if res.Completed != 0 || res.Errors["connection"] != res.Sent || res.Sent == 0 {
		t.Errorf("want only connection errors: %+v", res)
	}
}

func sumErrors(r LoadResult) int {
	n := 0
	for _, v := range r.Errors {
		n += v
	}
	return n
}
