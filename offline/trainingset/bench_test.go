package trainingset

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/offline"
	"github.com/livefeed/livefeed/simulate"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// writeBenchFiles writes a deterministic simulated log of n events spread
// over 24 hours from t0 (seed 1, the crowd fitted to the rate, 0.1 %
// malformed as `livefeed simulate` sends) and labels: every (n/rows)-th
// record naming a user is an impression of that user, stream and seller at
// its event time, clicked or not.
func writeBenchFiles(b *testing.B, dir string, n, rows int) (logPath, labelsPath string) {
	logPath = filepath.Join(dir, fmt.Sprintf("log-%d.jsonl", n))
	labelsPath = filepath.Join(dir, fmt.Sprintf("labels-%d-%d.csv", n, rows))
	if _, err := os.Stat(labelsPath); err == nil {
		return logPath, labelsPath
	}
	sc := simulate.Config{Seed: 1, BadFraction: 0.001}
	sc.FitRate(float64(n) / (24 * time.Hour).Seconds())
	gen, err := simulate.New(sc)
	if err != nil {
		b.Fatal(err)
	}
	lf, err := os.Create(logPath)
	if err != nil {
		b.Fatal(err)
	}
	lw := bufio.NewWriterSize(lf, 1<<20)
	tf, err := os.Create(labelsPath + ".tmp")
	if err != nil {
		b.Fatal(err)
	}
	tw := bufio.NewWriterSize(tf, 1<<20)
	fmt.Fprintln(tw, "timestamp,livestream_id,user_id,seller_id,clicked")
	step := 24 * time.Hour / time.Duration(n)
	every := max(1, n/rows)
	sellers := map[string]string{}
	written := 0
	enc := json.NewEncoder(lw)
	for i := range n {
		r := gen.Next(t0.Add(time.Duration(i) * step))
		value := json.RawMessage(r.Value)
		if !json.Valid(r.Value) {
			value, _ = json.Marshal(string(r.Value))
		}
		if err := enc.Encode(offline.Record{Topic: r.Topic, Key: r.Key, Value: value}); err != nil {
			b.Fatal(err)
		}
		var ev struct {
			EventTime    time.Time `json:"event_time"`
			LivestreamID string    `json:"livestream_id"`
			SellerID     string    `json:"seller_id"`
			UserID       string    `json:"user_id"`
		}
		if json.Unmarshal(r.Value, &ev) != nil {
			continue
		}
		if r.Topic == events.TopicLivestreams {
			sellers[ev.LivestreamID] = ev.SellerID
		}
		if written < rows && i%every == 0 && ev.UserID != "" && sellers[ev.LivestreamID] != "" {
			fmt.Fprintf(tw, "%s,%s,%s,%s,%d\n", ev.EventTime.Format(time.RFC3339Nano), ev.LivestreamID, ev.UserID,
				sellers[ev.LivestreamID], (i/every)%7/6)
			written++
		}
	}
	for _, w := range []*bufio.Writer{lw, tw} {
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	lf.Close()
	tf.Close()
	if err := os.Rename(labelsPath+".tmp", labelsPath); err != nil {
		b.Fatal(err)
	}
	return logPath, labelsPath
}

// peakRSS is the process's peak resident set (VmHWM) in bytes.
func peakRSS() float64 {
	data, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb * 1024
		}
	}
	return 0
}

// BenchmarkTrainingSet builds the training set of the figure:
// LIVEFEED_TS_LABELS label rows (default 1M) against a LIVEFEED_TS_EVENTS
// event log (default 10M, 24 h simulated), the default feature set, from
// files to Parquet, as `livefeed features training-set` does. The files
// are generated once into LIVEFEED_TS_DIR (default a temporary directory;
// 10M events are about 2 GB; LIVEFEED_TS_PREPARE=1 only writes them).
// Run it alone, under the bench lock:
//
//	go test -c -o ts.test ./offline/trainingset/
//	LIVEFEED_TS_DIR=/tmp/ts LIVEFEED_TS_PREPARE=1 ./ts.test -test.run x -test.bench TrainingSet
//	LIVEFEED_TS_DIR=/tmp/ts flock /work/notes/bench.lock ./ts.test -test.run x -test.bench TrainingSet -test.benchtime 1x
//
// It reports the time split (replay, lookups, write) and the process's
// peak RSS (the generation streams: small beside the build).
func BenchmarkTrainingSet(b *testing.B) {
	n, rows := envInt("LIVEFEED_TS_EVENTS", 10_000_000), envInt("LIVEFEED_TS_LABELS", 1_000_000)
	dir := os.Getenv("LIVEFEED_TS_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	logPath, labelsPath := writeBenchFiles(b, dir, n, rows)
	if os.Getenv("LIVEFEED_TS_PREPARE") != "" {
		b.Skipf("wrote %s and %s", logPath, labelsPath)
	}
	topo := defaultTopology(b)
	out := filepath.Join(b.TempDir(), "training.parquet")
	var st Stats
	var readLabels time.Duration
	for b.Loop() {
		start := time.Now()
		labels, err := ReadLabels(labelsPath, ReadOptions{KeyColumns: KeyColumns(topo)})
		if err != nil {
			b.Fatal(err)
		}
		readLabels = time.Since(start)
		in, err := os.Open(logPath)
		if err != nil {
			b.Fatal(err)
		}
		f, err := os.Create(out)
		if err != nil {
			b.Fatal(err)
		}
		w := bufio.NewWriterSize(f, 1<<20)
		st, err = Build(context.Background(), Options{Topology: topo, Format: Parquet}, labels, offline.NewLogScanner(bufio.NewReaderSize(in, 1<<20)), w)
		if err != nil {
			b.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
		in.Close()
		f.Close()
	}
	b.ReportMetric(float64(st.Rows), "rows")
	b.ReportMetric(float64(st.Records), "records")
	b.ReportMetric(readLabels.Seconds(), "labels_s")
	b.ReportMetric(st.Replay.Seconds(), "replay_s")
	b.ReportMetric(st.Lookup.Seconds(), "lookup_s")
	b.ReportMetric(st.Write.Seconds(), "write_s")
	b.ReportMetric(peakRSS()/(1<<20), "peak_rss_MiB")
}
