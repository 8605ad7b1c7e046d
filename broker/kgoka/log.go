package kgoka

import (
	"context"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"
)

// kgoLogger adapts slog to kgo.Logger. kgo logs at the most verbose level
// the slog handler accepts; its info lines (connections, assignments) go to
// slog at debug, warnings and errors as they are.
type kgoLogger struct {
	log *slog.Logger
}

func newLogger(l *slog.Logger, clientID string) kgoLogger {
	return kgoLogger{log: l.With("component", "kgo", "client_id", clientID)}
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
	l.log.Log(context.Background(), lv, msg, keyvals...)
}
