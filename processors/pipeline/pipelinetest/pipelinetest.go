// Package pipelinetest runs a livefeed goka group under goka's tester, for
// the processors' unit tests (the whole pipeline runs on a real broker in
// app/).
package pipelinetest

import (
	"context"
	"testing"

	"github.com/livefeed/livefeed/processors/pipeline"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"
)

// Run starts the group's processor on a new goka tester until the test ends.
func Run(t testing.TB, g *pipeline.Group) *tester.Tester {
	t.Helper()
	gkt := tester.New(t)
	proc, err := goka.NewProcessor(nil, g.Graph, append(g.Options, goka.WithTester(gkt))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- proc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return gkt
}
