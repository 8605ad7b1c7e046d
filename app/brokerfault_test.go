package app

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livefeed/livefeed/broker"
	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/offline"
	"github.com/livefeed/livefeed/serving"
	"github.com/livefeed/livefeed/simulate"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Broker outages under load, on the 3-node KRaft cluster of
// deploy/kafka/kafka-cluster.sh (each node a broker and a controller;
// topics with replication factor 3, min.insync.replicas 2; producers
// acks=all, idempotent, retrying for broker.Config.DeliveryTimeout).
// Processors and serving run in-process; a simulated log (late and
// out-of-order events included) is produced at LIVEFEED_TEST_FAULT_RATE
// events/s (default 2000) for LIVEFEED_TEST_FAULT_SECONDS (75). Two nodes
// are stopped in turn (SIGKILL, a crash; or SIGTERM with
// LIVEFEED_TEST_FAULT_STOP=term), each for LIVEFEED_TEST_FAULT_OUTAGE_SECONDS
// (15), then started again on its data:
//
//  1. 10 s in, the node leading the most of the test's partitions among
//     those that are not the active KRaft controller: a partition leader;
//  2. once every partition is back to 3 in-sync replicas, the active KRaft
//     controller (the quorum's leader, DescribeQuorum), which also leads
//     partitions: the remaining two voters elect a new one, which then
//     fences the dead broker. The producer keeps the last outage+10 s of
//     the log for this fault (it waits at that mark if the first node took
//     long to restart), so that it too happens under load.
//
// Throughout, recommendations and feature lookups must answer 200 and
// /readyz 200 (serving keeps its views' last state), and /readyz and
// /metrics must report the views' staleness. No record may fail to
// produce. After the nodes return, processing must resume, staleness fall
// back under 2 s, and every livestream's, user's and seller's served
// features equal the offline recomputation of the whole log: nothing
// lost, nothing counted twice. Staleness, processing stalls, lag, the
// controller election and serving latency per phase are logged (go test
// -v) for BENCHMARKS.md.
func TestBrokerFault(t *testing.T) {
	brokers := clusterBrokers()
	if brokers == "" {
		t.Skip("TestBrokerFault needs a 3-broker Kafka cluster: eval \"$(deploy/kafka/kafka-cluster.sh start)\" and set LIVEFEED_TEST_CLUSTER_BROKERS=$KAFKA_CLUSTER_BROKERS")
	}
	rate := envInt(t, "LIVEFEED_TEST_FAULT_RATE", 2000)
	total := time.Duration(envInt(t, "LIVEFEED_TEST_FAULT_SECONDS", 75)) * time.Second
	outage := time.Duration(envInt(t, "LIVEFEED_TEST_FAULT_OUTAGE_SECONDS", 15)) * time.Second
	stopMode := os.Getenv("LIVEFEED_TEST_FAULT_STOP")
	if stopMode == "" {
		stopMode = "kill"
	}
	if stopMode != "kill" && stopMode != "term" {
		t.Fatalf("LIVEFEED_TEST_FAULT_STOP=%q: kill or term", stopMode)
	}
	const warmup = 10 * time.Second // load before the first fault
	if warmup+2*outage >= total {
		t.Fatalf("two outages of %v after %v of load need a longer run than %v", outage, warmup, total)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	n := int(float64(rate) * total.Seconds())
	recs := rateLog(t, simulate.Config{Seed: 11, Users: 1500, Sellers: 60, LiveStreams: 40}, n, time.Second/time.Duration(rate))
	cfg := Config{
		Brokers:     brokers,
		DataDir:     t.TempDir(),
		TopicPrefix: fmt.Sprintf("bf%d-", time.Now().UnixNano()),
		Replication: 3,
	}
	r, stopStack := startStack(t, cfg)
	// After the stack has stopped, its topics and groups go: a node
	// restarted after a crash loads and checks every log it holds (14 s
	// for 314 partitions on a loaded machine), so past runs' topics would
	// make each run on a reused cluster slower than the last.
	t.Cleanup(func() {
		stopStack()
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := deletePrefixed(dctx, r.app.Broker.KgoOpts(), r.prefix); err != nil {
			t.Logf("deleting the test's topics and groups: %v", err)
		}
	})

	en := offlineEngine(ctx, t, cfg.DataDir, recs)

	admCl, err := kgo.NewClient(r.app.Broker.KgoOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	var topics []string
	for _, s := range r.app.Topology.Topics() {
		topics = append(topics, s.Name)
	}
	leaders(t, ctx, adm, topics, 3) // every topic must have 3 replicas
	// Whatever happens, leave the cluster whole for whoever runs next.
	var downMu sync.Mutex
	down := map[int32]bool{}
	t.Cleanup(func() {
		downMu.Lock()
		defer downMu.Unlock()
		for node := range down {
			clusterCtl(t, "start-node", fmt.Sprint(node))
		}
	})

	// The test's producer has the settings of every producer of the binary
	// (broker.Config.KgoOpts). Streams first, as in TestOnlineEqualsOffline
	// (a stream exists before its engagement), then the rest at the rate,
	// in log order.
	cl, err := kgo.NewClient(r.app.Broker.KgoOpts(kgo.RecordPartitioner(broker.Partitioner()),
		kgo.MaxBufferedRecords(n+1))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var streams, rest []*kgo.Record
	for _, rec := range recs {
		kr := &kgo.Record{Topic: r.prefix + rec.Topic, Key: []byte(rec.Key), Value: rec.Value}
		if rec.Topic == events.TopicLivestreams {
			streams = append(streams, kr)
		} else {
			rest = append(rest, kr)
		}
	}
	if err := cl.ProduceSync(ctx, streams...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	r.waitFor(t, "every stream's metadata", func() bool {
		for id, st := range en.Streams() {
			var lf serving.LivestreamFeatures
			if r.get(t, "/v1/features/livestream/"+url.PathEscape(id), &lf) != 200 || lf.Status != st.Status {
				return false
			}
		}
		return true
	})

	// The producer keeps the last outage+10 s of the log for the last
	// fault: if restarting the first node takes long (20-60 s on a loaded
	// machine), it waits at that mark, and resumes at the rate when the
	// last node is stopped, so that the last fault happens under load too.
	var produceErrs, acked atomic.Int64
	var firstProduceErr atomic.Value
	var (
		prodEnd  time.Time     // set before prodDone is closed
		heldFor  time.Duration // set before prodDone is closed
		holdAt   = max(0, len(rest)-int(float64(rate)*(outage+10*time.Second).Seconds()))
		lastDown = make(chan struct{}) // closed when the last fault begins
		holding  atomic.Bool           // the producer waits at holdAt
	)
	t0 := time.Now()
	prodDone := make(chan struct{})
	go func() { // owned: ends when every record is acknowledged (or ctx ends)
		defer close(prodDone)
		defer func() { prodEnd = time.Now() }()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		from, base := t0, 0 // the pace: base records at from, then the rate
		var heldSince time.Time
		for i := 0; i < len(rest); {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			limit := len(rest)
			select {
			case <-lastDown:
				if !heldSince.IsZero() { // resume at the rate, not with a burst
					heldFor += time.Since(heldSince)
					from, base, heldSince = time.Now(), i, time.Time{}
					holding.Store(false)
				}
			default:
				limit = holdAt
			}
			due := min(limit, base+int(time.Since(from).Seconds()*float64(rate)))
			if due == holdAt && limit == holdAt && heldSince.IsZero() {
				heldSince = time.Now()
				holding.Store(true)
			}
			for ; i < due; i++ {
				cl.Produce(ctx, rest[i], func(_ *kgo.Record, err error) {
					acked.Add(1)
					if err != nil {
						produceErrs.Add(1)
						firstProduceErr.CompareAndSwap(nil, err.Error())
					}
				})
			}
		}
		_ = cl.Flush(ctx)
	}()

	// Sampler: /readyz (must stay 200), staleness, processed events and
	// the consumer groups' lag, every 250 ms until stopped.
	type sample struct {
		at        time.Time
		code      int
		rz        readyz
		err       error
		processed float64
		acked     int64 // records the producer had acknowledged
		held      bool  // the producer waited for the last fault
		lag       int64 // -1: not readable
	}
	var (
		samplesMu sync.Mutex
		samples   []sample
	)
	sampleCtx, stopSampling := context.WithCancel(ctx)
	samplerDone := make(chan struct{})
	go func() { // owned: stopSampling ends it
		defer close(samplerDone)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			s := sample{at: time.Now(), lag: -1}
			s.code, s.rz, s.err = getReadyz(r.url)
			s.processed = metricSum(t, r.app.Registry, "livefeed_processor_events_total")
			s.acked = acked.Load()
			s.held = holding.Load()
			lctx, cancel := context.WithTimeout(sampleCtx, 2*time.Second)
			if gl, err := prefixGroupLag(lctx, adm, r.prefix); err == nil {
				s.lag = gl
			}
			cancel()
			samplesMu.Lock()
			samples = append(samples, s)
			samplesMu.Unlock()
			select {
			case <-sampleCtx.Done():
				return
			case <-tick.C:
			}
		}
	}()

	// Queries: recommendations and feature lookups for users and streams
	// already served, ~60/s until stopped; every answer must be 200.
	r.waitFor(t, "the first users served", func() bool { return len(servedUsers(t, r, en, 20)) >= 20 })
	users := servedUsers(t, r, en, 20)
	var streamIDs []string
	for id := range en.Streams() {
		streamIDs = append(streamIDs, id)
	}
	type phase int
	const (
		before  phase = iota // before the first fault
		during               // a node down
		between              // every node up again, after a fault
	)
	var (
		curPhase  atomic.Int32
		lat       [3]latencies
		failures  atomic.Int64
		firstFail atomic.Value
		queryStop = make(chan struct{})
		queryDone = make(chan struct{})
	)
	go func() { // owned: queryStop ends it
		defer close(queryDone)
		rng := rand.New(rand.NewPCG(1, 2))
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-queryStop:
				return
			case <-tick.C:
			}
			u := users[rng.IntN(len(users))]
			s := streamIDs[rng.IntN(len(streamIDs))]
			for _, path := range []string{
				"/v1/recommendations?k=10&user_id=" + url.QueryEscape(u),
				"/v1/features/user/" + url.PathEscape(u),
				"/v1/features/livestream/" + url.PathEscape(s),
			} {
				start := time.Now()
				code, err := status(r.url + path)
				lat[curPhase.Load()].add(time.Since(start))
				if err != nil || code != http.StatusOK {
					failures.Add(1)
					firstFail.CompareAndSwap(nil, fmt.Sprintf("%s: %d %v", path, code, err))
				}
			}
		}
	}()

	// The faults, one after the other.
	var sig []string
	if stopMode == "kill" {
		sig = []string{"--kill"}
	}
	viewTopics := []string{string(r.app.Topology.Names.LivestreamTable()), string(r.app.Topology.Names.UserTable())}
	faults := []*brokerFault{{what: "partition leader", newController: -1}, {what: "active controller", newController: -1}}
	// LIVEFEED_TEST_FAULTS=leader leaves out the controller kill: after it
	// a processor group sometimes never rejoins (an open bug: a join that
	// failed while the coordinator moved, then no progress; see
	// BENCHMARKS.md "Broker outage"), so CI runs the leader kill alone.
	switch v := os.Getenv("LIVEFEED_TEST_FAULTS"); v {
	case "", "leader,controller":
	case "leader":
		faults = faults[:1]
	default:
		t.Fatalf("LIVEFEED_TEST_FAULTS=%q: leader or leader,controller", v)
	}
	for i, f := range faults {
		if i == 0 {
			if d := time.Until(t0.Add(warmup)); d > 0 {
				time.Sleep(d)
			}
		} else {
			// A second node down while the first one's replicas still
			// catch up would leave partitions under min.insync.replicas
			// (or with no in-sync replica at all): that is two faults at
			// once, not this test. Start from a whole cluster.
			waited := awaitInSync(t, ctx, adm, append([]string{"__consumer_offsets"}, topics...), 3, 90*time.Second)
			t.Logf("every partition back to 3 in-sync replicas %v after node %d returned", waited.Round(time.Millisecond), faults[i-1].node)
		}
		ctrl, voters := activeController(t, ctx, admCl)
		counts := leaders(t, ctx, adm, topics, 3)
		switch f.what {
		case "partition leader":
			f.node = busiestExcept(counts, ctrl)
		case "active controller":
			f.node = ctrl
		}
		f.leads = counts[f.node]
		f.leadsViews = leaders(t, ctx, adm, viewTopics, 3)[f.node]
		t.Logf("fault %d: stopping node %d (%s; %s) for %v at +%v; active controller %d of voters %v; partition leaders by node %v",
			i+1, f.node, f.what, stopMode, outage, time.Since(t0).Round(time.Millisecond), ctrl, voters, counts)

		downMu.Lock()
		down[f.node] = true
		downMu.Unlock()
		// The outage starts with the signal: SIGKILL takes effect at once
		// (the script then waits for the process to go), SIGTERM starts
		// the controlled shutdown.
		if i == len(faults)-1 {
			close(lastDown)
		}
		f.down = time.Now()
		curPhase.Store(int32(during))
		f.stopTook = clusterCtl(t, append([]string{"stop-node", fmt.Sprint(f.node)}, sig...)...)

		// The surviving voters elect a controller (a new one if the
		// stopped node was it), before the outage's midpoint.
		mid := f.down.Add(outage / 2)
		for f.newController < 0 || f.newController == f.node {
			c, err := quorumLeader(ctx, admCl)
			if err == nil && c >= 0 && c != f.node {
				f.newController, f.electedAfter = c, time.Since(f.down)
				break
			}
			if time.Now().After(mid) {
				t.Errorf("fault %d: no active controller other than the stopped node %d %v after the stop (last: %d, %v)",
					i+1, f.node, outage/2, c, err)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}

		// Mid-outage, /metrics exports the staleness gauge of every view.
		if d := time.Until(mid); d > 0 {
			time.Sleep(d)
		}
		resp, err := http.Get(r.url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		metrics, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, table := range viewTopics {
			if want := `livefeed_serving_staleness_seconds{table="` + table + `"}`; !strings.Contains(string(metrics), want) {
				t.Errorf("/metrics during fault %d lacks %s", i+1, want)
			}
		}
		if d := time.Until(f.down.Add(outage)); d > 0 {
			time.Sleep(d)
		}

		f.startTook = clusterCtl(t, "start-node", fmt.Sprint(f.node))
		downMu.Lock()
		delete(down, f.node)
		downMu.Unlock()
		f.back = time.Now()
		curPhase.Store(int32(between))
		t.Logf("fault %d: node %d stopped at +%v (stop-node took %v), active controller %d %v after the stop, node back at +%v (start-node took %v)",
			i+1, f.node, f.down.Sub(t0).Round(time.Millisecond), f.stopTook.Round(time.Millisecond), f.newController,
			f.electedAfter.Round(time.Millisecond), f.back.Sub(t0).Round(time.Millisecond), f.startTook.Round(time.Millisecond))
	}
	last := faults[len(faults)-1]

	select {
	case <-prodDone:
	case <-time.After(total + time.Minute):
		t.Fatal("the producer did not finish")
	}
	if e := produceErrs.Load(); e > 0 {
		t.Fatalf("%d records failed to produce (first: %v): the log is incomplete", e, firstProduceErr.Load())
	}
	t.Logf("produced %d records in %v (held %v for the last fault)", len(rest), prodEnd.Sub(t0).Round(time.Millisecond), heldFor.Round(time.Millisecond))

	// Staleness falls back: every view under 2 s.
	r.waitFor(t, "staleness back under 2s", func() bool {
		code, rz, err := getReadyz(r.url)
		return err == nil && code == http.StatusOK && rz.StalenessSeconds < 2 && len(rz.Views) > 0
	})
	fresh := time.Now()

	// Nothing lost, nothing counted twice.
	at := time.Now().UTC()
	want := en.Values(at)
	q := "?at=" + url.QueryEscape(at.Format(time.RFC3339Nano))
	diff := "not compared yet"
	for deadline := time.Now().Add(90 * time.Second); diff != "" && time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		diff = firstDifference(t, r, want, q)
	}
	equal := time.Now()
	close(queryStop)
	<-queryDone
	stopSampling()
	<-samplerDone
	if diff != "" {
		t.Errorf("online differs from offline 90s after the producer finished: %s (duplicates absorbed: %v)",
			diff, metricSum(t, r.app.Registry, "livefeed_duplicates_absorbed_total"))
		dumpGoroutines(t)
	}

	// Report and check the samples.
	samplesMu.Lock()
	defer samplesMu.Unlock()
	var (
		notReady        int
		lastErr         error
		maxLagBefore    int64
		maxStaleAfter   float64
		lagBackAt       time.Time
		stalls          []stall
		stallFrom       time.Time
		ackStallFrom    time.Time
		longestAckStall time.Duration
		prev            *sample
	)
	in := func(at time.Time) *brokerFault {
		for _, f := range faults {
			if !at.Before(f.down) && at.Before(f.back) {
				return f
			}
		}
		return nil
	}
	for i := range samples {
		s := &samples[i]
		if s.err != nil || s.code != http.StatusOK {
			notReady++
			lastErr = fmt.Errorf("/readyz at +%v: %d %v", s.at.Sub(t0).Round(time.Millisecond), s.code, s.err)
		}
		for _, f := range faults {
			if !s.at.After(f.down) {
				f.processedAtDown = s.processed
			}
		}
		switch f := in(s.at); {
		case s.at.Before(faults[0].down):
			maxLagBefore = max(maxLagBefore, s.lag)
		case f != nil:
			f.maxLag = max(f.maxLag, s.lag)
			for _, v := range s.rz.Views {
				if f.states == nil {
					f.states = map[string]bool{}
				}
				f.states[v.State] = true
				if v.StalenessSeconds > f.maxStale {
					f.maxStale, f.staleTable = v.StalenessSeconds, v.Table
				}
			}
		case s.at.After(last.back):
			maxStaleAfter = max(maxStaleAfter, s.rz.StalenessSeconds)
			if lagBackAt.IsZero() && s.lag >= 0 && s.lag <= max(maxLagBefore, int64(rate)) {
				lagBackAt = s.at
			}
		}
		// A stall: the processors handled no event between samples while
		// there was work (records still being produced, or lag; an
		// unreadable lag, -1, says nothing once the producer is done).
		if prev != nil && ((s.at.Before(prodEnd) && !prev.held) || prev.lag > 0) {
			if s.processed > prev.processed {
				if !stallFrom.IsZero() {
					stalls = append(stalls, stall{from: stallFrom, to: s.at})
					stallFrom = time.Time{}
				}
			} else if stallFrom.IsZero() {
				stallFrom = prev.at
			}
		}
		// The producer (acks=all) waiting: no record acknowledged between
		// samples while some were due.
		if prev != nil && prev.acked < int64(len(rest)) && !prev.held {
			if s.acked > prev.acked {
				if !ackStallFrom.IsZero() {
					longestAckStall = max(longestAckStall, s.at.Sub(ackStallFrom))
					ackStallFrom = time.Time{}
				}
			} else if ackStallFrom.IsZero() {
				ackStallFrom = prev.at
			}
		}
		prev = s
	}
	if notReady > 0 {
		t.Errorf("/readyz was not 200 in %d of %d samples; last: %v", notReady, len(samples), lastErr)
	}
	if f := failures.Load(); f > 0 {
		t.Errorf("%d queries failed; first: %v", f, firstFail.Load())
	}
	if !stallFrom.IsZero() && prev != nil { // not over at the last sample
		stalls = append(stalls, stall{from: stallFrom, to: prev.at, open: true})
	}
	var longestStall time.Duration
	for _, st := range stalls {
		longestStall = max(longestStall, st.to.Sub(st.from))
	}
	for i, f := range faults {
		if prev == nil || prev.processed <= f.processedAtDown {
			t.Errorf("fault %d: the processors handled no event after node %d was stopped", i+1, f.node)
		}
		resumedText := "processing did not stall after the stop"
		for _, st := range stalls {
			// Processing resumed after the stop: the end of the first
			// stall that began with or after it, during the outage.
			if !st.from.Before(f.down.Add(-250*time.Millisecond)) && st.from.Before(f.back) {
				resumedText = fmt.Sprintf("processing resumed %v after the stop", st.to.Sub(f.down).Round(time.Millisecond))
				if st.open {
					resumedText = fmt.Sprintf("processing stalled %v after the stop and had not resumed %v later", st.from.Sub(f.down).Round(time.Millisecond), st.to.Sub(st.from).Round(time.Millisecond))
				}
				break
			}
		}
		var stallAtReturn time.Duration
		for _, st := range stalls {
			if st.from.Before(f.back) && st.to.After(f.back) {
				stallAtReturn = st.to.Sub(f.back)
			}
		}
		// A crashed leader's partitions have none until the controller
		// fences it: the views reading them must say so.
		if stopMode == "kill" && f.leadsViews > 0 && f.maxStale < 2 {
			t.Errorf("fault %d: the views' largest staleness during a %v crash of node %d (%s, leading %d of the views' partitions) was %.3fs: not reported",
				i+1, outage, f.node, f.what, f.leadsViews, f.maxStale)
		}
		t.Logf("fault %d (node %d, %s, leading %d partitions, %d of the views'): staleness max %.3fs during the outage (%s; view states %v); %s (node back after %v; stall at the return %v); group lag max %d (before the faults %d); new active controller %d after %v",
			i+1, f.node, f.what, f.leads, f.leadsViews, f.maxStale, f.staleTable, keys(f.states), resumedText,
			f.back.Sub(f.down).Round(time.Millisecond), stallAtReturn.Round(time.Millisecond), f.maxLag, maxLagBefore,
			f.newController, f.electedAfter.Round(time.Millisecond))
	}
	t.Logf("after the last return: staleness max %.3fs, under 2s %v after it; group lag back to ≤ max(%d, 1s of input) %v after it",
		maxStaleAfter, fresh.Sub(last.back).Round(time.Millisecond), maxLagBefore, sinceOrNever(lagBackAt, last.back))
	t.Logf("producer: longest time without an acknowledged record %v; processing: longest stall %v",
		longestAckStall.Round(time.Millisecond), longestStall.Round(time.Millisecond))
	t.Logf("serving latency: before %s; nodes down %s; between and after %s; %d failures",
		lat[before].summary(), lat[during].summary(), lat[between].summary(), failures.Load())
	t.Logf("online equals offline %v after the producer finished (%d livestreams, %d users, %d sellers; %d late events; duplicates absorbed %v)",
		equal.Sub(prodEnd).Round(time.Millisecond), len(want["livestream"]), len(want["user"]), len(want["seller"]), en.Late,
		metricSum(t, r.app.Registry, "livefeed_duplicates_absorbed_total"))
}

// deletePrefixed deletes the topics and consumer groups whose names start
// with prefix.
func deletePrefixed(ctx context.Context, opts []kgo.Opt, prefix string) error {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	groups, err := adm.ListGroups(ctx)
	if err != nil {
		return err
	}
	var gs []string
	for _, g := range groups.Groups() {
		if strings.HasPrefix(g, prefix) {
			gs = append(gs, g)
		}
	}
	if len(gs) > 0 {
		if _, err := adm.DeleteGroups(ctx, gs...); err != nil {
			return err
		}
	}
	td, err := adm.ListTopics(ctx)
	if err != nil {
		return err
	}
	var ts []string
	for _, name := range td.Names() {
		if strings.HasPrefix(name, prefix) {
			ts = append(ts, name)
		}
	}
	if len(ts) == 0 {
		return nil
	}
	resps, err := adm.DeleteTopics(ctx, ts...)
	if err != nil {
		return err
	}
	return resps.Error()
}

// brokerFault is one node stopped by TestBrokerFault, and what was seen
// while it was down.
type brokerFault struct {
	what            string // "partition leader" or "active controller"
	node            int32
	leads           int // partitions of the test's topics it led when stopped
	leadsViews      int // of which the views' tables
	down, back      time.Time
	stopTook        time.Duration
	startTook       time.Duration
	newController   int32 // the active controller seen after the stop
	electedAfter    time.Duration
	processedAtDown float64
	maxStale        float64
	staleTable      string
	states          map[string]bool
	maxLag          int64
}

// stall is a time without a processed event while there was work; open:
// not over at the last sample.
type stall struct {
	from, to time.Time
	open     bool
}

// busiestExcept is the node leading the most partitions other than skip
// (the lowest id on a tie).
func busiestExcept(counts map[int32]int, skip int32) int32 {
	others := map[int32]int{}
	for id, c := range counts {
		if id != skip {
			others[id] = c
		}
	}
	for _, id := range []int32{1, 2, 3} { // a node that leads nothing is a candidate too
		if _, ok := others[id]; !ok && id != skip {
			others[id] = 0
		}
	}
	return busiest(others)
}

// quorumLeader is the active KRaft controller: the leader of the metadata
// log's quorum, from DescribeQuorum (which a broker forwards to the
// controllers). -1 while there is none.
func quorumLeader(ctx context.Context, cl *kgo.Client) (int32, error) {
	p, err := describeQuorum(ctx, cl)
	if err != nil {
		return -1, err
	}
	return p.LeaderID, nil
}

func describeQuorum(ctx context.Context, cl *kgo.Client) (kmsg.DescribeQuorumResponseTopicPartition, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req := kmsg.NewPtrDescribeQuorumRequest()
	rt := kmsg.NewDescribeQuorumRequestTopic()
	rt.Topic = "__cluster_metadata"
	rp := kmsg.NewDescribeQuorumRequestTopicPartition()
	rp.Partition = 0
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	var none kmsg.DescribeQuorumResponseTopicPartition
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return none, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return none, err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return none, fmt.Errorf("DescribeQuorum: %d topics in the answer", len(resp.Topics))
	}
	p := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		return none, err
	}
	return p, nil
}

// activeController is the active KRaft controller and the quorum's voters,
// once the quorum has a leader among 3 voters (within 30 s: a request can
// time out on a loaded machine).
func activeController(t *testing.T, ctx context.Context, cl *kgo.Client) (int32, []int32) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		p, err := describeQuorum(ctx, cl)
		var voters []int32
		for _, v := range p.CurrentVoters {
			voters = append(voters, v.ReplicaID)
		}
		slices.Sort(voters)
		if err == nil && p.LeaderID >= 0 && len(voters) == 3 {
			return p.LeaderID, voters
		}
		if time.Now().After(deadline) {
			t.Fatalf("the KRaft quorum has leader %d and voters %v (%v): want a leader among 3 voters", p.LeaderID, voters, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// awaitInSync waits until every partition of topics has want in-sync
// replicas and returns how long that took.
func awaitInSync(t *testing.T, ctx context.Context, adm *kadm.Client, topics []string, want int, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var missing string
	for time.Since(start) < limit {
		missing = ""
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		td, err := adm.ListTopics(lctx, topics...)
		cancel()
		if err != nil {
			missing = err.Error()
		}
		for _, name := range topics {
			if missing != "" {
				break
			}
			d, ok := td[name]
			if !ok || d.Err != nil {
				missing = fmt.Sprintf("topic %s: %v", name, d.Err)
				break
			}
			for _, p := range d.Partitions {
				if len(p.ISR) < want {
					missing = fmt.Sprintf("%s[%d] has in-sync replicas %v", name, p.Partition, p.ISR)
					break
				}
			}
		}
		if missing == "" {
			return time.Since(start)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("partitions not back to %d in-sync replicas after %v: %s", want, limit, missing)
	return 0
}

// servedUsers are up to k users of the log that serving already has.
func servedUsers(t *testing.T, r *running, en *offline.Engine, k int) []string {
	var out []string
	for _, id := range sortedIDs(en.Users()) {
		if len(out) == k {
			break
		}
		var uf serving.UserFeatures
		if r.get(t, "/v1/features/user/"+url.PathEscape(id), &uf) == http.StatusOK {
			out = append(out, id)
		}
	}
	return out
}

func sortedIDs[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// status GETs u and returns the status code.
func status(u string) (int, error) {
	resp, err := http.Get(u)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// prefixGroupLag is the total lag of the consumer groups whose names start with
// prefix (the test's processors and embedding worker).
func prefixGroupLag(ctx context.Context, adm *kadm.Client, prefix string) (int64, error) {
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		return 0, err
	}
	var groups []string
	for _, g := range listed.Groups() {
		if strings.HasPrefix(g, prefix) {
			groups = append(groups, g)
		}
	}
	lags, err := adm.Lag(ctx, groups...)
	if err != nil {
		return 0, err
	}
	if err := lags.Error(); err != nil {
		return 0, err
	}
	var sum int64
	lags.Each(func(l kadm.DescribedGroupLag) { sum += l.Lag.Total() })
	return sum, nil
}

// dumpGoroutines writes every goroutine's stack to a file kept after the
// test (its temporary directory is removed) and logs where: what a stalled
// processor waits for.
func dumpGoroutines(t *testing.T) {
	t.Helper()
	f, err := os.CreateTemp("", "brokerfault-goroutines-*.txt")
	if err != nil {
		t.Logf("goroutine dump: %v", err)
		return
	}
	defer f.Close()
	if err := pprof.Lookup("goroutine").WriteTo(f, 2); err != nil {
		t.Logf("goroutine dump: %v", err)
		return
	}
	t.Logf("goroutines at the failure: %s", f.Name())
}
