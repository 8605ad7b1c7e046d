package bench

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livefeed/livefeed/app"
	"github.com/livefeed/livefeed/broker"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/twmb/franz-go/pkg/kgo"
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
	var fc floorCounter
	var edges []goka.Edge
	for _, t := range inputs {
		edges = append(edges, goka.Input(goka.Stream(t), new(codec.Bytes), func(gc goka.Context, _ any) {
			countPerKey(gc)
			fc.add()
		}))
	}
	edges = append(edges, goka.Persist(new(codec.Int64)))
	return fc.run(ctx, a, string(group), n, goka.DefineGroup(group, edges...))
}

// floorUsers is how many distinct keys the two-hop floor's second group
// sees (the simulator's default user count is of that order).
const floorUsers = 1000

// gokaTwoHopFloor is the shape of livefeed's topology with no work in it:
// a first group counts every input event per key and emits it, unchanged,
// to a topic keyed by a user-like key (one record per event, as the
// livestream group sends one per user event); a second group counts those
// per key. Both write state as plain goka does (a goleveldb write and a
// changelog record per event). n counts the second group's records.
func gokaTwoHopFloor(ctx context.Context, a *app.App, inputs []string, n int64) (*FloorResult, error) {
	prefix := a.Topology.Names.Prefix
	first, second := goka.Group(prefix+"floor-hop1"), goka.Group(prefix+"floor-hop2")
	hop := goka.Stream(prefix + "floor-hop")
	cl, err := kgo.NewClient(kgo.SeedBrokers(a.Brokers()...))
	if err != nil {
		return nil, fmt.Errorf("creating the floor's topic client: %w", err)
	}
	_, err = broker.EnsureTopics(ctx, cl, a.Broker.Replication, []broker.TopicSpec{{Name: string(hop), Partitions: a.Topology.Partitions}})
	cl.Close()
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", hop, err)
	}
	users := make([]string, floorUsers)
	for i := range users {
		users[i] = "u-" + strconv.Itoa(i)
	}
	var edges []goka.Edge
	for _, t := range inputs {
		edges = append(edges, goka.Input(goka.Stream(t), new(codec.Bytes), func(gc goka.Context, msg any) {
			countPerKey(gc)
			gc.Emit(hop, users[gc.Offset()%floorUsers], msg)
		}))
	}
	edges = append(edges, goka.Output(hop, new(codec.Bytes)), goka.Persist(new(codec.Int64)))
	var fc floorCounter
	return fc.run(ctx, a, string(first)+" → "+string(second), n,
		goka.DefineGroup(first, edges...),
		goka.DefineGroup(second, goka.Input(hop, new(codec.Bytes), func(gc goka.Context, _ any) {
			countPerKey(gc)
			fc.add()
		}), goka.Persist(new(codec.Int64))))
}

func countPerKey(gc goka.Context) {
	c, _ := gc.Value().(int64)
	gc.SetValue(c + 1)
}

// floorCounter counts a floor's records and notes when the first came.
type floorCounter struct {
	count atomic.Int64
	first atomic.Int64 // unix nanos of the first record
}

func (fc *floorCounter) add() {
	if fc.count.Add(1) == 1 {
		fc.first.Store(time.Now().UnixNano())
	}
}

// run runs the graphs' processors until n records are counted, and times
// them from the first (startup excluded, as in phase 1).
func (fc *floorCounter) run(ctx context.Context, a *app.App, name string, n int64, graphs ...*goka.GroupGraph) (*FloorResult, error) {
	const limit = 5 * time.Minute
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	// The goka floors create their group tables through sarama's topic
	// manager and produce at once; on Kafka the first produce can race the
	// new partitions' leader election (NOT_LEADER past sarama's retries).
	// Created here, the tables are only used once every broker lists a
	// leader for each partition, as for livefeed's own topics.
	if err := ensureTables(ctx, a, graphs); err != nil {
		return nil, err
	}
	cpuStart := processCPU()
	done := make(chan error, len(graphs))
	for _, g := range graphs {
		// Plain goka with its own client (sarama): what a goka user gets.
		proc, err := goka.NewProcessor(a.Brokers(), g, a.Broker.SaramaProcessorOptions()...)
		if err != nil {
			return nil, fmt.Errorf("creating the floor processor %s: %w", g.Group(), err)
		}
		go func() { done <- proc.Run(ctx) }()
	}
	defer func() {
		cancel()
		for range graphs {
			<-done
		}
	}()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for fc.count.Load() < n {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("floor %s: %d of %d records after %v: %w", name, fc.count.Load(), n, limit, ctx.Err())
		case err := <-done:
			done <- err
			return nil, fmt.Errorf("floor processor of %s stopped: %w", name, err)
		case <-tick.C:
		}
	}
	span := time.Since(time.Unix(0, fc.first.Load()))
	cpu := processCPU() - cpuStart
	return &FloorResult{Group: name, Events: n, Seconds: seconds(span), EventsPerSec: round1(float64(n) / span.Seconds()),
		CPUSeconds: seconds(cpu), EventsPerCPUSecond: perCPUSecond(n, cpu)}, nil
}

// ensureTables creates the graphs' group tables (compacted, one partition
// per input partition) and waits for their leaders.
func ensureTables(ctx context.Context, a *app.App, graphs []*goka.GroupGraph) error {
	specs := make([]broker.TopicSpec, 0, len(graphs))
	for _, g := range graphs {
		specs = append(specs, broker.TopicSpec{Name: string(goka.GroupTable(g.Group())), Partitions: a.Topology.Partitions, Compacted: true})
	}
	cl, err := kgo.NewClient(a.Broker.KgoOpts()...)
	if err != nil {
		return fmt.Errorf("creating the floor's topic client: %w", err)
	}
	defer cl.Close()
	if _, err := broker.EnsureTopics(ctx, cl, a.Broker.Replication, specs); err != nil {
		return fmt.Errorf("creating the floor's tables: %w", err)
	}
	return nil
}

// franzFloor is the transport's ceiling, no goka: one franz-go client in a
// consumer group reads the input topics from the start, counts per key in a
// Go map, produces one record per event to a user-keyed topic (acks=all,
// idempotent, murmur2) and commits after each poll once that poll's records
// are acknowledged. It is what any stream processor on this broker and
// client pays before it keeps state or runs a callback.
func franzFloor(ctx context.Context, a *app.App, inputs []string, n int64) (*FloorResult, error) {
	prefix := a.Topology.Names.Prefix
	group, hop := prefix+"floor-franz", prefix+"floor-franz-hop"
	cl, err := kgo.NewClient(a.Broker.KgoOpts(
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(inputs...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(),
		kgo.RecordPartitioner(broker.Partitioner()), kgo.ProducerLinger(5*time.Millisecond))...)
	if err != nil {
		return nil, fmt.Errorf("creating the franz-go floor's client: %w", err)
	}
	defer cl.Close()
	if _, err := broker.EnsureTopics(ctx, cl, a.Broker.Replication, []broker.TopicSpec{{Name: hop, Partitions: a.Topology.Partitions}}); err != nil {
		return nil, fmt.Errorf("creating %s: %w", hop, err)
	}
	users := make([]string, floorUsers)
	for i := range users {
		users[i] = "u-" + strconv.Itoa(i)
	}
	const limit = 5 * time.Minute
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	counts := map[string]int64{}
	var seen int64
	var first time.Time
	cpuStart := processCPU()
	for seen < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("franz-go floor: %d of %d records after %v: %w", seen, n, limit, err)
		}
		if err := fs.Err0(); err != nil {
			return nil, fmt.Errorf("franz-go floor: fetching: %w", err)
		}
		if seen == 0 && !fs.Empty() {
			first = time.Now()
		}
		var produced sync.WaitGroup
		var perr atomic.Value
		fs.EachRecord(func(r *kgo.Record) {
			counts[string(r.Key)]++
			seen++
			produced.Add(1)
			cl.Produce(ctx, &kgo.Record{Topic: hop, Key: []byte(users[r.Offset%floorUsers]), Value: r.Value},
				func(_ *kgo.Record, err error) {
					if err != nil {
						perr.Store(err)
					}
					produced.Done()
				})
		})
		produced.Wait()
		if err, _ := perr.Load().(error); err != nil {
			return nil, fmt.Errorf("franz-go floor: producing: %w", err)
		}
		if err := cl.CommitUncommittedOffsets(ctx); err != nil {
			return nil, fmt.Errorf("franz-go floor: committing: %w", err)
		}
	}
	span := time.Since(first)
	cpu := processCPU() - cpuStart
	return &FloorResult{Group: group, Events: n, Seconds: seconds(span), EventsPerSec: round1(float64(n) / span.Seconds()),
		CPUSeconds: seconds(cpu), EventsPerCPUSecond: perCPUSecond(n, cpu)}, nil
}
