// Package backfill computes the features a definitions file adds from the
// retained history of their group's input topics, and hands each key's
// result to the group, which merges it into the key's state (see
// docs/ARCHITECTURE.md, "Backfill").
//
// Per partition of a group, a compacted state topic holds a Catalog: the
// features the partition's state already computes, and its backfill runs.
// Before the group's processor starts, Prepare compares the definitions
// with the catalog: the features it lacks are new. Their live values start
// at the split, the input partitions' end offsets before the processor
// starts (Live gives the callbacks the features to apply to a record
// before it, handled again after a crash); a Run replays each input topic
// of the partition from the offset of (now − the new features' reach) up
// to the split through a features.Set of the new features only, then
// writes each key's state to the data topic (co-partitioned, an input of
// the group) followed by a done record. The group merges a key's record once (features.Set
// MergeBackfill) in its own callback: its state keeps one writer. Live and
// backfilled events are disjoint by offset, so nothing counts twice.
package backfill

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livefeed/livefeed/features"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Record is a value on the data topic: a key's warming mark (Warm, as the
// replay first meets the key), its backfilled feature state
// (features.State's binary encoding), or the run's done marker (key "").
type Record struct {
	Run      string   `json:"run"`
	Features []string `json:"features,omitempty"`
	Warm     bool     `json:"warm,omitempty"`
	State    []byte   `json:"state,omitempty"`
	Done     bool     `json:"done,omitempty"`
}

// Run is one backfill of one partition.
type Run struct {
	ID        string   `json:"id"`
	Partition int32    `json:"partition"`
	Features  []string `json:"features"`
	// From is the first offset replayed per input topic, To the split:
	// the first offset the live path computed the features from.
	From map[string]int64 `json:"from"`
	To   map[string]int64 `json:"to"`
	// At is how far the replay got per topic (the next offset), Replayed
	// the records replayed, Keys the keys handed to the group.
	At       map[string]int64 `json:"at,omitempty"`
	Replayed int64            `json:"replayed"`
	Keys     int64            `json:"keys,omitempty"`
	Started  time.Time        `json:"started"`
	Finished time.Time        `json:"finished,omitzero"`
	Done     bool             `json:"done,omitempty"`
	Error    string           `json:"error,omitempty"`
}

// Remaining is the number of records left to replay.
func (r *Run) Remaining() int64 {
	var n int64
	for t, to := range r.To {
		at, ok := r.At[t]
		if !ok {
			at = r.From[t]
		}
		n += max(0, to-at)
	}
	return n
}

// Total is the number of records the run replays.
func (r *Run) Total() int64 {
	var n int64
	for t, to := range r.To {
		n += max(0, to-r.From[t])
	}
	return n
}

// Catalog is a partition's record on the state topic.
type Catalog struct {
	Group     string   `json:"group"`
	Partition int32    `json:"partition"`
	Features  []string `json:"features"`
	// Runs are the partition's backfills, oldest first (the last
	// keepRuns).
	Runs []Run `json:"runs,omitempty"`
}

const keepRuns = 8

// Replay folds input records into per-key feature states: the group's own
// decoding and event handling (processors/livestream, processors/entity),
// for the new features only.
type Replay interface {
	// Apply folds one record of an input topic (its name without the
	// deployment prefix) into its key's state.
	Apply(ctx context.Context, topic string, rec *kgo.Record)
	// States yields every key's feature state after the replay.
	States(yield func(key string, st *features.State) bool)
}

// Options configure a Coordinator.
type Options struct {
	// Client are the franz-go options for the cluster (broker.Config.KgoOpts).
	Client []kgo.Opt
	// Group is the goka group whose committed offsets are the split.
	Group string
	// Inputs are the group's input topics, with the deployment prefix;
	// Prefix is stripped from them for Replay.Apply.
	Inputs []string
	Prefix string
	// Topic is the data topic (an input of the group, Partitions
	// partitions); StateTopic the compacted catalog topic.
	Topic      string
	StateTopic string
	Partitions int32
	// Features are the group's features; NewReplay builds a Replay for
	// a subset of them.
	Features  *features.Set
	NewReplay func(*features.Set) Replay
	// Concurrency is how many partitions replay at once (default 1: the
	// backfill shares the machine with the live path).
	Concurrency int
	// ProgressEvery is how often a run's progress is written to the
	// catalog (default 2s).
	ProgressEvery time.Duration
	Metrics       *Metrics
	Logger        *slog.Logger
	// Now is the wall clock (default time.Now).
	Now func() time.Time
}

func (o *Options) defaults() error {
	if o.Group == "" || o.Topic == "" || o.StateTopic == "" || len(o.Inputs) == 0 || o.Partitions <= 0 {
		return errors.New("backfill: group, topics and partitions required")
	}
	if o.Features == nil || o.NewReplay == nil {
		return errors.New("backfill: features and NewReplay required")
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 1
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = 2 * time.Second
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// Active is a run whose merge the group has not seen finish: its features
// are warming up on the partition's keys.
type Active struct {
	ID  string
	Set *features.Set // the run's features
}

// Coordinator owns a group's backfills: Prepare before the group's
// processor starts, then Run until the context ends; the group's callbacks
// read Active and report Finish.
type Coordinator struct {
	o        Options
	mu       sync.Mutex
	catalogs map[int32]*Catalog
	active   []atomic.Pointer[[]Active] // per partition, immutable slices
	pending  []*Run                     // runs to replay
	prepared bool
	// splits are every run's split per partition, written by Prepare and
	// read-only after it; live caches the feature sets Live returns.
	splits [][]split
	live   sync.Map // string (run ids) → *features.Set
}

type split struct {
	id    string
	to    map[string]int64
	names []string
}

// New builds a coordinator.
func New(o Options) (*Coordinator, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	return &Coordinator{o: o, catalogs: map[int32]*Catalog{}, active: make([]atomic.Pointer[[]Active], o.Partitions),
		splits: make([][]split, o.Partitions)}, nil
}

// Active lists partition p's runs still warming up (nil: none). Safe
// from any goroutine; it does not allocate.
func (c *Coordinator) Active(p int32) []Active {
	if c == nil || p < 0 || int(p) >= len(c.active) {
		return nil
	}
	if a := c.active[p].Load(); a != nil {
		return *a
	}
	return nil
}

// IsActive reports whether run id is still warming up on partition p.
func (c *Coordinator) IsActive(p int32, id string) bool {
	for _, a := range c.Active(p) {
		if a.ID == id {
			return true
		}
	}
	return false
}

// Finish is the group's report that it consumed run id's done record on
// partition p: every key's merge is in its state.
func (c *Coordinator) Finish(p int32, id string) {
	if c == nil || p < 0 || int(p) >= len(c.active) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cur := c.Active(p)
	next := slices.DeleteFunc(slices.Clone(cur), func(a Active) bool { return a.ID == id })
	if len(next) != len(cur) {
		c.active[p].Store(&next)
		c.o.Metrics.Warming.WithLabelValues(c.o.Group).Sub(1)
	}
}

// Set returns the features of run id (nil if it names none of the group's
// current features), for the group's merge.
func (c *Coordinator) Set(names []string) *features.Set {
	sub, _ := c.o.Features.Subset(names)
	if sub.Len() == 0 {
		return nil
	}
	return sub
}

// runID names a run by its group, partition, features and split: the same
// run after a restart has the same id, so its records merge once.
func runID(group string, p int32, names []string, to map[string]int64) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%d\x00", group, p)
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00", n)
	}
	topics := make([]string, 0, len(to))
	for t := range to {
		topics = append(topics, t)
	}
	slices.Sort(topics)
	for _, t := range topics {
		fmt.Fprintf(h, "%s=%d\x00", t, to[t])
	}
	return "bf-" + hex.EncodeToString(h.Sum(nil)[:8])
}

// Prepare reads the catalogs, the group's committed offsets and the
// input partitions' ends, finds the new features of every partition and
// records a run for them, split at the ends. Call it before the group's
// processor starts: no record at or after the split is processed before.
func (c *Coordinator) Prepare(ctx context.Context) error {
	cl, err := kgo.NewClient(c.o.Client...)
	if err != nil {
		return fmt.Errorf("creating kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	catalogs, err := ReadCatalogs(ctx, c.o.Client, c.o.StateTopic)
	if err != nil {
		return err
	}
	var committed kadm.OffsetResponses
	err = retryKafka(ctx, func() error {
		var err error
		committed, err = adm.FetchOffsets(ctx, c.o.Group)
		if errors.Is(err, kerr.GroupIDNotFound) {
			committed, err = nil, nil // a new group: nothing committed
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("fetching the offsets of group %s: %w", c.o.Group, err)
	}
	var starts, ends kadm.ListedOffsets
	err = retryKafka(ctx, func() error {
		var err error
		if starts, err = adm.ListStartOffsets(ctx, c.o.Inputs...); err == nil {
			err = starts.Error()
		}
		if err == nil {
			if ends, err = adm.ListEndOffsets(ctx, c.o.Inputs...); err == nil {
				err = ends.Error()
			}
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("listing offsets: %w", err)
	}
	// The offsets at now − reach, by the new features' reach.
	sinceAt := map[time.Duration]kadm.ListedOffsets{}
	now := c.o.Now()
	current := make([]string, 0, c.o.Features.Len())
	for _, d := range c.o.Features.All() {
		current = append(current, d.Name)
	}
	var writes []*kgo.Record
	for p := range c.o.Partitions {
		cat := catalogs[p]
		// The split is the end of each input partition now, before the
		// processor starts: the live path applies the new features from
		// there on only (Live), and the backfill everything before. Records
		// between the group's committed offset and the end, processed again
		// after the restart, feed the old features live (absorbed where
		// they were applied before a crash) and the new ones from the
		// backfill, once.
		hasCommits := false
		to := map[string]int64{}
		resume := map[string]int64{} // where the processor resumes
		for _, t := range c.o.Inputs {
			if st, ok := starts.Lookup(t, p); ok {
				resume[t] = st.Offset
			}
			if o, ok := committed.Lookup(t, p); ok && o.At >= 0 {
				hasCommits = true
				resume[t] = max(resume[t], o.At)
			}
			if e, ok := ends.Lookup(t, p); ok {
				to[t] = e.Offset
			}
		}
		if cat == nil {
			cat = &Catalog{Group: c.o.Group, Partition: p}
			if hasCommits {
				// A group that ran before backfills existed: its state
				// computes its features already.
				cat.Features = current
			}
		}
		var added []string
		for _, n := range current {
			if !slices.Contains(cat.Features, n) {
				added = append(added, n)
			}
		}
		changed := !slices.Equal(cat.Features, current)
		if len(added) > 0 && hasCommits {
			sub, _ := c.o.Features.Subset(added)
			reach, bounded := sub.Reach()
			since := sinceAt[reach]
			if since == nil && bounded {
				since, err = adm.ListOffsetsAfterMilli(ctx, now.Add(-reach).UnixMilli(), c.o.Inputs...)
				if err == nil {
					err = since.Error()
				}
				if err != nil {
					return fmt.Errorf("listing offsets at %v: %w", now.Add(-reach), err)
				}
				sinceAt[reach] = since
			}
			from := map[string]int64{}
			for _, t := range c.o.Inputs {
				f, _ := starts.Lookup(t, p)
				from[t] = f.Offset
				if bounded {
					if s, ok := since.Lookup(t, p); ok {
						from[t] = max(from[t], s.Offset)
					}
				}
				from[t] = min(from[t], to[t])
			}
			// No history within reach: the live path computes them all.
			if run := (Run{ID: runID(c.o.Group, p, added, to), Partition: p, Features: added, From: from, To: to, Started: now}); run.Total() > 0 {
				cat.Runs = append(cat.Runs, run)
				if len(cat.Runs) > keepRuns {
					cat.Runs = cat.Runs[len(cat.Runs)-keepRuns:]
				}
			}
		}
		var act []Active
		for i := range cat.Runs {
			if r := &cat.Runs[i]; !r.Done {
				if set := c.Set(r.Features); set != nil {
					act = append(act, Active{ID: r.ID, Set: set})
					c.pending = append(c.pending, r)
				}
			}
		}
		cat.Features = current
		c.catalogs[p] = cat
		for i := range cat.Runs {
			// Only a split beyond where the processor resumes can meet a
			// record again.
			r := &cat.Runs[i]
			if c.Set(r.Features) != nil && slices.ContainsFunc(c.o.Inputs, func(t string) bool { return r.To[t] > resume[t] }) {
				c.splits[p] = append(c.splits[p], split{id: r.ID, to: r.To, names: r.Features})
			}
		}
		if len(act) > 0 {
			c.active[p].Store(&act)
			c.o.Metrics.Warming.WithLabelValues(c.o.Group).Add(float64(len(act)))
		}
		if changed || len(added) > 0 || catalogs[p] == nil {
			rec, err := c.catalogRecord(cat)
			if err != nil {
				return err
			}
			writes = append(writes, rec)
		}
	}
	if len(writes) > 0 {
		if err := c.produce(ctx, writes...); err != nil {
			return fmt.Errorf("writing backfill catalogs: %w", err)
		}
	}
	c.prepared = true
	return nil
}

func (c *Coordinator) catalogRecord(cat *Catalog) (*kgo.Record, error) {
	b, err := json.Marshal(cat)
	if err != nil {
		return nil, fmt.Errorf("encoding backfill catalog: %w", err)
	}
	return &kgo.Record{Topic: c.o.StateTopic, Key: []byte(strconv.Itoa(int(cat.Partition))), Value: b}, nil
}

// produce writes records synchronously with a short-lived client.
func (c *Coordinator) produce(ctx context.Context, recs ...*kgo.Record) error {
	cl, err := c.producer()
	if err != nil {
		return err
	}
	defer cl.Close()
	return cl.ProduceSync(ctx, recs...).FirstErr()
}

func (c *Coordinator) producer() (*kgo.Client, error) {
	opts := append(slices.Clone(c.o.Client), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("creating kafka producer: %w", err)
	}
	return cl, nil
}

// retryKafka runs f until it returns nil or an error Kafka does not call
// retriable, for at most prepareRetry: a cluster just started answers
// COORDINATOR_NOT_AVAILABLE while it loads its group coordinators, and a
// partition whose leader just died answers NOT_LEADER until the
// controller moves it.
func retryKafka(ctx context.Context, f func() error) error {
	deadline := time.Now().Add(prepareRetry)
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		err := f()
		if err == nil || !kerr.IsRetriable(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// prepareRetry bounds retryKafka.
const prepareRetry = 30 * time.Second

// ReadCatalogs reads every partition's catalog from the state topic (an
// absent topic reads as none).
func ReadCatalogs(ctx context.Context, client []kgo.Opt, topic string) (map[int32]*Catalog, error) {
	cl, err := kgo.NewClient(client...)
	if err != nil {
		return nil, fmt.Errorf("creating kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", topic, err)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", topic, err)
	}
	out := map[int32]*Catalog{}
	consume := map[string]map[int32]kgo.Offset{}
	left := 0
	ends.Each(func(o kadm.ListedOffset) {
		s, _ := starts.Lookup(o.Topic, o.Partition)
		if o.Err != nil || o.Offset <= s.Offset {
			return
		}
		if consume[topic] == nil {
			consume[topic] = map[int32]kgo.Offset{}
		}
		consume[topic][o.Partition] = kgo.NewOffset().At(s.Offset)
		left++
	})
	if left == 0 {
		return out, nil
	}
	rd, err := kgo.NewClient(append(slices.Clone(client), kgo.ConsumePartitions(consume))...)
	if err != nil {
		return nil, fmt.Errorf("creating kafka consumer: %w", err)
	}
	defer rd.Close()
	done := map[int32]bool{}
	for len(done) < left {
		fs := rd.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) { ferr = fmt.Errorf("reading %s[%d]: %w", t, p, err) })
		if ferr != nil {
			return nil, ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			var cat Catalog
			if json.Unmarshal(r.Value, &cat) == nil {
				out[cat.Partition] = &cat
			}
			if end, _ := ends.Lookup(r.Topic, r.Partition); r.Offset+1 >= end.Offset {
				done[r.Partition] = true
			}
		})
	}
	return out, nil
}

// Run replays the prepared runs, Concurrency partitions at a time, until
// every run is done or ctx ends. A failed run is logged, kept in its
// catalog with its error, and retried after a pause.
func (c *Coordinator) Run(ctx context.Context) error {
	if !c.prepared {
		return errors.New("backfill: Run before Prepare")
	}
	sem := make(chan struct{}, c.o.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, r := range c.pending {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			for ctx.Err() == nil {
				err := c.replay(ctx, r)
				if err == nil || ctx.Err() != nil {
					return
				}
				c.o.Metrics.Failures.WithLabelValues(c.o.Group).Inc()
				c.o.Logger.Error("backfill failed; retrying in 10s", "group", c.o.Group, "partition", r.Partition, "run", r.ID, "err", err)
				c.mu.Lock()
				r.Error = err.Error()
				c.mu.Unlock()
				select {
				case <-ctx.Done():
				case <-time.After(10 * time.Second):
				}
			}
		}()
	}
	return nil
}

// progress writes run r's partition catalog.
func (c *Coordinator) progress(ctx context.Context, cl *kgo.Client, r *Run) error {
	c.mu.Lock()
	rec, err := c.catalogRecord(c.catalogs[r.Partition])
	c.mu.Unlock()
	if err != nil {
		return err
	}
	return cl.ProduceSync(ctx, rec).FirstErr()
}

// Take is the group's handling of one record of the data topic on
// partition p, in the record key's callback: the done marker ends its run
// (Finish); a key's backfilled state merges into st, once (nil st: the key
// has no state, as after an idle key's deletion, and takes nothing). It
// reports whether st changed.
func (c *Coordinator) Take(p int32, raw []byte, st *features.State) (bool, error) {
	var rec Record
	if err := json.Unmarshal(raw, &rec); err != nil {
		return false, fmt.Errorf("decoding backfill record: %w", err)
	}
	if rec.Done {
		c.Finish(p, rec.Run)
		return false, nil
	}
	if st == nil {
		return false, nil
	}
	set := c.Set(rec.Features)
	if set == nil {
		return false, nil // its features were removed since
	}
	if rec.Warm {
		if st.Merged(rec.Run) || !c.IsActive(p, rec.Run) {
			return false, nil
		}
		n := len(st.Warming)
		set.MarkWarming(st, rec.Run)
		return len(st.Warming) != n, nil
	}
	var src features.State
	if err := src.UnmarshalBinary(rec.State); err != nil {
		return false, fmt.Errorf("decoding backfilled state: %w", err)
	}
	return set.MergeBackfill(st, &src, rec.Run), nil
}

// Warm marks the features of partition p's active runs as warming up in
// st, a state the live path is writing, and clears the marks of runs
// finished since.
func (c *Coordinator) Warm(p int32, st *features.State) {
	if c == nil {
		return
	}
	for _, a := range c.Active(p) {
		a.Set.MarkWarming(st, a.ID)
	}
	if len(st.Warming) > 0 {
		st.ClearWarming(func(id string) bool { return c.IsActive(p, id) })
	}
}

// Live is the set of features the live path applies to the record at
// offset of topic (with its prefix) on partition p: nil for all of them,
// or, for a record before a run's split (one the processor handles again
// after a restart), all but that run's features, which its backfill
// covers. Safe from the group's callbacks once Prepare returned.
func (c *Coordinator) Live(p int32, topic string, offset int64) *features.Set {
	if c == nil || p < 0 || int(p) >= len(c.splits) {
		return nil
	}
	var ids string
	for _, sp := range c.splits[p] {
		if offset < sp.to[topic] {
			ids += sp.id + ","
		}
	}
	if ids == "" {
		return nil
	}
	if set, ok := c.live.Load(ids); ok {
		return set.(*features.Set)
	}
	var out []string
	for _, d := range c.o.Features.All() {
		excluded := false
		for _, sp := range c.splits[p] {
			if offset < sp.to[topic] && slices.Contains(sp.names, d.Name) {
				excluded = true
			}
		}
		if !excluded {
			out = append(out, d.Name)
		}
	}
	set, _ := c.o.Features.Subset(out)
	c.live.Store(ids, set)
	return set
}
