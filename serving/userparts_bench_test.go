package serving_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/livefeed/livefeed/broker"
	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/serving"
	"github.com/livefeed/livefeed/serving/usershard"
	"github.com/livefeed/livefeed/tables"
	"github.com/lovoo/goka"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Scale benchmark of shared user partitions through the whole serving
// path (BENCHMARKS.md "Serving users from shared partitions"):
// LIVEFEED_SERVING_USERS_BENCH=N users with a 384-d taste and 10,000 live
// streams are written straight into tables on LIVEFEED_TEST_BROKERS (kept
// between runs under their names), then 1 and 2 serving replicas
// (processes, --user-partitions=shared) start on them: time to /readyz,
// RSS, disk, p50/p99 of /v1/recommendations for random users through a
// random replica (half of them forwarded with 2), then the same after a
// kill -9 and a restart on local state (cold cache). The livestream view
// runs with snapshots (--snapshot-dir), as a production replica would.
// LIVEFEED_SERVING_USERS_BENCH_REPLICAS picks the replica counts ("" fills
// only). With more than one replica, the last is then killed (SIGKILL)
// under a stream of recommendations to the first, which must answer every
// one right or with a 503 until it holds every partition;
// LIVEFEED_SERVING_USERS_BENCH_STANDBYS=1 runs the replicas with standbys.
// Run it under the bench lock; it is skipped otherwise.
func TestSharedUsersScaleBench(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("LIVEFEED_SERVING_USERS_BENCH"))
	brokers := os.Getenv("LIVEFEED_TEST_BROKERS")
	if n <= 0 || brokers == "" {
		t.Skip("set LIVEFEED_SERVING_USERS_BENCH=N and LIVEFEED_TEST_BROKERS")
	}
	users := fmt.Sprintf("usershard-bench-%d-table", n)
	streams := "usershard-bench-streams-table"
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...), kgo.RecordPartitioner(broker.Partitioner()),
		kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(50_000))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	benchFill(t, cl, users, n, benchUser)
	benchFill(t, cl, streams, 10_000, benchStream)

	counts := []int{1, 2}
	if v, ok := os.LookupEnv("LIVEFEED_SERVING_USERS_BENCH_REPLICAS"); ok {
		counts = nil
		for _, f := range strings.Fields(strings.ReplaceAll(v, ",", " ")) {
			c, err := strconv.Atoi(f)
			if err != nil || c < 1 {
				t.Fatalf("LIVEFEED_SERVING_USERS_BENCH_REPLICAS: %q", v)
			}
			counts = append(counts, c)
		}
	}
	root := t.TempDir()
	bc := &broker.Config{}
	bc.Defaults()
	for _, replicas := range counts {
		var procs []*benchServe
		start := time.Now()
		for i := range replicas {
			procs = append(procs, startBenchServe(t, brokers, users, streams, filepath.Join(root, fmt.Sprint(replicas, "-", i))))
		}
		waitServeReady(t, procs, 30*time.Minute)
		t.Logf("%d replica(s), %d users: first start (restore from Kafka) ready in %v", replicas, n, time.Since(start).Round(10*time.Millisecond))
		recommend(t, procs, n, "after the first start")
		for _, p := range procs {
			t.Logf("  replica %s: RSS %s, peak %s, user partitions on disk %s", p.addr, procMB(p.cmd, "VmRSS"), procMB(p.cmd, "VmHWM"), dirMB(p.dir))
			p.kill()
		}
		time.Sleep(bc.SessionTimeout + time.Second) // the dead members' sessions expire
		start = time.Now()
		for i, p := range procs {
			procs[i] = startBenchServe(t, brokers, users, streams, p.dir)
		}
		waitServeReady(t, procs, 10*time.Minute)
		t.Logf("%d replica(s): restart after kill -9 (local state) ready in %v", replicas, time.Since(start).Round(10*time.Millisecond))
		recommend(t, procs, n, "after the restart (cold cache)")
		for _, p := range procs {
			t.Logf("  replica %s: RSS %s, peak %s", p.addr, procMB(p.cmd, "VmRSS"), procMB(p.cmd, "VmHWM"))
		}
		if len(procs) > 1 {
			killOne(t, procs, n)
		}
		for _, p := range procs {
			p.kill()
			_ = os.RemoveAll(p.dir)
		}
		time.Sleep(bc.SessionTimeout + time.Second)
	}
}

// benchUser is user i: a 384-d random taste.
func benchUser(rng *rand.Rand, i int) (string, []byte, error) {
	id := "u" + strconv.Itoa(i)
	u := &tables.User{UserID: id}
	u.Taste.Add(randomUnit(rng), 1, time.Now(), 24*time.Hour)
	b, err := tables.UserCodec{}.Encode(u)
	return id, b, err
}

// benchStream is live stream i: a 384-d random embedding, one of 20
// categories.
func benchStream(rng *rand.Rand, i int) (string, []byte, error) {
	id := "ls" + strconv.Itoa(i)
	cat := "cat" + strconv.Itoa(i%20)
	ls := &tables.Livestream{LivestreamID: id, SellerID: "s" + strconv.Itoa(i%500), Title: "stream " + id, Category: cat,
		Tags: []string{cat}, Language: "en", Status: events.StatusLive, LiveSince: time.Now().Add(-time.Hour),
		Embedding: randomUnit(rng), EmbeddingModel: "bench", Viewers: tables.ViewerSet{}}
	b, err := tables.LivestreamCodec{}.Encode(ls)
	return id, b, err
}

func randomUnit(rng *rand.Rand) []float32 {
	v := make([]float32, 384)
	var norm float64
	for j := range v {
		x := rng.NormFloat64()
		v[j], norm = float32(x), norm+x*x
	}
	for j := range v {
		v[j] /= float32(math.Sqrt(norm))
	}
	return v
}

// benchFill writes records gen(0..n-1) to a compacted table unless it
// already holds n records.
func benchFill(t *testing.T, cl *kgo.Client, topic string, n int, gen func(*rand.Rand, int) (string, []byte, error)) {
	ctx := context.Background()
	if _, err := broker.EnsureTopics(ctx, cl, 1, []broker.TopicSpec{{Name: topic, Partitions: 8, Compacted: true}}); err != nil {
		t.Fatal(err)
	}
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var have int64
	ends.Each(func(o kadm.ListedOffset) { have += o.Offset })
	if have >= int64(n) {
		t.Logf("%s already holds %d records", topic, have)
		return
	}
	start := time.Now()
	rng := rand.New(rand.NewPCG(7, uint64(n)))
	errs := make(chan error, 1)
	var size int64
	for i := range n {
		key, val, err := gen(rng, i)
		if err != nil {
			t.Fatal(err)
		}
		size += int64(len(val))
		cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(key), Value: val}, func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errs <- err:
				default:
				}
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	t.Logf("filled %s: %d records, %d MB of values, in %v", topic, n, size>>20, time.Since(start).Round(time.Second))
}

// benchServeEnv makes the test binary a serving replica
// (TestSharedUsersChild): brokers|users table|streams table|dir|address.
const benchServeEnv = "LIVEFEED_SERVING_USERS_CHILD"

// TestSharedUsersChild is one serving replica of TestSharedUsersScaleBench,
// in a process of its own so that it can be killed and measured.
func TestSharedUsersChild(t *testing.T) {
	spec := os.Getenv(benchServeEnv)
	if spec == "" {
		t.Skip("run by TestSharedUsersScaleBench")
	}
	f := strings.Split(spec, "|")
	standbys, _ := strconv.Atoi(os.Getenv("LIVEFEED_SERVING_USERS_BENCH_STANDBYS"))
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	bc := &broker.Config{Brokers: strings.Split(f[0], ","), StateDir: filepath.Join(f[3], "state"), Partitions: 8, Logger: logger}
	bc.Defaults()
	feats, err := features.NewSet(features.Defaults()...)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := serving.New(serving.Config{Broker: bc, LivestreamTable: goka.Table(f[2]), UserTable: goka.Table(f[1]),
		Features: feats.ForEntity("livestream"), Logger: logger,
		Snapshot: serving.SnapshotConfig{Dir: filepath.Join(f[3], "streams")},
		UserPartitions: serving.UserPartitions{Shared: true, Dir: filepath.Join(f[3], "users"), Advertise: "http://" + f[4],
			Standbys: standbys}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", f[4])
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = http.Serve(ln, svc.Handler(nil)) }()
	_ = svc.Run(context.Background()) // until killed
}

type benchServe struct {
	cmd  *exec.Cmd
	addr string // base URL
	dir  string
}

func startBenchServe(t *testing.T, brokers, users, streams, dir string) *benchServe {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // the child listens on it
	cmd := exec.Command(os.Args[0], "-test.run=^TestSharedUsersChild$")
	cmd.Env = append(os.Environ(), benchServeEnv+"="+strings.Join([]string{brokers, users, streams, dir, addr}, "|"))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return &benchServe{cmd: cmd, addr: "http://" + addr, dir: dir}
}

func (p *benchServe) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
}

// waitServeReady waits until every replica's /readyz is 200 and the
// replicas answer for every partition between them.
func waitServeReady(t *testing.T, procs []*benchServe, d time.Duration) {
	deadline := time.Now().Add(d)
	for {
		covered, ready := 0, true
		for _, p := range procs {
			resp, err := http.Get(p.addr + "/readyz")
			if err != nil {
				ready = false
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			ready = ready && resp.StatusCode == http.StatusOK
			var m usershard.Map
			if resp, err := http.Get(p.addr + "/v1/user-partitions"); err == nil {
				_ = json.NewDecoder(resp.Body).Decode(&m)
				resp.Body.Close()
			}
			covered += len(m.Ready)
		}
		if ready && covered == 8 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replicas not ready after %v", d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// recommend asks for 5,000 recommendations (k=20) of random users, one at
// a time, each from a random replica, and logs p50/p99.
func recommend(t *testing.T, procs []*benchServe, n int, when string) {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	hc := &http.Client{}
	const count = 5000
	lat := make([]time.Duration, 0, count)
	for range count {
		u := procs[rng.IntN(len(procs))].addr + "/v1/recommendations?k=20&user_id=u" + strconv.Itoa(rng.IntN(n))
		start := time.Now()
		resp, err := hc.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		var r serving.Response
		err = json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		lat = append(lat, time.Since(start))
		if resp.StatusCode != http.StatusOK || err != nil || r.Strategy != "taste" || len(r.Results) != 20 {
			t.Fatalf("%s: %d %v: strategy %q, %d results", u, resp.StatusCode, err, r.Strategy, len(r.Results))
		}
	}
	slices.Sort(lat)
	t.Logf("  recommendations %s: p50 %v, p99 %v, max %v (%d random users, k=20, a random replica each)", when,
		lat[count/2].Round(time.Microsecond), lat[count*99/100].Round(time.Microsecond), lat[count-1].Round(time.Microsecond), count)
}

func procMB(cmd *exec.Cmd, field string) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field+":") {
			kb, _ := strconv.Atoi(strings.Fields(l)[1])
			return fmt.Sprintf("%d MB", kb>>10)
		}
	}
	return "?"
}

func dirMB(dir string) string {
	var total int64
	_ = filepath.Walk(filepath.Join(dir, "users"), func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			total += fi.Size()
		}
		return nil
	})
	return fmt.Sprintf("%d MB", total>>20)
}

// killOne kills the last replica while the first answers recommendations
// of random users, and logs how long until the first holds every
// partition and every user is answered again, and how the requests fared
// meanwhile (200 or 503; anything else fails the test).
func killOne(t *testing.T, procs []*benchServe, n int) {
	survivor, victim := procs[0], procs[len(procs)-1]
	rng := rand.New(rand.NewPCG(3, 3))
	hc := &http.Client{Timeout: 10 * time.Second}
	codes := map[int]int{}
	victim.kill()
	killed := time.Now()
	var took time.Duration
	for took == 0 || time.Since(killed) < took+2*time.Second {
		u := survivor.addr + "/v1/recommendations?k=20&user_id=u" + strconv.Itoa(rng.IntN(n))
		resp, err := hc.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		var r serving.Response
		derr := json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		codes[resp.StatusCode]++
		switch {
		case resp.StatusCode == http.StatusServiceUnavailable:
		case resp.StatusCode != http.StatusOK || derr != nil || r.Strategy != "taste" || len(r.Results) != 20:
			t.Fatalf("during the failover, %s: %d %v: strategy %q, %d results", u, resp.StatusCode, derr, r.Strategy, len(r.Results))
		}
		if took == 0 {
			var m usershard.Map
			if resp, err := http.Get(survivor.addr + "/v1/user-partitions"); err == nil {
				_ = json.NewDecoder(resp.Body).Decode(&m)
				resp.Body.Close()
			}
			if len(m.Ready) == 8 {
				took = time.Since(killed)
			}
		}
		if time.Since(killed) > 10*time.Minute {
			t.Fatal("the survivor did not take over within 10 minutes")
		}
	}
	t.Logf("  kill -9 of %s: %s answers for every partition %v later; requests meanwhile and 2 s after: %v",
		victim.addr, survivor.addr, took.Round(10*time.Millisecond), codes)
}
