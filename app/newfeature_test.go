package app

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/serving"
)

// The data scientist's loop (issue 3's "done"): add a windowed feature to
// the features file, validate it, restart the processors and serving with
// it, and read it from /v1/features — while the features served before the
// restart keep their state.
func TestNewFeatureAfterRestart(t *testing.T) {
	dir := t.TempDir()
	resetBase()
	n := 0
	r, stop := startStack(t, Config{DataDir: dir})
	cl := r.newProducer(t)
	r.client = cl
	r.produce(t, events.TopicLivestreams, "ls-nf", events.Livestream{Header: hdr(&n, "ls-nf", 0), SellerID: "s-nf",
		Title: "vintage jordans", Category: "sneakers", Language: "en", Status: events.StatusLive})
	for range 3 {
		r.produce(t, events.TopicChat, "ls-nf", events.Chat{Header: hdr(&n, "ls-nf", time.Second), UserID: "u1", Text: "size?"})
	}
	var lf serving.LivestreamFeatures
	r.waitFor(t, "3 chats before the restart", func() bool {
		lf = serving.LivestreamFeatures{}
		return r.get(t, "/v1/features/livestream/ls-nf", &lf) == 200 && lf.Features["chat_5m"] == 3
	})
	if _, ok := lf.Features["chat_by_u2_10m"]; ok {
		t.Fatal("the new feature is served before it is defined")
	}
	cl.Close()
	stop()

	// Edit the file: the defaults plus one new windowed feature.
	file := filepath.Join(dir, "features.yaml")
	added := `  - name: chat_by_u2_10m
    description: chat messages by user u2 in the last 10 minutes
    entity: livestream
    sources: [chat]
    filter: user_id == "u2"
    aggregation: count
    window: {type: sliding, size: 10m, hop: 1m}
    lateness: 2m
`
	if err := os.WriteFile(file, append(append([]byte{}, features.DefaultsYAML...), added...), 0o644); err != nil {
		t.Fatal(err)
	}
	// Validate it as `livefeed features validate FILE` does.
	set, err := LoadFeatures(file)
	if err != nil {
		t.Fatalf("features validate: %v", err)
	}
	if _, ok := set.Get("chat_by_u2_10m"); !ok {
		t.Fatal("the validated set lacks the new feature")
	}

	// Restart with it; old state stays, the new feature fills from now on.
	r, stop = startStack(t, Config{DataDir: dir, FeaturesFile: file})
	defer stop()
	cl = r.newProducer(t)
	defer cl.Close()
	r.client = cl
	for _, u := range []string{"u2", "u2", "u3"} {
		r.produce(t, events.TopicChat, "ls-nf", events.Chat{Header: hdr(&n, "ls-nf", 2*time.Second), UserID: u, Text: "sold!"})
	}
	r.waitFor(t, "the new feature counting u2's two messages, the old one all six", func() bool {
		lf = serving.LivestreamFeatures{}
		return r.get(t, "/v1/features/livestream/ls-nf", &lf) == 200 &&
			lf.Features["chat_by_u2_10m"] == 2 && lf.Features["chat_5m"] == 6
	})
	if lf.Events != 7 {
		t.Fatalf("events %d after the restart, want 7 (none processed twice)", lf.Events)
	}
}
