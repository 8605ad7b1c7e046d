package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/livefeed/livefeed/app"
	"github.com/livefeed/livefeed/broker"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// stopTimeout bounds how long a component may take to stop.
const stopTimeout = 30 * time.Second

// stack is one phase's running components: the processors and, optionally,
// serving. Every goroutine it starts is stopped by stop.
type stack struct {
	a        *app.App
	serveCtx context.Context
	cancel   context.CancelFunc
	ready    chan struct{}
	names    []string
	errs     []chan error
	url      string // of the API; "" without serving
	http     *http.Client
	tr       *http.Transport
}

// startProcessors runs the App's processors until the stack is stopped.
func startProcessors(ctx context.Context, a *app.App) *stack {
	ctx, cancel := context.WithCancel(ctx)
	s := &stack{a: a, cancel: cancel, ready: make(chan struct{})}
	s.goRun("processors", func() error { return a.RunProcessors(ctx, s.ready) })
	s.serveCtx = ctx
	return s
}

func (s *stack) goRun(name string, fn func() error) {
	c := make(chan error, 1)
	s.names = append(s.names, name)
	s.errs = append(s.errs, c)
	go func() { c <- fn() }()
}

// startServing adds the views, the index and the HTTP API on addr.
func (s *stack) startServing(addr string) error {
	svc, err := s.a.NewServing()
	if err != nil {
		return fmt.Errorf("creating serving: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	ctx := s.serveCtx
	s.goRun("serving", func() error { return s.a.Serve(ctx, svc, ln) })
	s.url = "http://" + ln.Addr().String()
	s.tr = &http.Transport{
		Proxy:               nil,
		MaxIdleConns:        16,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	s.http = &http.Client{Transport: s.tr, Timeout: 10 * time.Second}
	return nil
}

// failed reports a component that stopped on its own (nil if none did).
func (s *stack) failed() error {
	for i, c := range s.errs {
		select {
		case err := <-c:
			c <- err // keep it for stop
			if err == nil {
				err = errors.New("stopped unexpectedly")
			}
			return fmt.Errorf("%s: %w", s.names[i], err)
		default:
		}
	}
	return nil
}

// waitReady waits until the processors are ready and, with serving, until
// /readyz answers 200.
func (s *stack) waitReady(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	procReady := false
	for {
		if !procReady {
			select {
			case <-s.ready:
				procReady = true
			default:
			}
		}
		if procReady && (s.url == "" || s.servingReady(ctx)) {
			return time.Since(start), nil
		}
		if err := s.failed(); err != nil {
			return 0, err
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-deadline.C:
			return 0, fmt.Errorf("not ready after %v (processors ready: %v)", timeout, procReady)
		case <-tick.C:
		}
	}
}

func (s *stack) servingReady(ctx context.Context) bool {
	code, _, err := s.get(ctx, "/readyz", nil)
	return err == nil && code == http.StatusOK
}

// indexed returns the number of streams in the serving index (/readyz).
func (s *stack) indexed(ctx context.Context) (int, error) {
	var out struct {
		IndexedStreams int `json:"indexed_streams"`
	}
	code, _, err := s.get(ctx, "/readyz", &out)
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK {
		return 0, fmt.Errorf("/readyz: status %d", code)
	}
	return out.IndexedStreams, nil
}

// get fetches path and decodes a 200 answer into out (if not nil). It
// returns the status code and the time until the body was read.
func (s *stack) get(ctx context.Context, path string, out any) (int, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+path, nil)
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	resp, err := s.http.Do(req)
	if err != nil {
		return 0, 0, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if err != nil {
		return resp.StatusCode, took, fmt.Errorf("reading %s: %w", path, err)
	}
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, out); err != nil {
			return resp.StatusCode, took, fmt.Errorf("decoding %s: %w", path, err)
		}
	}
	return resp.StatusCode, took, nil
}

// stop cancels every component, waits for them (bounded) and closes the App.
// The App stays open if a component did not stop, so that nothing running
// uses a closed embedder.
func (s *stack) stop() error {
	s.cancel()
	var errs []error
	stuck := false
	for i, c := range s.errs {
		select {
		case err := <-c:
			if err != nil && !errors.Is(err, context.Canceled) {
				errs = append(errs, fmt.Errorf("%s: %w", s.names[i], err))
			}
		case <-time.After(stopTimeout):
			stuck = true
			errs = append(errs, fmt.Errorf("%s did not stop within %v", s.names[i], stopTimeout))
		}
	}
	if s.tr != nil {
		s.tr.CloseIdleConnections()
	}
	if !stuck {
		s.a.Close()
	}
	return errors.Join(errs...)
}

// counters reads livefeed_processor_events_total of one App.
type counters struct {
	reg *prometheus.Registry
}

func newCounters(a *app.App) (*counters, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(a.Topology.Metrics.Events); err != nil {
		return nil, fmt.Errorf("registering the event counter: %w", err)
	}
	return &counters{reg: reg}, nil
}

// groupCounts are the events a group handled, by outcome.
type groupCounts struct {
	Total     int64            `json:"total"`
	ByOutcome map[string]int64 `json:"by_outcome,omitempty"`
	ByTopic   map[string]int64 `json:"by_topic,omitempty"`
	// LateByTopic counts the events dropped from windows as too late.
	LateByTopic map[string]int64 `json:"late_by_topic,omitempty"`
}

// read returns the counts per group.
func (c *counters) read() (map[string]*groupCounts, error) {
	mfs, err := c.reg.Gather()
	if err != nil {
		return nil, fmt.Errorf("reading metrics: %w", err)
	}
	out := map[string]*groupCounts{}
	for _, mf := range mfs {
		if mf.GetName() != "livefeed_processor_events_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var group, topic, outcome string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "group":
					group = l.GetValue()
				case "topic":
					topic = l.GetValue()
				case "outcome":
					outcome = l.GetValue()
				}
			}
			g := out[group]
			if g == nil {
				g = &groupCounts{ByOutcome: map[string]int64{}, ByTopic: map[string]int64{}, LateByTopic: map[string]int64{}}
				out[group] = g
			}
			v := int64(m.GetCounter().GetValue())
			g.Total += v
			g.ByOutcome[outcome] += v
			g.ByTopic[topic] += v
			if outcome == "late" {
				g.LateByTopic[topic] += v
			}
		}
	}
	return out, nil
}

// admin is a kadm client on the run's brokers.
func newAdmin(brokers []string) (*kadm.Client, func(), error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.MetadataMinAge(50*time.Millisecond))
	if err != nil {
		return nil, nil, fmt.Errorf("creating kafka admin client: %w", err)
	}
	return kadm.NewClient(cl), cl.Close, nil
}

// endOffsets sums the end offsets of topics.
func endOffsets(ctx context.Context, adm *kadm.Client, topics ...string) (int64, error) {
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return 0, fmt.Errorf("listing end offsets: %w", err)
	}
	if err := ends.Error(); err != nil {
		return 0, fmt.Errorf("listing end offsets: %w", err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n, nil
}

// commitLag is the sum over the partitions of topics of end offset minus the
// group's committed offset (a partition without a commit counts from 0; the
// topics are fresh).
func commitLag(ctx context.Context, adm *kadm.Client, group string, topics ...string) (int64, error) {
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return 0, fmt.Errorf("listing end offsets: %w", err)
	}
	if err := ends.Error(); err != nil {
		return 0, fmt.Errorf("listing end offsets: %w", err)
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return 0, fmt.Errorf("fetching offsets of %s: %w", group, err)
	}
	var lag int64
	ends.Each(func(o kadm.ListedOffset) {
		var at int64
		if c, ok := committed.Lookup(o.Topic, o.Partition); ok && c.Err == nil && c.At >= 0 {
			at = c.At
		}
		lag += max(0, o.Offset-at)
	})
	return lag, nil
}

// producer is a franz-go client that partitions like Kafka's default
// partitioner (murmur2), as every livefeed producer must.
func producer(brokers []string, linger time.Duration) (*kgo.Client, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(broker.Partitioner()),
		kgo.ProducerLinger(linger))
	if err != nil {
		return nil, fmt.Errorf("creating producer: %w", err)
	}
	return cl, nil
}

// sleepCtx sleeps d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
