package bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/livefeed/livefeed/app"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
)

// FloorResult is the peer of phase 1: a trivial goka group that only counts
// events per key (an int64 per livestream in goleveldb) on the same backlog,
// broker, partitions and goka configuration — the floor that goka, sarama and
// the storage set before livefeed does any work.
type FloorResult struct {
	Group        string  `json:"group"`
	Events       int64   `json:"events"`
	Seconds      float64 `json:"seconds"`
	EventsPerSec float64 `json:"events_per_sec"`
	// CPUSeconds and EventsPerCPUSecond as in ThroughputResult.
	CPUSeconds         float64 `json:"cpu_seconds"`
	EventsPerCPUSecond float64 `json:"events_per_cpu_second"`
}

// gokaFloor runs the counting group over the input topics until it has seen
// n events. Startup is excluded as in phase 1: the clock starts at the first
// counted event.
func gokaFloor(ctx context.Context, a *app.App, inputs []string, n int64) (*FloorResult, error) {
	group := goka.Group(a.Topology.Names.Prefix + "floor")
	var count atomic.Int64
	var first atomic.Int64 // unix nanos of the first event
	cb := func(gc goka.Context, _ any) {
		c, _ := gc.Value().(int64)
		gc.SetValue(c + 1)
		if count.Add(1) == 1 {
			first.Store(time.Now().UnixNano())
		}
	}
	var edges []goka.Edge
	for _, t := range inputs {
		edges = append(edges, goka.Input(goka.Stream(t), new(codec.Bytes), cb))
	}
	edges = append(edges, goka.Persist(new(codec.Int64)))
	proc, err := goka.NewProcessor(a.Brokers(), goka.DefineGroup(group, edges...), a.Broker.ProcessorOptions()...)
	if err != nil {
		return nil, fmt.Errorf("creating the floor processor: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cpuStart := processCPU()
	done := make(chan error, 1)
	go func() { done <- proc.Run(ctx) }()
	defer func() { cancel(); <-done }()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for count.Load() < n {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("floor processor: %d of %d events after %v: %w", count.Load(), n, 5*time.Minute, ctx.Err())
		case err := <-done:
			done <- err
			return nil, fmt.Errorf("floor processor stopped: %w", err)
		case <-tick.C:
		}
	}
	span := time.Since(time.Unix(0, first.Load()))
	cpu := processCPU() - cpuStart
	return &FloorResult{Group: string(group), Events: n, Seconds: seconds(span), EventsPerSec: round1(float64(n) / span.Seconds()),
		CPUSeconds: seconds(cpu), EventsPerCPUSecond: perCPUSecond(n, cpu)}, nil
}
