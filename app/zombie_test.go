package app_test

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/livefeed/livefeed/app"
	"github.com/livefeed/livefeed/bench"
	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/offline"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A zombie replica on real Kafka: two `livefeed process` replicas share the
// partitions under steady traffic; one is frozen with SIGSTOP past its
// session timeout, its partitions move to the other, which processes more
// events; then it is resumed with SIGCONT while the traffic goes on. Woken,
// it still holds decoded state, records fetched before the stop and
// records buffered in its producer: without fencing it flushed them over
// the survivor's newer table values, and the next owner recovered those
// stale values (events lost for good). Fenced (broker/kgoka fence.go), it
// writes and commits nothing, says so in its log and exits; restarted on
// its data directory, as an orchestrator would, it rejoins. Every
// livestream, user and seller must then be served exactly the features the
// offline recomputation of the log gives.
//
// Real Kafka only (LIVEFEED_TEST_BROKERS); about a minute on 2 cores.
func TestZombieReplica(t *testing.T) {
	brokers := os.Getenv("LIVEFEED_TEST_BROKERS")
	if brokers == "" {
		t.Skip("TestZombieReplica runs livefeed processes against real Kafka: set LIVEFEED_TEST_BROKERS (eval \"$(deploy/kafka/kafka.sh start)\")")
	}
	const (
		n          = 8000  // events of the log
		rate       = 250.0 // events/s while the zombie is made; the rest at once
		partitions = 4
		victim     = 1
		session    = 6 * time.Second
	)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	dir := t.TempDir()
	exe := buildLivefeed(t, ctx, dir)
	prefix := fmt.Sprintf("zb%d-", time.Now().UnixNano())
	t.Logf("topic prefix %s, logs in %s", prefix, dir)

	recs := app.SimulatedLog(t, n)
	topo, release, err := app.OfflineTopology(ctx, app.Config{DataDir: filepath.Join(dir, "offline")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
	en := offline.New(topo)
	for _, rec := range recs {
		en.Apply(ctx, rec)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	adm := kadm.NewClient(cl)
	t.Cleanup(func() { // after the replicas stopped (cleanups run last-in first-out)
		if t.Failed() {
			return // the run's topics and groups stay for a look
		}
		dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer dcancel()
		if err := bench.DeletePrefix(dctx, adm, prefix); err != nil {
			t.Logf("removing the run's topics and groups: %v", err)
		}
	})

	rs, err := bench.StartReplicas(ctx, bench.ReplicaConfig{Exe: exe, Brokers: strings.Split(brokers, ","),
		Prefix: prefix, Partitions: partitions, Replicas: 2, Dir: filepath.Join(dir, "replicas"),
		Args: []string{fmt.Sprintf("--session-timeout=%v", session)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if rs.Running(victim) {
			_ = rs.Signal(victim, syscall.SIGCONT) // a failed test may leave it stopped
		}
		if err := rs.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("replica logs:\n%s", rs.Logs(16<<10))
		}
	})

	var streams, rest []*kgo.Record
	for _, rec := range recs {
		r := &kgo.Record{Topic: prefix + rec.Topic, Key: []byte(rec.Key), Value: rec.Value}
		if rec.Topic == events.TopicLivestreams {
			streams = append(streams, r)
		} else {
			rest = append(rest, r)
		}
	}
	if err := cl.ProduceSync(ctx, streams...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := bench.WaitCaughtUp(ctx, adm, prefix, time.Minute); err != nil {
		t.Fatal(err)
	}
	w, err := bench.NewFlowWatcher(ctx, adm, prefix, []string{rs.Get(0).Name, rs.Get(1).Name}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}

	pctx, stopProducing := context.WithCancel(ctx)
	hurry := make(chan struct{})
	produced := make(chan struct{})
	var produceErr error
	go func() { // stopped by the cleanup at the latest
		defer close(produced)
		produceErr = bench.Pace(pctx, cl, rest, rate, hurry)
	}()
	t.Cleanup(func() {
		stopProducing()
		<-produced
	})

	time.Sleep(3 * time.Second) // steady flow on both replicas
	z := rs.Get(victim)
	stopped, err := w.MeasureKill(ctx, z.Name, func() (time.Time, error) {
		return time.Now(), rs.Signal(victim, syscall.SIGSTOP)
	}, time.Minute)
	t.Logf("SIGSTOP: %s", stopped)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // the survivor moves on past what the zombie holds
	if err := rs.Signal(victim, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	woke := time.Now()

	// Fenced, the zombie exits once its refused writes fail its
	// processors (with nothing to write it would rejoin by itself).
	for deadline := woke.Add(20 * time.Second); rs.Running(victim) && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	logged, err := os.ReadFile(z.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	var fenced []string
	for line := range strings.Lines(string(logged)) {
		if strings.Contains(line, "fenced") && len(fenced) < 4 {
			fenced = append(fenced, strings.TrimSpace(line)[:min(len(strings.TrimSpace(line)), 400)])
		}
	}
	if !bytes.Contains(logged, []byte("kafka group membership fenced")) {
		t.Errorf("the zombie did not log that it was fenced")
	}
	t.Logf("the zombie's log on fencing:\n%s", strings.Join(fenced, "\n"))
	if rs.Running(victim) {
		t.Logf("the zombie rejoined by itself")
	} else {
		t.Logf("the zombie exited %v after SIGCONT; restarted on its data directory", time.Since(woke).Round(10*time.Millisecond))
		rejoin, err := w.MeasureRejoin(ctx, z.Name, func() error { return rs.Start(victim) }, time.Minute)
		t.Logf("rejoin: %s", rejoin)
		if err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(2 * time.Second) // traffic on both replicas again
	close(hurry)
	<-produced
	if produceErr != nil {
		t.Fatalf("producing: %v", produceErr)
	}
	if err := bench.WaitCaughtUp(ctx, adm, prefix, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := rs.Exited(); err != nil {
		t.Fatal(err)
	}
	baseURL := startServe(t, ctx, exe, brokers, prefix, partitions, dir)

	at := time.Now().UTC()
	want := en.Values(at)
	q := "?at=" + url.QueryEscape(at.Format(time.RFC3339Nano))
	var diffs []string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		diffs = differences(t, baseURL, want, q)
		if len(diffs) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(diffs) > 0 {
		t.Errorf("after a zombie, %d features differ from offline recomputation:\n%s", len(diffs), strings.Join(diffs[:min(len(diffs), 20)], "\n"))
		t.Errorf("summed online−offline per feature (over-count > 0): %s", excess(t, baseURL, want, q))
		return
	}
	t.Logf("%d records, a zombie: %d livestreams, %d users, %d sellers equal online and offline (%d late events)",
		len(recs), len(want["livestream"]), len(want["user"]), len(want["seller"]), en.Late)
}
