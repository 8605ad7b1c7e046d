package app

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livefeed/livefeed/broker"
	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/offline"
	"github.com/livefeed/livefeed/serving"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Losing the only broker (issue 13): a single Kafka 4.4 broker of the
// test's own (deploy/kafka/kafka.sh with its own ports and data dir) is
// stopped under traffic and started again on the same data, twice.
//
//   - While it is down, the processors pause and say so: /readyz of the
//     processors' listener answers 503 "paused" with the reason within a
//     few seconds, livefeed_broker_reachable is 0, and one line is logged
//     for the pause (not one per failed write or reconnect); when it is
//     back they resume by themselves (/readyz 200, one line) and every
//     livestream's, user's and seller's features equal the offline
//     recomputation of what was produced.
//   - Stopping the processors while it is down (SIGTERM: their context
//     ends) returns within 10 s, and commits nothing whose state was not
//     written: once the broker is back, a new run of the processors ends
//     with features equal to the offline recomputation of the whole log.
//
// It needs java and the broker's jars (kafka.sh fetch): set
// LIVEFEED_TEST_KAFKA_SCRIPT to deploy/kafka/kafka.sh, and
// LIVEFEED_TEST_KAFKA_PORT if 29392 and 29393 are taken.
func TestBrokerLoss(t *testing.T) {
	script := os.Getenv("LIVEFEED_TEST_KAFKA_SCRIPT")
	if script == "" {
		t.Skip("TestBrokerLoss stops and restarts a Kafka broker of its own: set LIVEFEED_TEST_KAFKA_SCRIPT=deploy/kafka/kafka.sh")
	}
	kb := startSoloKafka(t, script, envInt(t, "LIVEFEED_TEST_KAFKA_PORT", 29392))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // after everything below stopped (cleanups run last first)

	recs := simulatedLog(t, 3000)
	var streams, rest []offline.Record
	for _, rec := range recs {
		if rec.Topic == events.TopicLivestreams {
			streams = append(streams, rec)
		} else {
			rest = append(rest, rec)
		}
	}
	// Traffic in two parts: the first through the first outage, the second
	// through the second (the one the processors are stopped in).
	first, second := rest[:len(rest)/2], rest[len(rest)/2:]

	logs := &logStore{}
	var tee slog.Handler
	if testing.Verbose() {
		tee = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})
	}
	cfg := Config{
		Brokers: kb.addr, DataDir: t.TempDir(), Partitions: 4,
		TopicPrefix: fmt.Sprintf("bl%d-", time.Now().UnixNano()),
		Logger:      slog.New(&captureHandler{store: logs, next: tee}),
	}
	a, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	if err := a.CreateTopics(ctx); err != nil {
		t.Fatal(err)
	}
	procURL := serveOn(t, ctx, a.ServeMetrics)
	svc, err := a.NewServing()
	if err != nil {
		t.Fatal(err)
	}
	r := &running{app: a, prefix: cfg.TopicPrefix}
	r.url = serveOn(t, ctx, func(ctx context.Context, ln net.Listener) error { return a.Serve(ctx, svc, ln) })
	stopProcs := runProcessors(t, ctx, a)

	cl, err := kgo.NewClient(kgo.SeedBrokers(a.Brokers()...), kgo.RecordPartitioner(broker.Partitioner()),
		kgo.MaxBufferedRecords(len(recs)+1)) // no delivery timeout: records wait out the outages
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	produce := func(ctx context.Context, rs []offline.Record) {
		for _, rec := range rs {
			cl.Produce(ctx, &kgo.Record{Topic: r.prefix + rec.Topic, Key: []byte(rec.Key), Value: rec.Value}, func(_ *kgo.Record, err error) {
				if err != nil && ctx.Err() == nil {
					t.Errorf("producing: %v", err)
				}
			})
		}
	}
	// Traffic: rs at about 200 records/s, in the background.
	traffic := func(rs []offline.Record) (done chan struct{}) {
		done = make(chan struct{})
		tctx, stop := context.WithCancel(ctx)
		t.Cleanup(func() { stop(); <-done })
		go func() { // owned: ends when rs are sent and acknowledged, or at cleanup
			defer close(done)
			for i := 0; i < len(rs) && tctx.Err() == nil; i += 20 {
				produce(tctx, rs[i:min(i+20, len(rs))])
				time.Sleep(100 * time.Millisecond)
			}
			_ = cl.Flush(tctx)
		}()
		return done
	}
	produce(ctx, streams)
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	all := offlineEngine(ctx, t, cfg.DataDir, recs)
	r.waitFor(t, "every stream's metadata", func() bool {
		for id, st := range all.Streams() {
			var lf serving.LivestreamFeatures
			if r.get(t, "/v1/features/livestream/"+url.PathEscape(id), &lf) != 200 || lf.Status != st.Status {
				return false
			}
		}
		return true
	})

	// Outage 1, under traffic: pause, report, resume, exact.
	sent := traffic(first)
	time.Sleep(2 * time.Second)
	down := kb.halt()
	paused := waitProcReadyz(t, procURL, http.StatusServiceUnavailable, "paused", 15*time.Second)
	t.Logf("outage 1: /readyz 503 %v after the broker's stop began: %s", time.Since(down).Round(time.Millisecond), paused.Reason)
	if !strings.Contains(paused.Reason, "no Kafka broker reachable") {
		t.Errorf("/readyz reason %q", paused.Reason)
	}
	if v := metricSum(t, a.Registry, "livefeed_broker_reachable"); v != 0 {
		t.Errorf("livefeed_broker_reachable %v while the broker is down, want 0", v)
	}
	time.Sleep(4 * time.Second) // failed writes, reconnects: no line each
	up := kb.resume()
	waitProcReadyz(t, procURL, http.StatusOK, "ready", 60*time.Second)
	t.Logf("outage 1: /readyz 200 %v after the broker was back", time.Since(up).Round(time.Millisecond))
	if v := metricSum(t, a.Registry, "livefeed_broker_reachable"); v != 1 {
		t.Errorf("livefeed_broker_reachable %v once the broker is back, want 1", v)
	}
	checkOutageLogs(t, logs, down, up)
	<-sent
	firstPart := append(append([]offline.Record{}, streams...), first...)
	equalOffline(t, r, offlineEngine(ctx, t, cfg.DataDir, inLogOrder(recs, firstPart)), "after outage 1")

	// Outage 2: the processors are stopped (SIGTERM) while the broker is
	// down, with records in flight.
	sent = traffic(second)
	time.Sleep(2 * time.Second)
	kb.halt()
	waitProcReadyz(t, procURL, http.StatusServiceUnavailable, "paused", 15*time.Second)
	took := stopProcs()
	t.Logf("outage 2: the processors stopped %v after their context ended, the broker down", took.Round(time.Millisecond))
	if took > 10*time.Second {
		t.Errorf("the processors took %v to stop while the broker was down, want <= 10s", took)
	}
	kb.resume()
	runProcessors(t, ctx, a)
	<-sent
	equalOffline(t, r, all, "after a stop while the broker was down and a restart")
}

// soloKafka is a single-node broker run by deploy/kafka/kafka.sh on its own
// ports and data dir, which halt and resume stop and start on the same data.
type soloKafka struct {
	t      *testing.T
	script string
	env    []string
	addr   string
}

func startSoloKafka(t *testing.T, script string, port int) *soloKafka {
	t.Helper()
	script, err := filepath.Abs(script)
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(t.TempDir(), "kafka")
	k := &soloKafka{t: t, script: script, addr: fmt.Sprintf("127.0.0.1:%d", port), env: []string{
		fmt.Sprintf("KAFKA_PORT=%d", port), fmt.Sprintf("KAFKA_CONTROLLER_PORT=%d", port+1),
		"LIVEFEED_KAFKA_DATA=" + data, "LIVEFEED_KAFKA_PID=" + data + ".pid", "LIVEFEED_KAFKA_LOG=" + data + ".log",
	}}
	k.do("start")
	t.Cleanup(func() { k.do("stop") })
	return k
}

// do runs kafka.sh cmd; when it started.
func (k *soloKafka) do(cmd string) time.Time {
	k.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	c := exec.CommandContext(ctx, k.script, cmd)
	c.Env = append(os.Environ(), k.env...)
	out, err := c.CombinedOutput()
	if err != nil {
		k.t.Fatalf("kafka.sh %s: %v\n%s", cmd, err, out)
	}
	k.t.Logf("kafka.sh %s: %v", cmd, time.Since(start).Round(time.Millisecond))
	return start
}

// halt stops the broker, keeping its data; when the stop began.
func (k *soloKafka) halt() time.Time { return k.do("halt") }

// resume starts the broker again on its data; when it answers.
func (k *soloKafka) resume() time.Time {
	k.do("resume")
	return time.Now()
}

// serveOn serves on a fresh local listener until the test ends; its URL.
func serveOn(t *testing.T, ctx context.Context, serve func(context.Context, net.Listener) error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- serve(sctx, ln) }()
	t.Cleanup(func() { cancel(); <-errc })
	return "http://" + ln.Addr().String()
}

// runProcessors runs a's processors until they are ready; stop cancels
// them and returns how long they took to return (the test fails if they
// return an error).
func runProcessors(t *testing.T, ctx context.Context, a *App) (stop func() time.Duration) {
	t.Helper()
	pctx, cancel := context.WithCancel(ctx)
	ready, errc := make(chan struct{}), make(chan error, 1)
	go func() { errc <- a.RunProcessors(pctx, ready) }()
	var once sync.Once
	var took time.Duration
	stop = func() time.Duration {
		once.Do(func() {
			start := time.Now()
			cancel()
			if err := <-errc; err != nil {
				t.Errorf("processors: %v", err)
			}
			took = time.Since(start)
		})
		return took
	}
	t.Cleanup(func() { stop() })
	select {
	case <-ready:
	case err := <-errc:
		t.Fatalf("processors stopped: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("processors not ready after 2 minutes")
	}
	return stop
}

// procReadyz is the processors' /readyz answer.
type procReadyz struct {
	Status string `json:"status"`
	Reason string `json:"reason"`
}

// waitProcReadyz waits until the processors' /readyz answers code with
// status, for at most within.
func waitProcReadyz(t *testing.T, base string, code int, status string, within time.Duration) procReadyz {
	t.Helper()
	var last procReadyz
	lastCode := 0
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			continue
		}
		last = procReadyz{}
		err = json.NewDecoder(resp.Body).Decode(&last)
		resp.Body.Close()
		lastCode = resp.StatusCode
		if err == nil && lastCode == code && last.Status == status {
			return last
		}
	}
	t.Fatalf("/readyz not %d %q within %v: last %d %+v", code, status, within, lastCode, last)
	return last
}

// checkOutageLogs checks the lines logged from down to a few seconds after
// up: one for the pause, one for the resumption, none per failed table
// write, and the Kafka clients' reconnect warnings throttled.
func checkOutageLogs(t *testing.T, logs *logStore, down, up time.Time) {
	t.Helper()
	time.Sleep(2 * time.Second) // the resumption's line
	lines := logs.since(down)
	count := func(msg string, level slog.Level) int {
		n := 0
		for _, l := range lines {
			if strings.Contains(l.msg, msg) && l.level >= level {
				n++
			}
		}
		return n
	}
	if n := count("kafka: no broker reachable", slog.LevelWarn); n != 1 {
		t.Errorf("%d lines say the processors paused, want 1", n)
	}
	if n := count("kafka: a broker answers again", slog.LevelInfo); n != 1 {
		t.Errorf("%d lines say the processors resumed, want 1", n)
	}
	if n := count("table write", slog.LevelWarn); n > 1 {
		t.Errorf("%d lines about failed table writes, want at most 1", n)
	}
	if n := count("unable to open connection to broker", slog.LevelWarn); n > 2 {
		t.Errorf("%d reconnect warnings in a %v outage, want at most 2 (one per 30 s)", n, up.Sub(down).Round(time.Second))
	}
	warn := 0
	for _, l := range lines {
		if l.level >= slog.LevelWarn {
			warn++
		}
	}
	t.Logf("%d warnings and errors logged during a %v outage", warn, up.Sub(down).Round(time.Second))
}

// inLogOrder is recs restricted to the records of subset, in recs' order.
func inLogOrder(recs, subset []offline.Record) []offline.Record {
	keep := map[string]int{}
	for _, rec := range subset {
		keep[rec.Topic+"\x00"+rec.Key+"\x00"+string(rec.Value)]++
	}
	var out []offline.Record
	for _, rec := range recs {
		k := rec.Topic + "\x00" + rec.Key + "\x00" + string(rec.Value)
		if keep[k] > 0 {
			keep[k]--
			out = append(out, rec)
		}
	}
	return out
}

// equalOffline waits (90 s at most) until every entity's served features
// equal en's.
func equalOffline(t *testing.T, r *running, en *offline.Engine, when string) {
	t.Helper()
	at := time.Now().UTC()
	want := en.Values(at)
	q := "?at=" + url.QueryEscape(at.Format(time.RFC3339Nano))
	diff := "not compared yet"
	for deadline := time.Now().Add(90 * time.Second); diff != "" && time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		diff = firstDifference(t, r, want, q)
	}
	if diff != "" {
		t.Fatalf("%s: online differs from offline: %s (duplicates absorbed: %v)", when, diff,
			metricSum(t, r.app.Registry, "livefeed_duplicates_absorbed_total"))
	}
	t.Logf("%s: %d livestreams, %d users, %d sellers equal the offline recomputation (duplicates absorbed: %v)", when,
		len(want["livestream"]), len(want["user"]), len(want["seller"]), metricSum(t, r.app.Registry, "livefeed_duplicates_absorbed_total"))
}

// logStore keeps what a captureHandler logged.
type logStore struct {
	mu    sync.Mutex
	lines []logLine
}

type logLine struct {
	at    time.Time
	level slog.Level
	msg   string
}

func (s *logStore) since(t time.Time) []logLine {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []logLine
	for _, l := range s.lines {
		if !l.at.Before(t) {
			out = append(out, l)
		}
	}
	return out
}

// captureHandler records info and above in store and passes them to next
// (if any).
type captureHandler struct {
	store *logStore
	next  slog.Handler
}

func (h *captureHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *captureHandler) Handle(ctx context.Context, r slog.Record) error {
	h.store.mu.Lock()
	h.store.lines = append(h.store.lines, logLine{at: r.Time, level: r.Level, msg: r.Message})
	h.store.mu.Unlock()
	if h.next != nil {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h *captureHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	if h.next != nil {
		c.next = h.next.WithAttrs(as)
	}
	return &c
}

func (h *captureHandler) WithGroup(name string) slog.Handler {
	c := *h
	if h.next != nil {
		c.next = h.next.WithGroup(name)
	}
	return &c
}
