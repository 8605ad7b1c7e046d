package backfill

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/livefeed/livefeed/broker"
	"github.com/livefeed/livefeed/features"
	"github.com/twmb/franz-go/pkg/kgo"
)

// maxBuffered is how many records one topic may hold ahead of the merge
// before its fetching pauses.
const maxBuffered = 10000

// replay runs r: it reads the partition's input topics from r.From to
// r.To merged by record timestamp (the order in which a consumer keeping
// up with them saw them, as offline/kafkalog merges them), folds them
// through a Replay of r's features, hands every key's state to the group
// and the done marker after them, and marks r done in its catalog. A
// retry starts over from r.From: the group merges each key once.
func (c *Coordinator) replay(ctx context.Context, r *Run) error {
	c.mu.Lock()
	r.At, r.Replayed, r.Keys, r.Error = maps.Clone(r.From), 0, 0, ""
	total := r.Total()
	c.mu.Unlock()
	set := c.Set(r.Features)
	rp := c.o.NewReplay(set)
	log := c.o.Logger.With("group", c.o.Group, "partition", r.Partition, "run", r.ID)
	log.Info("backfill started: replaying the history of new features", "features", strings.Join(r.Features, ","),
		"records", total, "from", r.From, "to", r.To)
	began := time.Now()
	prod, err := c.producer()
	if err != nil {
		return err
	}
	defer prod.Close()
	m := c.o.Metrics
	lbl := []string{c.o.Group, fmt.Sprint(r.Partition)}
	m.Remaining.WithLabelValues(lbl...).Set(float64(total))
	if err := c.read(ctx, r, rp, prod); err != nil {
		return err
	}
	var keys int64
	var perr error
	var mu sync.Mutex
	rp.States(func(key string, st *features.State) bool {
		if st.Empty() && len(st.Dropped) == 0 {
			return true
		}
		b, err := st.MarshalBinary()
		if err == nil {
			var v []byte
			v, err = json.Marshal(Record{Run: r.ID, Features: r.Features, State: b})
			if err == nil {
				keys++
				prod.Produce(ctx, &kgo.Record{Topic: c.o.Topic, Partition: r.Partition, Key: []byte(key), Value: v}, func(_ *kgo.Record, err error) {
					if err != nil {
						mu.Lock()
						perr = err
						mu.Unlock()
					}
				})
			}
		}
		if err != nil {
			perr = err
			return false
		}
		return ctx.Err() == nil
	})
	if err := prod.Flush(ctx); err != nil {
		return err
	}
	mu.Lock()
	err = perr
	mu.Unlock()
	if err != nil {
		return fmt.Errorf("handing backfilled states to the group: %w", err)
	}
	done, _ := json.Marshal(Record{Run: r.ID, Features: r.Features, Done: true})
	if err := prod.ProduceSync(ctx, &kgo.Record{Topic: c.o.Topic, Partition: r.Partition, Value: done}).FirstErr(); err != nil {
		return fmt.Errorf("writing the done record: %w", err)
	}
	c.mu.Lock()
	r.Keys, r.Done, r.Finished = keys, true, c.o.Now()
	replayed := r.Replayed
	c.mu.Unlock()
	if err := c.progress(ctx, prod, r); err != nil {
		return fmt.Errorf("writing the backfill catalog: %w", err)
	}
	m.Keys.WithLabelValues(c.o.Group).Add(float64(keys))
	m.Remaining.WithLabelValues(lbl...).Set(0)
	m.LagSeconds.WithLabelValues(lbl...).Set(0)
	log.Info("backfill done: the group merges each key's state", "features", strings.Join(r.Features, ","),
		"records", replayed, "keys", keys, "took", time.Since(began).Round(time.Millisecond))
	return nil
}

type topicQueue struct {
	name   string // with the prefix
	buf    []*kgo.Record
	done   bool
	paused bool
}

// read replays r's records into rp.
func (c *Coordinator) read(ctx context.Context, r *Run, rp Replay, prod *kgo.Client) error {
	consume := map[string]map[int32]kgo.Offset{}
	var qs []*topicQueue
	for _, t := range c.o.Inputs {
		if r.To[t] > r.From[t] {
			consume[t] = map[int32]kgo.Offset{r.Partition: kgo.NewOffset().At(r.From[t])}
			qs = append(qs, &topicQueue{name: t})
		}
	}
	if len(qs) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(append(slices.Clone(c.o.Client), kgo.ConsumePartitions(consume))...)
	if err != nil {
		return fmt.Errorf("creating kafka consumer: %w", err)
	}
	defer cl.Close()
	m := c.o.Metrics
	lbl := []string{c.o.Group, fmt.Sprint(r.Partition)}
	lastProgress := time.Now()
	// Each key the replay meets is marked warming in the group at once,
	// live events or not, until its state merges.
	seen := map[string]bool{}
	warm, err := json.Marshal(Record{Run: r.ID, Features: r.Features, Warm: true})
	if err != nil {
		return err
	}
	var werr error
	var wmu sync.Mutex
	for {
		// Fill until every open topic has a record buffered.
		for slices.ContainsFunc(qs, func(q *topicQueue) bool { return !q.done && len(q.buf) == 0 }) {
			fs := cl.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				return err
			}
			var ferr error
			fs.EachError(func(t string, p int32, err error) { ferr = fmt.Errorf("reading %s[%d]: %w", t, p, err) })
			if ferr != nil {
				return ferr
			}
			fs.EachRecord(func(rec *kgo.Record) {
				for _, q := range qs {
					if q.name != rec.Topic || q.done {
						continue
					}
					if rec.Offset < r.To[q.name] {
						q.buf = append(q.buf, rec)
					}
					if rec.Offset+1 >= r.To[q.name] {
						q.done = true
						cl.PauseFetchTopics(q.name)
					} else if len(q.buf) >= maxBuffered && !q.paused {
						q.paused = true
						cl.PauseFetchTopics(q.name)
					}
				}
			})
		}
		// The oldest head by timestamp (ties: input order).
		var next *topicQueue
		for _, q := range qs {
			if len(q.buf) > 0 && (next == nil || q.buf[0].Timestamp.Before(next.buf[0].Timestamp)) {
				next = q
			}
		}
		if next == nil {
			break
		}
		rec := next.buf[0]
		next.buf[0] = nil
		next.buf = next.buf[1:]
		if next.paused && !next.done && len(next.buf) < maxBuffered/2 {
			next.paused = false
			cl.ResumeFetchTopics(next.name)
		}
		// A record in a partition its key does not map to was re-routed by
		// the group to the right one, where the replay of that partition
		// sees its copy.
		if len(rec.Key) == 0 || broker.PartitionOf(string(rec.Key), c.o.Partitions) == r.Partition {
			rp.Apply(ctx, strings.TrimPrefix(rec.Topic, c.o.Prefix), rec)
			if k := string(rec.Key); k != "" && !seen[k] {
				seen[k] = true
				prod.Produce(ctx, &kgo.Record{Topic: c.o.Topic, Partition: r.Partition, Key: rec.Key, Value: warm}, func(_ *kgo.Record, err error) {
					if err != nil {
						wmu.Lock()
						werr = err
						wmu.Unlock()
					}
				})
			}
		}
		m.Replayed.WithLabelValues(c.o.Group).Inc()
		c.mu.Lock()
		r.Replayed++
		r.At[rec.Topic] = rec.Offset + 1
		c.mu.Unlock()
		if time.Since(lastProgress) >= c.o.ProgressEvery {
			lastProgress = time.Now()
			c.mu.Lock()
			remaining := r.Remaining()
			c.mu.Unlock()
			m.Remaining.WithLabelValues(lbl...).Set(float64(remaining))
			m.LagSeconds.WithLabelValues(lbl...).Set(c.o.Now().Sub(rec.Timestamp).Seconds())
			if err := c.progress(ctx, prod, r); err != nil {
				return fmt.Errorf("writing backfill progress: %w", err)
			}
		}
	}
	if err := prod.Flush(ctx); err != nil {
		return err
	}
	wmu.Lock()
	defer wmu.Unlock()
	if werr != nil {
		return fmt.Errorf("writing warming marks: %w", werr)
	}
	return nil
}
