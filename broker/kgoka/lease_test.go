package kgoka

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// The lease's arithmetic on the member's clock: a plain answer holds for
// session - margin after its heartbeat was sent; REBALANCE_IN_PROGRESS no
// further than the last plain answer (or the member's creation) plus
// rebalance - margin; a tripped lease stays over.
func TestLeaseArithmetic(t *testing.T) {
	b := New(Options{SessionTimeout: 6 * time.Second, HeartbeatInterval: time.Second, RebalanceTimeout: 20 * time.Second})
	l := newLease(b.Fence(nil), slog.New(slog.NewTextHandler(io.Discard, nil)))
	at := func(d time.Duration) time.Time { return l.base.Add(d) }
	s := time.Second
	steps := []struct {
		what  string
		renew func()
		valid []time.Duration
		over  []time.Duration
	}{
		{"never answered", func() {}, nil, []time.Duration{0, s}},
		{"a rebalance answer before any plain one (first assignment)", func() { l.renewed(at(s), true) }, []time.Duration{5900 * time.Millisecond}, []time.Duration{6 * s}},
		{"a plain answer to a heartbeat sent at 10s", func() { l.renewed(at(10*s), false) }, []time.Duration{14900 * time.Millisecond}, []time.Duration{15 * s}},
		{"rebalance answers at 25s and 28s: bounded by 10s + 20s - 1s", func() { l.renewed(at(25*s), true); l.renewed(at(28*s), true) }, []time.Duration{28900 * time.Millisecond}, []time.Duration{29 * s}},
		{"an older answer arriving late shortens nothing", func() { l.renewed(at(12*s), false) }, []time.Duration{28900 * time.Millisecond}, []time.Duration{29 * s}},
		{"tripped", func() { l.trip("lost", "test"); l.renewed(at(40*s), false) }, nil, []time.Duration{40 * s, 41 * s}},
	}
	for _, st := range steps {
		st.renew()
		for _, d := range st.valid {
			if !l.valid(at(d)) {
				t.Errorf("%s: not valid at %v", st.what, d)
			}
		}
		for _, d := range st.over {
			if l.valid(at(d)) {
				t.Errorf("%s: still valid at %v", st.what, d)
			}
		}
	}
	if err := l.check(at(41 * s)); err == nil {
		t.Fatal("a tripped lease checks nil")
	}
}

// A heartbeat answered "gone" after its session ended says nothing about
// the member's next generation: kgo lost the membership while the
// coordinator moved, the session stopped and kgo rejoined while the lease
// loop's heartbeat for the old generation was still being retried; its
// late ILLEGAL_GENERATION must not fence the new session. The same answer
// for the running session trips the lease.
func TestLateAnswerForAnEndedSessionDoesNotTrip(t *testing.T) {
	b := New(Options{SessionTimeout: 6 * time.Second, HeartbeatInterval: time.Second})
	g := newConsumerGroup(b, nil, "g", "c")
	g.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	m := &member{g: g, lease: newLease(b.Fence(nil), g.log)}
	old := &session{m: m, gen: 1}
	cur := &session{m: m, gen: 2}
	m.active = cur
	m.tripIfActive(old, errGone)
	if m.lease.isTripped() {
		t.Fatal("an answer for generation 1 tripped the lease of the running generation 2")
	}
	m.active = nil // between sessions
	m.tripIfActive(old, errGone)
	if m.lease.isTripped() {
		t.Fatal("an answer for an ended session tripped the lease between sessions")
	}
	m.active = cur
	m.tripIfActive(cur, errGone)
	if !m.lease.isTripped() {
		t.Fatal("the running session's generation is gone, but the lease did not trip")
	}
}

// The topic manager retries what a crashed partition leader answers until
// the controller moves the leadership: a refused dial (as kgo wraps it) or
// a closed connection, besides Kafka's retriable codes. goka's Setup asks
// for table offsets then, and an error there stops the processor
// (TestBrokerFault after the KRaft controller was killed: "Error getting
// oldest offset … listing offsets of …-table: unable to dial: dial tcp
// 127.0.0.1:19194: connect: connection refused").
func TestTopicManagerRetriesAnUnreachableLeader(t *testing.T) {
	refused := fmt.Errorf("unable to dial: %w", &net.OpError{Op: "dial", Net: "tcp",
		Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}})
	for _, err := range []error{refused, fmt.Errorf("listing offsets of t: %w", refused), io.EOF, kerr.NotLeaderForPartition, kerr.LeaderNotAvailable} {
		if !retriable(err) {
			t.Errorf("%v: not retried", err)
		}
	}
	for _, err := range []error{kerr.TopicAuthorizationFailed, errTopicNotFound} {
		if retriable(err) {
			t.Errorf("%v: retried", err)
		}
	}
}
