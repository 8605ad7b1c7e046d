package client_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livefeed/livefeed/broker"
	"github.com/livefeed/livefeed/client"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/serving"
	"github.com/livefeed/livefeed/tables"
	"github.com/lovoo/goka"
	"github.com/twmb/franz-go/pkg/kgo"
)

// hostLog records the host of every request a client sends.
type hostLog struct {
	mu    sync.Mutex
	hosts []string
}

func (h *hostLog) RoundTrip(r *http.Request) (*http.Response, error) {
	h.mu.Lock()
	h.hosts = append(h.hosts, r.URL.Host)
	h.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func (h *hostLog) last() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hosts[len(h.hosts)-1]
}

// With RouteUsers, a user request goes straight to the replica holding the
// user's partition (the map of GET /v1/user-partitions and murmur2), and
// when that replica dies the call still succeeds through BaseURL.
func TestRouteUsersToTheirReplica(t *testing.T) {
	brokers := os.Getenv("LIVEFEED_TEST_BROKERS")
	if brokers == "" {
		e, err := broker.StartEmbedded("127.0.0.1:0", "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.Close)
		brokers = strings.Join(e.Addrs(), ",")
	}
	suffix := fmt.Sprint(time.Now().UnixNano())
	lsTable, userTable := "route-ls-"+suffix, "route-user-"+suffix
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...), kgo.RecordPartitioner(broker.Partitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := broker.EnsureTopics(ctx, cl, 1, []broker.TopicSpec{
		{Name: lsTable, Partitions: 8, Compacted: true}, {Name: userTable, Partitions: 8, Compacted: true},
	}); err != nil {
		t.Fatal(err)
	}
	const n = 100
	for i := range n {
		id := fmt.Sprintf("user-%d", i)
		b, err := tables.UserCodec{}.Encode(&tables.User{UserID: id})
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: userTable, Key: []byte(id), Value: b}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	feats, err := features.NewSet(features.Defaults()...)
	if err != nil {
		t.Fatal(err)
	}
	start := func() (addr string, stop func()) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr = ln.Addr().String()
		logger := slog.New(slog.NewTextHandler(io.Discard, nil))
		bc := &broker.Config{Brokers: strings.Split(brokers, ","), StateDir: t.TempDir(), Partitions: 8, Logger: logger}
		bc.Defaults()
		svc, err := serving.New(serving.Config{Broker: bc, LivestreamTable: goka.Table(lsTable), UserTable: goka.Table(userTable),
			Features: feats.ForEntity("livestream"), Logger: logger, APIToken: token,
			UserPartitions: serving.UserPartitions{Shared: true, Dir: t.TempDir(), Advertise: "http://" + addr}})
		if err != nil {
			t.Fatal(err)
		}
		rctx, rcancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- svc.Run(rctx) }()
		srv := &http.Server{Handler: svc.Handler(nil)}
		go func() { _ = srv.Serve(ln) }()
		var once sync.Once
		stop = func() { once.Do(func() { rcancel(); <-done; _ = srv.Close() }) }
		t.Cleanup(stop)
		return addr, stop
	}
	a, _ := start()
	b, stopB := start()

	hosts := &hostLog{}
	c, err := client.New(client.Options{BaseURL: "http://" + a, Token: token, RouteUsers: true,
		RouteRefresh: 100 * time.Millisecond, HTTPClient: &http.Client{Transport: hosts}})
	if err != nil {
		t.Fatal(err)
	}
	// Once both replicas answer for their halves, every user is asked of
	// its owner: some of a, some of b.
	owners := map[string]int{}
	deadline := time.Now().Add(30 * time.Second)
	for {
		clear(owners)
		for i := range n {
			id := fmt.Sprintf("user-%d", i)
			u, err := c.User(ctx, id, client.Lookup{})
			if err != nil || u.UserID != id {
				t.Fatalf("%s: %+v, %v", id, u, err)
			}
			owners[hosts.last()]++
		}
		if owners[a] > 0 && owners[b] > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if owners[a] == 0 || owners[b] == 0 || owners[a]+owners[b] != n {
		t.Fatalf("requests by replica: %v; want them split between %s and %s", owners, a, b)
	}

	// b stops: its users are still answered (through a, then from a).
	stopB()
	for i := range n {
		id := fmt.Sprintf("user-%d", i)
		var u, err = c.User(ctx, id, client.Lookup{})
		for err != nil && time.Now().Before(deadline.Add(30*time.Second)) {
			u, err = c.User(ctx, id, client.Lookup{})
		}
		if err != nil || u.UserID != id {
			t.Fatalf("%s after b stopped: %+v, %v", id, u, err)
		}
	}
}
