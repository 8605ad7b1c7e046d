package usershard

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/livefeed/livefeed/broker"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"
)

const parts = 8

// rig is a user table on a real broker (LIVEFEED_TEST_BROKERS, Kafka 4.4 in
// CI) or an embedded kfake cluster, filled with users u0..u{n-1}.
type rig struct {
	brokers []string
	topic   string
	values  map[string]string // user → the value last written
	cl      *kgo.Client
}

func newRig(t *testing.T, users int) *rig {
	t.Helper()
	var brokers []string
	if b := os.Getenv("LIVEFEED_TEST_BROKERS"); b != "" {
		brokers = strings.Split(b, ",")
	} else {
		e, err := broker.StartEmbedded("127.0.0.1:0", "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.Close)
		brokers = e.Addrs()
	}
	r := &rig{brokers: brokers, topic: fmt.Sprintf("usershard-%d-table", time.Now().UnixNano()), values: map[string]string{}}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(broker.Partitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	r.cl = cl
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := broker.EnsureTopics(ctx, cl, 1, []broker.TopicSpec{{Name: r.topic, Partitions: parts, Compacted: true}}); err != nil {
		t.Fatal(err)
	}
	r.write(t, users, "v1")
	return r
}

// write sets users u0..u{n-1} to "<gen>:<user>".
func (r *rig) write(t *testing.T, n int, gen string) {
	t.Helper()
	recs := make([]*kgo.Record, n)
	for i := range n {
		id := fmt.Sprintf("u%d", i)
		r.values[id] = gen + ":" + id
		recs[i] = &kgo.Record{Topic: r.topic, Key: []byte(id), Value: []byte(r.values[id])}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func (r *rig) config() *broker.Config {
	c := &broker.Config{Brokers: r.brokers, Partitions: parts}
	c.Defaults()
	return c
}

// replica is one Store with its HTTP listener.
type replica struct {
	store  *Store
	cancel context.CancelFunc
	done   chan error
}

// listen returns a listener and the replica's advertised address.
func listen(t *testing.T) (net.Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln, "http://" + ln.Addr().String()
}

// serveLocal serves the local-lookup route of s on ln until the test ends.
func serveLocal(t *testing.T, ln net.Listener, s *Store) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+LocalPath+"{id}", func(w http.ResponseWriter, r *http.Request) { s.ServeLocal(w, r.PathValue("id")) })
	// Any replica's lookup: local or forwarded to the owner (one hop).
	mux.HandleFunc("GET /users/{id}", func(w http.ResponseWriter, r *http.Request) {
		v, err := s.Get(r.Context(), r.PathValue("id"))
		switch {
		case err != nil:
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		case v == nil:
			http.NotFound(w, r)
		default:
			_, _ = w.Write(v)
		}
	})
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, r *http.Request) {
		if !s.Ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(s.Map())
	})
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
}

func (r *rig) start(t *testing.T, dir string, standbys int, mutate ...func(*Options)) *replica {
	t.Helper()
	ln, addr := listen(t)
	o := Options{Broker: r.config(), Topic: r.topic, Dir: dir, Advertise: addr, Standbys: standbys,
		ForwardTimeout: 3 * time.Second}
	for _, m := range mutate {
		m(&o)
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	serveLocal(t, ln, s)
	ctx, cancel := context.WithCancel(context.Background())
	rp := &replica{store: s, cancel: cancel, done: make(chan error, 1)}
	go func() { rp.done <- s.Run(ctx) }()
	t.Cleanup(func() { rp.stop(t); _ = s.Close() })
	return rp
}

// stop leaves the group and waits for Run.
func (rp *replica) stop(t *testing.T) {
	rp.cancel()
	if err := <-rp.done; err != nil {
		t.Error(err)
	}
	rp.done <- nil // a second stop returns at once
}

// waitFor polls cond every 50 ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not after %v", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// split reports whether the two replicas answer for every partition
// between them, each for some.
func split(a, b *Store) bool {
	ma, mb := a.Map(), b.Map()
	return len(ma.Ready) > 0 && len(mb.Ready) > 0 && len(ma.Ready)+len(mb.Ready) == parts && a.Ready() && b.Ready()
}

// checkAll asks s for every user and wants each one's last value.
func (r *rig) checkAll(t *testing.T, s *Store) {
	t.Helper()
	for id, want := range r.values {
		v, err := s.Get(context.Background(), id)
		if err != nil || string(v) != want {
			t.Fatalf("user %s: got %q, %v; want %q", id, v, err, want)
		}
	}
	if v, err := s.Get(context.Background(), "nobody"); err != nil || v != nil {
		t.Fatalf("unknown user: got %q, %v; want nil, nil", v, err)
	}
}

// watch asks s for random users until stop, and fails the test on a wrong
// or empty answer; ErrUnavailable (a retryable 503) is allowed and counted.
func (r *rig) watch(t *testing.T, s *Store, stop <-chan struct{}) (unavailable *atomic.Int64, wait func()) {
	ids := make([]string, 0, len(r.values))
	for id := range r.values {
		ids = append(ids, id)
	}
	unavailable = new(atomic.Int64)
	var wg sync.WaitGroup
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(1, 2))
		for {
			select {
			case <-stop:
				return
			default:
			}
			id := ids[rng.IntN(len(ids))]
			v, err := s.Get(context.Background(), id)
			switch {
			case errors.Is(err, ErrUnavailable):
				unavailable.Add(1)
			case err != nil:
				t.Errorf("user %s: %v", id, err)
			case string(v) != r.values[id]:
				t.Errorf("user %s: got %q during a move, want %q", id, v, r.values[id])
			}
		}
	})
	return unavailable, wg.Wait
}

func TestTwoReplicasSplitAndFailOver(t *testing.T) {
	r := newRig(t, 2000)
	a := r.start(t, t.TempDir(), 0)
	waitFor(t, 30*time.Second, "one replica answers for all partitions", func() bool { return len(a.store.Map().Ready) == parts })
	r.checkAll(t, a.store)

	stop := make(chan struct{})
	unavailable, wait := r.watch(t, a.store, stop)
	b := r.start(t, t.TempDir(), 0)
	waitFor(t, 30*time.Second, "two replicas split the partitions", func() bool { return split(a.store, b.store) })
	t.Logf("split: a %v, b %v", a.store.Map().Ready, b.store.Map().Ready)
	r.checkAll(t, a.store) // half local, half forwarded to b
	r.checkAll(t, b.store)
	if n := testutil.ToFloat64(a.store.metrics.lookups.WithLabelValues("forwarded")); n == 0 {
		t.Error("a forwarded no lookup to b")
	}

	// b leaves (graceful stop): a answers for everything again.
	b.stop(t)
	took := waitFor(t, 30*time.Second, "a answers for all after b left", func() bool { return len(a.store.Map().Ready) == parts })
	close(stop)
	wait()
	t.Logf("all partitions on a %v after b left; %d lookups unavailable meanwhile", took, unavailable.Load())
	r.checkAll(t, a.store)
}

func TestRestartResumesFromLocalState(t *testing.T) {
	r := newRig(t, 1000)
	dir := t.TempDir()
	a := r.start(t, dir, 0)
	waitFor(t, 30*time.Second, "ready", func() bool { return len(a.store.Map().Ready) == parts })
	a.stop(t)
	_ = a.store.Close()

	r.write(t, 100, "v2") // 100 updates while it is down
	a = r.start(t, dir, 0)
	waitFor(t, 30*time.Second, "ready after restart", func() bool { return len(a.store.Map().Ready) == parts })
	r.checkAll(t, a.store)
	if n := testutil.ToFloat64(a.store.metrics.applied); n != 100 {
		t.Errorf("restart applied %v records, want the 100 written while down (not a replay)", n)
	}
}

// A partition that moved away is deleted from disk after DropAfter; when
// it comes back it is restored from the topic, complete.
func TestUnheldPartitionsAreDropped(t *testing.T) {
	r := newRig(t, 1000)
	a := r.start(t, t.TempDir(), 0, func(o *Options) { o.DropAfter = 100 * time.Millisecond })
	waitFor(t, 30*time.Second, "ready", func() bool { return len(a.store.Map().Ready) == parts })
	b := r.start(t, t.TempDir(), 0)
	waitFor(t, 30*time.Second, "split", func() bool { return split(a.store, b.store) })
	waitFor(t, 30*time.Second, "a keeps only its own partitions on disk", func() bool {
		stored, err := a.store.db.stored(parts)
		return err == nil && slices.Equal(stored, a.store.Map().Ready)
	})
	b.stop(t)
	waitFor(t, 30*time.Second, "a answers for all again", func() bool { return len(a.store.Map().Ready) == parts })
	r.checkAll(t, a.store)
}

func TestStandbyTakesOver(t *testing.T) {
	r := newRig(t, 1000)
	a := r.start(t, t.TempDir(), 1)
	b := r.start(t, t.TempDir(), 1)
	waitFor(t, 30*time.Second, "split", func() bool { return split(a.store, b.store) })
	waitFor(t, 30*time.Second, "standbys follow", func() bool {
		return len(a.store.Map().Standby) == len(b.store.Map().Ready) && len(b.store.Map().Standby) == len(a.store.Map().Ready)
	})
	r.write(t, 1000, "v2")
	waitFor(t, 30*time.Second, "updates reach the owners", func() bool {
		for id, want := range r.values {
			if v, err := a.store.Get(context.Background(), id); err != nil || string(v) != want {
				return false
			}
		}
		return true
	})
	b.stop(t)
	waitFor(t, 30*time.Second, "a answers for all", func() bool { return len(a.store.Map().Ready) == parts })
	r.checkAll(t, a.store)
}

// childEnv starts TestChildReplica as a separate process: a replica that
// can be killed with SIGKILL, leaving the group without a goodbye.
const childEnv = "LIVEFEED_USERSHARD_CHILD"

func TestChildReplica(t *testing.T) {
	spec := os.Getenv(childEnv)
	if spec == "" {
		t.Skip("run by TestKilledReplica")
	}
	f := strings.Split(spec, "|") // brokers|topic|dir[|listen address]
	cfg := &broker.Config{Brokers: strings.Split(f[0], ","), Partitions: parts}
	cfg.Defaults()
	ln, addr := listen(t)
	if len(f) > 3 {
		_ = ln.Close()
		var err error
		if ln, err = net.Listen("tcp", f[3]); err != nil {
			t.Fatal(err)
		}
		addr = "http://" + f[3]
	}
	s, err := New(Options{Broker: cfg, Topic: f[1], Dir: f[2], Advertise: addr})
	if err != nil {
		t.Fatal(err)
	}
	serveLocal(t, ln, s)
	_ = s.Run(context.Background()) // until killed
}

func TestKilledReplica(t *testing.T) {
	r := newRig(t, 2000)
	a := r.start(t, t.TempDir(), 0)
	waitFor(t, 30*time.Second, "ready", func() bool { return len(a.store.Map().Ready) == parts })

	cmd := exec.Command(os.Args[0], "-test.run=^TestChildReplica$", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"="+strings.Join(r.brokers, ",")+"|"+r.topic+"|"+t.TempDir())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	go func() { _, _ = bufio.NewReader(out).WriteTo(discard{}) }()

	waitFor(t, 30*time.Second, "the child takes half", func() bool {
		m := a.store.Map()
		return len(m.Ready) > 0 && len(m.Ready) < parts && a.store.Ready() && func() bool {
			for _, o := range m.Owners {
				if o == "" {
					return false
				}
			}
			return true
		}()
	})
	waitFor(t, 30*time.Second, "the child answers its half", func() bool {
		for id := range r.values {
			if _, err := a.store.Get(context.Background(), id); err != nil {
				return false
			}
		}
		return true
	})
	r.checkAll(t, a.store)

	stop := make(chan struct{})
	unavailable, wait := r.watch(t, a.store, stop)
	killed := time.Now()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "a answers for all after the kill", func() bool { return len(a.store.Map().Ready) == parts })
	took := time.Since(killed)
	close(stop)
	wait()
	t.Logf("every user answerable %v after kill -9 (session timeout %v); %d lookups unavailable meanwhile",
		took, r.config().SessionTimeout, unavailable.Load())
	if max := r.config().SessionTimeout + 5*time.Second; took > max {
		t.Errorf("failover took %v, want at most %v", took, max)
	}
	r.checkAll(t, a.store)
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
