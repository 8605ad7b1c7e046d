package serving

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestViewTrackerStaleness(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	tr := newViewTracker("tbl", 2, t0)
	snap := func(s float64) ViewStaleness { return tr.snapshot(at(s), 5*time.Second) }

	// Nothing known yet: stale since the tracker started.
	if got := snap(2); got.StalenessSeconds != 2 || got.LagRecords != 0 || got.NewestRecordAgeSeconds != -1 || got.Stale {
		t.Fatalf("before any reading: %+v", got)
	}
	// Partition 0 has 3 records, partition 1 is empty, read at 1s.
	tr.observedEnd(0, 3, at(1))
	tr.observedEnd(1, 0, at(1))
	if got := snap(2); got.StalenessSeconds != 2 || got.LagRecords != 3 {
		t.Fatalf("partition 0 behind: %+v", got)
	}
	// The view applies them (written at 0.5s, 0.7s, 0.9s); the last one
	// makes partition 0 current as of the reading (1s), not as of now.
	tr.applied(0, 0, at(0.5))
	tr.applied(0, 2, at(0.9))
	tr.applied(0, 1, at(0.7)) // out of order: neither offset nor time goes back
	if got := snap(2.5); got.StalenessSeconds != 1.5 || got.LagRecords != 0 || got.NewestRecordAgeSeconds != 1.6 {
		t.Fatalf("caught up: %+v", got)
	}
	// A later reading confirms both partitions again.
	tr.observedEnd(0, 3, at(3))
	tr.observedEnd(1, 0, at(3))
	if got := snap(3.2); got.StalenessSeconds != 0.2 {
		t.Fatalf("confirmed at 3s: %+v", got)
	}
	// An older reading arriving late changes nothing.
	tr.observedEnd(0, 1, at(2))
	if got := snap(3.2); got.StalenessSeconds != 0.2 || got.LagRecords != 0 {
		t.Fatalf("late reading: %+v", got)
	}
	// Partition 1 gets records the view cannot fetch (its leader is down):
	// staleness grows from the last confirmation, lag is counted.
	tr.observedEnd(0, 3, at(4))
	tr.observedEnd(1, 50, at(4))
	if got := snap(9.5); got.StalenessSeconds != 6.5 || got.LagRecords != 50 || !got.Stale {
		t.Fatalf("partition 1 behind: %+v", got)
	}
	// No reading at all (brokers unreachable): staleness keeps growing.
	if got := snap(20); got.StalenessSeconds != 17 {
		t.Fatalf("no readings: %+v", got)
	}
	// The view catches up: current as of the last reading (4s).
	tr.applied(1, 49, at(3.9))
	if got := snap(20); got.StalenessSeconds != 16 || got.LagRecords != 0 {
		t.Fatalf("caught up after the outage: %+v", got)
	}
	tr.observedEnd(0, 3, at(20))
	tr.observedEnd(1, 50, at(20))
	if got := snap(20.1); got.StalenessSeconds != 0.1 || got.Stale {
		t.Fatalf("after the next reading: %+v", got)
	}
}

// A view restored from local storage applies no record for what it
// already had: its recovery high watermark counts as applied, once.
func TestViewTrackerRecoveredFromLocalState(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	tr := newViewTracker("tbl", 1, t0)
	tr.observedEnd(0, 1000, t0.Add(time.Second))
	if got := tr.snapshot(t0.Add(2*time.Second), 0); got.LagRecords != 1000 || got.StalenessSeconds != 2 || got.Stale {
		t.Fatalf("before recovery: %+v (stale-after 0: never stale)", got)
	}
	tr.recovered(0, 1000)
	if got := tr.snapshot(t0.Add(2*time.Second), 0); got.LagRecords != 0 || got.StalenessSeconds != 1 {
		t.Fatalf("recovered: %+v", got)
	}
	if len(tr.unseeded()) != 0 {
		t.Fatal("partition 0 still unseeded")
	}
	tr.recovered(0, 5) // only once; never lowers what was applied
	tr.observedEnd(0, 1000, t0.Add(3*time.Second))
	if got := tr.snapshot(t0.Add(3*time.Second), 0); got.LagRecords != 0 || got.StalenessSeconds != 0 {
		t.Fatalf("after a second recovered call: %+v", got)
	}
}

func TestReadiness(t *testing.T) {
	fresh := ViewStaleness{Table: "a", State: "running", StalenessSeconds: 0.3}
	stale := ViewStaleness{Table: "b", State: "connecting", StalenessSeconds: 12, Stale: true}
	for _, c := range []struct {
		name       string
		recovered  bool
		views      []ViewStaleness
		max        time.Duration
		code       int
		status     string
		stale      bool
		worstStale float64
	}{
		{"recovering", false, []ViewStaleness{fresh}, 0, 503, "recovering", false, 0},
		{"fresh", true, []ViewStaleness{fresh}, 0, 200, "ready", false, 0.3},
		{"stale stays ready", true, []ViewStaleness{fresh, stale}, 0, 200, "ready", true, 12},
		{"stale within max", true, []ViewStaleness{fresh, stale}, 30 * time.Second, 200, "ready", true, 12},
		{"staler than max", true, []ViewStaleness{fresh, stale}, 10 * time.Second, 503, "stale", true, 12},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, body := readiness(c.recovered, 7, c.views, c.max)
			if code != c.code || body["status"] != c.status {
				t.Fatalf("got %d %v, want %d %s", code, body, c.code, c.status)
			}
			if !c.recovered {
				return
			}
			if body["stale"] != c.stale || body["staleness_seconds"] != c.worstStale || body["indexed_streams"] != 7 {
				t.Fatalf("body %v", body)
			}
		})
	}
}

// On a running service, /readyz and /metrics report every view's
// staleness: near zero while the end offsets are read, growing once they
// are not (here: a poll period longer than the test), and --max-staleness
// then fails readiness.
func TestServiceReportsStaleness(t *testing.T) {
	env := startEnv(t, nil)
	env.putStreams(t, stream{id: "ls-1", seller: "s-1", category: "c", sim: 0.9})
	env.putUser(t, "u-1")

	var rz struct {
		Status           string          `json:"status"`
		Stale            bool            `json:"stale"`
		StalenessSeconds float64         `json:"staleness_seconds"`
		Views            []ViewStaleness `json:"views"`
	}
	// Both tables have a record the views applied, and the poller confirms
	// them current.
	waitFor(t, "views confirmed current", func() bool {
		if env.do(t, call{path: "/readyz"}, &rz) != http.StatusOK || len(rz.Views) != 2 {
			return false
		}
		for _, v := range rz.Views {
			if v.LagRecords != 0 || v.StalenessSeconds > 1.5 || v.NewestRecordAgeSeconds < 0 || v.State != "running" {
				return false
			}
		}
		return true
	})
	if rz.Status != "ready" || rz.Stale || rz.Views[0].Table != testLSTable || rz.Views[1].Table != testUserTable {
		t.Fatalf("/readyz %+v", rz)
	}
	resp, err := http.Get(env.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`livefeed_serving_staleness_seconds{table="` + testLSTable + `"}`,
		`livefeed_serving_staleness_seconds{table="` + testUserTable + `"}`,
		`livefeed_serving_view_lag_records{table="` + testUserTable + `"} 0`,
		`livefeed_serving_newest_record_age_seconds{table="` + testLSTable + `"}`,
		`livefeed_serving_view_running{table="` + testLSTable + `"} 1`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// Without readings staleness grows; past --max-staleness the replica
	// reports itself not ready.
	slow := startEnv(t, func(c *Config) {
		c.StalenessPoll = time.Hour
		c.StaleAfter = 300 * time.Millisecond
		c.MaxStaleness = 600 * time.Millisecond
	})
	waitFor(t, "staler than --max-staleness", func() bool {
		return slow.do(t, call{path: "/readyz"}, &rz) == http.StatusServiceUnavailable
	})
	if rz.Status != "stale" || !rz.Stale || rz.StalenessSeconds <= 0.6 {
		t.Fatalf("/readyz %+v", rz)
	}
}
