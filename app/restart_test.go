package app

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/serving"
)

// runEmbedded runs the embedded stack on dataDir until stop is called.
func runEmbedded(t *testing.T, dataDir string) (*running, func()) {
	t.Helper()
	return startStack(t, Config{DataDir: dataDir})
}

// A second run on the same data dir continues where the first stopped: the
// embedded broker's log, the processors' local state and the consumer
// offsets survive; a wiped broker log makes the stale local state go.
func TestRestartContinuesFromDisk(t *testing.T) {
	dir := t.TempDir()
	resetBase()
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
