package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/serving"
)

// runEmbedded runs the embedded stack on dataDir until stop is called.
func runEmbedded(t *testing.T, dataDir string) (r *running, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := New(ctx, Config{DataDir: dataDir, Partitions: 4, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.CreateTopics(ctx); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	svc, err := a.NewServing()
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	errs := make(chan error, 2)
	go func() { errs <- a.RunProcessors(ctx, ready) }()
	go func() { errs <- a.Serve(ctx, svc, ln) }()
	select {
	case <-ready:
	case err := <-errs:
		t.Fatalf("stopped before ready: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("not ready")
	}
	r = &running{app: a, url: "http://" + ln.Addr().String()}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		for range 2 {
			if err := <-errs; err != nil && ctx.Err() == nil {
				t.Errorf("stopping: %v", err)
			}
		}
		a.Close()
	}
	t.Cleanup(stop)
	return r, stop
}

// A second run on the same data dir continues where the first stopped: the
// embedded broker's log, the processors' local state and the consumer
// offsets survive; a wiped broker log makes the stale local state go.
func TestRestartContinuesFromDisk(t *testing.T) {
	dir := t.TempDir()
	n := 0
	r, stop := runEmbedded(t, dir)
	cl := r.newProducer(t)
	r.client = cl
	r.produce(t, events.TopicLivestreams, "ls-r", events.Livestream{Header: hdr(&n, "ls-r", 0), SellerID: "s", Title: "graded pokemon cards", Category: "trading-cards", Language: "en", Status: events.StatusLive})
	for i := range 3 {
		r.produce(t, events.TopicViewing, "ls-r", events.Viewing{Header: hdr(&n, "ls-r", time.Second), Type: events.ViewingJoin, UserID: fmt.Sprint("u", i)})
	}
	r.waitFor(t, "3 viewers", func() bool {
		var lf serving.LivestreamFeatures
		return r.get(t, "/v1/features/livestream/ls-r", &lf) == 200 && lf.ViewersNow == 3 && lf.Events == 4
	})
	cl.Close()
	stop()

	r, stop = runEmbedded(t, dir)
	cl = r.newProducer(t)
	r.client = cl
	r.produce(t, events.TopicViewing, "ls-r", events.Viewing{Header: hdr(&n, "ls-r", 2*time.Second), Type: events.ViewingJoin, UserID: "u9"})
	var lf serving.LivestreamFeatures
	r.waitFor(t, "the fourth viewer on top of the first run's three", func() bool {
		lf = serving.LivestreamFeatures{}
		return r.get(t, "/v1/features/livestream/ls-r", &lf) == 200 && lf.ViewersNow == 4
	})
	// No event was processed twice: offsets were committed and restored.
	if lf.Events != 5 {
		t.Fatalf("events %d after restart, want 5", lf.Events)
	}
	cl.Close()
	stop()

	// The broker log is wiped but the local state stays: the state must not
	// outlive its log.
	if err := os.RemoveAll(filepath.Join(dir, "kafka")); err != nil {
		t.Fatal(err)
	}
	r, stop = runEmbedded(t, dir)
	defer stop()
	if code := r.get(t, "/v1/features/livestream/ls-r", nil); code != 404 {
		t.Fatalf("a stream from the wiped log is still served (status %d)", code)
	}
	cl = r.newProducer(t)
	defer cl.Close()
	r.client = cl
	r.produce(t, events.TopicViewing, "ls-r", events.Viewing{Header: hdr(&n, "ls-r", 3*time.Second), Type: events.ViewingJoin, UserID: "u-new"})
	r.waitFor(t, "the new log's first event", func() bool {
		lf = serving.LivestreamFeatures{}
		return r.get(t, "/v1/features/livestream/ls-r", &lf) == 200
	})
	if lf.Events != 1 || lf.ViewersNow != 1 {
		t.Fatalf("state of the wiped log leaked into the new one: events %d, viewers %d", lf.Events, lf.ViewersNow)
	}
}
