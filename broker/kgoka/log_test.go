package kgoka

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// While the brokers are unreachable every client logs every reconnect: one
// warning of a kind gets through per window across the clients sharing a
// LogThrottle, the next one says how many were held back, and the others
// go to debug.
func TestLogThrottleOneWarningOfAKindPerWindow(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	quiet := NewLogThrottle()
	a, b := newLogger(l, "a", quiet), newLogger(l, "b", quiet)
	for range 50 {
		a.Log(kgo.LogLevelWarn, "unable to open connection to broker")
		b.Log(kgo.LogLevelWarn, "unable to open connection to broker")
		a.Log(kgo.LogLevelError, "group manage loop errored")
	}
	out := buf.String()
	if n := strings.Count(out, "unable to open connection"); n != 1 {
		t.Errorf("%d reconnect warnings logged, want 1:\n%s", n, out)
	}
	if n := strings.Count(out, "group manage loop errored"); n != 1 {
		t.Errorf("%d group errors logged, want 1:\n%s", n, out)
	}
	ok, held := quiet.allow("unable to open connection to broker", time.Now().Add(logWindow))
	if !ok || held != 99 {
		t.Errorf("a window later: allowed %v with %d held back, want true with 99", ok, held)
	}
}
