// Package kafkalog reads livefeed's input topics from a Kafka cluster as
// one event log, for offline replays (`livefeed features training-set
// --brokers`): every partition of the topics from a start offset to the
// end offset it had when the log was opened, merged into one sequence by
// record timestamp.
//
// The processors consume each partition in offset order and the
// partitions independently; the merge keeps each partition's order and
// interleaves partitions by the records' Kafka timestamps (the producer's
// create time, or the broker's append time), ties by topic and partition:
// the order in which a consumer keeping up with the topics saw them.
package kafkalog

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/livefeed/livefeed/offline"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Options configure Open.
type Options struct {
	// Client are the franz-go options for the cluster: seed brokers, TLS,
	// SASL (broker.Config.KgoOpts).
	Client []kgo.Opt
	// Topics are the topics to read, with their deployment prefix.
	Topics []string
	// Prefix is stripped from the topic names in the records.
	Prefix string
	// From starts each partition at its first record at or after this
	// time (Kafka timestamps); zero: at the earliest retained offset.
	From time.Time
	// MaxBuffered is how many records a partition may hold ahead of the
	// merge before its fetching pauses (default 10000).
	MaxBuffered int
}

// Log is an open log. Scan, Record and Err read it as offline.LogScanner
// does; Close releases the client.
type Log struct {
	ctx   context.Context
	cl    *kgo.Client
	parts map[topicPartition]*partition
	order []*partition
	max   int
	rec   offline.Record
	err   error
	// Records counts the records read.
	Records int
}

type topicPartition struct {
	topic string
	p     int32
}

type partition struct {
	topicPartition
	name   string // without the prefix
	end    int64  // the end offset when the log was opened
	buf    []*kgo.Record
	done   bool
	paused bool
}

// Open lists the partitions' start and end offsets and starts fetching.
// ctx bounds every later Scan too.
func Open(ctx context.Context, o Options) (*Log, error) {
	if len(o.Topics) == 0 {
		return nil, errors.New("kafkalog: no topics")
	}
	if o.MaxBuffered <= 0 {
		o.MaxBuffered = 10000
	}
	admCl, err := kgo.NewClient(o.Client...)
	if err != nil {
		return nil, fmt.Errorf("creating kafka client: %w", err)
	}
	adm := kadm.NewClient(admCl)
	ends, err := adm.ListEndOffsets(ctx, o.Topics...)
	if err == nil {
		err = ends.Error()
	}
	var starts kadm.ListedOffsets
	if err == nil {
		if o.From.IsZero() {
			starts, err = adm.ListStartOffsets(ctx, o.Topics...)
		} else {
			starts, err = adm.ListOffsetsAfterMilli(ctx, o.From.UnixMilli(), o.Topics...)
		}
	}
	if err == nil {
		err = starts.Error()
	}
	admCl.Close()
	if err != nil {
		return nil, fmt.Errorf("listing the offsets of %s: %w", strings.Join(o.Topics, ", "), err)
	}
	l := &Log{ctx: ctx, parts: map[topicPartition]*partition{}, max: o.MaxBuffered}
	consume := map[string]map[int32]kgo.Offset{}
	for _, topic := range o.Topics {
		if _, ok := ends[topic]; !ok {
			return nil, fmt.Errorf("topic %s does not exist", topic)
		}
		for p, end := range ends[topic] {
			start, ok := starts.Lookup(topic, p)
			if !ok {
				return nil, fmt.Errorf("no start offset for %s[%d]", topic, p)
			}
			part := &partition{topicPartition: topicPartition{topic, p}, name: strings.TrimPrefix(topic, o.Prefix), end: end.Offset}
			// ListOffsetsAfterMilli gives the end offset when no record is
			// at or after the time.
			part.done = start.Offset >= end.Offset
			l.parts[part.topicPartition] = part
			l.order = append(l.order, part)
			if !part.done {
				if consume[topic] == nil {
					consume[topic] = map[int32]kgo.Offset{}
				}
				consume[topic][p] = kgo.NewOffset().At(start.Offset)
			}
		}
	}
	opts := append(append([]kgo.Opt{}, o.Client...), kgo.ConsumePartitions(consume))
	if l.cl, err = kgo.NewClient(opts...); err != nil {
		return nil, fmt.Errorf("creating kafka consumer: %w", err)
	}
	return l, nil
}

// Close stops fetching.
func (l *Log) Close() { l.cl.Close() }

// Scan reads the next record in the merged order; false at the end (every
// partition at its end offset) or on an error (Err).
func (l *Log) Scan() bool {
	if l.err != nil {
		return false
	}
	// Every partition with records left needs one buffered before the
	// merge can choose.
	for l.starved() {
		if err := l.fill(); err != nil {
			l.err = err
			return false
		}
	}
	var next *partition
	for _, p := range l.order {
		if len(p.buf) == 0 {
			continue
		}
		if next == nil || compare(p, next) < 0 {
			next = p
		}
	}
	if next == nil {
		return false
	}
	r := next.buf[0]
	next.buf[0] = nil
	next.buf = next.buf[1:]
	if next.paused && len(next.buf) == 0 {
		l.cl.ResumeFetchPartitions(map[string][]int32{next.topic: {next.p}})
		next.paused = false
	}
	l.rec = offline.Record{Topic: next.name, Key: string(r.Key), Value: r.Value}
	l.Records++
	return true
}

// compare orders the partitions' next records: by timestamp, then topic
// and partition.
func compare(a, b *partition) int {
	if c := a.buf[0].Timestamp.Compare(b.buf[0].Timestamp); c != 0 {
		return c
	}
	if c := cmp.Compare(a.topic, b.topic); c != 0 {
		return c
	}
	return cmp.Compare(a.p, b.p)
}

func (l *Log) starved() bool {
	for _, p := range l.order {
		if len(p.buf) == 0 && !p.done {
			return true
		}
	}
	return false
}

// fill polls once, buffering the records below each partition's end
// offset and pausing partitions that ran ahead.
func (l *Log) fill() error {
	fetches := l.cl.PollFetches(l.ctx)
	if err := l.ctx.Err(); err != nil {
		return err
	}
	var errs []error
	fetches.EachError(func(topic string, p int32, err error) {
		errs = append(errs, fmt.Errorf("fetching %s[%d]: %w", topic, p, err))
	})
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	var pause map[string][]int32
	fetches.EachPartition(func(ftp kgo.FetchTopicPartition) {
		p := l.parts[topicPartition{ftp.Topic, ftp.Partition}]
		if p == nil || p.done {
			return
		}
		for _, r := range ftp.Records {
			if r.Offset >= p.end {
				p.done = true
				break
			}
			p.buf = append(p.buf, r)
			if r.Offset == p.end-1 {
				p.done = true
			}
		}
		if p.done {
			if pause == nil {
				pause = map[string][]int32{}
			}
			pause[p.topic] = append(pause[p.topic], p.p) // nothing more to fetch
		} else if len(p.buf) > l.max && !p.paused {
			if pause == nil {
				pause = map[string][]int32{}
			}
			pause[p.topic] = append(pause[p.topic], p.p)
			p.paused = true
		}
	})
	if pause != nil {
		l.cl.PauseFetchPartitions(pause)
	}
	return nil
}

// Record is the record Scan read.
func (l *Log) Record() offline.Record { return l.rec }

// Err is the first error, nil at a clean end.
func (l *Log) Err() error { return l.err }
