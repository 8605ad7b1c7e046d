// Package servingtest runs a real serving.Service for the tests of its
// callers (the client, the OpenAPI document): the in-process kfake broker,
// the livestream, user and seller table topics, the default features, and
// the HTTP API on an httptest server. Tests write table values straight to
// the topics, as the processors would, and wait until serving has them.
package servingtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/livefeed/livefeed/broker"
	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/serving"
	"github.com/livefeed/livefeed/tables"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TB is what Start needs of a test: *testing.T and *testing.B have it, and
// so has the one Main passes (an Example has no *testing.T).
type TB interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Errorf(format string, args ...any)
	Cleanup(func())
	TempDir() string
}

// Main runs a package's tests and examples with what setup starts before
// them (e.g. an Env whose URL the examples call), stopped after them. It
// returns m.Run's exit code, or 1 if setup or a cleanup failed.
func Main(m *testing.M, setup func(tb TB)) (code int) {
	tb := &mainTB{}
	defer func() {
		if r := recover(); r != nil && r != errMainFatal {
			panic(r)
		}
		for i := len(tb.cleanups) - 1; i >= 0; i-- {
			tb.cleanups[i]()
		}
		for _, d := range tb.dirs {
			_ = os.RemoveAll(d)
		}
		if tb.failed {
			code = 1
		}
	}()
	setup(tb)
	return m.Run()
}

var errMainFatal = errors.New("servingtest: setup failed")

// mainTB is Main's TB: failures go to stderr; Fatal stops the setup.
type mainTB struct {
	cleanups []func()
	dirs     []string
	failed   bool
}

func (tb *mainTB) Helper() {}
func (tb *mainTB) Fatal(args ...any) {
	tb.Errorf("%s", fmt.Sprint(args...))
	panic(errMainFatal)
}
func (tb *mainTB) Fatalf(format string, args ...any) { tb.Fatal(fmt.Sprintf(format, args...)) }
func (tb *mainTB) Errorf(format string, args ...any) {
	tb.failed = true
	fmt.Fprintf(os.Stderr, "servingtest: "+format+"\n", args...)
}
func (tb *mainTB) Cleanup(f func()) { tb.cleanups = append(tb.cleanups, f) }
func (tb *mainTB) TempDir() string {
	d, err := os.MkdirTemp("", "servingtest-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.dirs = append(tb.dirs, d)
	return d
}

// Table topics of the test service.
const (
	LivestreamTable = "st-livestream-table"
	UserTable       = "st-user-table"
	SellerTable     = "st-seller-table"
)

// Dim is the dimension of the test vectors.
const Dim = 4

// Env is a running Service.
type Env struct {
	Service *serving.Service
	// URL is the API's base URL.
	URL string
	// Now is the service's clock (fixed: windows read the same all test
	// long).
	Now   time.Time
	Feats *features.Set // every entity's default features
	cl    *kgo.Client
}

// Start runs a Service on a fresh kfake broker with the default features
// of livestreams, users and sellers; mutate may change its Config before
// it starts. Everything stops at the test's end.
func Start(t TB, mutate func(*serving.Config)) *Env {
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
	var specs []broker.TopicSpec
	for _, name := range []string{LivestreamTable, UserTable, SellerTable} {
		specs = append(specs, broker.TopicSpec{Name: name, Partitions: 4, Compacted: true})
	}
	if _, err := broker.EnsureTopics(ctx, cl, 1, specs); err != nil {
		t.Fatal(err)
	}
	all, err := features.NewSet(features.Defaults()...)
	if err != nil {
		t.Fatal(err)
	}
	env := &Env{cl: cl, Feats: all, Now: time.Now().UTC().Truncate(time.Second)}
	reg := prometheus.NewRegistry()
	cfg := serving.Config{Broker: bc, LivestreamTable: LivestreamTable, UserTable: UserTable,
		Features: all.ForEntity("livestream"),
		Entities: map[string]serving.Entity{
			"user":   {Table: UserTable, Features: all.ForEntity("user")},
			"seller": {Table: SellerTable, Features: all.ForEntity("seller")},
		},
		Logger: logger, Clock: func() time.Time { return env.Now }, Registerer: reg}
	if mutate != nil {
		mutate(&cfg)
	}
	svc, err := serving.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	env.Service = svc
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
			t.Errorf("serving did not stop within 20s")
		}
	})
	srv := httptest.NewServer(svc.Handler(reg))
	t.Cleanup(srv.Close)
	env.URL = srv.URL
	waitFor(t, "views recovered", svc.Ready)
	return env
}

func waitFor(t TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *Env) put(t TB, topic, key string, value []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(key), Value: value}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// Stream is a live test stream: its vector is at cosine Sim to the unit
// vector e₀ (Vector), with Viewers concurrent viewers, live for Minutes,
// with Bids bids of 10.0 each in the last minute and Sold sales of 25.0.
type Stream struct {
	ID, Seller, Category, Title string
	Sim                         float64
	Viewers, Minutes            int
	Bids, Sold                  int
}

// Vector is a unit vector at cosine sim to e₀ (dimension Dim).
func Vector(sim float64) []float32 {
	return []float32{float32(sim), float32(math.Sqrt(1 - sim*sim)), 0, 0}
}

// PutStreams writes the streams' table values and waits until serving has
// indexed them all.
func (e *Env) PutStreams(t TB, ss ...Stream) {
	t.Helper()
	feats := e.Feats.ForEntity("livestream")
	for _, s := range ss {
		title := s.Title
		if title == "" {
			title = "stream " + s.ID
		}
		ls := &tables.Livestream{LivestreamID: s.ID, SellerID: s.Seller, Title: title, Category: s.Category, Tags: []string{s.Category},
			Language: "en", Status: events.StatusLive, LiveSince: e.Now.Add(-time.Duration(s.Minutes) * time.Minute),
			Embedding: Vector(s.Sim), EmbeddingModel: "test", Viewers: tables.ViewerSet{}}
		for i := range s.Viewers {
			ls.Viewers[tables.ViewerKey(fmt.Sprintf("v%d", i))] = e.Now.UnixMilli()
		}
		auction := func(typ string, i int, amount float64) {
			feats.ApplyEvent(&ls.Features, features.MapEvent{Src: events.TopicAuctions, At: e.Now.Add(-time.Duration(i+1) * time.Second),
				Fields: map[string]any{"type": typ, "livestream_id": s.ID, "user_id": "u", "amount": amount, "auction_id": "a", "seller_id": s.Seller}})
		}
		for i := range s.Bids {
			auction("bid", i, 10)
		}
		for i := range s.Sold {
			auction("sold", i, 25)
		}
		b, err := tables.LivestreamCodec{}.Encode(ls)
		if err != nil {
			t.Fatal(err)
		}
		e.put(t, LivestreamTable, s.ID, b)
	}
	waitFor(t, "streams indexed", func() bool {
		for _, s := range ss {
			if ls, err := e.Service.Livestream(s.ID); err != nil || ls == nil {
				return false
			}
		}
		return true
	})
}

// PutUser stores a user whose taste is e₀, who watched the streams seen
// (in the given categories' order: seen[i] in category cats[i%len(cats)]).
func (e *Env) PutUser(t TB, id string, cats []string, seen ...string) {
	t.Helper()
	feats := e.Feats.ForEntity("user")
	u := &tables.User{UserID: id, Signals: map[events.SignalKind]int64{}}
	u.Taste.Add([]float32{1, 0, 0, 0}, 1, e.Now, time.Hour)
	for i, s := range seen {
		cat := "none"
		if len(cats) > 0 {
			cat = cats[i%len(cats)]
		}
		at := e.Now.Add(-time.Duration(len(seen)-i) * time.Second)
		u.Recent = append(u.Recent, tables.RecentStream{LivestreamID: s, Kind: "watch", Time: at})
		u.Signals["watch"]++
		feats.ApplyEvent(&u.Features, features.MapEvent{Src: events.TopicViewing, At: at,
			Fields: map[string]any{"type": "join", "livestream_id": s, "user_id": id, "category": cat}})
	}
	b, err := tables.UserCodec{}.Encode(u)
	if err != nil {
		t.Fatal(err)
	}
	e.put(t, UserTable, id, b)
	waitFor(t, "user "+id, func() bool { got, err := e.Service.User(id); return err == nil && got != nil })
}

// PutSeller stores a seller with sold sales of amount 25.0 (and no unsold
// auctions) and an embedding, and waits until serving has it.
func (e *Env) PutSeller(t TB, id string, sold int) {
	t.Helper()
	feats := e.Feats.ForEntity("seller")
	st := &tables.Entity{ID: id, Embedding: Vector(1), EmbeddingModel: "test"}
	for i := range sold {
		feats.ApplyEvent(&st.Features, features.MapEvent{Src: events.TopicAuctions, At: e.Now.Add(-time.Duration(i+1) * time.Minute),
			Fields: map[string]any{"type": "sold", "seller_id": id, "user_id": fmt.Sprintf("b%d", i), "amount": 25.0, "livestream_id": "ls", "auction_id": "a"}})
		st.Events++
	}
	b, err := tables.EntityCodec{}.Encode(st)
	if err != nil {
		t.Fatal(err)
	}
	e.put(t, SellerTable, id, b)
	waitFor(t, "seller "+id, func() bool { got, _, err := e.Service.EntityState("seller", id); return err == nil && got != nil })
}
