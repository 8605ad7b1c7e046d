package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// brokerWatch tells, while the processors run, whether any Kafka broker
// answers. With none, the processors are paused: their inputs cannot be
// fetched and their table writes and commits wait (pipeline.State, kgoka
// retry them until the delivery timeout). `livefeed process` then reports
// it: /readyz 503 with the reason, livefeed_broker_reachable 0, and one log
// line when the pause starts and one when it ends, instead of a line per
// failed request.
type brokerWatch struct {
	reachable prometheus.Gauge
	log       *slog.Logger
	register  sync.Once

	mu        sync.Mutex
	downSince time.Time // zero: reachable
	lastErr   error
}

// Broker watch timing: a ping every brokerPingEvery, each failing after
// brokerPingTimeout; brokerPingFails failures in a row pause.
const (
	brokerPingEvery   = time.Second
	brokerPingTimeout = 2 * time.Second
	brokerPingFails   = 2
)

func newBrokerWatch(log *slog.Logger) *brokerWatch {
	return &brokerWatch{
		reachable: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "livefeed_broker_reachable",
			Help: "1 while a Kafka broker answers the processors' ping (every second), 0 while none does: the processors are paused until one answers.",
		}),
		log: log,
	}
}

// run pings through cl until ctx ends. The gauge is registered with reg
// the first time (a process may run its processors more than once).
func (w *brokerWatch) run(ctx context.Context, reg prometheus.Registerer, cl *kgo.Client) {
	w.register.Do(func() { reg.MustRegister(w.reachable) })
	w.mu.Lock()
	w.downSince, w.lastErr = time.Time{}, nil
	w.mu.Unlock()
	w.reachable.Set(1)
	fails := 0
	for {
		pctx, cancel := context.WithTimeout(ctx, brokerPingTimeout)
		err := cl.Ping(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			fails++
		} else {
			fails = 0
		}
		w.observe(err, fails >= brokerPingFails)
		select {
		case <-ctx.Done():
			return
		case <-time.After(brokerPingEvery):
		}
	}
}

// observe records a ping's outcome; down: enough failures in a row.
func (w *brokerWatch) observe(err error, down bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case down && w.downSince.IsZero():
		w.downSince, w.lastErr = time.Now(), err
		w.reachable.Set(0)
		w.log.Warn("kafka: no broker reachable; the processors are paused until one answers", "err", err)
	case down:
		w.lastErr = err
	case err == nil && !w.downSince.IsZero():
		w.log.Info("kafka: a broker answers again; the processors resume",
			"paused_for", time.Since(w.downSince).Round(time.Millisecond))
		w.downSince, w.lastErr = time.Time{}, nil
		w.reachable.Set(1)
	}
}

// paused is the reason the processors are paused, or "".
func (w *brokerWatch) paused() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.downSince.IsZero() {
		return ""
	}
	return fmt.Sprintf("no Kafka broker reachable for %v (%v): the processors are paused until one answers",
		time.Since(w.downSince).Round(time.Second), w.lastErr)
}
