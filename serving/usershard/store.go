// Package usershard holds a serving replica's share of the user table.
//
// Serving replicas form a Kafka consumer group over the user table's
// changelog topic. The group's balancer (balancer.go) gives each replica a
// share of the partitions to answer for (active) and, optionally, a standby
// copy of others; every replica's assignment carries the whole
// partition→owner map (owners by advertised HTTP address). A replica keeps
// the partitions it holds in one local goleveldb database on disk with a
// bounded block cache, each partition stored with the next offset to read,
// so a restart resumes from local state instead of replaying the table.
//
// Get answers a user from local state when this replica is the partition's
// active owner and has caught up with the table's end offset as of the
// assignment; otherwise it asks the owner (one hop: the owner's local route
// never forwards), retrying through a move until Options.ForwardTimeout,
// and then fails with ErrUnavailable. A replica never answers "no such
// user" for a partition it does not hold, current.
package usershard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livefeed/livefeed/broker"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Options configure a Store. Zero values take the defaults in each
// field's comment.
type Options struct {
	// Broker is the Kafka connection (seed brokers, security, session
	// timeout, the user table's partition count). Required.
	Broker *broker.Config
	// Topic is the user table's changelog topic. Required.
	Topic string
	// Group is the consumer group of the serving replicas. Default
	// Topic + "-serving".
	Group string
	// Dir holds the local goleveldb copy. Required.
	Dir string
	// Advertise is the base URL the other replicas and clients reach this
	// replica's HTTP API at, e.g. http://10.0.0.5:8080. Required.
	Advertise string
	// Standbys is how many standby copies of each partition the group
	// keeps besides the active one (0 or 1): a standby replica follows
	// the partition without answering for it, and takes over in
	// milliseconds when the owner leaves. Default 0; negative: 0.
	Standbys int
	// DropAfter is how long a partition this replica no longer holds
	// (neither active nor standby) stays on its disk before it is
	// deleted: kept, a partition that comes back (the owner restarted,
	// a short-lived replica left) resumes instead of replaying. Default
	// 10 minutes; negative: never deleted.
	DropAfter time.Duration
	// CacheBytes bounds goleveldb's block cache. Default 64 MiB.
	CacheBytes int
	// ForwardTimeout bounds how long Get keeps retrying a user whose
	// partition is moving or whose owner does not answer. Default 2s.
	ForwardTimeout time.Duration
	// Token is sent as the bearer token of forwarded lookups (the
	// replicas share serve's --api-token); empty sends none.
	Token string
	// HTTPClient sends forwarded lookups. Default: one of its own.
	HTTPClient *http.Client
	// Registerer receives the metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Default option values.
const (
	DefaultCacheBytes     = 64 << 20
	DefaultForwardTimeout = 2 * time.Second
	DefaultDropAfter      = 10 * time.Minute
)

func (o Options) withDefaults() (Options, error) {
	switch {
	case o.Broker == nil || o.Broker.Partitions < 1:
		return o, errors.New("usershard: Options.Broker with its partition count is required")
	case o.Topic == "":
		return o, errors.New("usershard: Options.Topic is required")
	case o.Dir == "":
		return o, errors.New("usershard: Options.Dir is required")
	case o.Advertise == "":
		return o, errors.New("usershard: Options.Advertise is required")
	case o.Standbys > 1:
		return o, fmt.Errorf("usershard: Options.Standbys %d: want 0 or 1", o.Standbys)
	}
	if o.Group == "" {
		o.Group = o.Topic + "-serving"
	}
	o.Standbys = max(o.Standbys, 0)
	if o.CacheBytes <= 0 {
		o.CacheBytes = DefaultCacheBytes
	}
	if o.DropAfter == 0 {
		o.DropAfter = DefaultDropAfter
	}
	if o.ForwardTimeout <= 0 {
		o.ForwardTimeout = DefaultForwardTimeout
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, nil
}

// What this replica holds of a partition.
const (
	held      int32 = iota // nothing current: not assigned here
	standby                // a standby copy: followed, not answered for
	restoring              // active, catching up with the end offset
	ready                  // active and current: answered from local state
)

// ErrUnavailable: the user's partition has no replica that can answer now
// (it is moving, or its owner died and the group has not yet given it to
// another). Retryable: serving answers 503 with Retry-After.
var ErrUnavailable = errors.New("user partition unavailable")

// Store is a replica's share of the user table. Run it once.
type Store struct {
	opts Options
	n    int32
	db   *db
	// state and target are per partition: what this replica holds, and
	// for a restoring partition the end offset it must reach before it
	// answers (−1: not read yet).
	state  []atomic.Int32
	target []atomic.Int64
	// unheld is, per partition, when it stopped being held here (unix
	// nanoseconds; 0: held, or nothing to drop). dropMu keeps a drop
	// and adjustOffsets apart.
	unheld []atomic.Int64
	dropMu sync.Mutex
	// owners is the latest assignment's partition→address map; pending
	// is the assignment ParseSyncAssignment received, applied by
	// onAssigned.
	owners   atomic.Pointer[[]string]
	pending  atomic.Pointer[assignment]
	assigned atomic.Bool // an assignment has been applied at least once
	metrics  *metrics
	log      *slog.Logger
}

// New opens the local database. Close it after Run has returned.
func New(opts Options) (*Store, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	d, err := openDB(opts.Dir, opts.CacheBytes)
	if err != nil {
		return nil, err
	}
	n := opts.Broker.Partitions
	s := &Store{opts: opts, n: n, db: d, state: make([]atomic.Int32, n), target: make([]atomic.Int64, n), unheld: make([]atomic.Int64, n),
		log: opts.Logger.With("component", "user-partitions")}
	s.metrics = newMetrics(opts.Registerer, s)
	return s, nil
}

// Close closes the local database.
func (s *Store) Close() error { return s.db.Close() }

// Run joins the group and follows the assigned partitions until ctx is
// done, then leaves the group (its partitions move to the other replicas
// at once).
func (s *Store) Run(ctx context.Context) error {
	b := s.opts.Broker
	bal := &balancer{topic: s.opts.Topic, standbys: s.opts.Standbys, join: s.memberInfo,
		sync: func(a assignment) { s.pending.Store(&a) }}
	cl, err := kgo.NewClient(b.KgoOpts(
		kgo.ClientID(b.ClientID+"-user-partitions"),
		kgo.ConsumerGroup(s.opts.Group),
		kgo.ConsumeTopics(s.opts.Topic),
		kgo.Balancers(bal),
		kgo.DisableAutoCommit(), // offsets live beside the data, locally
		kgo.SessionTimeout(b.SessionTimeout),
		kgo.HeartbeatInterval(b.HeartbeatInterval),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxPartitionBytes(8<<20),
		kgo.AdjustFetchOffsetsFn(s.adjustOffsets),
		kgo.OnPartitionsAssigned(s.onAssigned),
		kgo.OnPartitionsRevoked(s.onRevoked),
		kgo.OnPartitionsLost(s.onLost),
	)...)
	if err != nil {
		return fmt.Errorf("creating the user-partitions consumer: %w", err)
	}
	defer func() {
		cl.Close() // leaves the group
		for p := range s.state {
			s.state[p].Store(held)
		}
	}()
	adm := kadm.NewClient(cl)
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		var applyErr error
		fs.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return
			}
			s.log.Warn("fetching user partition", "topic", t, "partition", p, "err", err)
		})
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			if applyErr == nil && len(fp.Records) > 0 {
				applyErr = s.apply(fp)
			}
		})
		if applyErr != nil {
			return applyErr
		}
		s.readTargets(ctx, adm)
		if err := s.dropUnheld(); err != nil {
			return err
		}
	}
}

// apply stores a fetched batch of one partition with its next offset.
func (s *Store) apply(fp kgo.FetchTopicPartition) error {
	p := fp.Partition
	if p < 0 || p >= s.n {
		return fmt.Errorf("user table partition %d: the table has %d (its partition count changed?)", p, s.n)
	}
	if s.state[p].Load() == held {
		// A batch fetched before the partition left this replica: its
		// copy may be deleted (dropUnheld), and a batch stored on
		// its own would leave a stored offset with the values before
		// it missing.
		return nil
	}
	recs := make([]record, len(fp.Records))
	for i, r := range fp.Records {
		recs[i] = record{key: r.Key, value: r.Value}
	}
	next := fp.Records[len(fp.Records)-1].Offset + 1
	if err := s.db.apply(p, recs, next); err != nil {
		return fmt.Errorf("storing user partition %d: %w", p, err)
	}
	s.metrics.applied.Add(float64(len(recs)))
	s.caughtUp(p, next)
	return nil
}

// caughtUp makes a restoring partition ready once next reaches its target.
func (s *Store) caughtUp(p int32, next int64) {
	if t := s.target[p].Load(); t >= 0 && next >= t && s.state[p].CompareAndSwap(restoring, ready) {
		s.log.Info("user partition ready", "partition", p, "offset", next)
	}
}

// readTargets reads the end offsets of restoring partitions that have no
// target yet (just assigned) and marks those already reached ready.
func (s *Store) readTargets(ctx context.Context, adm *kadm.Client) {
	var need bool
	for p := range s.n {
		if s.state[p].Load() == restoring && s.target[p].Load() < 0 {
			need = true
		}
	}
	if !need {
		return
	}
	ends, err := adm.ListEndOffsets(ctx, s.opts.Topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		s.log.Warn("reading the user table's end offsets", "err", err)
		return
	}
	ends.Each(func(o kadm.ListedOffset) {
		p := o.Partition
		if p < 0 || p >= s.n || s.state[p].Load() != restoring || !s.target[p].CompareAndSwap(-1, o.Offset) {
			return
		}
		next, _, err := s.db.nextOffset(p)
		if err != nil {
			s.log.Warn("reading a user partition's local offset", "partition", p, "err", err)
			return
		}
		s.caughtUp(p, next)
	})
}

// dropUnheld deletes the partitions not held here for Options.DropAfter.
func (s *Store) dropUnheld() error {
	if s.opts.DropAfter < 0 {
		return nil
	}
	now := time.Now().UnixNano()
	for p := range s.n {
		since := s.unheld[p].Load()
		if since == 0 || now-since < int64(s.opts.DropAfter) {
			continue
		}
		s.dropMu.Lock()
		var (
			deleted int
			err     error
		)
		// Re-check under the lock: an assignment may have taken it.
		if s.state[p].Load() == held && s.unheld[p].CompareAndSwap(since, 0) {
			deleted, err = s.db.drop(p)
		}
		s.dropMu.Unlock()
		if err != nil {
			return fmt.Errorf("deleting user partition %d: %w", p, err)
		}
		if deleted > 0 {
			s.log.Info("user partition deleted from disk", "partition", p, "users", deleted, "unheld_for", time.Duration(now-since).Round(time.Second))
		}
	}
	return nil
}

// memberInfo is this replica's join metadata: its address and the local
// copies it has.
func (s *Store) memberInfo() memberInfo {
	mi := memberInfo{Addr: s.opts.Advertise, Stored: map[int32]int64{}}
	for p := range s.n {
		if next, ok, err := s.db.nextOffset(p); err == nil && ok {
			mi.Stored[p] = next
		}
	}
	return mi
}

// adjustOffsets starts every assigned partition at its local next offset
// (no local copy: the start of the table).
func (s *Store) adjustOffsets(_ context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	s.dropMu.Lock()
	defer s.dropMu.Unlock()
	for p := range offsets[s.opts.Topic] {
		next, ok, err := s.db.nextOffset(p)
		if err != nil {
			return nil, fmt.Errorf("reading user partition %d's local offset: %w", p, err)
		}
		if ok {
			offsets[s.opts.Topic][p] = kgo.NewOffset().At(next).WithEpoch(-1)
			continue
		}
		// Read from the start: values an interrupted drop left would
		// outlive their tombstones.
		if _, err := s.db.drop(p); err != nil {
			return nil, fmt.Errorf("clearing user partition %d: %w", p, err)
		}
	}
	return offsets, nil
}

// onAssigned applies the assignment the balancer received: the owner map,
// and for each partition what this replica now holds. A partition that
// stays active keeps answering; a newly active one answers once it has
// caught up with the end offset read after the assignment.
func (s *Store) onAssigned(_ context.Context, _ *kgo.Client, _ map[string][]int32) {
	a := s.pending.Load()
	if a == nil {
		a = &assignment{}
	}
	want := make([]int32, s.n)
	for _, p := range a.Standby {
		if p >= 0 && p < s.n {
			want[p] = standby
		}
	}
	for _, p := range a.Active {
		if p >= 0 && p < s.n {
			want[p] = restoring
		}
	}
	now := time.Now().UnixNano()
	for p := range s.n {
		cur := s.state[p].Load()
		if want[p] != held {
			s.unheld[p].Store(0)
		} else if cur != held || s.unheld[p].Load() == 0 {
			s.unheld[p].Store(now) // a local copy, if any, is dropped later
		}
		switch {
		case want[p] == restoring && cur == ready:
			// Still ours: keep answering.
		case want[p] == restoring:
			s.target[p].Store(-1)
			s.state[p].Store(restoring)
		default:
			s.state[p].Store(want[p])
		}
	}
	owners := a.Owners
	s.owners.Store(&owners)
	s.assigned.Store(true)
	s.log.Info("user partitions assigned", "active", a.Active, "standby", a.Standby, "owners", owners)
}

// onRevoked: an eager rebalance revokes everything before the group
// re-forms. Active partitions keep answering from their last state until
// the new assignment (no other replica answers for them before it).
func (s *Store) onRevoked(context.Context, *kgo.Client, map[string][]int32) {}

// onLost: the group went on without this replica (session expired): other
// replicas may own its partitions already, so it stops answering for them.
func (s *Store) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	now := time.Now().UnixNano()
	for _, p := range lost[s.opts.Topic] {
		if p >= 0 && p < s.n {
			s.state[p].Store(held)
			s.unheld[p].Store(now)
		}
	}
	s.log.Warn("user partitions lost", "partitions", lost[s.opts.Topic])
}

// Partition is the user table's partition of a user id (Kafka's murmur2,
// as the processors write it).
func (s *Store) Partition(id string) int32 { return broker.PartitionOf(id, s.n) }

// Ready reports whether the replica has an assignment and answers for all
// of its active partitions.
func (s *Store) Ready() bool {
	if !s.assigned.Load() {
		return false
	}
	for p := range s.state {
		if s.state[p].Load() == restoring {
			return false
		}
	}
	return true
}

// Map is the partition map as this replica knows it.
type Map struct {
	// Partitions is the user table's partition count.
	Partitions int32 `json:"partitions"`
	// Owners is the base URL of the replica answering for each partition
	// ("" while unassigned).
	Owners []string `json:"owners"`
	// Self is this replica's address; Ready the partitions it answers for
	// now, Standby the ones it follows as a standby.
	Self    string  `json:"self"`
	Ready   []int32 `json:"ready"`
	Standby []int32 `json:"standby"`
}

// Map returns the partition map.
func (s *Store) Map() Map {
	m := Map{Partitions: s.n, Owners: make([]string, s.n), Self: s.opts.Advertise, Ready: []int32{}, Standby: []int32{}}
	if o := s.owners.Load(); o != nil {
		copy(m.Owners, *o)
	}
	for p := range s.n {
		switch s.state[p].Load() {
		case ready:
			m.Ready = append(m.Ready, p)
		case standby:
			m.Standby = append(m.Standby, p)
		}
	}
	return m
}

func (s *Store) owner(p int32) string {
	if o := s.owners.Load(); o != nil && int(p) < len(*o) {
		return (*o)[p]
	}
	return ""
}
