package serving

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/serving/index"
	"github.com/prometheus/client_golang/prometheus"
)

// benchCatalogue is a synthetic catalogue for the HTTP benchmarks: n
// clustered unit vectors (64 topics), 16 categories following the topic, 4
// streams per seller, viewers and minutes live at random. Built once per
// process: LIVEFEED_BENCH_STREAMS items (default 100,000) × 384.
var benchCatalogue = sync.OnceValues(func() (*Service, [][]float32) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("LIVEFEED_BENCH_STREAMS")); err == nil && v > 0 {
		n = v
	}
	const dim, topics = 384, 64
	rng := rand.New(rand.NewPCG(7, 8))
	centers := make([][]float32, topics)
	for i := range centers {
		centers[i] = make([]float32, dim)
		for j := range centers[i] {
			centers[i][j] = float32(rng.NormFloat64())
		}
	}
	near := func(c []float32, noise float64) []float32 {
		v := make([]float32, dim)
		var s float64
		for j := range v {
			v[j] = c[j] + float32(noise*rng.NormFloat64())
			s += float64(v[j]) * float64(v[j])
		}
		inv := float32(1 / math.Sqrt(s))
		for j := range v {
			v[j] *= inv
		}
		return v
	}
	feats := mustFeatures()
	now := time.Now()
	ix := index.New(8, feats)
	for i := range n {
		t := rng.IntN(topics)
		ix.Upsert(int32(i%8), &index.Item{ID: fmt.Sprintf("ls-%07d", i), SellerID: fmt.Sprintf("s-%06d", i/4),
			Category: fmt.Sprintf("cat-%02d", t%16), Language: "en", Status: events.StatusLive,
			LiveSince: now.Add(-time.Duration(rng.IntN(240)) * time.Minute), ViewersNow: rng.IntN(1000), Vector: near(centers[t], 0.8)})
	}
	s := &Service{cfg: Config{Features: feats, DefaultK: 20, MaxK: 200, Clock: time.Now}, index: ix, metrics: newMetrics(nil),
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	s.cfg.limitDefaults()
	queries := make([][]float32, 512)
	for i := range queries {
		queries[i] = near(centers[rng.IntN(topics)], 0.8)
	}
	return s, queries
})

func mustFeatures() *features.Set {
	set, err := features.NewSet(features.LivestreamDefaults()...)
	if err != nil {
		panic(err)
	}
	return set
}

// BenchmarkHTTPSearch measures POST /v1/search over loopback HTTP on the
// synthetic catalogue (one keep-alive connection, sequential requests):
// p50 and p99 of the client's latency, request written to body read.
func BenchmarkHTTPSearch(b *testing.B) {
	start := time.Now()
	s, queries := benchCatalogue()
	b.Logf("catalogue: %d streams × 384, built in %v", s.index.Len(), time.Since(start).Round(time.Millisecond))
	srv := httptest.NewServer(s.Handler(prometheus.NewRegistry()))
	defer srv.Close()
	client := srv.Client()
	cases := []struct {
		name string
		body func(q []float32) map[string]any
	}{
		{"plain", func(q []float32) map[string]any { return map[string]any{"vector": q, "k": 20} }},
		{"category", func(q []float32) map[string]any {
			return map[string]any{"vector": q, "k": 20, "filter": map[string]any{"category": []string{"cat-03"}}}
		}},
		{"formula+diversity", func(q []float32) map[string]any {
			return map[string]any{"vector": q, "k": 20, "max_per_seller": 1,
				"formula": "similarity * log(1 + viewers_now) * exp(-live_minutes / 60)"}
		}},
	}
	for _, c := range cases {
		bodies := make([][]byte, len(queries))
		for i, q := range queries {
			bodies[i], _ = json.Marshal(c.body(q))
		}
		b.Run(c.name, func(b *testing.B) {
			var lat []time.Duration
			i := 0
			for b.Loop() {
				t0 := time.Now()
				resp, err := client.Post(srv.URL+"/v1/search", "application/json", bytes.NewReader(bodies[i%len(bodies)]))
				if err != nil {
					b.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				lat = append(lat, time.Since(t0))
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("%d: %s", resp.StatusCode, body)
				}
				i++
			}
			slices.Sort(lat)
			pct := func(p float64) float64 {
				return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
			}
			b.ReportMetric(pct(0.5), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
		})
	}
}
