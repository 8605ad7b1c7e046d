package pipeline

import (
	"errors"
	"fmt"
	"sync"

	"github.com/lovoo/goka"
)

// emitTracker counts the processor's emits in flight by epoch; a flush
// opens a new epoch and its table writes wait until every emit of the
// epochs before is acknowledged (the emit barrier, see Deduplicated).
type emitTracker struct {
	mu       sync.Mutex
	epoch    uint64
	inflight map[uint64]int
	err      error         // the first failed emit; every later barrier fails
	changed  chan struct{} // closed and replaced when an emit completes while waiters > 0
	waiters  int
}

func newEmitTracker() *emitTracker {
	return &emitTracker{inflight: map[uint64]int{}, changed: make(chan struct{})}
}

// add counts an emit in the current epoch and returns its completion.
func (t *emitTracker) add() func(error) {
	t.mu.Lock()
	e := t.epoch
	t.inflight[e]++
	t.mu.Unlock()
	return func(err error) {
		t.mu.Lock()
		if err != nil && t.err == nil {
			t.err = fmt.Errorf("an emitted record failed, its source's state is not written: %w", err)
		}
		if t.inflight[e]--; t.inflight[e] == 0 {
			delete(t.inflight, e)
		}
		if t.waiters > 0 { // nobody to wake otherwise: no channel per emit
			close(t.changed)
			t.changed = make(chan struct{})
		}
		t.mu.Unlock()
	}
}

// barrier closes the current epoch and returns it: wait(epoch) returns once
// every emit counted so far is acknowledged.
func (t *emitTracker) barrier() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.epoch
	t.epoch++
	return e
}

// errStopped fails the writes still waiting for their barrier when the
// state stops.
var errStopped = errors.New("state: stopped before the emits of a flush were acknowledged")

// wait blocks until no emit of an epoch at or before e is in flight, or
// stop is closed.
func (t *emitTracker) wait(e uint64, stop <-chan struct{}) error {
	for {
		t.mu.Lock()
		if t.err != nil {
			err := t.err
			t.mu.Unlock()
			return err
		}
		done := true
		for k := range t.inflight {
			if k <= e {
				done = false
				break
			}
		}
		if done {
			t.mu.Unlock()
			return nil
		}
		changed := t.changed
		t.waiters++
		t.mu.Unlock()
		var err error
		select {
		case <-changed:
		case <-stop:
			err = errStopped
		}
		t.mu.Lock()
		t.waiters--
		t.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// trackedProducer is the processor's producer with every emit counted by
// the tracker (the state's own changelog writes use the producer inside).
type trackedProducer struct {
	goka.Producer
	tracker *emitTracker
}

func (p *trackedProducer) Emit(topic, key string, value []byte) *goka.Promise {
	done := p.tracker.add()
	return p.Producer.Emit(topic, key, value).Then(done)
}

func (p *trackedProducer) EmitWithHeaders(topic, key string, value []byte, headers goka.Headers) *goka.Promise {
	done := p.tracker.add()
	return p.Producer.EmitWithHeaders(topic, key, value, headers).Then(done)
}
