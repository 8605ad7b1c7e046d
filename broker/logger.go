package broker

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// gokaLogger adapts slog to goka.Logger. Goka logs routine lifecycle
// messages through Printf; they go to slog at debug level, except lines that
// mention an error.
type gokaLogger struct {
	log *slog.Logger
}

func (c *Config) gokaLogger(component string) gokaLogger {
	return gokaLogger{log: c.Logger.With("component", "goka-"+component)}
}

func (l gokaLogger) emit(msg string) {
	msg = strings.TrimSpace(msg)
	level := slog.LevelDebug
	lower := strings.ToLower(msg)
	if strings.Contains(lower, "error") || strings.Contains(lower, "fail") {
		level = slog.LevelWarn
	}
	l.log.Log(context.Background(), level, msg)
}

func (l gokaLogger) Print(v ...any)                 { l.emit(fmt.Sprint(v...)) }
func (l gokaLogger) Println(v ...any)               { l.emit(fmt.Sprintln(v...)) }
func (l gokaLogger) Printf(format string, v ...any) { l.emit(fmt.Sprintf(format, v...)) }
