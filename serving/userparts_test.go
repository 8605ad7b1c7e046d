package serving_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livefeed/livefeed/api"
	"github.com/livefeed/livefeed/broker"
	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/serving"
	"github.com/livefeed/livefeed/serving/usershard"
	"github.com/livefeed/livefeed/tables"
	"github.com/lovoo/goka"
	"github.com/twmb/franz-go/pkg/kgo"
)

// sharedReplica is a serving replica with Shared user partitions.
type sharedReplica struct {
	url  string
	stop func()
}

func startShared(t *testing.T, brokers []string, ls, users string, feats *features.Set) *sharedReplica {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	bc := &broker.Config{Brokers: brokers, StateDir: t.TempDir(), Partitions: 8, Logger: logger}
	bc.Defaults()
	svc, err := serving.New(serving.Config{Broker: bc, LivestreamTable: goka.Table("sh-ls-" + ls), UserTable: goka.Table("sh-user-" + users),
		Features: feats.ForEntity("livestream"), Logger: logger,
		UserPartitions: serving.UserPartitions{Shared: true, Dir: t.TempDir(), Advertise: url}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	srv := &http.Server{Handler: svc.Handler(nil)}
	go func() { _ = srv.Serve(ln) }()
	var once sync.Once
	r := &sharedReplica{url: url, stop: func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("replica %s: %v", url, err)
			}
			_ = srv.Close()
		})
	}}
	t.Cleanup(r.stop)
	deadline := time.Now().Add(30 * time.Second)
	for !svc.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("replica not ready after 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return r
}

func getSharedJSON(t *testing.T, url string, out any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}

// Two serving replicas share the user table: each answers every user
// (its own partitions locally, the other's through one hop), the partition
// map names both, and when one leaves every user is answered by the other
// without a wrong answer in between (200 or a retryable 503, never 404).
func TestSharedUserPartitions(t *testing.T) {
	var brokers []string
	if b := os.Getenv("LIVEFEED_TEST_BROKERS"); b != "" {
		brokers = strings.Split(b, ",")
	} else {
		e, err := broker.StartEmbedded("127.0.0.1:0", "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.Close)
		brokers = e.Addrs()
	}
	suffix := fmt.Sprint(time.Now().UnixNano())
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(broker.Partitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := broker.EnsureTopics(ctx, cl, 1, []broker.TopicSpec{
		{Name: "sh-ls-" + suffix, Partitions: 8, Compacted: true},
		{Name: "sh-user-" + suffix, Partitions: 8, Compacted: true},
	}); err != nil {
		t.Fatal(err)
	}
	const n = 400
	var recs []*kgo.Record
	for i := range n {
		id := fmt.Sprintf("user-%d", i)
		u := &tables.User{UserID: id, Signals: map[events.SignalKind]int64{"watch": int64(i)}}
		b, err := tables.UserCodec{}.Encode(u)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: "sh-user-" + suffix, Key: []byte(id), Value: b})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	feats, err := features.NewSet(features.Defaults()...)
	if err != nil {
		t.Fatal(err)
	}
	a := startShared(t, brokers, suffix, suffix, feats)
	b := startShared(t, brokers, suffix, suffix, feats)

	var m usershard.Map
	deadline := time.Now().Add(30 * time.Second)
	for {
		getSharedJSON(t, a.url+"/v1/user-partitions", &m)
		if len(m.Ready) > 0 && len(m.Ready) < 8 && !slices.Contains(m.Owners, "") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("partitions not split: %+v", m)
		}
		time.Sleep(100 * time.Millisecond)
	}
	check := func(base string, allow503 bool) (unavailable int) {
		for i := range n {
			id := fmt.Sprintf("user-%d", i)
			var uf api.UserFeatures
			switch code := getSharedJSON(t, base+"/v1/features/user/"+id, &uf); {
			case code == http.StatusOK:
				if uf.UserID != id || uf.Signals["watch"] != int64(i) {
					t.Fatalf("%s: got %+v", id, uf)
				}
			case code == http.StatusServiceUnavailable && allow503:
				unavailable++
			default:
				t.Fatalf("%s from %s: %d", id, base, code)
			}
		}
		if code := getSharedJSON(t, base+"/v1/features/user/nobody", nil); code != http.StatusNotFound && !allow503 {
			t.Fatalf("unknown user: %d, want 404", code)
		}
		return unavailable
	}
	// Before b's half is ready, a may answer 503 for it; then all 200.
	deadline = time.Now().Add(30 * time.Second)
	for check(a.url, true) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("b's users never answered through a")
		}
	}
	check(a.url, false)
	check(b.url, false)
	if code := getSharedJSON(t, a.url+"/v1/recommendations?user_id=user-7", nil); code != http.StatusOK {
		t.Fatalf("recommendations: %d", code)
	}

	b.stop()
	deadline = time.Now().Add(30 * time.Second)
	for check(a.url, true) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("a did not take over b's users")
		}
	}
	check(a.url, false)
}
