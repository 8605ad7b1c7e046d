package kgoka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// consumerGroup is sarama.ConsumerGroup on a kgo group client, with sarama's
// session model: each Consume runs one session (one generation's
// assignment) and returns when it ends, which is when
//   - kgo revokes the assignment (a rebalance: eager, every member gives back
//     all its partitions) — the marked offsets are committed first;
//   - kgo loses the assignment (fenced, session expired) — nothing is
//     committed, the next owner replays from the last commit;
//   - Consume's context ends — marked offsets are committed;
//   - the first ConsumeClaim returns (as in sarama) — marked offsets are
//     committed and the member leaves the group, so that the next Consume
//     joins afresh and consumes from the committed offsets.
//
// kgo heartbeats and rejoins on its own, so a long Setup (goka recovering
// its tables) does not cost the membership; records fetched while no
// session runs wait in the client.
type consumerGroup struct {
	b        *Builders
	brokers  []string
	group    string
	clientID string
	log      *slog.Logger
	errs     chan error
	// fence, if set, gives every member a lease (fence.go): the
	// processor's producer writes only while it is valid.
	fence *Fence

	mu     sync.Mutex
	m      *member
	closed bool
}

func newConsumerGroup(b *Builders, brokers []string, group, clientID string) *consumerGroup {
	return &consumerGroup{
		b: b, brokers: brokers, group: group, clientID: clientID,
		log:  b.opts.Logger.With("component", "kgoka-group", "group", group),
		errs: make(chan error, 16),
	}
}

// member is one kgo client's membership in the group.
type member struct {
	g        *consumerGroup
	cl       *kgo.Client
	topics   []string
	assigned chan struct{} // a new assignment is pending

	// lease is the member's membership lease when the group is fenced
	// (nil otherwise), renewed by leaseLoop until stopLease.
	lease     *lease
	stopLease func()

	mu      sync.Mutex
	pending map[string][]int32
	has     bool // pending is set
	active  *session
}

func (g *consumerGroup) member(topics []string) (*member, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil, sarama.ErrClosedConsumerGroup
	}
	if g.m != nil {
		if !slices.Equal(g.m.topics, topics) {
			return nil, fmt.Errorf("consumer group %s: consuming %v, asked for %v", g.group, g.m.topics, topics)
		}
		return g.m, nil
	}
	m := &member{g: g, topics: slices.Clone(topics), assigned: make(chan struct{}, 1)}
	o := g.b.opts
	cl, err := kgo.NewClient(g.b.clientOpts(g.brokers, g.clientID,
		kgo.ConsumerGroup(g.group),
		kgo.ConsumeTopics(topics...),
		kgo.Balancers(CopartitionBalancer()),
		kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.SessionTimeout(o.SessionTimeout),
		kgo.HeartbeatInterval(o.HeartbeatInterval),
		kgo.RebalanceTimeout(o.RebalanceTimeout),
		kgo.FetchMaxWait(o.FetchMaxWait),
		kgo.OnPartitionsAssigned(m.onAssigned),
		kgo.OnPartitionsRevoked(m.onRevoked),
		kgo.OnPartitionsLost(m.onLost),
	)...)
	if err != nil {
		return nil, fmt.Errorf("creating kafka consumer group %s: %w", g.group, err)
	}
	m.cl = cl
	m.stopLease = func() {}
	if g.fence != nil {
		m.lease = newLease(g.fence, g.log)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			m.leaseLoop(ctx)
		}()
		m.stopLease = func() { cancel(); <-done }
	}
	g.m = m
	return m, nil
}

// drop closes m's client (the member leaves the group) unless it was
// replaced already.
func (g *consumerGroup) drop(m *member) {
	g.mu.Lock()
	if g.m == m {
		g.m = nil
	}
	g.mu.Unlock()
	m.stopLease()
	m.cl.Close()
}

func (m *member) onAssigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	m.mu.Lock()
	m.pending, m.has = assigned, true
	m.mu.Unlock()
	select {
	case m.assigned <- struct{}{}:
	default:
	}
}

func (m *member) onRevoked(_ context.Context, _ *kgo.Client, _ map[string][]int32) {
	m.end(endRevoked)
}

func (m *member) onLost(_ context.Context, _ *kgo.Client, _ map[string][]int32) {
	// kgo also gives up after heartbeats failed for a session timeout,
	// which a coordinator that was down or moving may not have expired: a
	// fenced member's lease decides from the coordinator's own answer.
	m.end(endLost)
}

// stopActive ends the running session, if any, without waiting.
func (m *member) stopActive(why endReason) {
	m.mu.Lock()
	m.has = false
	s := m.active
	m.mu.Unlock()
	if s != nil {
		s.stop(why)
	}
}

// end ends the running session, if any, and waits until it has given its
// partitions back.
func (m *member) end(why endReason) {
	m.mu.Lock()
	m.has = false
	s := m.active
	m.mu.Unlock()
	if s != nil {
		s.stop(why)
		<-s.done
	}
}

// Consume waits for the group's next assignment and runs one session on it
// with handler; see consumerGroup.
func (g *consumerGroup) Consume(ctx context.Context, topics []string, handler sarama.ConsumerGroupHandler) error {
	if len(topics) == 0 {
		return errors.New("consumer group: no topics")
	}
	m, err := g.member(topics)
	if err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-m.assigned:
		}
		memberID, gen := m.cl.GroupMetadata()
		if m.lease != nil {
			// Nothing is consumed, so nothing produced, before the new
			// generation's lease is held. A member whose generation is
			// gone, or whose lease tripped, leaves; the caller's next
			// Consume joins with a new one.
			if err := m.acquire(ctx, memberID, gen); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				g.log.Warn("kafka consumer group: no lease for the new assignment; rejoining with a new member", "generation", gen, "err", err)
				g.drop(m)
				return nil
			}
		}
		m.mu.Lock()
		if !m.has {
			m.mu.Unlock()
			continue
		}
		s := newSession(ctx, m, handler, m.pending, memberID, gen)
		m.has, m.active = false, s
		m.mu.Unlock()
		return s.run()
	}
}

// Errors are the errors sessions met (commits, fetches, Cleanup).
func (g *consumerGroup) Errors() <-chan error { return g.errs }

func (g *consumerGroup) report(err error) {
	g.log.Warn("kafka consumer group", "err", err)
	select {
	case g.errs <- err:
	default:
	}
}

// Close leaves the group. Call it after Consume returned.
func (g *consumerGroup) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return sarama.ErrClosedConsumerGroup
	}
	g.closed = true
	m := g.m
	g.m = nil
	g.mu.Unlock()
	if m != nil {
		m.stopLease()
		m.cl.Close()
	}
	return nil
}

func (g *consumerGroup) active() *session {
	g.mu.Lock()
	m := g.m
	g.mu.Unlock()
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.active
}

// Pause pauses fetching the given partitions of the running session.
func (g *consumerGroup) Pause(tps map[string][]int32) {
	if s := g.active(); s != nil {
		s.each(tps, func(f *feed) { f.hold(true) })
	}
}

// Resume resumes the given partitions of the running session.
func (g *consumerGroup) Resume(tps map[string][]int32) {
	if s := g.active(); s != nil {
		s.each(tps, func(f *feed) { f.hold(false) })
	}
}

// PauseAll pauses every partition of the running session.
func (g *consumerGroup) PauseAll() { g.Pause(nil) }

// ResumeAll resumes every partition of the running session.
func (g *consumerGroup) ResumeAll() { g.Resume(nil) }

type endReason int

const (
	endNone     endReason = iota
	endRevoked            // rebalance: commit, keep the client
	endLost               // membership lost: no commit, keep the client
	endCanceled           // Consume's context: commit
	endClaim              // a ConsumeClaim returned: commit, leave
	endFenced             // the member's lease ended: no commit, leave
)

// session is sarama.ConsumerGroupSession for one generation.
type session struct {
	m        *member
	handler  sarama.ConsumerGroupHandler
	parent   context.Context
	ctx      context.Context
	cancel   context.CancelFunc
	claims   map[string][]int32
	feeds    map[topicPartition]*feed
	memberID string
	gen      int32
	done     chan struct{}

	mu    sync.Mutex
	why   endReason
	marks map[topicPartition]int64
	dirty bool
}

func newSession(parent context.Context, m *member, handler sarama.ConsumerGroupHandler, claims map[string][]int32, memberID string, gen int32) *session {
	ctx, cancel := context.WithCancel(parent)
	s := &session{
		m: m, handler: handler, parent: parent, ctx: ctx, cancel: cancel,
		claims: claims, feeds: make(map[topicPartition]*feed),
		memberID: memberID, gen: gen, done: make(chan struct{}),
		marks: make(map[topicPartition]int64),
	}
	for t, ps := range claims {
		for _, p := range ps {
			s.feeds[topicPartition{t, p}] = newFeed(m.cl, t, p, m.g.b.opts.QueueRecords)
		}
	}
	return s
}

func (s *session) stop(why endReason) {
	s.mu.Lock()
	if s.why == endNone {
		s.why = why
	}
	s.mu.Unlock()
	s.cancel()
}

func (s *session) reason() endReason {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.why == endNone && s.parent.Err() != nil {
		return endCanceled
	}
	return s.why
}

// run is the session: Setup, one ConsumeClaim per claim fed by one poll
// loop, periodic commits; at its end Cleanup and the final commit.
func (s *session) run() (rerr error) {
	defer func() {
		why := s.reason()
		if why == endNone { // Setup failed
			why = endClaim
		}
		if s.fenced() {
			why = endFenced
		}
		if why != endLost && why != endFenced {
			timeout := requestTimeout
			if why == endCanceled {
				// Stopping: bounded, the brokers may be gone; what is
				// not committed is replayed.
				timeout = s.m.g.b.opts.CloseTimeout
			}
			if err := s.commit(context.Background(), timeout); err != nil {
				s.m.g.report(fmt.Errorf("committing offsets at the end of generation %d: %w", s.gen, err))
			}
		}
		s.m.mu.Lock()
		s.m.active = nil
		s.m.mu.Unlock()
		close(s.done)
		if why == endClaim || why == endFenced {
			s.m.g.drop(s.m)
		}
	}()

	setupErr := s.handler.Setup(s)
	if setupErr != nil || s.ctx.Err() != nil {
		s.stop(endNone)
		cleanupErr := s.handler.Cleanup(s)
		if s.reason() != endNone {
			// A rebalance or the caller ended the session during Setup.
			return nil
		}
		return errors.Join(setupErr, cleanupErr)
	}

	var wg sync.WaitGroup
	for tp, f := range s.feeds {
		go f.run()
		c := &claim{tp: tp, feed: f}
		wg.Go(func() {
			defer s.stop(endClaim)
			if err := s.handler.ConsumeClaim(s, c); err != nil {
				s.m.g.report(fmt.Errorf("consuming %s/%d: %w", tp.topic, tp.partition, err))
			}
		})
	}
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		s.poll()
	}()
	committed := make(chan struct{})
	go func() {
		defer close(committed)
		s.commitEvery(s.m.g.b.opts.CommitInterval)
	}()

	<-s.ctx.Done()
	<-polled
	<-committed
	s.closeFeeds()
	wg.Wait()
	if err := s.handler.Cleanup(s); err != nil {
		s.m.g.report(err)
		return err
	}
	return nil
}

// closeFeeds stops the feeds (run started them) and resumes the
// partitions they paused.
func (s *session) closeFeeds() {
	for _, f := range s.feeds {
		f.close()
	}
}

// poll fetches until the session ends and hands each partition's records
// to its feed.
func (s *session) poll() {
	for {
		fetches := s.m.cl.PollFetches(s.ctx)
		if s.ctx.Err() != nil || fetches.IsClientClosed() {
			return
		}
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			f := s.feeds[topicPartition{p.Topic, p.Partition}]
			if p.Err != nil {
				var loss *kgo.ErrDataLoss
				if !errors.As(p.Err, &loss) {
					s.m.g.report(fmt.Errorf("fetching %s/%d: %w", p.Topic, p.Partition, p.Err))
				}
			}
			if f != nil {
				f.push(p.Records, p.HighWatermark)
			}
		})
	}
}

func (s *session) commitEvery(d time.Duration) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			// Under the session's context: its end cancels a commit
			// waiting for an unreachable broker (the final one retries).
			if err := s.commit(s.ctx, requestTimeout); err != nil && s.ctx.Err() == nil {
				s.m.g.report(fmt.Errorf("committing offsets of generation %d: %w", s.gen, err))
			}
		}
	}
}

// fenced: the member's lease ended (fence.go).
func (s *session) fenced() bool { return s.m.lease != nil && s.m.lease.isTripped() }

// commit commits the offsets marked since the last commit, waiting at
// most timeout or until parent ends. A fenced member commits nothing, nor
// does one whose client moved on to another generation; kgo sends the
// member id and generation, so the coordinator refuses a stale commit.
func (s *session) commit(parent context.Context, timeout time.Duration) error {
	if s.m.lease != nil {
		if !s.m.lease.valid(time.Now()) {
			// Lapsed: kept for the next commit once renewed. Tripped:
			// the next owner replays from the last commit.
			return nil
		}
		if _, gen := s.m.cl.GroupMetadata(); gen != s.gen {
			return fmt.Errorf("not committing: generation %d ended (the client is in %d)", s.gen, gen)
		}
	}
	s.mu.Lock()
	if !s.dirty {
		s.mu.Unlock()
		return nil
	}
	offsets := make(map[string]map[int32]kgo.EpochOffset)
	for tp, o := range s.marks {
		ps := offsets[tp.topic]
		if ps == nil {
			ps = make(map[int32]kgo.EpochOffset)
			offsets[tp.topic] = ps
		}
		ps[tp.partition] = kgo.EpochOffset{Epoch: -1, Offset: o}
	}
	s.dirty = false
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	var rerr error
	s.m.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			rerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					rerr = errors.Join(rerr, fmt.Errorf("%s/%d: %w", t.Topic, p.Partition, err))
				}
			}
		}
	})
	if rerr != nil {
		s.mu.Lock()
		s.dirty = true // retried with the next commit
		s.mu.Unlock()
	}
	return rerr
}

func (s *session) each(tps map[string][]int32, fn func(*feed)) {
	for tp, f := range s.feeds {
		if tps == nil || slices.Contains(tps[tp.topic], tp.partition) {
			fn(f)
		}
	}
}

// Claims are the partitions of this generation.
func (s *session) Claims() map[string][]int32 { return s.claims }

// MemberID is the member's id in this generation.
func (s *session) MemberID() string { return s.memberID }

// GenerationID is the generation.
func (s *session) GenerationID() int32 { return s.gen }

// MarkOffset marks offset (the next one to consume) of a claimed
// partition for the next commit, if it is beyond what is marked.
func (s *session) MarkOffset(topic string, partition int32, offset int64, _ string) {
	tp := topicPartition{topic, partition}
	if _, ok := s.feeds[tp]; !ok {
		return
	}
	s.mu.Lock()
	if cur, ok := s.marks[tp]; !ok || offset > cur {
		s.marks[tp] = offset
		s.dirty = true
	}
	s.mu.Unlock()
}

// ResetOffset marks offset even if it is behind what is marked.
func (s *session) ResetOffset(topic string, partition int32, offset int64, _ string) {
	tp := topicPartition{topic, partition}
	if _, ok := s.feeds[tp]; !ok {
		return
	}
	s.mu.Lock()
	s.marks[tp] = offset
	s.dirty = true
	s.mu.Unlock()
}

// MarkMessage marks msg as consumed.
func (s *session) MarkMessage(msg *sarama.ConsumerMessage, metadata string) {
	s.MarkOffset(msg.Topic, msg.Partition, msg.Offset+1, metadata)
}

// Commit commits the marked offsets now.
func (s *session) Commit() {
	if err := s.commit(s.ctx, requestTimeout); err != nil {
		s.m.g.report(fmt.Errorf("committing offsets of generation %d: %w", s.gen, err))
	}
}

// Context ends with the session.
func (s *session) Context() context.Context { return s.ctx }

// claim is sarama.ConsumerGroupClaim.
type claim struct {
	tp   topicPartition
	feed *feed
}

func (c *claim) Topic() string    { return c.tp.topic }
func (c *claim) Partition() int32 { return c.tp.partition }

// InitialOffset is sarama.OffsetOldest's value: kgo resolves the start
// (the committed offset, else the log's start) itself and does not say.
func (c *claim) InitialOffset() int64                     { return sarama.OffsetOldest }
func (c *claim) HighWaterMarkOffset() int64               { return c.feed.hwm.Load() }
func (c *claim) Messages() <-chan *sarama.ConsumerMessage { return c.feed.msgs }
