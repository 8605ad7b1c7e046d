package kgoka

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// kgoLogger adapts slog to kgo.Logger. kgo logs at the most verbose level
// the slog handler accepts; its info lines (connections, assignments) go to
// slog at debug, warnings and errors as they are, at most one of a kind
// (same message) per logWindow across the clients sharing quiet.
type kgoLogger struct {
	log   *slog.Logger
	quiet *LogThrottle
}

func newLogger(l *slog.Logger, clientID string, quiet *LogThrottle) kgoLogger {
	return kgoLogger{log: l.With("component", "kgo", "client_id", clientID), quiet: quiet}
}

func (l kgoLogger) Level() kgo.LogLevel {
	ctx := context.Background()
	switch {
	case l.log.Enabled(ctx, slog.LevelDebug):
		return kgo.LogLevelInfo
	case l.log.Enabled(ctx, slog.LevelWarn):
		return kgo.LogLevelWarn
	default:
		return kgo.LogLevelError
	}
}

func (l kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lv := slog.LevelDebug
	switch level {
	case kgo.LogLevelError:
		lv = slog.LevelError
	case kgo.LogLevelWarn:
		lv = slog.LevelWarn
	}
	if lv > slog.LevelDebug && l.quiet != nil {
		ok, suppressed := l.quiet.allow(msg, time.Now())
		if !ok {
			lv = slog.LevelDebug
		} else if suppressed > 0 {
			keyvals = append(keyvals, "suppressed_since_last", suppressed)
		}
	}
	l.log.Log(context.Background(), lv, msg, keyvals...)
}

// logWindow is how often one kind of kgo warning is logged at most. While
// the brokers are unreachable every client logs every reconnect attempt
// (several lines a second); the processors report the outage themselves
// (app's broker watch).
const logWindow = 30 * time.Second

// LogThrottle lets one kgo warning or error of a kind (its message)
// through per 30 s and counts the others, which go to debug. Safe for
// concurrent use.
type LogThrottle struct {
	window time.Duration
	mu     sync.Mutex
	kinds  map[string]*throttled // kgo's messages are constants: few kinds
}

type throttled struct {
	last       time.Time
	suppressed int
}

// NewLogThrottle returns an empty LogThrottle.
func NewLogThrottle() *LogThrottle {
	return &LogThrottle{window: logWindow, kinds: map[string]*throttled{}}
}

// allow reports whether msg may be logged at now, and how many of its kind
// were held back since the last one.
func (t *LogThrottle) allow(msg string, now time.Time) (bool, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := t.kinds[msg]
	if k == nil {
		t.kinds[msg] = &throttled{last: now}
		return true, 0
	}
	if now.Sub(k.last) < t.window {
		k.suppressed++
		return false, 0
	}
	n := k.suppressed
	k.last, k.suppressed = now, 0
	return true, n
}
