package kafkalog

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/offline"
	"github.com/livefeed/livefeed/offline/trainingset"
	"github.com/livefeed/livefeed/processors/user"
	"github.com/livefeed/livefeed/simulate"
	"github.com/livefeed/livefeed/topologies"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The log merges the partitions of several topics back into the order of
// the records' timestamps, reads from From, and ends at the end offsets
// it found when opened, even while more is produced.
func TestMergedOrder(t *testing.T) {
	ctx := context.Background()
	topics := []string{"p-viewing", "p-chat"}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	const n = 3000
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: topics[i%3%2], Key: []byte(fmt.Sprintf("ls-%d", i%13)),
			Value: []byte(fmt.Sprintf(`{"i":%d}`, i)), Timestamp: t0.Add(time.Duration(i) * time.Millisecond)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for _, from := range []int{0, 1234} {
		o := Options{Client: []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, Topics: topics, Prefix: "p-", MaxBuffered: 50}
		if from > 0 {
			o.From = t0.Add(time.Duration(from) * time.Millisecond)
		}
		l, err := Open(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		if from > 0 { // the last log: a record produced after opening is not in it
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topics[0], Value: []byte(`{"late":true}`), Timestamp: t0}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		i := from
		for l.Scan() {
			r := l.Record()
			want := fmt.Sprintf(`{"i":%d}`, i)
			if string(r.Value) != want || r.Topic != topics[i%3%2][2:] || r.Key != fmt.Sprintf("ls-%d", i%13) {
				t.Fatalf("from %d: record %d is %s %s %s, want %s", from, i-from, r.Topic, r.Key, r.Value, want)
			}
			i++
		}
		l.Close()
		if l.Err() != nil || i != n {
			t.Fatalf("from %d: read up to %d of %d: %v", from, i, n, l.Err())
		}
	}
}

// A training set built from the topics equals the one built from the same
// log as a file, when the records' timestamps follow the log's order.
func TestTrainingSetFromTopics(t *testing.T) {
	ctx := context.Background()
	topics := events.InputTopics()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	gen, err := simulate.New(simulate.Config{Seed: 3, Users: 200, Sellers: 30, LiveStreams: 15})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	var file bytes.Buffer
	enc := json.NewEncoder(&file)
	var recs []*kgo.Record
	var labels strings.Builder
	labels.WriteString("timestamp,livestream_id,user_id\n")
	for i := range 4000 {
		at := t0.Add(time.Duration(i) * 25 * time.Millisecond)
		r := gen.Next(at)
		if err := enc.Encode(offline.Record{Topic: r.Topic, Key: r.Key, Value: r.Value}); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: r.Topic, Key: []byte(r.Key), Value: r.Value, Timestamp: at})
		var ev struct {
			UserID string `json:"user_id"`
		}
		if i%50 == 0 && json.Unmarshal(r.Value, &ev) == nil && ev.UserID != "" {
			fmt.Fprintf(&labels, "%s,%s,%s\n", at.Add(time.Second).Format(time.RFC3339Nano), r.Key, ev.UserID)
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	all, err := features.NewSet(features.Defaults()...)
	if err != nil {
		t.Fatal(err)
	}
	topo := &topologies.Topology{Features: all.ForEntity("livestream"), Entities: topologies.EntitiesOf(all),
		Weights: user.DefaultWeights(), HalfLife: 24 * time.Hour}
	path := filepath.Join(t.TempDir(), "labels.csv")
	if err := os.WriteFile(path, []byte(labels.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := trainingset.ReadLabels(path, trainingset.ReadOptions{KeyColumns: trainingset.KeyColumns(topo)})
	if err != nil {
		t.Fatal(err)
	}
	o := trainingset.Options{Topology: topo, Format: trainingset.JSONL}
	var fromFile, fromTopics bytes.Buffer
	if _, err := trainingset.Build(ctx, o, l, offline.NewLogScanner(&file), &fromFile); err != nil {
		t.Fatal(err)
	}
	kl, err := Open(ctx, Options{Client: []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, Topics: topics, MaxBuffered: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer kl.Close()
	st, err := trainingset.Build(ctx, o, l, kl, &fromTopics)
	if err != nil {
		t.Fatal(err)
	}
	if st.Rows < 20 || !bytes.Equal(fromFile.Bytes(), fromTopics.Bytes()) {
		t.Fatalf("%d rows; from the topics:\n%.500s\nfrom the file:\n%.500s", st.Rows, fromTopics.String(), fromFile.String())
	}
	t.Logf("%d rows equal from %d records", st.Rows, st.Records)
}
