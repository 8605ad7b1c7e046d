package serving

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/livefeed/livefeed/broker"
	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/tables"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// testEnv is a Service on the in-process kfake broker: its views read two
// table topics that the test writes table values into directly (as the
// processors would), and its API is served by an httptest server.
type testEnv struct {
	svc   *Service
	url   string
	cl    *kgo.Client
	feats *features.Set
	now   time.Time
}

const (
	testLSTable   = "test-livestream-table"
	testUserTable = "test-user-table"
)

func livestreamFeatures(t testing.TB) *features.Set {
	t.Helper()
	set, err := features.NewSet(features.LivestreamDefaults()...)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func startEnv(t *testing.T, mutate func(*Config)) *testEnv {
	t.Helper()
	emb, err := broker.StartEmbedded("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Close)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	bc := &broker.Config{Brokers: emb.Addrs(), StateDir: t.TempDir(), Partitions: 4, Logger: logger}
	bc.Defaults()
	cl, err := kgo.NewClient(kgo.SeedBrokers(emb.Addrs()...), kgo.RecordPartitioner(broker.Partitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := broker.EnsureTopics(ctx, cl, 1, []broker.TopicSpec{
		{Name: testLSTable, Partitions: 4, Compacted: true}, {Name: testUserTable, Partitions: 4, Compacted: true},
	}); err != nil {
		t.Fatal(err)
	}
	env := &testEnv{cl: cl, feats: livestreamFeatures(t), now: time.Now().UTC().Truncate(time.Second)}
	reg := prometheus.NewRegistry()
	cfg := Config{Broker: bc, LivestreamTable: testLSTable, UserTable: testUserTable, Features: env.feats,
		Logger: logger, Clock: func() time.Time { return env.now }, Registerer: reg}
	if mutate != nil {
		mutate(&cfg)
	}
	svc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	env.svc = svc
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-done:
			if err != nil && runCtx.Err() == nil {
				t.Errorf("serving stopped: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("serving did not stop within 20s")
		}
	})
	srv := httptest.NewServer(svc.Handler(reg))
	t.Cleanup(srv.Close)
	env.url = srv.URL
	waitFor(t, "views recovered", svc.Ready)
	return env
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *testEnv) put(t *testing.T, topic, key string, value []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(key), Value: value}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// stream is a test livestream: cosine sim to the unit taste e₀, viewers,
// minutes live and bids in the last 5 minutes.
type stream struct {
	id, seller, category string
	sim                  float64
	viewers, minutes     int
	bids                 int
}

// vec is a unit vector at cosine sim to e₀ (dimension 4).
func vec(sim float64) events.Vector {
	return events.Vector{float32(sim), float32(math.Sqrt(1 - sim*sim)), 0, 0}
}

func (e *testEnv) putStreams(t *testing.T, ss ...stream) {
	t.Helper()
	for _, s := range ss {
		ls := &tables.Livestream{LivestreamID: s.id, SellerID: s.seller, Title: "stream " + s.id, Category: s.category,
			Language: "en", Status: events.StatusLive, LiveSince: e.now.Add(-time.Duration(s.minutes) * time.Minute),
			Embedding: vec(s.sim), EmbeddingModel: "test", Viewers: tables.ViewerSet{}}
		for i := range s.viewers {
			ls.Viewers[tables.ViewerKey(fmt.Sprintf("v%d", i))] = e.now.UnixMilli()
		}
		for i := range s.bids {
			e.feats.ApplyEvent(&ls.Features, features.MapEvent{Src: events.TopicAuctions, At: e.now.Add(-time.Duration(i+1) * time.Second),
				Fields: map[string]any{"type": "bid", "livestream_id": s.id, "user_id": "u", "amount": 10.0, "auction_id": "a"}})
		}
		b, err := tables.LivestreamCodec{}.Encode(ls)
		if err != nil {
			t.Fatal(err)
		}
		e.put(t, testLSTable, s.id, b)
	}
	want := len(ss)
	waitFor(t, "streams indexed", func() bool { return e.svc.Index().Len() >= want })
}

// putUser stores a user whose taste is e₀ and who recently saw seen.
func (e *testEnv) putUser(t *testing.T, id string, seen ...string) {
	t.Helper()
	u := &tables.User{UserID: id}
	u.Taste.Add([]float32{1, 0, 0, 0}, 1, e.now, time.Hour)
	for _, s := range seen {
		u.Recent = append(u.Recent, tables.RecentStream{LivestreamID: s, Kind: events.SignalKind("watch"), Time: e.now})
	}
	b, err := tables.UserCodec{}.Encode(u)
	if err != nil {
		t.Fatal(err)
	}
	e.put(t, testUserTable, id, b)
	waitFor(t, "user "+id, func() bool { got, err := e.svc.User(id); return err == nil && got != nil })
}

type call struct {
	method, path, body, token string
}

// do sends c and decodes a JSON answer into out (any status); it returns
// the status.
func (e *testEnv) do(t *testing.T, c call, out any) int {
	t.Helper()
	return doURL(t, e.url, c, out)
}

func doURL(t *testing.T, base string, c call, out any) int {
	t.Helper()
	if c.method == "" {
		c.method = http.MethodGet
	}
	req, err := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("%s %s: decoding %q: %v", c.method, c.path, body, err)
		}
	}
	return resp.StatusCode
}
