package usershard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// LocalPath is the route prefix of local lookups between replicas:
// GET LocalPath + url.PathEscape(id) answers from this replica's local
// state only (200 with the table's value, 404 for an unknown user of a
// partition it answers for, 503 otherwise) and never forwards, so a lookup
// takes at most one hop.
const LocalPath = "/internal/users/"

// ForwardedHeader marks a lookup forwarded by a replica (its address as
// value); a replica never forwards a request that carries it.
const ForwardedHeader = "Livefeed-Forwarded-By"

// errNotHere: this replica does not answer for the partition now.
var errNotHere = errors.New("partition not answered here")

// local returns id's value from local state; errNotHere unless this
// replica answers for its partition.
func (s *Store) local(id string) ([]byte, error) {
	p := s.Partition(id)
	if s.state[p].Load() != ready {
		return nil, errNotHere
	}
	v, err := s.db.get(p, id)
	if err != nil {
		return nil, fmt.Errorf("reading user %s from partition %d: %w", id, p, err)
	}
	// Lost between the check and the read: the value may be older than
	// the new owner's, but it was current when the read began.
	return v, nil
}

// Get returns a user's value in the table (nil: no such user): from local
// state when this replica answers for the user's partition, else from the
// partition's owner. Through a move it retries (the owner map changes with
// the group's assignment) until ctx or Options.ForwardTimeout ends, then
// returns an error wrapping ErrUnavailable.
func (s *Store) Get(ctx context.Context, id string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.ForwardTimeout)
	defer cancel()
	p := s.Partition(id)
	wait := 10 * time.Millisecond
	var last error
	for {
		v, err := s.local(id)
		if !errors.Is(err, errNotHere) {
			if err == nil {
				s.metrics.lookups.WithLabelValues("local").Inc()
			}
			return v, err
		}
		owner := s.owner(p)
		switch {
		case owner == "":
			last = fmt.Errorf("partition %d has no owner yet", p)
		case owner == s.opts.Advertise:
			last = fmt.Errorf("partition %d is restoring here", p)
		default:
			v, found, err := s.forward(ctx, owner, id)
			if err == nil {
				s.metrics.lookups.WithLabelValues("forwarded").Inc()
				if !found {
					return nil, nil
				}
				return v, nil
			}
			last = err
		}
		select {
		case <-ctx.Done():
			s.metrics.lookups.WithLabelValues("unavailable").Inc()
			return nil, fmt.Errorf("%w: user %s, partition %d: %v", ErrUnavailable, id, p, last)
		case <-time.After(wait):
			wait = min(2*wait, 250*time.Millisecond)
		}
	}
}

// forward asks owner for id from its local state.
func (s *Store) forward(ctx context.Context, owner, id string) (value []byte, found bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(owner, "/")+LocalPath+url.PathEscape(id), nil)
	if err != nil {
		return nil, false, err
	}
	req.Header.Set(ForwardedHeader, s.opts.Advertise)
	if s.opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.opts.Token)
	}
	resp, err := s.opts.HTTPClient.Do(req)
	if err != nil {
		return nil, false, fmt.Errorf("asking %s: %w", owner, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, false, fmt.Errorf("reading %s's answer: %w", owner, err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return body, true, nil
	case http.StatusNotFound:
		return nil, false, nil
	default:
		return nil, false, fmt.Errorf("%s answered %d: %s", owner, resp.StatusCode, strings.TrimSpace(string(body)))
	}
}

// ServeLocal answers a lookup from another replica (GET LocalPath{id})
// from local state only.
func (s *Store) ServeLocal(w http.ResponseWriter, id string) {
	v, err := s.local(id)
	switch {
	case errors.Is(err, errNotHere):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("user partition %d is not answered by this replica now", s.Partition(id)))
	case err != nil:
		s.log.Error("local user lookup failed", "err", err)
		writeError(w, http.StatusInternalServerError, "internal error")
	case v == nil:
		writeError(w, http.StatusNotFound, fmt.Sprintf("user %q not found", id))
	default:
		w.Header().Set("Content-Type", "application/octet-stream")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(v)
	}
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

type metrics struct {
	lookups *prometheus.CounterVec
	applied prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, s *Store) *metrics {
	m := &metrics{
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "livefeed_serving_user_lookups_total",
			Help: "User lookups of the partitioned user store by result: local, forwarded (answered by the owner), unavailable (503).",
		}, []string{"result"}),
		applied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "livefeed_serving_user_records_applied_total",
			Help: "User-table records stored locally (active and standby partitions).",
		}),
	}
	if reg == nil {
		return m
	}
	held := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "livefeed_serving_user_partitions",
		Help: "User-table partitions this replica holds, by state: ready (answered here), restoring, standby.",
	}, []string{"state"})
	reg.MustRegister(m.lookups, m.applied, heldCollector{s: s, g: held})
	return m
}

// heldCollector refreshes the partitions-held gauge on scrape.
type heldCollector struct {
	s *Store
	g *prometheus.GaugeVec
}

func (c heldCollector) Describe(ch chan<- *prometheus.Desc) { c.g.Describe(ch) }
func (c heldCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[int32]float64{}
	for p := range c.s.state {
		counts[c.s.state[p].Load()]++
	}
	c.g.WithLabelValues("ready").Set(counts[ready])
	c.g.WithLabelValues("restoring").Set(counts[restoring])
	c.g.WithLabelValues("standby").Set(counts[standby])
	c.g.Collect(ch)
}
