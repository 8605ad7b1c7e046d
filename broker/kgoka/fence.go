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
// with a lease. The member sends its own Heartbeat (beside kgo's) every
// HeartbeatInterval; an answer that says the member is still in its
// generation (no error, or REBALANCE_IN_PROGRESS) extends the lease to the
// time the heartbeat was *sent* plus SessionTimeout minus LeaseMargin. The
// coordinator received that heartbeat after it was sent, so it cannot
// expire the member before the lease ends. Go's monotonic clock keeps
// running while the process is stopped, so a replica that wakes after its
// session expired finds its lease over before it can write. While the lease
// is not valid:
//   - every record the processor produces fails at once with ErrFenced;
//   - a produce request kgo is about to write (records accepted before the
//     stop and still buffered or retried) is refused on the connection, so
//     nothing accepted earlier goes out late; the buffered records are then
//     aborted;
//   - nothing is committed (and every commit carries the session's
//     generation: the broker refuses a stale one).
//
// Once a lease fails it is over for good (tripped): the session ends, the
// member leaves the group and the processor's failed writes fail its
// deferred commits, which stops the processor with an error wrapping
// ErrFenced (pipeline.State treats a failed write as fatal): its
// uncommitted state is dropped and it restarts from the committed offsets
// and the changelog. A session that ends fenced with nothing refused
// rejoins at once with a new member.
//
// The residual window: a produce request that passed the check is handed
// to the kernel a few instructions later; if the process is stopped exactly
// there, or the network delays bytes the kernel already holds (TCP
// retransmission across a partition that heals), they can reach the
// partition leader after the lease ended. They are still sent before the
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
	// Refused counts records and produce requests refused because the
	// lease was not valid, by group and where (produce, request, aborted).
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
			Help: "Records and produce requests a fenced processor was refused, by group and where: produce (a new record), request (a buffered request not written), aborted (a buffered record failed).",
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

// Producer builds producers whose records are refused while the fence's
// lease is not valid.
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

// check is nil while the current lease is valid; otherwise it ends the
// lease (if it was valid until now) and returns why, wrapping ErrFenced.
func (f *Fence) check() error {
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
	f        *Fence
	log      *slog.Logger
	base     time.Time     // monotonic origin of until
	validFor time.Duration // SessionTimeout - LeaseMargin
	until    atomic.Int64  // ns after base; 0: never renewed
	tripped  chan struct{} // closed when the lease ends for good
	once     sync.Once
	err      error // why, set before tripped closes
}

func newLease(f *Fence, log *slog.Logger) *lease {
	o := f.b.opts
	return &lease{f: f, log: log, base: time.Now(), validFor: o.SessionTimeout - o.LeaseMargin, tripped: make(chan struct{})}
}

// renewed extends the lease for a heartbeat sent at sent that the
// coordinator answered as from a current member.
func (l *lease) renewed(sent time.Time) {
	next := int64(sent.Sub(l.base) + l.validFor)
	for {
		cur := l.until.Load()
		if next <= cur || l.until.CompareAndSwap(cur, next) {
			return
		}
	}
}

// leased: renewed at least once.
func (l *lease) leased() bool { return l.until.Load() != 0 }

// expired: renewed once and over at now.
func (l *lease) expired(now time.Time) bool {
	u := l.until.Load()
	return u != 0 && int64(now.Sub(l.base)) >= u
}

// check is nil while the lease is valid at now; otherwise it trips the
// lease and returns its error.
func (l *lease) check(now time.Time) error {
	select {
	case <-l.tripped:
		return l.err
	default:
	}
	if u := l.until.Load(); u == 0 || int64(now.Sub(l.base)) >= u {
		l.trip("expired", fmt.Sprintf("no heartbeat answered within %v (session timeout minus margin)", l.validFor))
		return l.err
	}
	return nil
}

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

func (l *lease) isTripped() bool {
	select {
	case <-l.tripped:
		return true
	default:
		return false
	}
}

// heartbeat sends one Heartbeat for the member's current generation and
// extends the lease if the coordinator still knows it; a heartbeat that
// says the member is gone trips the lease. Transport errors leave the
// lease to expire by itself.
func (m *member) heartbeat(ctx context.Context) error {
	l := m.lease
	memberID, gen := m.cl.GroupMetadata()
	if memberID == "" || gen < 0 {
		return errors.New("not in a generation")
	}
	sent := time.Now()
	if l.expired(sent) {
		l.trip("expired", fmt.Sprintf("no heartbeat answered within %v (session timeout minus margin)", l.validFor))
		return l.err
	}
	req := kmsg.NewPtrHeartbeatRequest()
	req.Group, req.Generation, req.MemberID = m.g.group, gen, memberID
	rctx, cancel := context.WithTimeout(ctx, m.g.b.opts.SessionTimeout)
	defer cancel()
	resp, err := req.RequestWith(rctx, m.cl)
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	switch err := kerr.ErrorForCode(resp.ErrorCode); {
	case err == nil, errors.Is(err, kerr.RebalanceInProgress):
		// Still a member of gen: the coordinator's session runs at least
		// until sent + SessionTimeout.
		l.renewed(sent)
		return nil
	case errors.Is(err, kerr.UnknownMemberID), errors.Is(err, kerr.IllegalGeneration), errors.Is(err, kerr.FencedInstanceID):
		l.trip("lost", fmt.Sprintf("heartbeat of member %s generation %d: %v", memberID, gen, err))
		return l.err
	default:
		return fmt.Errorf("heartbeat: %w", err)
	}
}

// leaseLoop renews the member's lease every HeartbeatInterval until ctx
// ends; when the lease trips it aborts the producers' buffered records and
// ends the running session.
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
			_ = m.heartbeat(ctx) // failures: the lease expires by itself
		}
	}
}

// acquire establishes the lease of a new assignment (a heartbeat of the
// new generation answered) and makes it the fence's: tried for up to the
// lease's length.
func (m *member) acquire(ctx context.Context) error {
	deadline := time.Now().Add(m.lease.validFor)
	for {
		err := m.heartbeat(ctx)
		if err == nil {
			m.lease.f.install(m.lease)
			return nil
		}
		if m.lease.isTripped() || time.Now().After(deadline) {
			m.lease.trip("expired", fmt.Sprintf("no heartbeat answered after the assignment: %v", err))
			return m.lease.err
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
		if err := c.f.check(); err != nil {
			c.f.refused("request", 1)
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
