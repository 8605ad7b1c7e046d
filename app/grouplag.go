package app

import (
	"context"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
)

// groupLagEvery is how often a processor process reads its groups' lag.
const groupLagEvery = 5 * time.Second

// groupLag is the consumer lag of the process's processor groups (records
// between each group's committed offsets and the end of its input
// partitions, summed), read in the background by ServeMetrics: the
// processors' own staleness, reported in /readyz and /metrics. Goka commits
// about once a second, so a group that keeps up shows about a second of
// input.
type groupLag struct {
	gauge *prometheus.GaugeVec
	mu    sync.Mutex
	lags  map[string]int64
	at    time.Time // the last reading
	err   error     // of the last attempt
}

func newGroupLag(reg prometheus.Registerer) *groupLag {
	g := &groupLag{gauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "livefeed_processor_group_lag_records",
		Help: "Input records not yet committed by a processor group (sum over its input partitions), read every 5s by `livefeed process`.",
	}, []string{"group"})}
	if reg != nil {
		reg.MustRegister(g.gauge)
	}
	return g
}

// processorGroups are the consumer groups of the topology's processors.
func (a *App) processorGroups() []string {
	n := a.Topology.Names
	seen := map[string]bool{}
	var out []string
	for _, g := range append([]string{string(n.LivestreamGroup()), string(n.UserGroup())}, a.entityGroups()...) {
		if !seen[g] {
			seen[g] = true
			out = append(out, g)
		}
	}
	sort.Strings(out)
	return out
}

func (a *App) entityGroups() []string {
	var out []string
	for _, e := range a.Topology.Entities {
		out = append(out, string(a.Topology.Names.EntityGroup(e.Name)))
	}
	return out
}

// read reads the groups' lag once.
func (g *groupLag) read(ctx context.Context, adm *kadm.Client, groups []string) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	lags, err := adm.Lag(ctx, groups...)
	if err == nil {
		err = lags.Error()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil {
		g.err = fmt.Errorf("reading the groups' lag: %w", err)
		return
	}
	g.err = nil
	g.at = time.Now()
	g.lags = map[string]int64{}
	lags.Each(func(l kadm.DescribedGroupLag) {
		g.lags[l.Group] = l.Lag.Total()
		g.gauge.WithLabelValues(l.Group).Set(float64(l.Lag.Total()))
	})
}

// run reads the lag every groupLagEvery until ctx is done.
func (g *groupLag) run(ctx context.Context, a *App) {
	adm, done, err := a.admin()
	if err != nil {
		g.mu.Lock()
		g.err = err
		g.mu.Unlock()
		return
	}
	defer done()
	groups := a.processorGroups()
	t := time.NewTicker(groupLagEvery)
	defer t.Stop()
	for {
		g.read(ctx, adm, groups)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// report is the lag part of /readyz: lag per group, the age of the reading
// and the last error, if any.
func (g *groupLag) report() map[string]any {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[string]any{}
	if !g.at.IsZero() {
		out["lag_records"] = g.lags
		out["lag_read_seconds_ago"] = math.Round(time.Since(g.at).Seconds()*1000) / 1000
	}
	if g.err != nil {
		out["lag_error"] = g.err.Error()
	}
	return out
}

// watchGroupLag reads the processor groups' lag (run) from the moment this
// process runs the processors until ctx is done; in a process that never
// runs them (`livefeed serve`) it only waits for ctx.
func (a *App) watchGroupLag(ctx context.Context) {
	for !a.runsProcessors.Load() {
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	a.groupLag.run(ctx, a)
}
