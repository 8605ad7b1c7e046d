package simulate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/livefeed/livefeed/events"
)

// ProduceOptions tunes Produce.
type ProduceOptions struct {
	// Rate is the target number of events per second (0 = as fast as
	// possible). Pacing uses the wall clock, whatever Clock is.
	Rate float64
	// Limit stops after that many events (0 = until ctx is done).
	Limit int
	// TopicPrefix is prepended to the topic names (e.g. "dev.").
	TopicPrefix string
	// Clock gives the event times passed to Generator.Next (default
	// time.Now); they are also the records' timestamps. franz-go measures
	// a record's delivery timeout from its timestamp, so a Clock in the
	// past needs a client without one (kgo.RecordDeliveryTimeout(0)), or
	// every record times out at once.
	Clock func() time.Time
	// Change alters the records as a changed producer would (a field
	// dropped, a category renamed; change.go). Nil: none.
	Change *Change
	// FlushTimeout bounds how long buffered records may take to be delivered
	// once ctx is done (default 10s). A run that ends by reaching Limit waits
	// for delivery until ctx is done plus FlushTimeout.
	FlushTimeout time.Duration
}

// Stats counts what Produce did.
type Stats struct {
	// Generated is the number of records handed to the client.
	Generated int64
	// Bad is how many of them were deliberately bad (Config.BadFraction).
	Bad int64
	// Produced counts the acknowledged records per topic, keyed by the
	// topic name without prefix (events.TopicLivestreams, ...).
	Produced map[string]int64
	// Errors is the number of records that failed to be produced.
	Errors int64
	// Unacked is the number of records neither acknowledged nor failed when
	// Produce returned (only after a flush timeout).
	Unacked int64
	// Elapsed is the wall time of the run.
	Elapsed time.Duration
}

// Acked is the total number of acknowledged records.
func (s Stats) Acked() int64 {
	var n int64
	for _, v := range s.Produced {
		n += v
	}
	return n
}

// Rate is the number of acknowledged records per second of wall time.
func (s Stats) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Acked()) / s.Elapsed.Seconds()
}

// maxBatch is the most records generated between two checks of ctx and of
// the token bucket.
const maxBatch = 256

// Produce writes records of g to Kafka through client, asynchronously, with
// the client's partitioner (keep franz-go's default: keys are hashed with
// Kafka's murmur2, so the four topics stay co-partitioned by livestream_id).
// It runs until Limit records were generated or ctx is done, then flushes
// and returns the counts. Stopping because ctx is done is not an error; the
// returned error reports failed records (wrapping the first failure) or an
// unfinished flush. Produce is the only user of g while it runs.
func Produce(ctx context.Context, client *kgo.Client, g *Generator, opt ProduceOptions) (Stats, error) {
	switch {
	case client == nil:
		return Stats{}, errors.New("simulate: nil client")
	case g == nil:
		return Stats{}, errors.New("simulate: nil generator")
	case math.IsNaN(opt.Rate) || math.IsInf(opt.Rate, 0) || opt.Rate < 0:
		return Stats{}, fmt.Errorf("simulate: rate must be a finite number >= 0, got %v", opt.Rate)
	case opt.Limit < 0:
		return Stats{}, fmt.Errorf("simulate: limit must be >= 0, got %d", opt.Limit)
	}
	clock := opt.Clock
	if clock == nil {
		clock = time.Now
	}
	change, err := opt.Change.compile()
	if err != nil {
		return Stats{}, err
	}
	flushTimeout := opt.FlushTimeout
	if flushTimeout <= 0 {
		flushTimeout = 10 * time.Second
	}

	var (
		topics   = events.InputTopics()
		acked    [4]atomic.Int64
		failed   atomic.Int64
		errOnce  sync.Once
		firstErr error
		promises [4]func(*kgo.Record, error)
	)
	index := make(map[string]int, len(topics))
	for i, t := range topics {
		index[t] = i
		promises[i] = func(r *kgo.Record, err error) {
			if err != nil {
				// Set firstErr before counting, so that Errors > 0 implies it.
				errOnce.Do(func() { firstErr = fmt.Errorf("topic %s: %w", r.Topic, err) })
				failed.Add(1)
				return
			}
			acked[i].Add(1)
		}
	}

	// Records are produced with a context that outlives ctx by flushTimeout,
	// so that what is buffered when ctx is done still gets delivered.
	pctx, pcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer pcancel()
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(flushTimeout, pcancel)
		context.AfterFunc(pctx, func() { t.Stop() })
	})
	defer stop()

	var (
		st     = Stats{Produced: make(map[string]int64, len(topics))}
		start  = time.Now()
		tokens = 1.0
		burst  = math.Max(1, opt.Rate/20) // at most 50ms worth of catch-up
		last   = start
		timer  *time.Timer
	)
loop:
	for opt.Limit == 0 || st.Generated < int64(opt.Limit) {
		if ctx.Err() != nil {
			break
		}
		n := int64(maxBatch)
		if opt.Rate > 0 {
			now := time.Now()
			tokens = math.Min(burst, tokens+float64(opt.Rate*now.Sub(last).Seconds()))
			last = now
			if tokens < 1 {
				wait := time.Duration((1 - tokens) / opt.Rate * float64(time.Second))
				wait = max(wait, 200*time.Microsecond)
				if timer == nil {
					timer = time.NewTimer(wait)
				} else {
					timer.Reset(wait)
				}
				select {
				case <-ctx.Done():
					break loop
				case <-timer.C:
				}
				continue
			}
			n = min(n, int64(tokens))
			tokens -= float64(n)
		}
		if opt.Limit > 0 {
			n = min(n, int64(opt.Limit)-st.Generated)
		}
		for range n {
			r := g.Next(clock())
			if g.lastBad {
				st.Bad++
			}
			if change != nil {
				r = change.apply(r)
			}
			kr := &kgo.Record{
				Topic:     opt.TopicPrefix + r.Topic,
				Key:       []byte(r.Key),
				Value:     r.Value,
				Timestamp: r.Time,
			}
			client.Produce(pctx, kr, promises[index[r.Topic]])
			st.Generated++
		}
	}
	if timer != nil {
		timer.Stop()
	}
	flushErr := client.Flush(pctx)
	st.Elapsed = time.Since(start)

	var ok int64
	for i, t := range topics {
		v := acked[i].Load()
		st.Produced[t] = v
		ok += v
	}
	st.Errors = failed.Load()
	st.Unacked = max(0, st.Generated-ok-st.Errors)
	switch {
	case st.Errors > 0:
		errOnce.Do(func() {}) // waits until firstErr is written
		return st, fmt.Errorf("simulate: %d of %d records failed, first: %w", st.Errors, st.Generated, firstErr)
	case flushErr != nil:
		return st, fmt.Errorf("simulate: flushing: %w (%d records unacknowledged)", flushErr, st.Unacked)
	}
	return st, nil
}
