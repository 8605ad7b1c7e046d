package app

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"
)

// metricsApp builds an app on a fresh topic prefix, creates its topics and
// serves its metrics port; status returns a path's HTTP status.
func metricsApp(t *testing.T, ctx context.Context, prefix string, cfg Config) (a *App, status func(path string) int) {
	t.Helper()
	cfg.Brokers, cfg.DataDir, cfg.Partitions = testBrokers(), t.TempDir(), 2
	cfg.TopicPrefix = prefix + time.Now().Format("150405.000000")
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if err := a.CreateTopics(ctx); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	srvErr := make(chan error, 1)
	go func() { srvErr <- a.ServeMetrics(sctx, ln) }()
	t.Cleanup(func() {
		stop()
		if err := <-srvErr; err != nil {
			t.Error(err)
		}
	})
	return a, func(path string) int {
		t.Helper()
		resp, err := http.Get("http://" + ln.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
}

// runUntilReady starts run and waits until it closes ready; the returned
// stop cancels it and waits for it to return.
func runUntilReady(t *testing.T, ctx context.Context, what string, run func(ctx context.Context, ready chan<- struct{}) error) (stop func()) {
	t.Helper()
	rctx, cancel := context.WithCancel(ctx)
	ready := make(chan struct{})
	errc := make(chan error, 1)
	go func() { errc <- run(rctx, ready) }()
	select {
	case <-ready:
	case err := <-errc:
		cancel()
		t.Fatalf("%s stopped: %v", what, err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatalf("%s not ready in 60s", what)
	}
	return func() { cancel(); <-errc }
}

// A processor-only process (livefeed process) answers /readyz with 503 until
// its processors run, 200 while they do, 503 again once they stopped: the
// Kubernetes readiness probe and disruption budget of deploy/k8s rely on it.
// /healthz answers 200 throughout.
func TestProcessReadyz(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, status := metricsApp(t, ctx, "readyz-", Config{NoEmbeddings: true})
	readyz := func() int { return status("/readyz") }
	if got := status("/healthz"); got != http.StatusOK {
		t.Fatalf("/healthz %d", got)
	}
	if got := readyz(); got != http.StatusServiceUnavailable {
		t.Fatalf("/readyz before the processors run: %d, want 503", got)
	}
	stop := runUntilReady(t, ctx, "processors", a.RunProcessors)
	if got := readyz(); got != http.StatusOK {
		t.Fatalf("/readyz while the processors run: %d, want 200", got)
	}
	stop()
	if got := readyz(); got != http.StatusServiceUnavailable {
		t.Fatalf("/readyz after the processors stopped: %d, want 503", got)
	}
}

// `livefeed embed` (the embedding worker alone) is ready once the worker
// has joined its group, and not ready after it stopped.
func TestEmbedReadyz(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, status := metricsApp(t, ctx, "readyz-embed-", Config{})
	readyz := func() int { return status("/readyz") }
	if got := readyz(); got != http.StatusServiceUnavailable {
		t.Fatalf("/readyz before the worker runs: %d, want 503", got)
	}
	stop := runUntilReady(t, ctx, "embedding worker", a.RunEmbeddingWorker)
	if got := readyz(); got != http.StatusOK {
		t.Fatalf("/readyz while the worker runs: %d, want 200", got)
	}
	stop()
	if got := readyz(); got != http.StatusServiceUnavailable {
		t.Fatalf("/readyz after the worker stopped: %d, want 503", got)
	}
}

// --pprof serves Go's profiler beside /metrics, and only when asked for.
func TestPprofOnlyWhenAsked(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, on := range []bool{false, true} {
		_, status := metricsApp(t, ctx, "pprof-", Config{NoEmbeddings: true, Pprof: on})
		want := http.StatusNotFound
		if on {
			want = http.StatusOK
		}
		if got := status("/debug/pprof/goroutine?debug=1"); got != want {
			t.Errorf("pprof %v: /debug/pprof/goroutine %d, want %d", on, got, want)
		}
		if got := status("/metrics"); got != http.StatusOK {
			t.Errorf("pprof %v: /metrics %d", on, got)
		}
	}
}
