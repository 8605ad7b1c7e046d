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

// A processor-only process (livefeed process) answers /readyz with 503 until
// its processors run, 200 while they do, 503 again once they stopped: the
// Kubernetes readiness probe and disruption budget of deploy/k8s rely on it.
func TestProcessReadyz(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := New(ctx, Config{
		Brokers: testBrokers(), DataDir: t.TempDir(), Partitions: 2, NoEmbeddings: true,
		TopicPrefix: "readyz-" + time.Now().Format("150405.000000"),
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.CreateTopics(ctx); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srvErr := make(chan error, 1)
	go func() { srvErr <- a.ServeMetrics(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-srvErr; err != nil {
			t.Error(err)
		}
	}()
	status := func(path string) int {
		t.Helper()
		resp, err := http.Get("http://" + ln.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status("/healthz"); got != http.StatusOK {
		t.Fatalf("/healthz %d", got)
	}
	if got := status("/readyz"); got != http.StatusServiceUnavailable {
		t.Fatalf("/readyz before the processors run: %d, want 503", got)
	}

	pctx, stopProc := context.WithCancel(ctx)
	ready := make(chan struct{})
	procErr := make(chan error, 1)
	go func() { procErr <- a.RunProcessors(pctx, ready) }()
	select {
	case <-ready:
	case err := <-procErr:
		t.Fatalf("processors stopped: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("processors not ready in 60s")
	}
	if got := status("/readyz"); got != http.StatusOK {
		t.Fatalf("/readyz while the processors run: %d, want 200", got)
	}
	stopProc()
	<-procErr
	if got := status("/readyz"); got != http.StatusServiceUnavailable {
		t.Fatalf("/readyz after the processors stopped: %d, want 503", got)
	}
}

// `livefeed embed` (the embedding worker alone) is ready once the worker
// has joined its group, and not ready after it stopped.
func TestEmbedReadyz(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := New(ctx, Config{
		Brokers: testBrokers(), DataDir: t.TempDir(), Partitions: 2,
		TopicPrefix: "readyz-embed-" + time.Now().Format("150405.000000"),
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.CreateTopics(ctx); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srvErr := make(chan error, 1)
	go func() { srvErr <- a.ServeMetrics(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-srvErr; err != nil {
			t.Error(err)
		}
	}()
	readyz := func() int {
		t.Helper()
		resp, err := http.Get("http://" + ln.Addr().String() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := readyz(); got != http.StatusServiceUnavailable {
		t.Fatalf("/readyz before the worker runs: %d, want 503", got)
	}
	wctx, stopWorker := context.WithCancel(ctx)
	ready := make(chan struct{})
	workerErr := make(chan error, 1)
	go func() { workerErr <- a.RunEmbeddingWorker(wctx, ready) }()
	select {
	case <-ready:
	case err := <-workerErr:
		t.Fatalf("worker stopped: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("worker not ready in 60s")
	}
	if got := readyz(); got != http.StatusOK {
		t.Fatalf("/readyz while the worker runs: %d, want 200", got)
	}
	stopWorker()
	<-workerErr
	if got := readyz(); got != http.StatusServiceUnavailable {
		t.Fatalf("/readyz after the worker stopped: %d, want 503", got)
	}
}
