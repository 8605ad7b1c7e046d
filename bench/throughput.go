package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/simulate"
)

// ThroughputResult is phase 1: how fast the processors work off a backlog of
// simulated events.
type ThroughputResult struct {
	Events   int `json:"events"`
	Produced struct {
		Acked         int64            `json:"acked"`
		ByTopic       map[string]int64 `json:"by_topic"`
		Seconds       float64          `json:"seconds"`
		EventsPerSec  float64          `json:"events_per_sec"`
		SimulatedRate float64          `json:"simulated_rate"`
	} `json:"produced"`
	// ReadySeconds is the time from starting the processors until both groups
	// were ready (group joined, partitions assigned, tables recovered).
	ReadySeconds float64 `json:"ready_seconds"`
	// Livestream is the livestream group on the four input topics.
	Livestream GroupThroughput `json:"livestream"`
	// User is the user group on user-signals, which the livestream group
	// fills while it runs: its rate is bounded by the livestream group's.
	User GroupThroughput `json:"user"`
	// CommitLagZeroSeconds is when the livestream group's committed offsets
	// reached the end of the input topics, from processor start.
	CommitLagZeroSeconds float64 `json:"commit_lag_zero_seconds"`
	// CPUSeconds is the CPU time the process used from the processors'
	// start until both groups had handled everything (both groups, and
	// the broker when it is embedded); EventsPerCPUSecond is the input
	// events divided by it: throughput per core.
	CPUSeconds         float64 `json:"cpu_seconds"`
	EventsPerCPUSecond float64 `json:"events_per_cpu_second"`
	// Floor is the peer in the same run: a trivial goka counting group on
	// the same backlog (nil if it was not run).
	Floor *FloorResult `json:"goka_floor,omitempty"`
	// TwoHopFloor is the second peer: the topology's shape (a group that
	// emits one record per event to a second group) with no work in it.
	TwoHopFloor *FloorResult `json:"goka_two_hop_floor,omitempty"`
	// FranzFloor is the transport's ceiling: franz-go alone consumes,
	// counts per key in a map and produces one record per event, no goka.
	FranzFloor *FloorResult `json:"franz_go_floor,omitempty"`
	// Method describes how the numbers were taken.
	Method string `json:"method"`
}

// GroupThroughput is one consumer group's share of phase 1.
type GroupThroughput struct {
	Group    string           `json:"group"`
	Expected int64            `json:"expected"`
	Handled  int64            `json:"handled"`
	Outcomes map[string]int64 `json:"outcomes"`
	// LateByTopic counts, per input topic (without prefix), the events the
	// windows dropped as later than their allowed lateness.
	LateByTopic map[string]int64 `json:"late_by_topic,omitempty"`
	// FirstSeconds and DoneSeconds are from processor start until the first
	// poll that saw an event handled and the first that saw all of them.
	FirstSeconds float64 `json:"first_seconds"`
	DoneSeconds  float64 `json:"done_seconds"`
	// EventsPerSec is (Expected - handled at the first poll) divided by the
	// time between the first poll that saw progress and the first that saw
	// completion: startup excluded.
	EventsPerSec float64 `json:"events_per_sec"`
	// WithStartupPerSec is Expected over DoneSeconds: startup included.
	WithStartupPerSec float64 `json:"with_startup_per_sec"`
}

type sample struct {
	at       time.Duration
	ls, user int64
}

func (r *runner) throughput(ctx context.Context) (*ThroughputResult, error) {
	n := r.cfg.Events
	res := &ThroughputResult{Events: n}
	res.Method = "events handled read from the processors' counter livefeed_processor_events_total (all outcomes) every 100ms; " +
		"events/s counts from the first poll that saw progress to the first that saw all events, so the groups' startup " +
		"(join, rebalance wait, table recovery) is excluded; serving is not running in this phase; both groups share the CPUs"
	a, err := r.newApp(ctx, "tp")
	if err != nil {
		return nil, err
	}
	closeApp := a.Close
	defer func() {
		if closeApp != nil {
			closeApp()
		}
	}()

	// 1. The backlog: n simulated events, event times spaced 1/SimRate apart
	// and ending now, produced as fast as possible.
	sc := simulate.Config{Seed: r.cfg.Seed, BadFraction: 0}
	sc.FitRate(r.cfg.SimRate) // the world is sized for the simulated rate, as in the demo
	gen, err := simulate.New(sc)
	if err != nil {
		return nil, fmt.Errorf("creating simulator: %w", err)
	}
	step := time.Duration(float64(time.Second) / r.cfg.SimRate)
	simTime := time.Now().Add(-time.Duration(n) * step)
	clock := func() time.Time { simTime = simTime.Add(step); return simTime }
	cl, err := producer(a.Brokers(), 5*time.Millisecond)
	if err != nil {
		return nil, err
	}
	r.progress("throughput: producing %d simulated events", n)
	pctx, pcancel := context.WithTimeout(ctx, 5*time.Minute)
	st, err := simulate.Produce(pctx, cl, gen, simulate.ProduceOptions{
		Limit: n, TopicPrefix: a.Topology.Names.Prefix, Clock: clock,
	})
	pcancel()
	cl.Close()
	if err != nil {
		return nil, fmt.Errorf("producing the backlog: %w", err)
	}
	if st.Acked() != int64(n) {
		return nil, fmt.Errorf("producing the backlog: %d of %d events acknowledged", st.Acked(), n)
	}
	res.Produced.Acked, res.Produced.ByTopic = st.Acked(), st.Produced
	res.Produced.Seconds, res.Produced.EventsPerSec = seconds(st.Elapsed), round1(st.Rate())
	res.Produced.SimulatedRate = r.cfg.SimRate
	r.progress("throughput: produced %d events in %.1fs (%.0f/s); starting the processors", st.Acked(), st.Elapsed.Seconds(), st.Rate())

	// 2. Start the processors and watch the counters.
	cnt, err := newCounters(a)
	if err != nil {
		return nil, err
	}
	adm, admClose, err := newAdmin(a.Brokers())
	if err != nil {
		return nil, err
	}
	defer admClose()
	names := a.Topology.Names
	lsGroup, userGroup := string(names.LivestreamGroup()), string(names.UserGroup())
	var inputs []string
	for _, t := range events.InputTopics() {
		inputs = append(inputs, names.InputTopic(t))
	}
	signals := string(names.LivestreamTopics().UserSignals)
	// The user group reads user-signals: one record per user event (the
	// signal, and the event when user features read it).
	userInputs := []string{signals}
	res.Livestream = GroupThroughput{Group: lsGroup, Expected: int64(n)}
	res.User = GroupThroughput{Group: userGroup, Expected: -1}

	start, cpuStart := time.Now(), processCPU()
	stk := startProcessors(ctx, a)
	closeApp = nil // stop closes it
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		if err := stk.stop(); err != nil {
			r.progress("throughput: stopping: %v", err)
		}
	}
	defer stop()

	timeout := 2*time.Minute + time.Duration(n)*time.Second/500
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var (
		samples            []sample
		ready              bool
		lsDone, commitDone bool
		lastReport         time.Time
	)
	for {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-tick.C:
		}
		now := time.Since(start)
		if !ready {
			select {
			case <-stk.ready:
				ready = true
				res.ReadySeconds = seconds(now)
			default:
			}
		}
		if err := stk.failed(); err != nil {
			return res, err
		}
		m, err := cnt.read()
		if err != nil {
			return res, err
		}
		s := sample{at: now}
		if g := m[lsGroup]; g != nil {
			// The four input topics only: the group also reads content
			// vectors and audience signals, which are not backlog events.
			for _, t := range inputs {
				s.ls += g.ByTopic[t]
			}
			res.Livestream.Outcomes = g.ByOutcome
			res.Livestream.LateByTopic = map[string]int64{}
			for t, v := range g.LateByTopic {
				res.Livestream.LateByTopic[strings.TrimPrefix(t, names.Prefix)] = v
			}
		}
		if g := m[userGroup]; g != nil {
			s.user = g.Total
			res.User.Outcomes = g.ByOutcome
		}
		samples = append(samples, s)
		if !lsDone && s.ls >= int64(n) {
			lsDone = true
			r.progress("throughput: livestream group handled all %d events after %.1fs", n, now.Seconds())
		}
		if lsDone && !commitDone {
			lag, err := commitLag(ctx, adm, lsGroup, inputs...)
			if err != nil {
				return res, err
			}
			if lag == 0 {
				commitDone = true
				res.CommitLagZeroSeconds = seconds(time.Since(start))
				// Goka commits an input offset only after the emits of
				// that message are acknowledged: user-signals is complete.
				if res.User.Expected, err = endOffsets(ctx, adm, userInputs...); err != nil {
					return res, err
				}
			}
		}
		if commitDone && s.user >= res.User.Expected {
			cpu := processCPU() - cpuStart
			res.CPUSeconds, res.EventsPerCPUSecond = seconds(cpu), perCPUSecond(int64(n), cpu)
			break
		}
		if time.Since(lastReport) > 5*time.Second {
			lastReport = time.Now()
			r.progress("throughput: %.0fs: livestream %d/%d, user %d", now.Seconds(), s.ls, n, s.user)
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("not done after %v: livestream group handled %d of %d events (commit lag zero: %v), user group %d of %d",
				timeout, s.ls, n, commitDone, s.user, res.User.Expected)
		}
	}
	last := samples[len(samples)-1]
	res.Livestream.Handled, res.User.Handled = last.ls, last.user
	fill := func(g *GroupThroughput, get func(sample) int64) error {
		first, done := -1, -1
		for i, s := range samples {
			if first < 0 && get(s) > 0 {
				first = i
			}
			if done < 0 && get(s) >= g.Expected {
				done = i
			}
		}
		if first < 0 || done < 0 {
			return fmt.Errorf("group %s: no progress seen", g.Group)
		}
		g.FirstSeconds, g.DoneSeconds = seconds(samples[first].at), seconds(samples[done].at)
		if span := samples[done].at - samples[first].at; span > 0 {
			g.EventsPerSec = round1(float64(g.Expected-get(samples[first])) / span.Seconds())
		}
		g.WithStartupPerSec = round1(float64(g.Expected) / samples[done].at.Seconds())
		return nil
	}
	if err := fill(&res.Livestream, func(s sample) int64 { return s.ls }); err != nil {
		return res, err
	}
	if res.User.Expected > 0 {
		if err := fill(&res.User, func(s sample) int64 { return s.user }); err != nil {
			return res, err
		}
	}
	if res.Livestream.Handled != res.Livestream.Expected {
		return res, errors.New("livestream group handled more events than were produced")
	}
	r.progress("throughput: livestream %.0f events/s, user %.0f signals/s", res.Livestream.EventsPerSec, res.User.EventsPerSec)

	// 3. The peer: goka's own floor on the same backlog, with livefeed's
	// groups stopped so it has the CPUs to itself.
	stop()
	floorApp, err := r.newApp(ctx, "tp")
	if err != nil {
		return res, err
	}
	defer floorApp.Close()
	r.progress("throughput: goka floor (count per key, goleveldb) on the same %d events", n)
	if res.Floor, err = gokaFloor(ctx, floorApp, inputs, int64(n)); err != nil {
		return res, err
	}
	r.progress("throughput: goka floor %.0f events/s", res.Floor.EventsPerSec)
	r.progress("throughput: goka two-hop floor (count, emit one record per event to a second counting group)")
	if res.TwoHopFloor, err = gokaTwoHopFloor(ctx, floorApp, inputs, int64(n)); err != nil {
		return res, err
	}
	r.progress("throughput: goka two-hop floor %.0f events/s", res.TwoHopFloor.EventsPerSec)
	r.progress("throughput: franz-go floor (consume, count per key in a map, produce one record per event, no goka)")
	if res.FranzFloor, err = franzFloor(ctx, floorApp, inputs, int64(n)); err != nil {
		return res, err
	}
	r.progress("throughput: franz-go floor %.0f events/s", res.FranzFloor.EventsPerSec)
	return res, nil
}
