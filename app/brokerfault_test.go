package app

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
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
	"github.com/twmb/franz-go/pkg/kgo"
)

// A broker outage under load, on the 3-broker KRaft cluster of
// deploy/kafka/kafka-cluster.sh (topics with replication factor 3,
// min.insync.replicas 2; producers acks=all). Processors and serving run
// in-process; a simulated log (late and out-of-order events included) is
// produced at LIVEFEED_TEST_FAULT_RATE events/s (default 2000) for
// LIVEFEED_TEST_FAULT_SECONDS (60). In the middle, the broker leading the
// most of the test's partitions is stopped (SIGKILL, a crash; or SIGTERM
// with LIVEFEED_TEST_FAULT_STOP=term) for LIVEFEED_TEST_FAULT_OUTAGE_SECONDS
// (30), then started again on its data.
//
// Throughout, recommendations and feature lookups must answer 200 and
// /readyz 200 (serving keeps its views' last state), and /readyz and
// /metrics must report the views' staleness. After the broker returns,
// processing must resume, staleness fall back under 2 s, and every
// livestream's, user's and seller's served features equal the offline
// recomputation of the whole log: nothing lost, nothing counted twice.
// Staleness, processing stalls, lag and serving latency per phase are
// logged (go test -v) for BENCHMARKS.md.
func TestBrokerFault(t *testing.T) {
	brokers := clusterBrokers()
	if brokers == "" {
		t.Skip("TestBrokerFault needs a 3-broker Kafka cluster: eval \"$(deploy/kafka/kafka-cluster.sh start)\" and set LIVEFEED_TEST_CLUSTER_BROKERS=$KAFKA_CLUSTER_BROKERS")
	}
	rate := envInt(t, "LIVEFEED_TEST_FAULT_RATE", 2000)
	total := time.Duration(envInt(t, "LIVEFEED_TEST_FAULT_SECONDS", 60)) * time.Second
	outage := time.Duration(envInt(t, "LIVEFEED_TEST_FAULT_OUTAGE_SECONDS", 30)) * time.Second
	stopMode := os.Getenv("LIVEFEED_TEST_FAULT_STOP")
	if stopMode == "" {
		stopMode = "kill"
	}
	if stopMode != "kill" && stopMode != "term" {
		t.Fatalf("LIVEFEED_TEST_FAULT_STOP=%q: kill or term", stopMode)
	}
	if outage >= total {
		t.Fatalf("the outage (%v) must be shorter than the run (%v)", outage, total)
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
	r, _ := startStack(t, cfg)

	en := offlineEngine(ctx, t, cfg.DataDir, recs)

	// The broker to stop: the one leading the most of the test's
	// partitions (every topic must have 3 replicas).
	admCl, err := kgo.NewClient(kgo.SeedBrokers(r.app.Brokers()...))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	var topics []string
	for _, s := range r.app.Topology.Topics() {
		topics = append(topics, s.Name)
	}
	counts := leaders(t, ctx, adm, topics, 3)
	victim := busiest(counts)
	t.Logf("%d events at %d/s over %v; %d topics with 3 replicas; partition leaders by broker %v: stopping broker %d (%s) for %v",
		n, rate, total, len(topics), counts, victim, stopMode, outage)
	// Whatever happens, leave the cluster whole for whoever runs next.
	var victimDown atomic.Bool
	t.Cleanup(func() {
		if victimDown.Load() {
			clusterCtl(t, "start-node", fmt.Sprint(victim))
		}
	})

	// Streams first, as in TestOnlineEqualsOffline (a stream exists before
	// its engagement), then the rest at the rate, in log order.
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.app.Brokers()...), kgo.RecordPartitioner(broker.Partitioner()),
		kgo.MaxBufferedRecords(n+1))
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

	var produceErrs, acked atomic.Int64
	var firstProduceErr atomic.Value
	var prodEnd time.Time // set before prodDone is closed
	t0 := time.Now()
	prodDone := make(chan struct{})
	go func() { // owned: ends when every record is acknowledged (or ctx ends)
		defer close(prodDone)
		defer func() { prodEnd = time.Now() }()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < len(rest); {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			due := min(len(rest), int(time.Since(t0).Seconds()*float64(rate)))
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
	stopAt := t0.Add((total - outage) / 2)
	r.waitFor(t, "the first users served", func() bool { return len(servedUsers(t, r, en, 20)) >= 20 })
	users := servedUsers(t, r, en, 20)
	var streamIDs []string
	for id := range en.Streams() {
		streamIDs = append(streamIDs, id)
	}
	type phase int
	const (
		before phase = iota
		during
		after
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

	// The outage.
	if d := time.Until(stopAt); d > 0 {
		time.Sleep(d)
	}
	var sig []string
	if stopMode == "kill" {
		sig = []string{"--kill"}
	}
	victimDown.Store(true)
	// The outage starts with the signal: SIGKILL takes effect at once (the
	// script then waits for the process to go), SIGTERM starts the
	// controlled shutdown.
	down := time.Now()
	curPhase.Store(int32(during))
	stopTook := clusterCtl(t, append([]string{"stop-node", fmt.Sprint(victim)}, sig...)...)
	t.Logf("broker %d stopped at +%v (stop-node took %v)", victim, down.Sub(t0).Round(time.Millisecond), stopTook.Round(time.Millisecond))

	// Mid-outage, /metrics exports the staleness gauge of every view.
	time.Sleep(outage / 2)
	resp, err := http.Get(r.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, table := range []string{string(r.app.Topology.Names.LivestreamTable()), string(r.app.Topology.Names.UserTable())} {
		if want := `livefeed_serving_staleness_seconds{table="` + table + `"}`; !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics during the outage lacks %s", want)
		}
	}
	if d := time.Until(down.Add(outage)); d > 0 {
		time.Sleep(d)
	}

	startTook := clusterCtl(t, "start-node", fmt.Sprint(victim))
	victimDown.Store(false)
	back := time.Now()
	curPhase.Store(int32(after))
	t.Logf("broker %d back at +%v (start-node took %v)", victim, back.Sub(t0).Round(time.Millisecond), startTook.Round(time.Millisecond))

	select {
	case <-prodDone:
	case <-time.After(total + time.Minute):
		t.Fatal("the producer did not finish")
	}
	if e := produceErrs.Load(); e > 0 {
		t.Fatalf("%d records failed to produce (first: %v): the log is incomplete", e, firstProduceErr.Load())
	}
	t.Logf("produced %d records in %v", len(rest), prodEnd.Sub(t0).Round(time.Millisecond))

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
	}

	// Report and check the samples.
	samplesMu.Lock()
	defer samplesMu.Unlock()
	var (
		maxStaleDuring, maxStaleAfter float64
		staleTable                    string
		notReady                      int
		lastErr                       error
		statesDuring                  = map[string]bool{}
		maxLagBefore, maxLagDuring    int64
		lagBackAt                     time.Time
		stallFrom, ackStallFrom       time.Time
		longestStall, longestAckStall time.Duration
		stallAtReturn, resumed        time.Duration
		resumedSet                    bool
		processedAtDown               float64
		prev                          *sample
	)
	for i := range samples {
		s := &samples[i]
		if s.err != nil || s.code != http.StatusOK {
			notReady++
			lastErr = fmt.Errorf("/readyz at +%v: %d %v", s.at.Sub(t0).Round(time.Millisecond), s.code, s.err)
		}
		if !s.at.After(down) {
			processedAtDown = s.processed
		}
		switch {
		case s.at.Before(down):
			maxLagBefore = max(maxLagBefore, s.lag)
		case s.at.Before(back):
			maxLagDuring = max(maxLagDuring, s.lag)
			for _, v := range s.rz.Views {
				statesDuring[v.State] = true
				if v.StalenessSeconds > maxStaleDuring {
					maxStaleDuring, staleTable = v.StalenessSeconds, v.Table
				}
			}
		default:
			maxStaleAfter = max(maxStaleAfter, s.rz.StalenessSeconds)
			if lagBackAt.IsZero() && s.lag >= 0 && s.lag <= max(maxLagBefore, int64(rate)) {
				lagBackAt = s.at
			}
		}
		// A stall: the processors handled no event between samples while
		// there was work (records still being produced, or lag).
		if prev != nil && (s.at.Before(prodEnd) || prev.lag != 0) {
			if s.processed > prev.processed {
				if !stallFrom.IsZero() {
					d := s.at.Sub(stallFrom)
					longestStall = max(longestStall, d)
					if stallFrom.Before(back) && s.at.After(back) {
						stallAtReturn = s.at.Sub(back)
					}
					// Processing resumed after the kill: the end of the
					// first stall that began with or after it.
					if !resumedSet && !stallFrom.Before(down.Add(-250*time.Millisecond)) {
						resumed, resumedSet = s.at.Sub(down), true
					}
					stallFrom = time.Time{}
				}
			} else if stallFrom.IsZero() {
				stallFrom = prev.at
			}
		}
		// The producer (acks=all) waiting: no record acknowledged between
		// samples while some were due.
		if prev != nil && prev.acked < int64(len(rest)) {
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
	if prev == nil || prev.processed <= processedAtDown {
		t.Errorf("the processors handled no event after broker %d was stopped", victim)
	}
	resumedText := "processing did not stall after the stop"
	if resumedSet {
		resumedText = fmt.Sprintf("processing resumed %v after the stop", resumed.Round(time.Millisecond))
	}
	if stopMode == "kill" && maxStaleDuring < 2 {
		t.Errorf("the views' largest staleness during a %v crash of a partition leader was %.3fs: not reported", outage, maxStaleDuring)
	}
	t.Logf("staleness: max %.3fs during the outage (%s; view states %v), max %.3fs after; under 2s %v after the broker returned",
		maxStaleDuring, staleTable, keys(statesDuring), maxStaleAfter, fresh.Sub(back).Round(time.Millisecond))
	t.Logf("producer: longest time without an acknowledged record %v", longestAckStall.Round(time.Millisecond))
	t.Logf("processing: %s (broker back after %v); longest stall %v (at the return: %v); group lag max %d before, %d during; back to ≤ max(%d, 1s of input) %v after the return",
		resumedText, back.Sub(down).Round(time.Millisecond), longestStall.Round(time.Millisecond), stallAtReturn.Round(time.Millisecond), maxLagBefore, maxLagDuring, maxLagBefore, sinceOrNever(lagBackAt, back))
	t.Logf("serving latency: before %s; during the outage %s; after %s; %d failures",
		lat[before].summary(), lat[during].summary(), lat[after].summary(), failures.Load())
	t.Logf("online equals offline %v after the producer finished (%d livestreams, %d users, %d sellers; %d late events; duplicates absorbed %v)",
		equal.Sub(prodEnd).Round(time.Millisecond), len(want["livestream"]), len(want["user"]), len(want["seller"]), en.Late,
		metricSum(t, r.app.Registry, "livefeed_duplicates_absorbed_total"))
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
