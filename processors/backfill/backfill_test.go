package backfill

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/livefeed/livefeed/broker"
	"github.com/livefeed/livefeed/features"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// countReplay counts the events per key into a count feature: the
// smallest real Replay (no decoding beyond the JSON time).
type countReplay struct {
	set    *features.Set
	states map[string]*features.State
	topics map[string]int
}

func (c *countReplay) Apply(_ context.Context, topic string, rec *kgo.Record) {
	var v struct {
		At time.Time `json:"at"`
	}
	if json.Unmarshal(rec.Value, &v) != nil {
		return
	}
	st := c.states[string(rec.Key)]
	if st == nil {
		st = &features.State{}
		c.states[string(rec.Key)] = st
	}
	c.topics[topic]++
	c.set.ApplyEvent(st, features.MapEvent{Src: topic, At: v.At})
}

func (c *countReplay) States(yield func(string, *features.State) bool) {
	for k, st := range c.states {
		if !yield(k, st) {
			return
		}
	}
}

// A group that never committed gets no run (it starts at the log's start
// and computes everything live); a group that ran gets one per partition
// with history for the features it lacks; an all_time feature replays
// from the start of the log, a windowed one only its reach; the catalog
// tells the progress to Describe.
func TestPrepareAndRun(t *testing.T) {
	ctx := context.Background()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "chat", "bf", "bf-state"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	client := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	def := func(name string, w features.Window) features.Definition {
		return features.Definition{Name: name, Sources: []string{"chat"}, Aggregation: features.Count, Window: w, Lateness: time.Minute}
	}
	old := def("chat_5m", features.SlidingWindow(5*time.Minute, time.Minute))
	allTime := def("chat_all", features.AllTimeWindow())
	hour := def("chat_1h", features.SlidingWindow(time.Hour, time.Minute))
	var replays []*countReplay
	reg := prometheus.NewRegistry()
	metrics := NewMetrics(reg)
	prepare := func(defs ...features.Definition) *Coordinator {
		set, err := features.NewSet(defs...)
		if err != nil {
			t.Fatal(err)
		}
		co, err := New(Options{Client: client, Group: "g", Inputs: []string{"chat"}, Topic: "bf", StateTopic: "bf-state",
			Partitions: 2, Features: set, Metrics: metrics, NewReplay: func(s *features.Set) Replay {
				r := &countReplay{set: s, states: map[string]*features.State{}, topics: map[string]int{}}
				replays = append(replays, r)
				return r
			}})
		if err != nil {
			t.Fatal(err)
		}
		if err := co.Prepare(ctx); err != nil {
			t.Fatal(err)
		}
		return co
	}
	cl, err := kgo.NewClient(client...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// Partition 0 holds 10 records, "old" by Kafka timestamp (2 hours
	// ago) and 5 recent; partition 1 none.
	now := time.Now()
	var keys []string // keys of partition 0
	for i := 0; len(keys) < 3; i++ {
		if k := fmt.Sprint("k", i); broker.PartitionOf(k, 2) == 0 {
			keys = append(keys, k)
		}
	}
	for i := range 15 {
		ts := now.Add(-2 * time.Hour)
		if i >= 10 {
			ts = now.Add(-time.Minute)
		}
		v, _ := json.Marshal(map[string]any{"at": ts.Add(time.Duration(i) * time.Second)})
		rec := &kgo.Record{Topic: "chat", Partition: 0, Key: []byte(keys[i%3]), Value: v, Timestamp: ts}
		if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if co := prepare(old); len(co.Active(0))+len(co.Active(1)) != 0 {
		t.Fatal("a run for a group that never committed")
	}
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, "chat")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CommitOffsets(ctx, "g", ends.Offsets()); err != nil {
		t.Fatal(err)
	}
	co := prepare(old, allTime, hour)
	if len(co.Active(1)) != 0 {
		t.Fatal("a run for a partition the group never consumed")
	}
	act := co.Active(0)
	if len(act) != 1 || act[0].Set.Len() != 2 {
		t.Fatalf("active %+v, want one run of chat_all and chat_1h", act)
	}
	cats, err := ReadCatalogs(ctx, client, "bf-state")
	if err != nil {
		t.Fatal(err)
	}
	if d := Describe("g", cats, time.Now()); !strings.Contains(d, "chat_all, chat_1h: warming up, 0 of 15 records (0%)") {
		t.Fatalf("before the run:\n%s", d)
	}
	// A key the replay meets is marked warming in the group (Take of its
	// Warm record), once, and not for a run that is not active.
	warm, _ := json.Marshal(Record{Run: act[0].ID, Features: []string{"chat_all", "chat_1h"}, Warm: true})
	var st features.State
	if changed, err := co.Take(0, warm, &st); err != nil || !changed || len(st.WarmingNames()) != 2 {
		t.Fatalf("warm record: changed %v, err %v, warming %v", changed, err, st.WarmingNames())
	}
	if changed, _ := co.Take(0, warm, &st); changed {
		t.Fatal("a replayed warm record changed the state")
	}
	if changed, _ := co.Take(1, warm, &features.State{}); changed {
		t.Fatal("a warm record of a run not active on the partition marked the state")
	}
	if err := co.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if r := replays[len(replays)-1]; r.topics["chat"] != 15 || len(r.states) != 3 {
		t.Fatalf("replayed %v into %d keys, want 15 records (all_time reads them all) into 3", r.topics, len(r.states))
	}
	if got := testutil.ToFloat64(metrics.Replayed.WithLabelValues("g")); got != 15 {
		t.Fatalf("replayed metric %v", got)
	}
	cats, err = ReadCatalogs(ctx, client, "bf-state")
	if err != nil {
		t.Fatal(err)
	}
	if d := Describe("g", cats, time.Now()); !strings.Contains(d, "15 of 15 records replayed (100%)") || !strings.Contains(d, "done, 15 records, 3 keys merged") {
		t.Fatalf("after the run:\n%s", d)
	}

	// A windowed feature alone replays only its reach: the 5 recent
	// records. (The group committed nothing new: the split is the same.)
	co = prepare(old, allTime, hour, def("chat_10m", features.SlidingWindow(10*time.Minute, time.Minute)))
	if err := co.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if r := replays[len(replays)-1]; r.topics["chat"] != 5 {
		t.Fatalf("a 10-minute feature replayed %d records, want the 5 within its reach", r.topics["chat"])
	}
}

// A cluster that has just started answers COORDINATOR_NOT_AVAILABLE while
// it loads its group coordinators, for longer than the client's own
// retries: Prepare waits for it instead of failing the process's start.
func TestPrepareWaitsForTheGroupCoordinator(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "chat", "bf", "bf-state"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const refusals = 6
	refused := 0
	c.ControlKey(int16(kmsg.FindCoordinator), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		r := req.(*kmsg.FindCoordinatorRequest)
		if refused >= refusals || r.CoordinatorType != 0 { // groups only
			return nil, nil, false
		}
		refused++
		resp := r.ResponseKind().(*kmsg.FindCoordinatorResponse)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		for _, k := range r.CoordinatorKeys {
			rc := kmsg.NewFindCoordinatorResponseCoordinator()
			rc.Key, rc.ErrorCode = k, kerr.CoordinatorNotAvailable.Code
			resp.Coordinators = append(resp.Coordinators, rc)
		}
		return resp, nil, true
	})
	set, err := features.NewSet(features.Definition{Name: "chat_5m", Sources: []string{"chat"}, Aggregation: features.Count,
		Window: features.SlidingWindow(5*time.Minute, time.Minute), Lateness: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	// The client gives up after one retry, as kgo does after its own
	// bound on a cluster that takes longer.
	client := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...), kgo.RequestRetries(1),
		kgo.RetryBackoffFn(func(int) time.Duration { return 10 * time.Millisecond })}
	co, err := New(Options{Client: client, Group: "g", Inputs: []string{"chat"},
		Topic: "bf", StateTopic: "bf-state", Partitions: 2, Features: set, Metrics: NewMetrics(nil),
		NewReplay: func(s *features.Set) Replay {
			return &countReplay{set: s, states: map[string]*features.State{}, topics: map[string]int{}}
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := co.Prepare(ctx); err != nil {
		t.Fatalf("Prepare failed while the coordinator loaded: %v", err)
	}
	if refused < refusals {
		t.Fatalf("the coordinator was refused %d times, want %d: the test did not exercise the retry", refused, refusals)
	}
}
