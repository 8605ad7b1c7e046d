package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livefeed/livefeed/api"
	"github.com/livefeed/livefeed/broker"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/serving"
	"github.com/livefeed/livefeed/serving/drift"
	"github.com/livefeed/livefeed/simulate"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Drift runs: the real simulator, processors and serving on kfake, the
// same seed and event times each run, the served values sampled at one
// instant after the pipeline has taken every event.
const (
	driftEvents = 12000
	driftStep   = 80 * time.Millisecond // simulated time per event: 16 minutes
	// driftRate paces the producer (events/s): an auction the livestream
	// processor reads before its stream's livestream event (the topics are
	// read side by side) has no seller_id yet and feeds no seller feature,
	// so 16 minutes of events in one second made the seller features
	// differ from run to run (up to 7 % of their events); paced, the
	// stream's events come seconds of simulated time apart, as live.
	driftRate = 1000
	driftSeed = 11
)

// sneakersJoins is a feature that depends on a category's name.
const sneakersJoins = `  - name: sneakers_joins_5m
    description: viewers joining sneakers streams in the last 5 minutes
    entity: livestream
    sources: [viewing]
    filter: type == "join" && category == "sneakers"
    aggregation: count
    window: {type: sliding, size: 5m, hop: 30s}
    lateness: 2m
`

// A changed producer moves the drift score of exactly the features it
// feeds. A baseline run's served distributions become the reference file;
// a run whose simulator stops sending bids' amount (so the processors
// dead-letter every bid) drifts on the bid features only, and a run that
// renames the sneakers category drifts on the one feature filtering on it.
func TestDriftFollowsProducerChange(t *testing.T) {
	if testing.Short() {
		t.Skip("three pipeline runs")
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "features.yaml")
	if err := os.WriteFile(file, append(append([]byte{}, features.DefaultsYAML...), sneakersJoins...), 0o644); err != nil {
		t.Fatal(err)
	}
	// Event times end 10 minutes ago (within every feature's lateness of
	// now, and far from the processors' future-skew check).
	start := time.Now().UTC().Truncate(time.Minute).Add(-driftEvents*driftStep - 10*time.Minute)

	base := runDrift(t, file, start, nil, "")
	ref := filepath.Join(dir, "reference.json")
	b, err := json.Marshal(base.ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ref, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		change simulate.Change
		want   []string // entity/feature with a significant PSI
	}{
		{"bids lose their amount", simulate.Change{DropFields: []string{"auctions.bid.amount"}}, []string{
			"livestream/bid_amount_p90_1h", "livestream/bid_velocity_5m", "livestream/bids_1m", "livestream/bids_5m",
			"livestream/max_bid_5m", "livestream/unique_bidders_1h", "user/user_bids_7d",
		}},
		{"sneakers renamed", simulate.Change{RenameCategories: map[string]string{"sneakers": "kicks"}}, []string{
			"livestream/sneakers_joins_5m",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runDrift(t, file, start, &tc.change, ref)
			var significant []string
			for _, f := range r.summary.Features {
				name := f.Entity + "/" + f.Feature
				switch {
				case f.PSI == nil:
					t.Errorf("%s: no PSI (count %d)", name, f.Count)
				case *f.PSI >= drift.PSISignificant:
					significant = append(significant, name)
				case *f.PSI >= drift.PSIModerate:
					t.Errorf("%s: moderate drift %.3f: want none or significant", name, *f.PSI)
				}
			}
			sort.Strings(significant)
			if !slices.Equal(significant, tc.want) {
				t.Errorf("significant drift on %v\nwant exactly     %v", significant, tc.want)
			}
			if len(r.summary.Features) != len(base.summary.Features) {
				t.Errorf("%d features monitored, the baseline %d", len(r.summary.Features), len(base.summary.Features))
			}
			// The gauge an alert reads.
			metric := fmt.Sprintf(`livefeed_feature_drift_psi{entity="%s",feature="%s"}`,
				strings.Split(tc.want[0], "/")[0], strings.Split(tc.want[0], "/")[1])
			if !strings.Contains(r.metrics, metric) {
				t.Errorf("/metrics lacks %s", metric)
			}
		})
	}
	// The baseline against its own reference: no drift anywhere.
	for _, f := range base.summary.Features {
		if f.PSI == nil || *f.PSI != 0 {
			t.Errorf("baseline %s/%s: PSI %v against its own window", f.Entity, f.Feature, f.PSI)
		}
	}
}

// driftRun is what one run served.
type driftRun struct {
	summary api.DriftSummary
	ref     api.FeatureReference
	metrics string
}

// runDrift runs the pipeline on a fresh embedded cluster, produces the
// simulator's records with change, waits until serving holds every result,
// samples the served values 20 times at the instant after the last event
// and returns the monitor's view (against the reference file ref, or
// against the run's own window when ref is empty).
func runDrift(t *testing.T, file string, start time.Time, change *simulate.Change, ref string) driftRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cfg := Config{DataDir: t.TempDir(), Partitions: 4, FeaturesFile: file, NoEmbeddings: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	a, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.CreateTopics(ctx); err != nil {
		t.Fatal(err)
	}
	at := start.Add(driftEvents*driftStep + time.Second)
	svc, err := serving.New(serving.Config{
		Broker: a.Broker, LivestreamTable: a.Topology.Names.LivestreamTable(), UserTable: a.Topology.Names.UserTable(),
		Features: a.Features, Entities: a.servingEntities(), Registerer: a.Registry, Logger: cfg.Logger,
		Clock: func() time.Time { return at }, StalenessPoll: 100 * time.Millisecond,
		Drift: drift.Options{Interval: -1, ReferenceFile: ref, NoAutoReference: ref != ""},
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = a.RunProcessors(ctx, ready) }()
	go func() { defer wg.Done(); _ = a.Serve(ctx, svc, ln) }()
	defer func() { cancel(); wg.Wait(); a.Close() }()
	select {
	case <-ready:
	case <-time.After(60 * time.Second):
		t.Fatal("processors not ready after 60s")
	}

	sc := simulate.Config{Seed: driftSeed, Categories: []string{"sneakers", "watches", "trading-cards"}}
	sc.FitRate(float64(time.Second / driftStep))
	gen, err := simulate.New(sc)
	if err != nil {
		t.Fatal(err)
	}
	// Event times in the past: franz-go measures a record's delivery
	// timeout from its timestamp, so none here.
	cl, err := kgo.NewClient(a.Broker.KgoOpts(kgo.RecordPartitioner(broker.Partitioner()), kgo.RecordDeliveryTimeout(0))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	n := 0
	clock := func() time.Time { n++; return start.Add(time.Duration(n) * driftStep) }
	if _, err := simulate.Produce(ctx, cl, gen, simulate.ProduceOptions{Rate: driftRate, Limit: driftEvents, Clock: clock, Change: change}); err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, a, svc, "http://"+ln.Addr().String())

	m := svc.Drift()
	for range 20 {
		if err := m.Sample(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if ref == "" { // the run's own window is its reference
		if err := m.SetReference(m.Reference()); err != nil {
			t.Fatal(err)
		}
		if err := m.Sample(ctx); err != nil {
			t.Fatal(err)
		}
	}
	out := driftRun{summary: m.Summary(), ref: m.Reference()}
	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	out.metrics = string(b)
	return out
}

// waitCaughtUp waits until every processor group has committed the end of
// its input and every serving view has applied the end of its table.
func waitCaughtUp(t *testing.T, a *App, svc *serving.Service, url string) {
	t.Helper()
	adm, done, err := a.admin()
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	deadline := time.Now().Add(120 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatal("the pipeline did not catch up within 120s")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		lags, err := adm.Lag(ctx, a.processorGroups()...)
		cancel()
		// Lag counts the partitions assigned to members: only a stable
		// group with members has its whole input in it.
		total := int64(-1)
		if err == nil && lags.Error() == nil {
			total = 0
			lags.Each(func(l kadm.DescribedGroupLag) {
				if l.State != "Stable" || len(l.Members) == 0 {
					total++
				}
				total += l.Lag.Total()
			})
		}
		if total == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The views: the end offsets read after the groups committed.
	since := time.Now()
	for {
		if time.Now().After(deadline) {
			t.Fatal("the serving views did not catch up within 120s")
		}
		time.Sleep(300 * time.Millisecond)
		if time.Since(since) < time.Second {
			continue
		}
		caught := true
		for _, v := range svc.Staleness() {
			caught = caught && v.LagRecords == 0 && v.State == "running"
		}
		if caught {
			break
		}
	}
	// A group reads what another wrote (the entity groups the livestream
	// processor's repartitioned output): the served values, all read at
	// one instant, are final when two catalogues a commit interval apart
	// agree.
	prev := ""
	for {
		if time.Now().After(deadline) {
			t.Fatal("the served values did not settle within 120s")
		}
		var c serving.FeatureCatalog
		resp, err := http.Get(url + "/v1/features")
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&c)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		c.TookMS = 0
		b, _ := json.Marshal(c)
		if string(b) == prev {
			return
		}
		prev = string(b)
		time.Sleep(1500 * time.Millisecond)
	}
}
