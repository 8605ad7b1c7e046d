package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livefeed/livefeed/app"
)

// TestQuickHarness runs every phase with tiny numbers on the embedded kfake
// cluster (or on LIVEFEED_TEST_BROKERS) and checks that the report is sane.
func TestQuickHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole pipeline three times")
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	var progress io.Writer
	if testing.Verbose() {
		progress = os.Stderr
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cfg := Config{
		App: app.Config{
			Brokers:    os.Getenv("LIVEFEED_TEST_BROKERS"),
			DataDir:    t.TempDir(),
			Partitions: 4,
			Logger:     logger,
		},
		Quick:          true,
		Events:         5000,
		Samples:        5,
		BackgroundRate: 100,
		Streams:        200,
		Users:          10,
		Requests:       60,
		Progress:       progress,
	}
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}

	tp := rep.Throughput
	if tp == nil || rep.Freshness == nil || rep.Query == nil {
		t.Fatalf("missing phases: %+v", rep)
	}
	if tp.Produced.Acked != 5000 || tp.Livestream.Handled != 5000 || tp.Livestream.Expected != 5000 {
		t.Errorf("throughput: produced %d, livestream group handled %d of %d, want 5000", tp.Produced.Acked, tp.Livestream.Handled, tp.Livestream.Expected)
	}
	if tp.Livestream.Outcomes["ok"] != 5000 {
		t.Errorf("livestream outcomes %v, want all 5000 ok", tp.Livestream.Outcomes)
	}
	if tp.User.Expected <= 0 || tp.User.Handled != tp.User.Expected {
		t.Errorf("user group handled %d of %d signals", tp.User.Handled, tp.User.Expected)
	}
	for _, fl := range []*FloorResult{tp.Floor, tp.TwoHopFloor, tp.FranzFloor} {
		if fl == nil || fl.Events != 5000 || fl.EventsPerSec <= 0 || fl.EventsPerCPUSecond <= 0 {
			t.Errorf("floor peer %+v, want 5000 events counted and timed", fl)
		}
	}
	if tp.Livestream.WithStartupPerSec <= 0 || tp.Livestream.DoneSeconds < tp.Livestream.FirstSeconds || tp.ReadySeconds <= 0 {
		t.Errorf("throughput timings %+v (ready %.2fs)", tp.Livestream, tp.ReadySeconds)
	}

	fr := rep.Freshness
	if fr.Latency.Count != 5 || fr.Timeouts != 0 || fr.Latency.Min <= 0 || fr.Latency.P50 < fr.Latency.Min || fr.Latency.Max < fr.Latency.P99 {
		t.Errorf("freshness %+v", fr.Latency)
	}
	if fr.Background.Acked <= 0 {
		t.Errorf("no background traffic: %+v", fr.Background)
	}

	q := rep.Query
	if q.Streams != 200 || q.IndexSeconds <= 0 || q.EngagementEvents != 10*6*2 {
		t.Errorf("query setup %+v", q)
	}
	for _, run := range []QueryRun{q.Sequential, q.Concurrent} {
		if run.Errors != 0 || run.Client.Count != 60 || run.Client.Min <= 0 || run.Server.Count != 60 || run.ReqPerSec <= 0 {
			t.Errorf("query run %+v", run)
		}
		if run.Strategies["taste"] == 0 {
			t.Errorf("no taste-based answers: %v", run.Strategies)
		}
		if run.Results.Max > 20 || run.Results.Max == 0 {
			t.Errorf("results per answer %+v", run.Results)
		}
	}
	if q.Concurrent.Clients != 2 {
		t.Errorf("concurrent clients %d", q.Concurrent.Clients)
	}

	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1. Processor throughput", "2. Data latency", "3. Recommendation latency"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q", want)
		}
	}
	t.Log("\n" + text.String())
	path := filepath.Join(t.TempDir(), "bench.json")
	if err := rep.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil || back.Throughput.Livestream.Handled != 5000 {
		t.Errorf("JSON round trip: %v, %+v", err, back.Throughput)
	}
}

func TestPercentiles(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	l := summarize(ds)
	if l.Count != 100 || l.Min != 1 || l.P50 != 50 || l.P95 != 95 || l.P99 != 99 || l.Max != 100 || l.Mean != 50.5 {
		t.Fatalf("%+v", l)
	}
	if (summarize(nil) != Latency{}) {
		t.Fatal("empty summary")
	}
}
