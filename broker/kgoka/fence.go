package kgoka

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Zombie fencing. A processor replica that stops heartbeating without dying
// (SIGSTOP, a long pause, a network partition) loses its partitions to
// another member once the coordinator expires its session; when it wakes
// it must not write what it still holds (table flushes, emits) nor commit.
//
// A Fence ties one processor's producer to its consumer group's membership
// with a lease. While a session runs, the member sends its own Heartbeat
// (beside kgo's) for the session's member id and generation every
// HeartbeatInterval. An answer that says the member is current extends the
// lease to the time that heartbeat was *sent* plus SessionTimeout, minus
// LeaseMargin: the coordinator received it after it was sent, so it cannot
// expire the member before. (REBALANCE_IN_PROGRESS extends it too, but no
// further than the last plain answer's send time plus RebalanceTimeout: the
// coordinator removes a member that has not rejoined by then.) Go's
// monotonic clock keeps running while the process is stopped, so a replica
// that wakes after its session expired finds its lease over before it can
// write.
//
// Lapsed (no answer within the lease: stopped, partitioned, or the
// coordinator is down or moving), the member holds: a produce request kgo
// is about to write is refused on the connection, so nothing accepted
// earlier goes out late (kgo keeps the records and retries), and nothing is
// committed. The coordinator's next answer decides:
//   - the member is current (the broker was down, the coordinator moved):
//     the lease is renewed and the held records go out;
//   - the member is gone (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION,
//     FENCED_INSTANCE_ID): the lease trips for good. Every buffered record
//     is aborted and every new one fails with ErrFenced, the session ends
//     without a commit and the member leaves the group. pipeline.State
//     treats a failed write as fatal: the processor stops with an error
//     wrapping ErrFenced, its uncommitted state dropped, and restarts from
//     the committed offsets and the changelog (livefeed process exits;
//     its orchestrator restarts it). A session that trips with nothing to
//     write rejoins at once with a new member.
//
// The residual window: a produce request that passed the check is handed
// to the kernel a few instructions later; if the process is stopped exactly
// there, or the network delays bytes the kernel already holds (TCP
// retransmission across a partition that heals), they can reach the
// partition leader after the lease ended. They still arrive before the
// coordinator could expire the member unless that delay exceeds
// LeaseMargin; only Kafka transactions close it entirely.

// ErrFenced fails what a processor produces or commits while its group
// membership is not known to be valid: it may have passed to another
// member.
var ErrFenced = errors.New("kgoka: fenced: the group membership may have passed to another member")

// Metrics count fencing. Register them once per process (NewMetrics).
type Metrics struct {
	// Fenced counts leases that ended, by group and reason (expired, lost,
	// heartbeat error code).
	Fenced *prometheus.CounterVec
	// Refused counts what a fenced processor did not write, by group and
	// where: produce (a new record after the lease tripped), held (a produce
	// request not written while the lease lapsed; kgo retries it), aborted
	// (a buffered record failed when the lease tripped).
	Refused *prometheus.CounterVec
}

// NewMetrics creates the fencing metrics and registers them with reg (nil:
// unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Fenced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "livefeed_kafka_fenced_total",
			Help: "Processor group memberships fenced (their lease ended: session expired, member lost or a heartbeat refused), by group and reason. A fenced processor writes and commits nothing more and restarts.",
		}, []string{"group", "reason"}),
		Refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "livefeed_kafka_fenced_records_total",
			Help: "What a processor did not write because its group membership lease was not valid, by group and where: produce (a new record after the lease tripped), held (a produce request not written while the lease lapsed; retried), aborted (a buffered record failed when the lease tripped).",
		}, []string{"group", "where"}),
	}
	if reg != nil {
		reg.MustRegister(m.Fenced, m.Refused)
	}
	return m
}

// Fence is one processor's membership fence: build the processor with
// ProcessorOptions and its write-behind state's producer with Producer, so
// that every record it writes is checked against its group membership.
// One Fence serves one processor run (one consumer group).
type Fence struct {
	b       *Builders
	metrics *Metrics
	cur     atomic.Pointer[lease] // the lease producing is checked against; nil before the first

	mu        sync.Mutex
	group     string
	grouped   bool
	producers []*producer
}

// Fence returns a new fence on these builders' options, counted in m
// (nil: Options.Metrics).
func (b *Builders) Fence(m *Metrics) *Fence {
	if m == nil {
		m = b.opts.Metrics
	}
	return &Fence{b: b, metrics: m}
}

// ProcessorOptions are the producer and consumer group builders of a
// fenced processor; append them after the deployment's options.
func (f *Fence) ProcessorOptions() []goka.ProcessorOption {
	return []goka.ProcessorOption{goka.WithProducerBuilder(f.Producer()), goka.WithConsumerGroupBuilder(f.ConsumerGroup())}
}

// Producer builds producers checked against the fence's lease: their
// produce requests are held on the connection while it has lapsed, and
// their records fail with ErrFenced once it has tripped.
func (f *Fence) Producer() goka.ProducerBuilder {
	return func(brokers []string, clientID string, hasher func() hash.Hash32) (goka.Producer, error) {
		if f.b.err != nil {
			return nil, f.b.err
		}
		p, err := newProducer(f.b, brokers, clientID, hasher, f)
		if err != nil {
			return nil, err
		}
		f.mu.Lock()
		f.producers = append(f.producers, p)
		f.mu.Unlock()
		return p, nil
	}
}

// ConsumerGroup builds the processor's consumer group, whose members hold
// the fence's lease. It fails when called a second time.
func (f *Fence) ConsumerGroup() goka.ConsumerGroupBuilder {
	return func(brokers []string, group, clientID string) (sarama.ConsumerGroup, error) {
		if f.b.err != nil {
			return nil, f.b.err
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.grouped {
			return nil, fmt.Errorf("kgoka: the fence of group %s serves one consumer group", f.group)
		}
		f.grouped, f.group = true, group
		g := newConsumerGroup(f.b, brokers, group, clientID)
		g.fence = f
		return g, nil
	}
}

func (f *Fence) groupName() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.group
}

// refuse fails a new record once the current lease has tripped (a lapsed
// lease holds records on the connection instead).
func (f *Fence) refuse() error {
	l := f.cur.Load()
	if l == nil {
		return nil // no session yet: held on the connection
	}
	return l.trippedErr()
}

// hold is nil while a produce request may be written: the current lease is
// valid.
func (f *Fence) hold() error {
	l := f.cur.Load()
	if l == nil {
		return fmt.Errorf("%w: no group membership yet", ErrFenced)
	}
	return l.check(time.Now())
}

// refused counts n records or requests refused at where.
func (f *Fence) refused(where string, n int) {
	f.metrics.Refused.WithLabelValues(f.groupName(), where).Add(float64(n))
}

// abortBuffered fails every record the fence's producers still buffer
// (kgo.ErrAborting): they were accepted under a lease that has ended.
// Requests already written are not recalled.
func (f *Fence) abortBuffered() {
	f.mu.Lock()
	ps := append([]*producer(nil), f.producers...)
	f.mu.Unlock()
	for _, p := range ps {
		p.cl.UnsafeAbortBufferedRecords()
	}
}

// install makes l the lease producing is checked against.
func (f *Fence) install(l *lease) { f.cur.Store(l) }

// lease is one member's membership lease.
type lease struct {
	f         *Fence
	log       *slog.Logger
	base      time.Time     // monotonic origin of until and lastOK
	session   time.Duration // SessionTimeout
	rebalance time.Duration // RebalanceTimeout
	margin    time.Duration // LeaseMargin
	until     atomic.Int64  // ns after base; 0: never renewed
	lastOK    atomic.Int64  // ns after base: send time of the last plain answer (0: base)
	lapsed    atomic.Bool   // logged as lapsed, not renewed since
	tripped   chan struct{} // closed when the lease ends for good
	once      sync.Once
	err       error // why, set before tripped closes
}

func newLease(f *Fence, log *slog.Logger) *lease {
	o := f.b.opts
	return &lease{f: f, log: log, base: time.Now(), session: o.SessionTimeout, rebalance: o.RebalanceTimeout,
		margin: o.LeaseMargin, tripped: make(chan struct{})}
}

// renewed extends the lease for a heartbeat sent at sent that the
// coordinator answered as from a current member (rebalancing: while the
// group prepares a rebalance).
func (l *lease) renewed(sent time.Time, rebalancing bool) {
	at := int64(sent.Sub(l.base))
	next := at + int64(l.session-l.margin)
	if rebalancing {
		// The rebalance began after the last plain answer (the group was
		// stable then), or, before any, after the member was created (base,
		// lastOK's zero): the coordinator keeps the member at least a
		// rebalance timeout from then while it prepares.
		next = min(next, l.lastOK.Load()+int64(l.rebalance-l.margin))
	} else {
		raise(&l.lastOK, at)
	}
	raise(&l.until, next)
	if l.valid(time.Now()) && l.lapsed.Swap(false) {
		l.log.Info("kafka group membership lease renewed: the held produce requests go out")
	}
}

// raise sets v to x if x is larger.
func raise(v *atomic.Int64, x int64) {
	for {
		cur := v.Load()
		if x <= cur || v.CompareAndSwap(cur, x) {
			return
		}
	}
}

// valid: not tripped and renewed until after now.
func (l *lease) valid(now time.Time) bool {
	if l.isTripped() {
		return false
	}
	u := l.until.Load()
	return u != 0 && int64(now.Sub(l.base)) < u
}

// check is nil while the lease is valid at now, else why not.
func (l *lease) check(now time.Time) error {
	if err := l.trippedErr(); err != nil {
		return err
	}
	if l.valid(now) {
		return nil
	}
	if l.until.Load() != 0 && !l.lapsed.Swap(true) {
		l.log.Warn("kafka group membership lease lapsed: produce requests and commits are held until the coordinator answers a heartbeat",
			"lease", l.session-l.margin)
	}
	return fmt.Errorf("%w: the membership lease lapsed (no heartbeat answered within %v)", ErrFenced, l.session-l.margin)
}

func (l *lease) trippedErr() error {
	select {
	case <-l.tripped:
		return l.err
	default:
		return nil
	}
}

func (l *lease) isTripped() bool { return l.trippedErr() != nil }

// trip ends the lease for good, once: counted and logged.
func (l *lease) trip(reason, detail string) {
	l.once.Do(func() {
		l.err = fmt.Errorf("%w: %s", ErrFenced, detail)
		close(l.tripped)
		l.f.metrics.Fenced.WithLabelValues(l.f.groupName(), reason).Inc()
		l.log.Warn("kafka group membership fenced: the processor writes and commits nothing more, drops its uncommitted state and restarts from the committed offsets",
			"reason", reason, "detail", detail)
	})
}

// errGone: the coordinator answered that the member or its generation is
// gone.
var errGone = errors.New("member gone")

// heartbeat sends one Heartbeat for memberID in generation gen and renews
// the lease if the coordinator still knows it. It returns an error wrapping
// errGone if the coordinator says the member or generation is gone; other
// errors (transport, coordinator moving) leave the lease to lapse.
func (m *member) heartbeat(ctx context.Context, memberID string, gen int32) error {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Group, req.Generation, req.MemberID = m.g.group, gen, memberID
	rctx, cancel := context.WithTimeout(ctx, 2*m.g.b.opts.HeartbeatInterval)
	defer cancel()
	sent := time.Now()
	resp, err := req.RequestWith(rctx, m.cl)
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	switch err := kerr.ErrorForCode(resp.ErrorCode); {
	case err == nil:
		m.lease.renewed(sent, false)
		return nil
	case errors.Is(err, kerr.RebalanceInProgress):
		m.lease.renewed(sent, true)
		return nil
	case errors.Is(err, kerr.UnknownMemberID), errors.Is(err, kerr.IllegalGeneration), errors.Is(err, kerr.FencedInstanceID):
		return fmt.Errorf("%w: heartbeat of member %s generation %d: %w", errGone, memberID, gen, err)
	default:
		return fmt.Errorf("heartbeat: %w", err)
	}
}

// leaseLoop renews the lease of the running session (its end included:
// Cleanup and the last commit) every HeartbeatInterval until ctx ends. A
// coordinator that says the session's member or generation is gone trips
// the lease, which aborts the producers' buffered records and ends the
// session.
func (m *member) leaseLoop(ctx context.Context) {
	t := time.NewTicker(m.g.b.opts.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.lease.tripped:
			m.lease.f.abortBuffered()
			m.stopActive(endFenced)
			<-ctx.Done()
			return
		case <-t.C:
			m.mu.Lock()
			s := m.active
			m.mu.Unlock()
			if s == nil {
				continue // between sessions: nothing to cover
			}
			if err := m.heartbeat(ctx, s.memberID, s.gen); errors.Is(err, errGone) {
				m.tripIfActive(s, err)
			}
		}
	}
}

// tripIfActive trips the lease because the coordinator said s's member or
// generation is gone, unless s is no longer the running session. A
// heartbeat can be answered after its session ended: kgo lost the
// membership (a coordinator that moved), the session stopped and kgo
// rejoined in a new generation while the heartbeat for the old one was
// still being retried. ILLEGAL_GENERATION for the old generation then says
// nothing about the new one; tripping on it would fence a current member
// (and stop its processor). Under m.mu, so that no session starts between
// the check and the trip.
func (m *member) tripIfActive(s *session, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.active != s {
		m.g.log.Debug("kafka group membership: ignoring a heartbeat answer for a session that has ended", "generation", s.gen, "err", err)
		return
	}
	m.lease.trip("lost", err.Error())
}

// acquire renews the lease for a new assignment's member id and generation
// and makes it the fence's. It fails if the coordinator says the generation
// is gone, or answers nothing within the lease's length.
func (m *member) acquire(ctx context.Context, memberID string, gen int32) error {
	deadline := time.Now().Add(m.lease.session - m.lease.margin)
	for {
		if err := m.lease.trippedErr(); err != nil {
			return err
		}
		err := m.heartbeat(ctx, memberID, gen)
		if err == nil {
			m.lease.f.install(m.lease)
			return nil
		}
		if errors.Is(err, errGone) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// fencedConn refuses to write a produce request while the fence's lease is
// not valid: a record accepted before the process was stopped is not sent
// late. kgo writes each request with one Write, size and header first.
type fencedConn struct {
	net.Conn
	f *Fence
}

// produceKey is the Produce API key.
var produceKey = kmsg.NewPtrProduceRequest().Key()

func (c *fencedConn) Write(b []byte) (int, error) {
	if len(b) >= 6 && int16(binary.BigEndian.Uint16(b[4:6])) == produceKey {
		if err := c.f.hold(); err != nil {
			c.f.refused("held", 1)
			return 0, err
		}
	}
	return c.Conn.Write(b)
}

// fencedDialer wraps the dialer the client options give (plain or TLS) so
// that every connection of a fenced producer checks the lease before a
// produce request.
func fencedDialer(opts []kgo.Opt, f *Fence) ([]kgo.Opt, error) {
	probe, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	dial, _ := probe.OptValue(kgo.Dialer).(func(ctx context.Context, network, host string) (net.Conn, error))
	probe.Close()
	if dial == nil {
		return nil, errors.New("kgoka: no dialer to fence")
	}
	return append(opts, kgo.DialTLSConfig(nil), kgo.Dialer(func(ctx context.Context, network, host string) (net.Conn, error) {
		conn, err := dial(ctx, network, host)
		if err != nil {
			return nil, err
		}
		return &fencedConn{Conn: conn, f: f}, nil
	})), nil
}
