package kgoka

import (
	"sync"
	"sync/atomic"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
)

// feed hands one partition's fetched records to goka through a channel of
// sarama messages, from its own goroutine, so that a slow partition does not
// hold up the others. The poll loop never blocks on it: once the feed holds
// limit records, the partition's fetching pauses until goka has taken half
// of them (kgo keeps a paused partition's data unconsumed and fetches it
// again after the resume).
type feed struct {
	cl        *kgo.Client
	topic     string
	partition int32
	limit     int
	msgs      chan *sarama.ConsumerMessage
	hwm       atomic.Int64

	mu     sync.Mutex
	queue  [][]*kgo.Record
	queued int
	full   bool // paused because the queue reached limit
	held   bool // paused by goka (Pause)
	paused bool // paused in the client (full || held)

	wake chan struct{}
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

func newFeed(cl *kgo.Client, topic string, partition int32, limit int) *feed {
	return &feed{
		cl: cl, topic: topic, partition: partition, limit: limit,
		msgs: make(chan *sarama.ConsumerMessage, 64),
		wake: make(chan struct{}, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
}

// push queues a fetched batch; hwm is the partition's high watermark.
func (f *feed) push(recs []*kgo.Record, hwm int64) {
	f.hwm.Store(hwm)
	if len(recs) == 0 {
		return
	}
	f.mu.Lock()
	f.queue = append(f.queue, recs)
	f.queued += len(recs)
	if f.queued >= f.limit {
		f.full = true
		f.syncPause()
	}
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// hold pauses or resumes the partition for goka.
func (f *feed) hold(h bool) {
	f.mu.Lock()
	f.held = h
	f.syncPause()
	f.mu.Unlock()
}

func (f *feed) isHeld() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.held
}

// syncPause makes the client's pause state match full || held; f.mu held.
func (f *feed) syncPause() {
	want := f.full || f.held
	if want == f.paused {
		return
	}
	f.paused = want
	tp := map[string][]int32{f.topic: {f.partition}}
	if want {
		f.cl.PauseFetchPartitions(tp)
	} else {
		f.cl.ResumeFetchPartitions(tp)
	}
}

// run delivers the queued records until close; it closes msgs when it
// returns.
func (f *feed) run() {
	defer close(f.done)
	defer close(f.msgs)
	for {
		f.mu.Lock()
		var batch []*kgo.Record
		if len(f.queue) > 0 {
			batch = f.queue[0]
			f.queue[0] = nil
			f.queue = f.queue[1:]
		}
		f.mu.Unlock()
		if batch == nil {
			select {
			case <-f.wake:
				continue
			case <-f.stop:
				return
			}
		}
		// One allocation per batch: goka copies what it needs out of each
		// message before it takes the next.
		msgs := make([]sarama.ConsumerMessage, len(batch))
		for i, r := range batch {
			m := &msgs[i]
			*m = sarama.ConsumerMessage{
				Key: r.Key, Value: r.Value,
				Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
				Timestamp: r.Timestamp, BlockTimestamp: r.Timestamp,
			}
			if len(r.Headers) > 0 {
				hs := make([]sarama.RecordHeader, len(r.Headers))
				m.Headers = make([]*sarama.RecordHeader, len(r.Headers))
				for j, h := range r.Headers {
					hs[j] = sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value}
					m.Headers[j] = &hs[j]
				}
			}
			select {
			case f.msgs <- m:
			case <-f.stop:
				return
			}
		}
		f.mu.Lock()
		f.queued -= len(batch)
		if f.full && f.queued <= f.limit/2 {
			f.full = false
			f.syncPause()
		}
		f.mu.Unlock()
	}
}

// close stops run (dropping what is queued) and waits for it. It resumes
// the partition in the client if the feed paused it: a paused partition
// stays paused in kgo, also for whoever consumes it next.
func (f *feed) close() {
	f.once.Do(func() { close(f.stop) })
	<-f.done
	f.mu.Lock()
	f.full, f.held = false, false
	f.syncPause()
	f.queue, f.queued = nil, 0
	f.mu.Unlock()
}
