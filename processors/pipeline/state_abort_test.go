package pipeline

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// Abort fails every commit still waiting for the changelog — of flushes
// queued or in flight, and of messages not flushed yet — once each, so
// that a processor stopping while the brokers are unreachable does not
// wait for them, and commits none of them. A late acknowledgement of an
// aborted flush releases nothing.
func TestStateAbortFailsWaitingCommits(t *testing.T) {
	var logs bytes.Buffer
	s := NewState[int]("t-table", nil, StateOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	calls := map[string][]error{}
	commit := func(name string) func(error) {
		return func(err error) { calls[name] = append(calls[name], err) }
	}
	ps := s.part(0)
	inFlight := &generation{commits: []func(error){commit("a"), commit("b")}, outstanding: 2}
	ps.gens = append(ps.gens, inFlight, &generation{commits: []func(error){commit("c")}, outstanding: 1})
	ps.pending = []func(error){commit("d")}
	s.part(1).pending = []func(error){commit("e")}

	s.Abort()
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		if got := calls[name]; len(got) != 1 || !errors.Is(got[0], ErrStateAborted) {
			t.Errorf("commit %s: called with %v, want once with ErrStateAborted", name, got)
		}
	}
	if len(ps.gens) != 0 || len(ps.pending) != 0 {
		t.Errorf("after Abort: %d generations, %d pending commits", len(ps.gens), len(ps.pending))
	}
	// The broker acknowledges the in-flight flush after all.
	s.acked(ps, inFlight, nil, nil, nil)
	s.acked(ps, inFlight, nil, nil, nil)
	for name, got := range calls {
		if len(got) != 1 {
			t.Errorf("commit %s called %d times", name, len(got))
		}
	}
	if n := strings.Count(logs.String(), "stopping without waiting for the changelog"); n != 1 {
		t.Errorf("%d abort lines, want 1:\n%s", n, logs.String())
	}
	if strings.Contains(logs.String(), "table writes failing") {
		t.Errorf("an abort logged as a failed write:\n%s", logs.String())
	}
}

// A broker outage fails every table write until it ends: one line says so
// when the writes start failing and one when they succeed again, not one
// per failed write.
func TestStateLogsWriteFailuresOncePerChange(t *testing.T) {
	var logs bytes.Buffer
	s := NewState[int]("t-table", nil, StateOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ps := s.part(0)
	complete := func(err error) {
		ps.gens = append(ps.gens, &generation{commits: []func(error){func(error) {}}, err: err})
		s.release(ps)
	}
	down := errors.New("unable to dial: connection refused")
	for range 3 {
		complete(nil)
		for range 45 {
			complete(down)
		}
	}
	complete(nil)
	out := logs.String()
	if n := strings.Count(out, "table writes failing"); n != 3 {
		t.Errorf("%d failure lines for 3 outages of 45 failed writes, want 3:\n%s", n, out)
	}
	if n := strings.Count(out, "table writes succeed again"); n != 3 {
		t.Errorf("%d recovery lines, want 3:\n%s", n, out)
	}
}
