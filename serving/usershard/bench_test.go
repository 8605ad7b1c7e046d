package usershard

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
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
	"github.com/livefeed/livefeed/tables"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestScaleBench is the user-partitions benchmark (BENCHMARKS.md "Serving
// users from shared partitions"): LIVEFEED_USERSHARD_BENCH=N users with a
// 384-d taste are written straight into a user table on
// LIVEFEED_TEST_BROKERS (kept between runs under its name), then 1 and 2
// replica processes restore them: time to ready, restart time (kill -9,
// local state), RSS, and p50/p99 of lookups of random users over HTTP
// (routed to the owner, cache cold after each restart). Run it under the
// bench lock; it is skipped otherwise.
func TestScaleBench(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("LIVEFEED_USERSHARD_BENCH"))
	brokers := os.Getenv("LIVEFEED_TEST_BROKERS")
	if n <= 0 || brokers == "" {
		t.Skip("set LIVEFEED_USERSHARD_BENCH=N and LIVEFEED_TEST_BROKERS")
	}
	topic := fmt.Sprintf("usershard-bench-%d-table", n)
	fillUsers(t, strings.Split(brokers, ","), topic, n)
	root := t.TempDir()
	counts := []int{1, 2}
	if v, ok := os.LookupEnv("LIVEFEED_USERSHARD_BENCH_REPLICAS"); ok { // e.g. "2"; "": fill only
		counts = nil
		for _, f := range strings.Fields(strings.ReplaceAll(v, ",", " ")) {
			c, err := strconv.Atoi(f)
			if err != nil || c < 1 {
				t.Fatalf("LIVEFEED_USERSHARD_BENCH_REPLICAS: %q", v)
			}
			counts = append(counts, c)
		}
	}
	for _, replicas := range counts {
		var procs []*benchReplica
		start := time.Now()
		for i := range replicas {
			procs = append(procs, startBenchReplica(t, brokers, topic, filepath.Join(root, fmt.Sprint(replicas, "-", i))))
		}
		waitAllReady(t, procs, 20*time.Minute)
		t.Logf("%d replica(s), %d users: first start (restore from Kafka) ready in %v", replicas, n, time.Since(start).Round(10*time.Millisecond))
		lookups(t, procs, n, "after the first start")
		for _, p := range procs {
			t.Logf("  replica %s: RSS %s, peak %s, disk %s", p.addr, p.rss("VmRSS"), p.rss("VmHWM"), du(p.dir))
		}
		// kill -9 every replica and restart it on its local state.
		for _, p := range procs {
			p.kill()
		}
		time.Sleep(r0(t, brokers) + time.Second) // the dead members' sessions expire
		start = time.Now()
		for i, p := range procs {
			procs[i] = startBenchReplica(t, brokers, topic, p.dir)
		}
		waitAllReady(t, procs, 5*time.Minute)
		t.Logf("%d replica(s): restart after kill -9 (local state) ready in %v", replicas, time.Since(start).Round(10*time.Millisecond))
		lookups(t, procs, n, "after the restart (cold cache)")
		for _, p := range procs {
			t.Logf("  replica %s: RSS %s, peak %s", p.addr, p.rss("VmRSS"), p.rss("VmHWM"))
			p.kill()
			_ = os.RemoveAll(p.dir)
		}
		time.Sleep(r0(t, brokers) + time.Second)
	}
}

// r0 is the session timeout of the replicas (the config default).
func r0(*testing.T, string) time.Duration {
	c := &broker.Config{}
	c.Defaults()
	return c.SessionTimeout
}

// fillUsers writes users u0..u{n-1} unless the topic already holds n records.
func fillUsers(t *testing.T, brokers []string, topic string, n int) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(broker.Partitioner()),
		kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(50_000))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	if _, err := broker.EnsureTopics(ctx, cl, 1, []broker.TopicSpec{{Name: topic, Partitions: parts, Compacted: true}}); err != nil {
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
	rng := rand.New(rand.NewPCG(7, 7))
	now := time.Now()
	vec := make([]float32, 384)
	errs := make(chan error, 1)
	var bytes int64
	for i := range n {
		for j := range vec {
			vec[j] = float32(rng.NormFloat64())
		}
		id := "u" + strconv.Itoa(i)
		u := &tables.User{UserID: id}
		u.Taste.Add(vec, 1, now, 24*time.Hour)
		b, err := tables.UserCodec{}.Encode(u)
		if err != nil {
			t.Fatal(err)
		}
		bytes += int64(len(b))
		cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(id), Value: b}, func(_ *kgo.Record, err error) {
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
	t.Logf("filled %s: %d users, %d MB of values, in %v", topic, n, bytes>>20, time.Since(start).Round(time.Second))
}

type benchReplica struct {
	cmd  *exec.Cmd
	addr string
	dir  string
}

// startBenchReplica runs TestChildReplica in a process of its own.
func startBenchReplica(t *testing.T, brokers, topic, dir string) *benchReplica {
	ln, addr := listen(t) // reserve a port for the child
	_ = ln.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildReplica$")
	cmd.Env = append(os.Environ(), childEnv+"="+brokers+"|"+topic+"|"+dir+"|"+strings.TrimPrefix(addr, "http://"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return &benchReplica{cmd: cmd, addr: addr, dir: dir}
}

func (p *benchReplica) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
}

func (p *benchReplica) rss(field string) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
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

func du(dir string) string {
	var total int64
	_ = filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			total += fi.Size()
		}
		return nil
	})
	return fmt.Sprintf("%d MB", total>>20)
}

// waitAllReady waits until every replica answers for its share and the
// shares cover every partition.
func waitAllReady(t *testing.T, procs []*benchReplica, d time.Duration) {
	deadline := time.Now().Add(d)
	for {
		covered, all := 0, true
		for _, p := range procs {
			m, ok := readyMap(p.addr)
			all = all && ok
			covered += len(m.Ready)
		}
		if all && covered == parts {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replicas not ready after %v", d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func readyMap(addr string) (Map, bool) {
	var m Map
	resp, err := http.Get(addr + "/ready")
	if err != nil {
		return m, false
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return m, resp.StatusCode == http.StatusOK
}

// lookups asks for 20,000 random users, sequentially, first each from its
// owner (a client routing by the map), then each from a random replica
// (local, or forwarded to the owner: one hop), and logs p50/p99.
func lookups(t *testing.T, procs []*benchReplica, n int, when string) {
	m, _ := readyMap(procs[0].addr)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	hc := &http.Client{}
	const count = 20_000
	for _, mode := range []string{"routed to the owner", "to any replica"} {
		lat := make([]time.Duration, 0, count)
		for range count {
			id := "u" + strconv.Itoa(rng.IntN(n))
			u := m.Owners[broker.PartitionOf(id, parts)] + LocalPath + url.PathEscape(id)
			if mode != "routed to the owner" {
				u = procs[rng.IntN(len(procs))].addr + "/users/" + url.PathEscape(id)
			}
			start := time.Now()
			resp, err := hc.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			lat = append(lat, time.Since(start))
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: %d", u, resp.StatusCode)
			}
		}
		slices.Sort(lat)
		t.Logf("  lookups %s, %s: p50 %v, p99 %v, max %v (%d random users over HTTP)", when, mode,
			lat[count/2].Round(time.Microsecond), lat[count*99/100].Round(time.Microsecond), lat[count-1].Round(time.Microsecond), count)
	}
}
