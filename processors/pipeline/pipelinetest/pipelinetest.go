// Package pipelinetest runs a livefeed goka group under goka's tester, for
// the processors' unit tests (the whole pipeline runs on a real broker in
// app/). A group with a write-behind State runs its production write path
// under the tester: callbacks change cached values, flushes write them to
// the tester's storage and changelog behind the emit barrier, commits wait
// for them. Read the table after Sync.
package pipelinetest

import (
	"context"
	"testing"
	"time"

	"github.com/livefeed/livefeed/processors/pipeline"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"
)

// Run starts the group's processor (and its State's flusher) on a new
// goka tester until the test ends.
func Run(t testing.TB, g *pipeline.Group) *tester.Tester {
	t.Helper()
	gkt := tester.New(t)
	opts := append(append([]goka.ProcessorOption{}, g.Options...), goka.WithTester(gkt))
	if g.State != nil {
		// After WithTester: the State wraps the tester's storage and producer.
		opts = append(opts, g.State.WrapOptions(gkt.StorageBuilder(), gkt.ProducerBuilder())...)
	}
	proc, err := goka.NewProcessor(nil, g.Graph, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- proc.Run(ctx) }()
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		if g.State != nil {
			g.State.Run(stop)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done // a stopping partition waits for its commits, which the flusher releases
		close(stop)
		<-stopped
	})
	return gkt
}

// Sync writes the group's pending state changes to the tester's table
// (a flush, waited for): call it before reading TableValue.
func Sync(t testing.TB, g *pipeline.Group) {
	t.Helper()
	if g.State == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.State.Sync(ctx); err != nil {
		t.Fatalf("syncing the group's state: %v", err)
	}
}
