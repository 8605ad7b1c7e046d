package serving

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Staleness of the serving views.
//
// A view serves the last state it applied; when it falls behind its table
// (a broker outage, a slow replica, a partition being re-led) it keeps
// answering from that state. How old that state is:
//
//	staleness(view) = now − T, T the latest time at which the view is known
//	to have held everything its table topic had at T,
//
// per partition, the view's staleness being the largest over its
// partitions. The end offset of every partition of the table topic is read
// from Kafka every StalenessPoll (ListOffsets, with the time the read
// started); a partition is known current as of that time once the view has
// applied every record below that end offset (at once, or when the view's
// update callback later applies the last of them). So:
//   - a view that keeps up has a staleness between 0 and about one poll
//     interval, however busy its table is;
//   - a view that cannot fetch (the partition's leader is down, the
//     consumer is reconnecting) or is behind grows by one second per second
//     from the last time it was current;
//   - while the end offsets cannot be read (brokers unreachable) staleness
//     also grows: being current cannot be confirmed.
//
// It is serving's own delay behind the tables. A stall upstream (the
// processors not writing the tables) leaves the views current with tables
// that do not move: the age of the newest applied record (its Kafka
// timestamp, i.e. when a processor wrote it) is reported beside it, and
// the processors report their own consumer lag.

// DefaultStalenessPoll is how often the tables' end offsets are read.
const DefaultStalenessPoll = 500 * time.Millisecond

// DefaultStaleAfter is the staleness above which a view is reported stale.
const DefaultStaleAfter = 5 * time.Second

// ViewStaleness is one view's staleness (in /readyz).
type ViewStaleness struct {
	Table string `json:"table"`
	// State is the goka view's state: "running", "catching_up",
	// "connecting", "initializing" or "idle".
	State string `json:"state"`
	// StalenessSeconds: now minus the latest time the view is known to
	// have held everything its table had then (see above).
	StalenessSeconds float64 `json:"staleness_seconds"`
	// LagRecords: table records not yet applied, as of the last end
	// offsets read.
	LagRecords int64 `json:"lag_records"`
	// NewestRecordAgeSeconds: now minus the Kafka timestamp of the newest
	// record the view applied (when a processor last wrote a key the view
	// has); -1 if it applied none.
	NewestRecordAgeSeconds float64 `json:"newest_record_age_seconds"`
	// Stale: StalenessSeconds is above the stale-after threshold.
	Stale bool `json:"stale"`
}

// partStaleness is what a view tracker knows about one partition.
type partStaleness struct {
	applied int64     // offset after the last record the view applied
	newest  time.Time // Kafka timestamp of the newest applied record
	end     int64     // the table partition's end offset as read at endAt; -1: never read
	endAt   time.Time // when that read started
	current time.Time // the view held everything the table had at this time; zero: never known
	seeded  bool      // applied was raised to the recovery high watermark
}

// viewTracker tracks one view's staleness. Its methods are safe for
// concurrent use: the view's update callback, the end-offset poller and the
// HTTP handlers call them.
type viewTracker struct {
	table string
	start time.Time // before anything was known
	mu    sync.Mutex
	parts []partStaleness
}

func newViewTracker(table string, partitions int, start time.Time) *viewTracker {
	t := &viewTracker{table: table, start: start, parts: make([]partStaleness, partitions)}
	for i := range t.parts {
		t.parts[i].end = -1
	}
	return t
}

func (t *viewTracker) part(p int32) *partStaleness {
	if p < 0 || int(p) >= len(t.parts) {
		return nil
	}
	return &t.parts[p]
}

// checkCurrent marks p current as of its last end-offset read if the view
// has applied everything below it.
func (p *partStaleness) checkCurrent() {
	if p.end >= 0 && p.applied >= p.end && p.endAt.After(p.current) {
		p.current = p.endAt
	}
}

// applied records that the view applied the record at offset of partition
// p, written at ts.
func (t *viewTracker) applied(partition int32, offset int64, ts time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.part(partition)
	if p == nil {
		return
	}
	if offset+1 > p.applied {
		p.applied = offset + 1
	}
	if ts.After(p.newest) {
		p.newest = ts
	}
	p.checkCurrent()
}

// recovered records that partition's recovery read the table up to hwm
// (goka's recovery stops at the high watermark it read when it started):
// a view restored from local storage applies no record for what it
// already has.
func (t *viewTracker) recovered(partition int32, hwm int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.part(partition)
	if p == nil || p.seeded {
		return
	}
	p.seeded = true
	if hwm > p.applied {
		p.applied = hwm
	}
	p.checkCurrent()
}

// observedEnd records the end offset of partition read at at (when the
// read started).
func (t *viewTracker) observedEnd(partition int32, end int64, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.part(partition)
	if p == nil || at.Before(p.endAt) {
		return
	}
	p.end, p.endAt = end, at
	p.checkCurrent()
}

// unseeded lists the partitions not yet marked recovered.
func (t *viewTracker) unseeded() []int32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []int32
	for i := range t.parts {
		if !t.parts[i].seeded {
			out = append(out, int32(i))
		}
	}
	return out
}

// snapshot is the view's staleness at now.
func (t *viewTracker) snapshot(now time.Time, staleAfter time.Duration) ViewStaleness {
	t.mu.Lock()
	defer t.mu.Unlock()
	vs := ViewStaleness{Table: t.table, NewestRecordAgeSeconds: -1}
	var worst time.Duration
	var newest time.Time
	for i := range t.parts {
		p := &t.parts[i]
		since := p.current
		if since.IsZero() {
			since = t.start
		}
		if d := now.Sub(since); d > worst {
			worst = d
		}
		if p.end > p.applied {
			vs.LagRecords += p.end - p.applied
		}
		if p.newest.After(newest) {
			newest = p.newest
		}
	}
	vs.StalenessSeconds = seconds(worst)
	vs.Stale = staleAfter > 0 && worst > staleAfter
	if !newest.IsZero() {
		vs.NewestRecordAgeSeconds = seconds(now.Sub(newest))
	}
	return vs
}

func seconds(d time.Duration) float64 {
	if d < 0 {
		d = 0
	}
	return math.Round(d.Seconds()*1000) / 1000
}

// trackedView is a view and its tracker.
type trackedView struct {
	view    *goka.View
	tracker *viewTracker
}

// trackingCallback applies a table update like goka's default and records
// it for staleness.
func trackingCallback(t *viewTracker) goka.UpdateCallback {
	return func(ctx goka.UpdateContext, st storage.Storage, key string, value []byte) error {
		if err := goka.DefaultUpdate(ctx, st, key, value); err != nil {
			return err
		}
		t.applied(ctx.Partition(), ctx.Offset(), ctx.Timestamp())
		return nil
	}
}

// viewState names a goka view state for /readyz.
func viewState(s goka.ViewState) string {
	switch s {
	case goka.ViewStateIdle:
		return "idle"
	case goka.ViewStateInitializing:
		return "initializing"
	case goka.ViewStateConnecting:
		return "connecting"
	case goka.ViewStateCatchUp:
		return "catching_up"
	case goka.ViewStateRunning:
		return "running"
	default:
		return fmt.Sprintf("unknown(%d)", int(s))
	}
}

// Staleness reports every view's staleness now, sorted by table.
func (s *Service) Staleness() []ViewStaleness {
	now := s.now()
	out := make([]ViewStaleness, 0, len(s.tracked))
	for _, tv := range s.tracked {
		vs := tv.tracker.snapshot(now, s.cfg.StaleAfter)
		vs.State = viewState(tv.view.CurrentState())
		out = append(out, vs)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Table < out[j].Table })
	return out
}

// pollStaleness reads the tables' end offsets every StalenessPoll until ctx
// is done, and marks partitions recovered once their view is.
func (s *Service) pollStaleness(ctx context.Context) error {
	cl, err := kgo.NewClient(s.cfg.Broker.KgoOpts(kgo.MetadataMinAge(time.Second))...)
	if err != nil {
		return fmt.Errorf("creating the staleness client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	topics := make([]string, 0, len(s.tracked))
	byTopic := map[string]*trackedView{}
	for _, tv := range s.tracked {
		topics = append(topics, tv.tracker.table)
		byTopic[tv.tracker.table] = tv
	}
	t := time.NewTicker(s.cfg.StalenessPoll)
	defer t.Stop()
	for {
		s.seedRecovered(ctx)
		s.readEnds(ctx, adm, topics, byTopic)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// readEnds reads the end offsets once. Partitions whose offsets cannot be
// read now (no leader, broker unreachable) keep their last reading: their
// staleness grows.
func (s *Service) readEnds(ctx context.Context, adm *kadm.Client, topics []string, byTopic map[string]*trackedView) {
	at := s.now()
	rctx, cancel := context.WithTimeout(ctx, max(2*s.cfg.StalenessPoll, 2*time.Second))
	defer cancel()
	// kadm returns what it could read beside the error of the rest.
	listed, err := adm.ListEndOffsets(rctx, topics...)
	if err != nil && ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
		s.log.Debug("reading the tables' end offsets", "err", err)
	}
	listed.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			return
		}
		if tv := byTopic[o.Topic]; tv != nil {
			tv.tracker.observedEnd(o.Partition, o.Offset, at)
		}
	})
}

// seedRecovered marks the partitions of recovered views with their
// recovery high watermark (once each).
func (s *Service) seedRecovered(ctx context.Context) {
	for _, tv := range s.tracked {
		parts := tv.tracker.unseeded()
		if len(parts) == 0 || !tv.view.Recovered() {
			continue
		}
		st := tv.view.Stats(ctx)
		for _, p := range parts {
			if ts := st.Partitions[p]; ts != nil && ts.Status == goka.PartitionRunning && ts.Recovery != nil {
				tv.tracker.recovered(p, ts.Recovery.Hwm)
			}
		}
	}
}

// readiness is /readyz: 503 "recovering" until every view has recovered
// once; then 200 while the views run, however stale (a broker outage makes
// every replica equally stale, and taking them all out of the load balancer
// would fail the feed instead of serving slightly old results), unless
// maxStaleness > 0 and a view is staler than that (503 "stale"). The body
// reports every view's staleness either way.
func readiness(recovered bool, indexed int, views []ViewStaleness, maxStaleness time.Duration) (int, map[string]any) {
	if !recovered {
		return http.StatusServiceUnavailable, map[string]any{"status": "recovering", "views": views}
	}
	var worst float64
	stale := false
	for _, v := range views {
		worst = math.Max(worst, v.StalenessSeconds)
		stale = stale || v.Stale
	}
	body := map[string]any{"status": "ready", "indexed_streams": indexed, "stale": stale,
		"staleness_seconds": worst, "views": views}
	if maxStaleness > 0 && worst > maxStaleness.Seconds() {
		body["status"] = "stale"
		body["max_staleness_seconds"] = maxStaleness.Seconds()
		return http.StatusServiceUnavailable, body
	}
	return http.StatusOK, body
}

// stalenessCollector exports the views' staleness at scrape time.
type stalenessCollector struct {
	s                       *Service
	staleness, lag, age, up *prometheus.Desc
}

func newStalenessCollector(s *Service) *stalenessCollector {
	return &stalenessCollector{
		s: s,
		staleness: prometheus.NewDesc("livefeed_serving_staleness_seconds",
			"Now minus the latest time the serving view is known to have held everything its table had then (per table; the largest over its partitions).",
			[]string{"table"}, nil),
		lag: prometheus.NewDesc("livefeed_serving_view_lag_records",
			"Table records the serving view has not applied yet, as of the last end offsets read.",
			[]string{"table"}, nil),
		age: prometheus.NewDesc("livefeed_serving_newest_record_age_seconds",
			"Now minus the Kafka timestamp of the newest table record the serving view applied.",
			[]string{"table"}, nil),
		up: prometheus.NewDesc("livefeed_serving_view_running",
			"1 if the serving view is running (caught up once and fetching), 0 if recovering or reconnecting.",
			[]string{"table"}, nil),
	}
}

func (c *stalenessCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.staleness
	ch <- c.lag
	ch <- c.age
	ch <- c.up
}

func (c *stalenessCollector) Collect(ch chan<- prometheus.Metric) {
	for _, v := range c.s.Staleness() {
		ch <- prometheus.MustNewConstMetric(c.staleness, prometheus.GaugeValue, v.StalenessSeconds, v.Table)
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(v.LagRecords), v.Table)
		if v.NewestRecordAgeSeconds >= 0 {
			ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, v.NewestRecordAgeSeconds, v.Table)
		}
		running := 0.0
		if v.State == "running" {
			running = 1
		}
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, running, v.Table)
	}
}
