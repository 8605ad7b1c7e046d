package app_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
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

// Scale-out and failover on real Kafka: three `livefeed process` replicas
// share the partitions of every processor group while a simulated log (late
// and out-of-order events included) is produced at a steady rate; a random
// replica is killed with SIGKILL, its partitions must flow again on the
// others, and it is restarted on its data directory (once on an empty one,
// a new volume), at least three times. Once every group has committed every
// input record, a `livefeed serve` replica must serve for every livestream,
// user and seller exactly the features offline recomputation of the log
// gives (TestOnlineEqualsOffline's comparison): a replayed event must not
// count twice. Each kill's time to flow is logged.
//
// Real Kafka only (LIVEFEED_TEST_BROKERS); about two minutes on 2 cores.
func TestFailover(t *testing.T) {
	brokers := os.Getenv("LIVEFEED_TEST_BROKERS")
	if brokers == "" {
		t.Skip("TestFailover runs livefeed processes against real Kafka: set LIVEFEED_TEST_BROKERS (eval \"$(deploy/kafka/kafka.sh start)\")")
	}
	const (
		n          = 15000 // events of the log: 100s at rate, more than the kills need
		rate       = 150.0 // events/s while the kills run; the rest at once
		kills      = 3
		wipeAtKill = 2 // this kill restarts its replica with an empty data dir
		partitions = 6
	)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	dir := t.TempDir()
	exe := buildLivefeed(t, ctx, dir)
	prefix := fmt.Sprintf("fo%d-", time.Now().UnixNano())
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
		Prefix: prefix, Partitions: partitions, Replicas: 3, Dir: filepath.Join(dir, "replicas")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := rs.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("replica logs:\n%s", rs.Logs(16<<10))
		}
	})

	// Streams first (as TestOnlineEqualsOffline does: a stream exists
	// before its engagement), then the rest at a steady rate.
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
	names := make([]string, rs.Len())
	for i := range names {
		names[i] = rs.Get(i).Name
	}
	w, err := bench.NewFlowWatcher(ctx, adm, prefix, names, time.Minute)
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

	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	t.Logf("victims seeded with %d", seed)
	var flows []time.Duration
	for k := 1; k <= kills; k++ {
		time.Sleep(3 * time.Second) // steady flow before each kill
		kill, rejoin, err := bench.KillAndRestart(ctx, rs, w, rng.IntN(rs.Len()), k == wipeAtKill, time.Minute)
		t.Logf("kill %d: %s", k, kill)
		if rejoin.Replica != "" {
			t.Logf("rejoin %d: %s", k, rejoin)
		}
		if err != nil {
			t.Fatalf("kill %d: %v", k, err)
		}
		flows = append(flows, kill.Flowing)
	}
	close(hurry)
	<-produced
	if produceErr != nil {
		t.Fatalf("producing: %v", produceErr)
	}
	sort.Slice(flows, func(i, j int) bool { return flows[i] < flows[j] })
	t.Logf("time to flow after a kill -9: p50 %v, max %v (%d kills)", flows[(len(flows)-1)/2].Round(10*time.Millisecond), flows[len(flows)-1].Round(10*time.Millisecond), len(flows))

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
		t.Errorf("after %d kills, %d features differ from offline recomputation:\n%s", kills, len(diffs), strings.Join(diffs[:min(len(diffs), 20)], "\n"))
		t.Errorf("summed online−offline per feature (over-count > 0): %s", excess(t, baseURL, want, q))
		return
	}
	t.Logf("%d records, %d kills: %d livestreams, %d users, %d sellers equal online and offline (%d late events)",
		len(recs), kills, len(want["livestream"]), len(want["user"]), len(want["seller"]), en.Late)
}

// buildLivefeed builds the binary (no -race: three replicas on 2 cores).
func buildLivefeed(t *testing.T, ctx context.Context, dir string) string {
	t.Helper()
	exe := filepath.Join(dir, "livefeed")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", exe, "github.com/livefeed/livefeed/cmd/livefeed")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building livefeed: %v\n%s", err, out)
	}
	return exe
}

// startServe runs `livefeed serve` on the prefix until the test ends and
// returns its base URL once /readyz answers 200.
func startServe(t *testing.T, ctx context.Context, exe, brokers, prefix string, partitions int, dir string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	logPath := filepath.Join(dir, "serve.log")
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "serve", "--brokers="+brokers, "--topic-prefix="+prefix, fmt.Sprintf("--partitions=%d", partitions),
		"--data="+filepath.Join(dir, "serve"), "--http="+addr, "--model=test")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("livefeed serve: %v", err)
			}
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Error("livefeed serve did not stop within 20s")
		}
		log.Close()
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			t.Logf("---- %s\n%s", logPath, out[max(0, len(out)-16<<10):])
		}
	})
	base := "http://" + addr
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("livefeed serve not ready after 90s")
		}
	}
}

// differences lists every entity whose served features differ from want.
func differences(t *testing.T, baseURL string, want offline.Values, q string) []string {
	var out []string
	for _, entity := range []string{"livestream", "user", "seller"} {
		for _, id := range want.IDs(entity) {
			if d := app.CompareFeatures(want[entity][id], app.FetchFeatures(t, baseURL, entity, id, q)); d != "" {
				out = append(out, fmt.Sprintf("%s %s: %s", entity, id, d))
			}
		}
	}
	return out
}

// excess sums online − offline of every feature over the entities: the
// over-count of replayed events.
func excess(t *testing.T, baseURL string, want offline.Values, q string) string {
	sum := map[string]float64{}
	for _, entity := range []string{"livestream", "user", "seller"} {
		for _, id := range want.IDs(entity) {
			got := app.FetchFeatures(t, baseURL, entity, id, q)
			for name, w := range want[entity][id] {
				if g, ok := got[name]; ok {
					sum[entity+"."+name] += g - w
				}
			}
		}
	}
	var parts []string
	for name, d := range sum {
		if d > 1e-6 || d < -1e-6 {
			parts = append(parts, fmt.Sprintf("%s %+.4g", name, d))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
