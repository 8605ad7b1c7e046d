package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/offline"
	"github.com/livefeed/livefeed/serving"
	"github.com/livefeed/livefeed/simulate"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
)

// Helpers of the fault tests: a simulated log at a chosen rate, the
// 3-broker cluster's control script, partition leadership, in-process
// metrics, latency percentiles and serving's staleness.

// clusterBrokers is the 3-broker cluster of deploy/kafka/kafka-cluster.sh
// (KAFKA_CLUSTER_BROKERS of its start command), or "".
func clusterBrokers() string { return os.Getenv("LIVEFEED_TEST_CLUSTER_BROKERS") }

// clusterScript is the cluster's control script (LIVEFEED_TEST_CLUSTER_SCRIPT,
// else the repository's).
func clusterScript(t *testing.T) string {
	t.Helper()
	if s := os.Getenv("LIVEFEED_TEST_CLUSTER_SCRIPT"); s != "" {
		return s
	}
	s, err := filepath.Abs(filepath.Join("..", "deploy", "kafka", "kafka-cluster.sh"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// clusterCtl runs the cluster script (stop-node, start-node, status, …)
// and returns how long it took.
func clusterCtl(t *testing.T, args ...string) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, clusterScript(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("kafka-cluster.sh %v: %v\n%s", args, err, out)
	}
	t.Logf("kafka-cluster.sh %v (%v): %s", args, time.Since(start).Round(time.Millisecond), out)
	return time.Since(start)
}

// rateLog is a reproducible event log of n simulated events with event
// times step apart, ending 5s ago, late and out-of-order events included
// as in simulatedLog (every 17th non-livestream event 30s back, every 34th
// 5 minutes back). The world (users, sellers, live streams) is sized by cfg.
func rateLog(t *testing.T, cfg simulate.Config, n int, step time.Duration) []offline.Record {
	t.Helper()
	gen, err := simulate.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-5*time.Second - time.Duration(n)*step)
	recs := make([]offline.Record, 0, n)
	for i := range n {
		at = at.Add(step)
		r := gen.Next(at)
		value := r.Value
		if r.Topic != events.TopicLivestreams && i%17 == 0 {
			shift := 30 * time.Second
			if i%34 == 0 {
				shift = 5 * time.Minute
			}
			value = shiftEventTime(t, value, -shift)
		}
		recs = append(recs, offline.Record{Topic: r.Topic, Key: r.Key, Value: value})
	}
	return recs
}

// leaders counts the partitions of topics each broker leads, and checks
// that every partition has the replication factor want.
func leaders(t *testing.T, ctx context.Context, adm *kadm.Client, topics []string, want int) map[int32]int {
	t.Helper()
	td, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		t.Fatalf("listing topics: %v", err)
	}
	out := map[int32]int{}
	for _, name := range topics {
		d, ok := td[name]
		if !ok || d.Err != nil {
			t.Fatalf("topic %s: %v", name, d.Err)
		}
		for _, p := range d.Partitions {
			if len(p.Replicas) != want {
				t.Fatalf("%s[%d] has %d replicas, want %d", name, p.Partition, len(p.Replicas), want)
			}
			out[p.Leader]++
		}
	}
	return out
}

// busiest is the broker leading the most partitions (the lowest id on a tie).
func busiest(counts map[int32]int) int32 {
	ids := make([]int32, 0, len(counts))
	for id := range counts {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	best := ids[0]
	for _, id := range ids {
		if counts[id] > counts[best] {
			best = id
		}
	}
	return best
}

// metricSum sums every series of the counter or gauge name in g.
func metricSum(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// latencies collects request latencies (safe for concurrent use).
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

// summary is "n=… p50=… p99=… max=…".
func (l *latencies) summary() string {
	l.mu.Lock()
	d := append([]time.Duration(nil), l.d...)
	l.mu.Unlock()
	if len(d) == 0 {
		return "n=0"
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	q := func(p float64) time.Duration {
		return d[min(len(d)-1, int(p*float64(len(d))))].Round(10 * time.Microsecond)
	}
	return fmt.Sprintf("n=%d p50=%v p99=%v max=%v", len(d), q(0.50), q(0.99), d[len(d)-1].Round(10*time.Microsecond))
}

// readyz is serving's /readyz answer.
type readyz struct {
	Status           string                  `json:"status"`
	Stale            bool                    `json:"stale"`
	StalenessSeconds float64                 `json:"staleness_seconds"`
	Views            []serving.ViewStaleness `json:"views"`
}

// getReadyz reads /readyz; the status code and the decoded body.
func getReadyz(url string) (int, readyz, error) {
	var rz readyz
	resp, err := http.Get(url + "/readyz")
	if err != nil {
		return 0, rz, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, rz, err
	}
	if err := json.Unmarshal(body, &rz); err != nil {
		return resp.StatusCode, rz, fmt.Errorf("decoding /readyz %q: %w", body, err)
	}
	return resp.StatusCode, rz, nil
}

// envInt reads an integer test knob, def when unset.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, v, err)
	}
	return n
}

// SimulatedLog exports simulatedLog to the external test package
// (app_test: TestFailover).
func SimulatedLog(t *testing.T, n int) []offline.Record { return simulatedLog(t, n) }

// CompareFeatures exports compare (TestOnlineEqualsOffline's comparison) to
// app_test.
func CompareFeatures(want, got map[string]float64) string { return compare(want, got) }

// FetchFeatures exports fetchFeatures for a serving replica at baseURL to
// app_test.
func FetchFeatures(t *testing.T, baseURL, entity, id, q string) map[string]float64 {
	return fetchFeatures(t, &running{url: baseURL}, entity, id, q)
}

// keys are a set's members, sorted.
func keys(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// sinceOrNever is the time from from to at, or "never" for a zero at.
func sinceOrNever(at, from time.Time) string {
	if at.IsZero() {
		return "never"
	}
	return at.Sub(from).Round(time.Millisecond).String()
}
