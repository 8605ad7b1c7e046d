package app

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A processor process reports its groups' consumer lag in /readyz and
// /metrics; an embedding-worker process (no processors) does not.
func TestProcessReportsGroupLag(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := New(ctx, Config{Brokers: testBrokers(), DataDir: t.TempDir(), Partitions: 2, NoEmbeddings: true,
		TopicPrefix: "lag-" + time.Now().Format("150405.000000"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
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
	get := func(path string) string {
		resp, err := http.Get("http://" + ln.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if body := get("/readyz"); strings.Contains(body, "lag") {
		t.Fatalf("/readyz before the processors run reports lag: %s", body)
	}
	stop := runUntilReady(t, ctx, "processors", a.RunProcessors)
	defer stop()
	groups := a.processorGroups()
	if len(groups) < 3 {
		t.Fatalf("processor groups %v: want livestream, user and seller at least", groups)
	}
	var rz struct {
		Status string           `json:"status"`
		Lag    map[string]int64 `json:"lag_records"`
		Ago    *float64         `json:"lag_read_seconds_ago"`
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if err := json.Unmarshal([]byte(get("/readyz")), &rz); err != nil {
			t.Fatal(err)
		}
		if len(rz.Lag) == len(groups) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz reports lag for %v, want %v", rz.Lag, groups)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if rz.Status != "ready" || rz.Ago == nil || *rz.Ago > 2*groupLagEvery.Seconds() {
		t.Fatalf("/readyz %+v", rz)
	}
	metrics := get("/metrics")
	for _, g := range groups {
		if _, ok := rz.Lag[g]; !ok {
			t.Errorf("/readyz lacks the lag of %s: %v", g, rz.Lag)
		}
		if want := `livefeed_processor_group_lag_records{group="` + g + `"}`; !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
