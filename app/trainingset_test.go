package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/offline"
	"github.com/livefeed/livefeed/offline/trainingset"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A training set equals what serving answered: the simulated log (late and
// out-of-order events included) goes through Kafka and the processors in
// three parts; after each part, serving's features of some streams, users
// and sellers at an instant T just after it (?at=T) are what the training
// set built offline from the whole log gives for label rows at T.
func TestTrainingSetEqualsServing(t *testing.T) {
	ctx := context.Background()
	recs := simulatedLog(t, 3000)
	cfg := Config{Brokers: testBrokers(), DataDir: t.TempDir(), TopicPrefix: fmt.Sprintf("ts%d-", time.Now().UnixNano())}
	r, _ := startStack(t, cfg)

	// The cuts: after record i, at T = the log's clock there + 1ms, so that
	// the part up to i is exactly what a row at T sees.
	type cut struct {
		end int
		at  time.Time
	}
	var cuts []cut
	var clock time.Time
	next := 1000
	for i, rec := range recs {
		tm, ok := offline.Decode(rec).Time()
		if i >= next && ok && tm.After(clock.Add(time.Millisecond)) {
			cuts = append(cuts, cut{i, clock.Add(time.Millisecond)})
			next += 1000
		}
		if ok && tm.After(clock) {
			clock = tm
		}
	}
	cuts = append(cuts, cut{len(recs), clock.Add(time.Millisecond)})

	// Labels: at each cut, every (stream, user, seller) of up to 8
	// engagement records before it.
	var labels strings.Builder
	type key struct{ stream, user, seller string }
	byCut := make([][]key, len(cuts))
	sellers := map[string]string{}
	begin := 0
	for c, ct := range cuts {
		seen := map[key]bool{}
		for _, rec := range recs[begin:ct.end] {
			var ev struct {
				LivestreamID string `json:"livestream_id"`
				SellerID     string `json:"seller_id"`
				UserID       string `json:"user_id"`
			}
			if _, ok := offline.Decode(rec).Time(); !ok || json.Unmarshal(rec.Value, &ev) != nil {
				continue
			}
			if rec.Topic == events.TopicLivestreams {
				sellers[ev.LivestreamID] = ev.SellerID
			}
			k := key{ev.LivestreamID, ev.UserID, sellers[ev.LivestreamID]}
			if k.user == "" || k.seller == "" || seen[k] || len(byCut[c]) == 8 {
				continue
			}
			seen[k] = true
			byCut[c] = append(byCut[c], k)
			fmt.Fprintf(&labels, `{"timestamp":%q,"livestream_id":%q,"user_id":%q,"seller_id":%q,"cut":%d}`+"\n",
				ct.at.Format(time.RFC3339Nano), k.stream, k.user, k.seller, c)
		}
		begin = ct.end
	}
	rows, names := buildTrainingSet(ctx, t, cfg.DataDir, labels.String(), recs)

	cl := r.newProducer(t)
	defer cl.Close()
	produce := func(part []offline.Record, keep func(offline.Record) bool) {
		var batch []*kgo.Record
		for _, rec := range part {
			if keep(rec) {
				batch = append(batch, &kgo.Record{Topic: r.prefix + rec.Topic, Key: []byte(rec.Key), Value: rec.Value})
			}
		}
		if len(batch) == 0 {
			return
		}
		if err := cl.ProduceSync(ctx, batch...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	isStream := func(rec offline.Record) bool { return rec.Topic == events.TopicLivestreams }
	begin = 0
	compared := 0
	for c, ct := range cuts {
		part := recs[begin:ct.end]
		begin = ct.end
		// As in production a stream exists before its engagement: its
		// metadata first (the processors consume topics independently).
		produce(part, isStream)
		r.waitFor(t, "the streams' metadata", func() bool {
			for _, rec := range part {
				if isStream(rec) && r.get(t, "/v1/features/livestream/"+url.PathEscape(rec.Key), nil) != 200 {
					return false
				}
			}
			return true
		})
		produce(part, func(rec offline.Record) bool { return !isStream(rec) })
		q := "?at=" + url.QueryEscape(ct.at.Format(time.RFC3339Nano))
		var want []map[string]any
		for _, row := range rows {
			if row["cut"] == float64(c) {
				want = append(want, row)
			}
		}
		if len(want) == 0 {
			t.Fatalf("cut %d: no label rows", c)
		}
		diff := "not compared yet"
		for deadline := time.Now().Add(45 * time.Second); diff != "" && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			diff = rowsDiffer(t, r, want, names, q)
		}
		if diff != "" {
			t.Fatalf("cut %d at %s: the training set differs from serving after 45s: %s", c, ct.at.Format(time.RFC3339Nano), diff)
		}
		compared += len(want)
	}
	t.Logf("%d records in %d parts: %d label rows equal serving at their instants", len(recs), len(cuts), compared)
}

// buildTrainingSet builds the training set of labels (JSON lines) over
// recs with the topology of a stack whose data dir is dataDir; names are
// the features of each entity.
func buildTrainingSet(ctx context.Context, t *testing.T, dataDir, labels string, recs []offline.Record) (rows []map[string]any, names map[string][]string) {
	t.Helper()
	topo, release, err := OfflineTopology(ctx, Config{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	names = map[string][]string{}
	for _, d := range topo.Features.All() {
		names["livestream"] = append(names["livestream"], d.Name)
	}
	for _, e := range topo.Entities {
		for _, d := range e.Features.All() {
			names[e.Name] = append(names[e.Name], d.Name)
		}
	}
	path := filepath.Join(t.TempDir(), "labels.jsonl")
	if err := os.WriteFile(path, []byte(labels), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := trainingset.ReadLabels(path, trainingset.ReadOptions{KeyColumns: trainingset.KeyColumns(topo)})
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	enc := json.NewEncoder(&log)
	for _, rec := range recs {
		if err := enc.Encode(rec); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if _, err := trainingset.Build(ctx, trainingset.Options{Topology: topo, Format: trainingset.JSONL}, l, offline.NewLogScanner(&log), &out); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(&out)
	for dec.More() {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, m)
	}
	return rows, names
}

// rowsDiffer compares each row's features with what serving answers for its
// stream, user and seller at q: every feature of the entity, a null in the
// row absent from serving's numeric map.
func rowsDiffer(t *testing.T, r *running, rows []map[string]any, names map[string][]string, q string) string {
	for _, row := range rows {
		for entity, col := range map[string]string{"livestream": "livestream_id", "user": "user_id", "seller": "seller_id"} {
			id := row[col].(string)
			got := fetchFeatures(t, r, entity, id, q)
			if got == nil {
				return fmt.Sprintf("%s %s not served", entity, id)
			}
			for name := range got {
				if !slices.Contains(names[entity], name) {
					return fmt.Sprintf("%s %s: serving has %s, not a feature of the entity", entity, id, name)
				}
			}
			for _, name := range names[entity] {
				g, online := got[name]
				wf, isNum := row[name].(float64)
				switch {
				case !online && !isNum:
					continue // null on both sides
				case !online:
					return fmt.Sprintf("%s %s: %s = %v in the training set, null online", entity, id, name, wf)
				case !isNum:
					return fmt.Sprintf("%s %s: %s = %v online, null in the training set", entity, id, name, g)
				}
				if math.Abs(wf-g) > 1e-9*math.Max(1, math.Abs(wf)) {
					return fmt.Sprintf("%s %s: %s = %v online, %v in the training set", entity, id, name, g, wf)
				}
			}
		}
	}
	return ""
}
