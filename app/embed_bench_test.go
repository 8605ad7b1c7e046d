package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/serving"
	"github.com/livefeed/livefeed/serving/index"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Embedding benchmarks through the whole stack, with the real model when
// LIVEFEED_MODEL_DIR is set (else the generated test model) and the backend
// of LIVEFEED_EMBED_BACKEND (go, or ort in a binary built with -tags ORT and
// LIVEFEED_ORT_LIB_DIR from deploy/models/ort.sh):
//
//	export LIVEFEED_MODEL_DIR=$(deploy/models/fetch.sh all-minilm-l6-v2)
//	go test -run '^$' -bench 'TextQuery|LiveToSearchable' -benchtime 200x ./app/
//	eval "$(deploy/models/ort.sh)"; LIVEFEED_EMBED_BACKEND=ort go test -tags ORT -run '^$' -bench ... ./app/
func benchStack(b *testing.B) *running {
	b.Helper()
	cfg := Config{Brokers: testBrokers(), DataDir: b.TempDir(), ModelDir: os.Getenv("LIVEFEED_MODEL_DIR"),
		EmbedBackend: os.Getenv("LIVEFEED_EMBED_BACKEND"), ORTLibDir: os.Getenv("LIVEFEED_ORT_LIB_DIR"),
		TopicPrefix: fmt.Sprintf("be%d-", time.Now().UnixNano())}
	r, _ := startStackTB(b, cfg)
	cl := r.newProducerTB(b)
	b.Cleanup(cl.Close)
	r.client = cl
	return r
}

// loadRealCatalog produces the 40 streams of realCatalog and waits until
// every one is embedded.
func loadRealCatalog(b *testing.B, r *running) {
	b.Helper()
	resetBase()
	n := 0
	var ids []string
	for cat, titles := range realCatalog {
		for i, title := range titles {
			id := fmt.Sprintf("ls-%s-%d", cat, i)
			ids = append(ids, id)
			r.produceTB(b, events.TopicLivestreams, id, events.Livestream{Header: hdr(&n, id, 0), SellerID: "s-" + id,
				Title: title, Category: cat, Language: "en", Status: events.StatusLive})
		}
	}
	deadline := time.Now().Add(5 * time.Minute)
	for _, id := range ids {
		for {
			var lf serving.LivestreamFeatures
			if code, _ := r.getTB(id, &lf); code == 200 && lf.EmbeddingModel != "" {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("stream %s not embedded after 5 minutes", id)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

var benchQueries = []string{"vintage sneakers", "pokemon cards", "luxury watches", "rare jazz records",
	"designer handbags", "gold coins", "lego sets", "spider-man comics"}

// BenchmarkTextQuery: POST /v1/search {text} over the 40-stream catalogue,
// one client; the query text is embedded per request (no cache on the
// query path), which is nearly all of the time.
func BenchmarkTextQuery(b *testing.B) {
	r := benchStack(b)
	loadRealCatalog(b, r)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		body, _ := json.Marshal(serving.SearchRequest{Text: benchQueries[i%len(benchQueries)], K: 10})
		start := time.Now()
		resp, err := http.Post(r.url+"/v1/search", "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		var out serving.Response
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		lat = append(lat, time.Since(start))
		if err != nil || resp.StatusCode != 200 || len(out.Results) == 0 {
			b.Fatalf("search: %d %v", resp.StatusCode, err)
		}
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

// BenchmarkLiveToSearchable: a new stream's metadata event is produced with
// a plain franz-go client; the clock stops when POST /v1/search with the
// stream's own vector (computed beforehand, outside the clock) returns it:
// worker batch delay + model + vectors topic + livestream group + table +
// view + index. Each stream has a title never seen before (a cache miss).
func BenchmarkLiveToSearchable(b *testing.B) {
	r := benchStack(b)
	emb := r.app.Embedder
	lat := make([]time.Duration, 0, b.N)
	resetBase()
	n := 0
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		id := fmt.Sprintf("ls-fresh-%d", i)
		cat := fmt.Sprintf("cat-%d", i) // a category of its own: the filter isolates it
		ev := events.Livestream{Header: hdr(&n, id, time.Duration(i)*time.Millisecond), SellerID: "s", Language: "en", Status: events.StatusLive,
			Title: fmt.Sprintf("%s number %d", benchQueries[i%len(benchQueries)], i), Category: cat}
		vecs, err := emb.Embed(context.Background(), []string{events.ContentText(ev.Title, ev.Category, nil)})
		if err != nil {
			b.Fatal(err)
		}
		body, _ := json.Marshal(serving.SearchRequest{Vector: vecs[0], K: 1, Filter: &index.Filter{Categories: []string{cat}}})
		b.StartTimer()
		start := time.Now()
		r.produceTB(b, events.TopicLivestreams, id, ev)
		for {
			resp, err := http.Post(r.url+"/v1/search", "application/json", bytes.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			var out serving.Response
			_ = json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if len(out.Results) == 1 && out.Results[0].LivestreamID == id && out.Results[0].Score > 0.999 {
				break
			}
			if time.Since(start) > time.Minute {
				b.Fatalf("stream %s not searchable after a minute", id)
			}
			time.Sleep(time.Millisecond)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	at := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(0, "ns/op")
}

// startStackTB is startStack for benchmarks: topics, processors (with the
// embedding worker), views and HTTP, stopped at cleanup.
func startStackTB(b *testing.B, cfg Config) (*running, func()) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cfg.Partitions = 4
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := New(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := a.CreateTopics(ctx); err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	svc, err := a.NewServing()
	if err != nil {
		b.Fatal(err)
	}
	ready := make(chan struct{})
	procErr, serveErr := make(chan error, 1), make(chan error, 1)
	go func() { procErr <- a.RunProcessors(ctx, ready) }()
	go func() { serveErr <- a.Serve(ctx, svc, ln) }()
	stop := func() {
		cancel()
		<-procErr
		<-serveErr
		a.Close()
	}
	b.Cleanup(stop)
	select {
	case <-ready:
	case err := <-procErr:
		b.Fatalf("processors stopped: %v", err)
	case <-time.After(2 * time.Minute):
		b.Fatal("processors not ready after 2 minutes")
	}
	r := &running{app: a, url: "http://" + ln.Addr().String(), prefix: cfg.TopicPrefix}
	for {
		resp, err := http.Get(r.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return r, stop
}

func (r *running) newProducerTB(b *testing.B) *kgo.Client {
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.app.Brokers()...), kgo.ProducerLinger(0))
	if err != nil {
		b.Fatal(err)
	}
	return cl
}

func (r *running) produceTB(b *testing.B, topic, key string, v any) {
	value, err := json.Marshal(v)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.client.ProduceSync(ctx, &kgo.Record{Topic: r.prefix + topic, Key: []byte(key), Value: value}).FirstErr(); err != nil {
		b.Fatal(err)
	}
}

func (r *running) getTB(id string, out any) (int, error) {
	resp, err := http.Get(r.url + "/v1/features/livestream/" + id)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return resp.StatusCode, json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode, nil
}
