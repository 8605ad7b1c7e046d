package bench

// Failover (issue 6, item 1): N `livefeed process` replicas share the
// partitions of every processor group; one is killed with SIGKILL mid-stream,
// repeatedly, and each kill is timed from the signal until every partition
// the dead replica owned flows again on another replica. The pieces are
// exported for the real-Kafka failover test in app (it adds the offline
// comparison of the final features):
//
//	Replicas      the replica processes (start, kill -9, wipe, restart, stop)
//	FlowWatcher   kadm snapshots of the groups: members, states, committed
//	              offsets, changelog and input end offsets; MeasureKill and
//	              MeasureRejoin time one kill and one restart
//	Pace          produces records at a steady rate
//	WaitCaughtUp  waits until every group has committed every input record
//
// RunFailover is `livefeed bench failover`: simulated traffic, repeated
// kills, a report of the per-kill times with p50 and max.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/livefeed/livefeed/simulate"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ReplicaConfig says how to run the `livefeed process` replicas.
type ReplicaConfig struct {
	// Exe is the livefeed binary.
	Exe string
	// Brokers of the run.
	Brokers []string
	// Prefix is the topic and group prefix of the run.
	Prefix string
	// Partitions of every topic. Default 6.
	Partitions int
	// Replicas to run. Default 3.
	Replicas int
	// Dir holds each replica's data directory (<Dir>/<name>) and log
	// (<Dir>/<name>.log). Required.
	Dir string
	// Args are extra flags of every replica (e.g. --session-timeout=6s).
	Args []string
}

// Replica is one `livefeed process` subprocess. Its name is also its Kafka
// client id, so a group member can be traced to it.
type Replica struct {
	Name    string
	DataDir string
	LogPath string
	Addr    string // metrics and /readyz listen address

	cmd    *exec.Cmd
	log    *os.File
	exited chan struct{} // closed by the goroutine that waits for cmd
	err    error         // cmd.Wait's result, set before exited closes
}

// Replicas runs and kills the replica processes. Its methods are called from
// one goroutine.
type Replicas struct {
	cfg  ReplicaConfig
	list []*Replica
}

// StartReplicas starts cfg.Replicas processes and waits until each is ready
// (/readyz), or ctx is done. On error the started ones are stopped.
func StartReplicas(ctx context.Context, cfg ReplicaConfig) (*Replicas, error) {
	if cfg.Partitions == 0 {
		cfg.Partitions = 6
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 3
	}
	if cfg.Exe == "" || cfg.Dir == "" || cfg.Prefix == "" || len(cfg.Brokers) == 0 {
		return nil, errors.New("replicas: Exe, Dir, Prefix and Brokers are required")
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("replicas: %w", err)
	}
	rs := &Replicas{cfg: cfg}
	for i := range cfg.Replicas {
		name := fmt.Sprintf("%sr%d", cfg.Prefix, i+1)
		r := &Replica{Name: name, DataDir: filepath.Join(cfg.Dir, fmt.Sprintf("r%d", i+1)), LogPath: filepath.Join(cfg.Dir, fmt.Sprintf("r%d.log", i+1))}
		rs.list = append(rs.list, r)
		if err := rs.Start(i); err != nil {
			rs.Stop()
			return nil, err
		}
	}
	for i := range rs.list {
		if err := rs.WaitReady(ctx, i, 2*time.Minute); err != nil {
			rs.Stop()
			return nil, err
		}
	}
	return rs, nil
}

// Len is the number of replicas.
func (rs *Replicas) Len() int { return len(rs.list) }

// Get returns replica i.
func (rs *Replicas) Get(i int) *Replica { return rs.list[i] }

// Start starts replica i (not running) on its data directory, appending to
// its log.
func (rs *Replicas) Start(i int) error {
	r := rs.list[i]
	if r.cmd != nil {
		select {
		case <-r.exited:
		default:
			return fmt.Errorf("replica %s is running", r.Name)
		}
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	r.Addr = addr
	log, err := os.OpenFile(r.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("replica %s: %w", r.Name, err)
	}
	fmt.Fprintf(log, "==== %s start %s\n", time.Now().Format(time.RFC3339Nano), r.Name)
	args := append([]string{"process",
		"--brokers=" + strings.Join(rs.cfg.Brokers, ","),
		"--topic-prefix=" + rs.cfg.Prefix,
		fmt.Sprintf("--partitions=%d", rs.cfg.Partitions),
		"--data=" + r.DataDir,
		"--http=" + addr,
		"--client-id=" + r.Name,
		// The generated test model: failover measures partitions moving,
		// not ranking (Args may name another).
		"--model=test",
	}, rs.cfg.Args...)
	cmd := exec.Command(rs.cfg.Exe, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("starting replica %s: %w", r.Name, err)
	}
	r.cmd, r.log, r.exited, r.err = cmd, log, make(chan struct{}), nil
	go func() { // owned by the replica: ends when the process exits
		err := cmd.Wait()
		log.Close()
		r.err = err
		close(r.exited)
	}()
	return nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr, nil
}

// WaitReady waits until replica i answers /readyz with 200.
func (rs *Replicas) WaitReady(ctx context.Context, i int, timeout time.Duration) error {
	r := rs.list[i]
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-r.exited:
			return fmt.Errorf("replica %s exited before it was ready: %v", r.Name, r.err)
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.Addr+"/readyz", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("replica %s not ready after %v", r.Name, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Kill sends SIGKILL to replica i and waits until it is gone; it returns
// when the signal was sent.
func (rs *Replicas) Kill(i int) (time.Time, error) {
	r := rs.list[i]
	if r.cmd == nil {
		return time.Time{}, fmt.Errorf("replica %s was never started", r.Name)
	}
	at := time.Now()
	if err := r.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return at, fmt.Errorf("killing replica %s: %w", r.Name, err)
	}
	<-r.exited
	return at, nil
}

// Signal sends sig to replica i (SIGSTOP and SIGCONT freeze and resume it:
// a zombie).
func (rs *Replicas) Signal(i int, sig syscall.Signal) error {
	r := rs.list[i]
	if r.cmd == nil {
		return fmt.Errorf("replica %s was never started", r.Name)
	}
	if err := r.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signalling replica %s: %w", r.Name, err)
	}
	return nil
}

// Running reports whether replica i's process has not exited.
func (rs *Replicas) Running(i int) bool {
	r := rs.list[i]
	if r.cmd == nil {
		return false
	}
	select {
	case <-r.exited:
		return false
	default:
		return true
	}
}

// Wipe removes replica i's data directory (a new persistent volume).
func (rs *Replicas) Wipe(i int) error {
	if err := os.RemoveAll(rs.list[i].DataDir); err != nil {
		return fmt.Errorf("wiping %s: %w", rs.list[i].Name, err)
	}
	return nil
}

// Stop stops every running replica: SIGTERM, then SIGKILL after 20s. It
// returns the replicas that exited with an error on SIGTERM (a failed
// replica exits by itself; see Exited).
func (rs *Replicas) Stop() error {
	var errs []error
	for _, r := range rs.list {
		if r.cmd == nil {
			continue
		}
		select {
		case <-r.exited:
			continue
		default:
		}
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, r := range rs.list {
		if r.cmd == nil {
			continue
		}
		select {
		case <-r.exited:
		case <-time.After(20 * time.Second):
			_ = r.cmd.Process.Signal(syscall.SIGKILL)
			<-r.exited
			errs = append(errs, fmt.Errorf("replica %s did not stop within 20s of SIGTERM", r.Name))
			continue
		}
		if r.err != nil && !isSignal(r.err, syscall.SIGKILL) {
			errs = append(errs, fmt.Errorf("replica %s: %w", r.Name, r.err))
		}
	}
	return errors.Join(errs...)
}

func isSignal(err error, sig syscall.Signal) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}

// Exited returns an error naming every replica that exited by itself (not
// killed by Kill, not stopped by Stop).
func (rs *Replicas) Exited() error {
	var errs []error
	for _, r := range rs.list {
		if r.cmd == nil {
			continue
		}
		select {
		case <-r.exited:
			if !isSignal(r.err, syscall.SIGKILL) {
				errs = append(errs, fmt.Errorf("replica %s exited: %v", r.Name, r.err))
			}
		default:
		}
	}
	return errors.Join(errs...)
}

// Logs returns the last max bytes of every replica's log.
func (rs *Replicas) Logs(max int) string {
	var b strings.Builder
	for _, r := range rs.list {
		data, err := os.ReadFile(r.LogPath)
		if err != nil {
			fmt.Fprintf(&b, "---- %s: %v\n", r.LogPath, err)
			continue
		}
		if len(data) > max {
			data = data[len(data)-max:]
			if i := bytes.IndexByte(data, '\n'); i >= 0 {
				data = data[i+1:]
			}
		}
		fmt.Fprintf(&b, "---- %s (last %d bytes)\n%s", r.LogPath, len(data), data)
	}
	return b.String()
}

// FlowWatcher reads the processor groups of a prefix from the broker.
type FlowWatcher struct {
	adm     *kadm.Client
	groups  []string            // groups whose members are replicas
	tables  map[string]string   // group → its table (changelog) topic
	inputs  map[string][]string // group → its input topics
	clients map[string]bool     // the replicas' client ids
	// Every is the polling period. Default 50ms.
	Every time.Duration
}

// NewFlowWatcher finds the groups of prefix whose members are the replicas
// (goka's processor groups; the embedding worker's franz-go group has a
// client id of its own and is left out), their input topics and changelogs.
// It waits up to timeout for every replica to be a member of every group.
func NewFlowWatcher(ctx context.Context, adm *kadm.Client, prefix string, replicas []string, timeout time.Duration) (*FlowWatcher, error) {
	w := &FlowWatcher{adm: adm, tables: map[string]string{}, inputs: map[string][]string{}, clients: map[string]bool{}, Every: 50 * time.Millisecond}
	for _, r := range replicas {
		w.clients[r] = true
	}
	deadline := time.Now().Add(timeout)
	for {
		err := w.discover(ctx, prefix)
		if err == nil {
			return w, nil
		}
		if time.Now().After(deadline) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (w *FlowWatcher) discover(ctx context.Context, prefix string) error {
	listed, err := w.adm.ListGroups(ctx)
	if err != nil {
		return fmt.Errorf("listing groups: %w", err)
	}
	var names []string
	for _, g := range listed.Groups() {
		if strings.HasPrefix(g, prefix) {
			names = append(names, g)
		}
	}
	described, err := w.adm.DescribeGroups(ctx, names...)
	if err != nil {
		return fmt.Errorf("describing groups: %w", err)
	}
	topics, err := w.adm.ListTopics(ctx)
	if err != nil {
		return fmt.Errorf("listing topics: %w", err)
	}
	w.groups = w.groups[:0]
	for _, g := range described.Sorted() {
		members := map[string]bool{}
		inputs := map[string]bool{}
		for _, m := range g.Members {
			if !w.clients[m.ClientID] {
				continue
			}
			members[m.ClientID] = true
			if c, ok := m.Join.AsConsumer(); ok {
				for _, t := range c.Topics {
					inputs[t] = true
				}
			}
		}
		if len(members) == 0 {
			continue
		}
		if g.State != "Stable" || len(members) != len(w.clients) {
			return fmt.Errorf("group %s: %s with %d of %d replicas", g.Group, g.State, len(members), len(w.clients))
		}
		w.groups = append(w.groups, g.Group)
		w.inputs[g.Group] = slices.Sorted(maps.Keys(inputs))
		if len(w.inputs[g.Group]) == 0 {
			return fmt.Errorf("group %s: members name no input topics", g.Group)
		}
		if table := g.Group + "-table"; topics.Has(table) {
			w.tables[g.Group] = table
		}
	}
	if len(w.groups) == 0 {
		return fmt.Errorf("no group of prefix %q has a replica as member yet", prefix)
	}
	return nil
}

// Groups are the watched groups.
func (w *FlowWatcher) Groups() []string { return slices.Clone(w.groups) }

// flowSnap is one reading of the watched groups.
type flowSnap struct {
	at        time.Time
	state     map[string]string             // group → state
	owned     map[string]map[string][]int32 // group → client id → partitions
	ends      map[string]map[int32]int64    // topic → partition → end offset (inputs and tables)
	committed map[string]map[string]map[int32]int64
}

func (w *FlowWatcher) snapshot(ctx context.Context) (*flowSnap, error) {
	s := &flowSnap{state: map[string]string{}, owned: map[string]map[string][]int32{}, ends: map[string]map[int32]int64{}, committed: map[string]map[string]map[int32]int64{}}
	described, err := w.adm.DescribeGroups(ctx, w.groups...)
	if err != nil {
		return nil, fmt.Errorf("describing groups: %w", err)
	}
	var topics []string
	for _, g := range w.groups {
		d := described[g]
		if d.Err != nil {
			return nil, fmt.Errorf("describing group %s: %w", g, d.Err)
		}
		s.state[g] = d.State
		s.owned[g] = map[string][]int32{}
		for _, m := range d.Members {
			if c, ok := m.Assigned.AsConsumer(); ok {
				var parts []int32
				for _, t := range c.Topics {
					parts = append(parts, t.Partitions...)
				}
				slices.Sort(parts)
				s.owned[g][m.ClientID] = slices.Compact(parts)
			}
		}
		topics = append(topics, w.inputs[g]...)
		if t, ok := w.tables[g]; ok {
			topics = append(topics, t)
		}
	}
	slices.Sort(topics)
	ends, err := w.adm.ListEndOffsets(ctx, slices.Compact(topics)...)
	if err != nil {
		return nil, fmt.Errorf("listing end offsets: %w", err)
	}
	if err := ends.Error(); err != nil {
		return nil, fmt.Errorf("listing end offsets: %w", err)
	}
	ends.Each(func(o kadm.ListedOffset) {
		if s.ends[o.Topic] == nil {
			s.ends[o.Topic] = map[int32]int64{}
		}
		s.ends[o.Topic][o.Partition] = o.Offset
	})
	for _, r := range w.adm.FetchManyOffsets(ctx, w.groups...) {
		if r.Err != nil {
			return nil, fmt.Errorf("fetching offsets of %s: %w", r.Group, r.Err)
		}
		c := map[string]map[int32]int64{}
		r.Fetched.Each(func(o kadm.OffsetResponse) {
			if c[o.Topic] == nil {
				c[o.Topic] = map[int32]int64{}
			}
			c[o.Topic][o.Partition] = o.At
		})
		s.committed[r.Group] = c
	}
	s.at = time.Now()
	return s, nil
}

// advanced reports whether group g has moved on partition p since base: its
// changelog grew or a commit on one of its inputs moved.
func (w *FlowWatcher) advanced(g string, p int32, base, now *flowSnap) bool {
	if t, ok := w.tables[g]; ok && now.ends[t][p] > base.ends[t][p] {
		return true
	}
	for _, t := range w.inputs[g] {
		if now.committed[g][t][p] > base.committed[g][t][p] {
			return true
		}
	}
	return false
}

// fed reports whether group g's inputs received records on p since base.
func (w *FlowWatcher) fed(g string, p int32, base, now *flowSnap) bool {
	for _, t := range w.inputs[g] {
		if now.ends[t][p] > base.ends[t][p] {
			return true
		}
	}
	return false
}

// GroupFlow is one group's part of a kill or a rejoin.
type GroupFlow struct {
	Group string `json:"group"`
	// Partitions of the group that were measured (the dead replica's, or
	// all for a rejoin) and those left out because no input reached them.
	Partitions []int32 `json:"partitions"`
	Idle       []int32 `json:"idle,omitempty"`
	// Detected: the group left Stable (the coordinator noticed). Settled:
	// Stable again with the new membership. Flowing: every measured
	// partition advanced. All since the kill (or the rejoin's start).
	Detected time.Duration `json:"detected_ns"`
	Settled  time.Duration `json:"settled_ns"`
	Flowing  time.Duration `json:"flowing_ns"`
}

// FlowResult times one kill or one rejoin over every watched group.
type FlowResult struct {
	Replica string    `json:"replica"`
	Wiped   bool      `json:"wiped,omitempty"`
	At      time.Time `json:"at"`
	// The slowest group's detection, settling and flowing.
	Detected time.Duration `json:"detected_ns"`
	Settled  time.Duration `json:"settled_ns"`
	Flowing  time.Duration `json:"flowing_ns"`
	// Stall (rejoins only): the longest time a group's partitions stood
	// still, from the group leaving Stable until all of them flowed.
	Stall  time.Duration `json:"stall_ns,omitempty"`
	Groups []GroupFlow   `json:"groups"`
}

func (r FlowResult) String() string {
	s := fmt.Sprintf("%s: detected %v, settled %v, flowing %v", r.Replica, r.Detected.Round(10*time.Millisecond), r.Settled.Round(10*time.Millisecond), r.Flowing.Round(10*time.Millisecond))
	if r.Stall > 0 {
		s += fmt.Sprintf(", stall %v", r.Stall.Round(10*time.Millisecond))
	}
	if r.Wiped {
		s += " (wiped state)"
	}
	return s
}

type groupTrack struct {
	GroupFlow
	rejoin   bool      // measured and base are set when the group settles
	started  time.Time // left Stable (rejoin)
	flowed   map[int32]bool
	base     *flowSnap // offsets the partitions must move past
	measured []int32
}

// MeasureKill kills the replica through kill and times how long until every
// partition it owned in every watched group advanced on another replica.
// Partitions that no input reached within timeout are reported idle.
func (w *FlowWatcher) MeasureKill(ctx context.Context, replica string, kill func() (time.Time, error), timeout time.Duration) (FlowResult, error) {
	before, err := w.snapshot(ctx)
	if err != nil {
		return FlowResult{}, err
	}
	for _, g := range w.groups {
		if before.state[g] != "Stable" {
			return FlowResult{}, fmt.Errorf("group %s is %s before the kill", g, before.state[g])
		}
	}
	at, err := kill()
	if err != nil {
		return FlowResult{}, err
	}
	base, err := w.snapshot(ctx)
	if err != nil {
		return FlowResult{}, err
	}
	res := FlowResult{Replica: replica, At: at}
	tracks := map[string]*groupTrack{}
	for _, g := range w.groups {
		tracks[g] = &groupTrack{GroupFlow: GroupFlow{Group: g}, flowed: map[int32]bool{}, base: base, measured: before.owned[g][replica]}
	}
	return w.follow(ctx, "kill", &res, at, tracks, timeout, func(g string, now *flowSnap, t *groupTrack) {
		_, member := now.owned[g][replica]
		if t.Detected == 0 && (now.state[g] != "Stable" || !member) {
			t.Detected = now.at.Sub(at)
		}
		if t.Detected > 0 && t.Settled == 0 && now.state[g] == "Stable" && !member {
			t.Settled = now.at.Sub(at)
		}
	})
}

// MeasureRejoin starts the replica through start and times its rejoin: each
// group leaves Stable, settles with the replica as a member, and every
// partition of the group advances past where it stood when the group
// settled; Stall is the longest time from a group leaving Stable until all
// its partitions flowed.
func (w *FlowWatcher) MeasureRejoin(ctx context.Context, replica string, start func() error, timeout time.Duration) (FlowResult, error) {
	at := time.Now()
	if err := start(); err != nil {
		return FlowResult{}, err
	}
	res := FlowResult{Replica: replica, At: at}
	tracks := map[string]*groupTrack{}
	for _, g := range w.groups {
		tracks[g] = &groupTrack{GroupFlow: GroupFlow{Group: g}, rejoin: true, flowed: map[int32]bool{}}
	}
	res2, err := w.follow(ctx, "restart", &res, at, tracks, timeout, func(g string, now *flowSnap, t *groupTrack) {
		_, member := now.owned[g][replica]
		if t.Detected == 0 && now.state[g] != "Stable" {
			t.Detected, t.started = now.at.Sub(at), now.at
		}
		if t.Detected > 0 && t.Settled == 0 && now.state[g] == "Stable" && member {
			// Offsets from the settled reading on: commits and changelog
			// flushes of the revoked generation land before it.
			t.Settled, t.base = now.at.Sub(at), now
			for p := range int32(len(now.ends[w.inputs[g][0]])) {
				t.measured = append(t.measured, p)
			}
		}
	})
	for _, g := range res2.Groups {
		if t := tracks[g.Group]; t.Flowing > 0 {
			res2.Stall = max(res2.Stall, at.Add(t.Flowing).Sub(t.started))
		}
	}
	return res2, err
}

// follow polls until every group's measured partitions have advanced past
// its base (or were idle until timeout); step updates a group's detection
// and settling from each reading.
func (w *FlowWatcher) follow(ctx context.Context, what string, res *FlowResult, at time.Time, tracks map[string]*groupTrack, timeout time.Duration,
	step func(g string, now *flowSnap, t *groupTrack)) (FlowResult, error) {
	deadline := at.Add(timeout)
	for {
		now, err := w.snapshot(ctx)
		if err != nil {
			return *res, err
		}
		done := true
		for _, g := range w.groups {
			t := tracks[g]
			step(g, now, t)
			if t.rejoin && t.Settled == 0 {
				done = false
				continue
			}
			for _, p := range t.measured {
				if !t.flowed[p] && w.advanced(g, p, t.base, now) {
					t.flowed[p] = true
					t.Flowing = max(t.Flowing, now.at.Sub(at))
				}
				if !t.flowed[p] {
					done = false
				}
			}
		}
		if done || now.at.After(deadline) {
			var stuck []string
			res.Groups = res.Groups[:0]
			for _, g := range w.groups {
				t := tracks[g]
				for _, p := range t.measured {
					switch {
					case t.flowed[p]:
						t.Partitions = append(t.Partitions, p)
					case t.base != nil && !w.fed(g, p, t.base, now):
						t.Idle = append(t.Idle, p)
					default:
						stuck = append(stuck, fmt.Sprintf("%s/%d", g, p))
					}
				}
				if t.rejoin && t.Settled == 0 {
					stuck = append(stuck, g+" never settled (state "+now.state[g]+")")
				}
				res.Detected = max(res.Detected, t.Detected)
				res.Settled = max(res.Settled, t.Settled)
				res.Flowing = max(res.Flowing, t.Flowing)
				res.Groups = append(res.Groups, t.GroupFlow)
			}
			if len(stuck) > 0 {
				return *res, fmt.Errorf("%s: not flowing %v after the %s: %s", res.Replica, timeout, what, strings.Join(stuck, ", "))
			}
			return *res, nil
		}
		select {
		case <-ctx.Done():
			return *res, ctx.Err()
		case <-time.After(w.Every):
		}
	}
}

// Pace produces recs at rate records/s in 10ms slices until all are
// produced or ctx is done, then waits for every acknowledgement; once hurry
// is closed the rest goes at once. It returns the first produce error.
func Pace(ctx context.Context, cl *kgo.Client, recs []*kgo.Record, rate float64, hurry <-chan struct{}) error {
	var (
		mu       sync.Mutex
		firstErr error
	)
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
		}
	}
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	sent := 0
	for sent < len(recs) {
		due := len(recs)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-hurry:
		case <-tick.C:
			due = min(len(recs), int(time.Since(start).Seconds()*rate))
		}
		for ; sent < due; sent++ {
			cl.Produce(ctx, recs[sent], promise)
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("flushing: %w", err)
	}
	mu.Lock()
	defer mu.Unlock()
	return firstErr
}

// WaitCaughtUp waits until every group of prefix (goka's and the embedding
// worker's) is Stable and has committed every record of its inputs, twice in
// a row a second apart, or timeout passes.
func WaitCaughtUp(ctx context.Context, adm *kadm.Client, prefix string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	streak := 0
	last := "not checked"
	for {
		lagging, err := lagOf(ctx, adm, prefix)
		if err != nil {
			lagging = err.Error()
		}
		if lagging == "" {
			if streak++; streak == 2 {
				return nil
			}
		} else {
			streak, last = 0, lagging
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("groups of %s not caught up after %v: %s", prefix, timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// lagOf describes what lags among the groups of prefix ("" when nothing).
func lagOf(ctx context.Context, adm *kadm.Client, prefix string) (string, error) {
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		return "", fmt.Errorf("listing groups: %w", err)
	}
	var groups []string
	for _, g := range listed.Groups() {
		if strings.HasPrefix(g, prefix) {
			groups = append(groups, g)
		}
	}
	if len(groups) == 0 {
		return "no groups yet", nil
	}
	lags, err := adm.Lag(ctx, groups...)
	if err != nil {
		return "", fmt.Errorf("lag: %w", err)
	}
	var out []string
	for _, l := range lags.Sorted() {
		if l.Error() != nil {
			out = append(out, fmt.Sprintf("%s: %v", l.Group, l.Error()))
			continue
		}
		if l.State != "Stable" {
			out = append(out, fmt.Sprintf("%s: %s", l.Group, l.State))
			continue
		}
		if n := l.Lag.Total(); n != 0 {
			out = append(out, fmt.Sprintf("%s: lag %d", l.Group, n))
		}
	}
	return strings.Join(out, "; "), nil
}

// FailoverConfig sizes `livefeed bench failover`.
type FailoverConfig struct {
	ReplicaConfig
	// Rate of simulated events per second. Default 300.
	Rate float64
	// Kills is the number of kill -9s. Default 5.
	Kills int
	// Interval between kills. Default 9s.
	Interval time.Duration
	// WipeEvery: every WipeEvery-th kill restarts the replica with an empty
	// data directory (0: never). Default 3.
	WipeEvery int
	// Seed of the simulator and the choice of victims. Default 1.
	Seed int64
	// FlowTimeout bounds each measurement. Default 90s.
	FlowTimeout time.Duration
	// Progress receives a line per kill and rejoin (nil: none).
	Progress io.Writer
}

// FailoverReport is the result of RunFailover.
type FailoverReport struct {
	Date       string        `json:"date"`
	Brokers    string        `json:"brokers"`
	Replicas   int           `json:"replicas"`
	Partitions int           `json:"partitions"`
	Rate       float64       `json:"rate"`
	Args       []string      `json:"args"`
	Groups     []string      `json:"groups"`
	Kills      []FlowResult  `json:"kills"`
	Rejoins    []FlowResult  `json:"rejoins"`
	FlowP50    time.Duration `json:"flow_p50_ns"`
	FlowMax    time.Duration `json:"flow_max_ns"`
	StallP50   time.Duration `json:"rejoin_stall_p50_ns"`
	StallMax   time.Duration `json:"rejoin_stall_max_ns"`
}

// RunFailover starts the replicas on a fresh prefix, feeds them simulated
// traffic and kills one every Interval, timing each kill and each restart.
// The caller removes the prefix's topics and groups (DeletePrefix).
func RunFailover(ctx context.Context, cfg FailoverConfig) (*FailoverReport, error) {
	if cfg.Rate == 0 {
		cfg.Rate = 300
	}
	if cfg.Kills == 0 {
		cfg.Kills = 5
	}
	if cfg.Interval == 0 {
		cfg.Interval = 9 * time.Second
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	if cfg.FlowTimeout == 0 {
		cfg.FlowTimeout = 90 * time.Second
	}
	progress := cfg.Progress
	if progress == nil {
		progress = io.Discard
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.MetadataMinAge(50*time.Millisecond))
	if err != nil {
		return nil, fmt.Errorf("creating kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	fmt.Fprintf(progress, "failover: starting %d replicas on prefix %s\n", max(cfg.Replicas, 3), cfg.Prefix)
	rs, err := StartReplicas(ctx, cfg.ReplicaConfig)
	if err != nil {
		return nil, err
	}
	defer rs.Stop()
	rep := &FailoverReport{Date: time.Now().UTC().Format(time.RFC3339), Brokers: strings.Join(cfg.Brokers, ","),
		Replicas: rs.Len(), Partitions: rs.cfg.Partitions, Rate: cfg.Rate, Args: cfg.Args}

	// Simulated traffic, from now until the run ends.
	gen, err := simulate.New(simulate.Config{Seed: cfg.Seed})
	if err != nil {
		return nil, err
	}
	pctx, stopTraffic := context.WithCancel(ctx)
	traffic := make(chan error, 1)
	go func() { // owned: stopTraffic ends it, and it is waited for below
		traffic <- simulateAt(pctx, cl, gen, cfg.Prefix, cfg.Rate)
	}()
	defer func() {
		stopTraffic()
		<-traffic
	}()

	names := make([]string, rs.Len())
	for i := range names {
		names[i] = rs.Get(i).Name
	}
	w, err := NewFlowWatcher(ctx, adm, cfg.Prefix, names, 2*time.Minute)
	if err != nil {
		return rep, err
	}
	rep.Groups = w.Groups()
	fmt.Fprintf(progress, "failover: watching groups %v\n", rep.Groups)
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0))
	for k := range cfg.Kills {
		select {
		case <-ctx.Done():
			return rep, ctx.Err()
		case err := <-traffic:
			return rep, fmt.Errorf("simulated traffic stopped: %v", err)
		case <-time.After(cfg.Interval):
		}
		kill, rejoin, err := KillAndRestart(ctx, rs, w, rng.IntN(rs.Len()), cfg.WipeEvery > 0 && (k+1)%cfg.WipeEvery == 0, cfg.FlowTimeout)
		if kill.Replica != "" {
			rep.Kills = append(rep.Kills, kill)
			fmt.Fprintf(progress, "failover: kill %d %s\n", k+1, kill)
		}
		if rejoin.Replica != "" {
			rep.Rejoins = append(rep.Rejoins, rejoin)
			fmt.Fprintf(progress, "failover: rejoin %d %s\n", k+1, rejoin)
		}
		if err != nil {
			return rep, err
		}
	}
	rep.summarize()
	return rep, rs.Exited()
}

// KillAndRestart kills replica i with SIGKILL, times until its partitions
// flow on the others, then restarts it (on an empty data directory when
// wipe) and times the rejoin.
func KillAndRestart(ctx context.Context, rs *Replicas, w *FlowWatcher, i int, wipe bool, timeout time.Duration) (kill, rejoin FlowResult, err error) {
	if err := rs.Exited(); err != nil {
		return kill, rejoin, err
	}
	r := rs.Get(i)
	kill, err = w.MeasureKill(ctx, r.Name, func() (time.Time, error) { return rs.Kill(i) }, timeout)
	kill.Wiped = wipe
	if err != nil {
		return kill, rejoin, err
	}
	if wipe {
		if err := rs.Wipe(i); err != nil {
			return kill, rejoin, err
		}
	}
	rejoin, err = w.MeasureRejoin(ctx, r.Name, func() error { return rs.Start(i) }, timeout)
	rejoin.Wiped = wipe
	return kill, rejoin, err
}

func (rep *FailoverReport) summarize() {
	var flows, stalls []time.Duration
	for _, k := range rep.Kills {
		flows = append(flows, k.Flowing)
	}
	for _, r := range rep.Rejoins {
		stalls = append(stalls, r.Stall)
	}
	rep.FlowP50, rep.FlowMax = p50Max(flows)
	rep.StallP50, rep.StallMax = p50Max(stalls)
}

func p50Max(ds []time.Duration) (p50, mx time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	s := slices.Sorted(slices.Values(ds))
	return s[(len(s)-1)/2], s[len(s)-1]
}

// simulateAt produces simulated events to the prefix's topics at rate/s
// until ctx is done.
func simulateAt(ctx context.Context, cl *kgo.Client, gen *simulate.Generator, prefix string, rate float64) error {
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var (
		mu       sync.Mutex
		firstErr error
	)
	sent := 0
	for {
		select {
		case <-ctx.Done():
			mu.Lock()
			defer mu.Unlock()
			return firstErr
		case <-tick.C:
		}
		mu.Lock()
		err := firstErr
		mu.Unlock()
		if err != nil {
			return err
		}
		for due := int(time.Since(start).Seconds() * rate); sent < due; sent++ {
			r := gen.Next(time.Now())
			cl.Produce(ctx, &kgo.Record{Topic: prefix + r.Topic, Key: []byte(r.Key), Value: r.Value}, func(_ *kgo.Record, err error) {
				if err != nil && !errors.Is(err, context.Canceled) {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			})
		}
	}
}

// WriteText prints the report.
func (rep *FailoverReport) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "failover: %d replicas, %d partitions, %g events/s, brokers %s, replica flags %v (%s)\n",
		rep.Replicas, rep.Partitions, rep.Rate, rep.Brokers, rep.Args, rep.Date)
	fmt.Fprintf(&b, "groups: %s\n\n", strings.Join(rep.Groups, ", "))
	fmt.Fprintf(&b, "%-5s %-40s %10s %10s %10s   (kill -9 → every partition of the replica advanced on another)\n", "kill", "replica", "detected", "settled", "flowing")
	for i, k := range rep.Kills {
		name := k.Replica
		if k.Wiped {
			name += " (wiped)"
		}
		fmt.Fprintf(&b, "%-5d %-40s %10s %10s %10s\n", i+1, name, secs(k.Detected), secs(k.Settled), secs(k.Flowing))
	}
	fmt.Fprintf(&b, "\n%-5s %-40s %10s %10s %10s %10s   (restart → group rebalanced with it, every partition advanced)\n", "start", "replica", "rebalance", "settled", "flowing", "stall")
	for i, r := range rep.Rejoins {
		name := r.Replica
		if r.Wiped {
			name += " (wiped)"
		}
		fmt.Fprintf(&b, "%-5d %-40s %10s %10s %10s %10s\n", i+1, name, secs(r.Detected), secs(r.Settled), secs(r.Flowing), secs(r.Stall))
	}
	fmt.Fprintf(&b, "\ntime to flow after a kill: p50 %s, max %s; stall of a rejoin: p50 %s, max %s\n",
		secs(rep.FlowP50), secs(rep.FlowMax), secs(rep.StallP50), secs(rep.StallMax))
	_, err := io.WriteString(w, b.String())
	return err
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }

// WriteJSON saves the report.
func (rep *FailoverReport) WriteJSON(path string) error {
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(js, '\n'), 0o644)
}

// DeletePrefix deletes the topics and groups of prefix (a run's leftovers).
func DeletePrefix(ctx context.Context, adm *kadm.Client, prefix string) error {
	var errs []error
	if listed, err := adm.ListGroups(ctx); err != nil {
		errs = append(errs, err)
	} else {
		if groups := withPrefix(listed.Groups(), prefix); len(groups) > 0 {
			if _, err := adm.DeleteGroups(ctx, groups...); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if topics, err := adm.ListTopics(ctx); err != nil {
		errs = append(errs, err)
	} else {
		if names := withPrefix(topics.Names(), prefix); len(names) > 0 {
			if _, err := adm.DeleteTopics(ctx, names...); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// withPrefix is the names that start with prefix.
func withPrefix(names []string, prefix string) []string {
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	return out
}
