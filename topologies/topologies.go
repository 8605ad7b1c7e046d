// Package topologies turns livefeed's processors into goka group graphs: the
// topic names (all derived here from one optional prefix), the topics each
// group needs with their partitions and cleanup policies, and running the
// groups as Kafka consumer groups.
package topologies

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/livefeed/livefeed/broker"
	"github.com/livefeed/livefeed/broker/kgoka"
	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/models"
	"github.com/livefeed/livefeed/processors/backfill"
	"github.com/livefeed/livefeed/processors/embedding"
	"github.com/livefeed/livefeed/processors/entity"
	"github.com/livefeed/livefeed/processors/livestream"
	"github.com/livefeed/livefeed/processors/pipeline"
	"github.com/livefeed/livefeed/processors/user"
	"github.com/lovoo/goka"
	"golang.org/x/sync/errgroup"
)

// Names derives every topic and group name from one prefix ("" in
// production; tests use it to share one broker).
type Names struct{ Prefix string }

func (n Names) stream(s string) goka.Stream { return goka.Stream(n.Prefix + s) }

// LivestreamGroup is the livestream group's name.
func (n Names) LivestreamGroup() goka.Group { return goka.Group(n.Prefix) + livestream.DefaultGroup }

// UserGroup is the user group's name.
func (n Names) UserGroup() goka.Group { return goka.Group(n.Prefix) + user.DefaultGroup }

// LivestreamTable is the livestream group's table topic.
func (n Names) LivestreamTable() goka.Table { return goka.GroupTable(n.LivestreamGroup()) }

// UserTable is the user group's table topic.
func (n Names) UserTable() goka.Table { return goka.GroupTable(n.UserGroup()) }

// LivestreamTopics are the streams of the livestream group.
func (n Names) LivestreamTopics() livestream.Topics {
	return livestream.Topics{
		Livestreams: n.stream(events.TopicLivestreams),
		Viewing:     n.stream(events.TopicViewing),
		Chat:        n.stream(events.TopicChat),
		Auctions:    n.stream(events.TopicAuctions),
		UserSignals: n.stream(events.TopicUserSignals),
	}
}

// VectorsTopic carries the embedding worker's content vectors.
func (n Names) VectorsTopic() goka.Stream { return n.stream(events.TopicLivestreamVectors) }

// AudienceTopic carries viewers' tastes to their streams.
func (n Names) AudienceTopic() goka.Stream { return n.stream(events.TopicAudienceSignals) }

// SellerSignalsTopic carries streams' content and buyers' tastes to their
// sellers.
func (n Names) SellerSignalsTopic() goka.Stream { return n.stream(events.TopicSellerSignals) }

// EmbeddingGroup is the embedding worker's consumer group for a model
// version: a new model starts a new group, which re-embeds every retained
// metadata event (processors/embedding).
func (n Names) EmbeddingGroup(modelVersion string) string {
	return n.Prefix + "embedding-" + modelVersion
}

// EmbeddingDLQ receives the livestream records the embedding worker could
// not embed (invalid, or the model failed), reason in headers.
func (n Names) EmbeddingDLQ() goka.Stream { return n.stream("embedding.dlq") }

// EntityGroup is the group of an entity: "user" is the user group (taste and
// user features), any other entity gets a generic feature group.
func (n Names) EntityGroup(entity string) goka.Group { return goka.Group(n.Prefix + entity) }

// EntityTable is the table topic of an entity's group.
func (n Names) EntityTable(entity string) goka.Table { return goka.GroupTable(n.EntityGroup(entity)) }

// EntityTopic carries the enriched events re-keyed to an entity. The
// user's are user-signals: one record per user event carries the signal
// and the event for the user's features (events.UserSignal).
func (n Names) EntityTopic(entity string) goka.Stream {
	if entity == "user" {
		return n.stream(events.TopicUserSignals)
	}
	return n.stream("features-" + entity)
}

// BackfillTopic carries a group's backfilled feature states to it, and
// BackfillStateTopic (compacted) its backfills' catalogs
// (processors/backfill).
func (n Names) BackfillTopic(g goka.Group) goka.Stream { return goka.Stream(string(g) + "-backfill") }

// BackfillStateTopic: see BackfillTopic.
func (n Names) BackfillStateTopic(g goka.Group) string { return string(g) + "-backfill-state" }

// InputTopic is the full name of an input topic such as events.TopicChat.
func (n Names) InputTopic(topic string) string { return n.Prefix + topic }

// Entity is an entity other than the livestream with features of its own:
// events are re-keyed by KeyField (user_id, seller_id, …) and aggregated by
// the entity's group.
type Entity struct {
	Name     string
	KeyField string
	Features *features.Set
}

// EntitiesOf splits a feature set into its entities other than livestream.
func EntitiesOf(all *features.Set) []Entity {
	var out []Entity
	for _, name := range all.Entities() {
		if name == "livestream" {
			continue
		}
		out = append(out, Entity{Name: name, KeyField: features.KeyField(name), Features: all.ForEntity(name)})
	}
	return out
}

// Reads reports whether any of the entity's features reads source.
func (e Entity) Reads(source string) bool {
	for _, d := range e.Features.All() {
		if slices.Contains(d.Sources, source) {
			return true
		}
	}
	return false
}

// sources lists the input topics an entity's features read.
func (e Entity) sources() []string {
	seen := map[string]bool{}
	var out []string
	for _, d := range e.Features.All() {
		for _, src := range d.Sources {
			if !seen[src] {
				seen[src] = true
				out = append(out, src)
			}
		}
	}
	return out
}

// Topology is the whole processing graph of a deployment.
type Topology struct {
	Names      Names
	Partitions int32
	// Features are the livestream group's windowed metrics.
	Features *features.Set
	// Entities are the other entities with features (user, seller, …).
	Entities []Entity
	// Embedder embeds stream texts; nil disables content embeddings. The
	// embedding worker (processors/embedding) runs it, off the livestream
	// group's hot path; the livestream group consumes its vectors.
	Embedder models.Embedder
	// Embedding configures the worker (batch, delay, cache); its
	// connection, names and embedder are filled in by Run.
	Embedding embedding.Config
	// NoEmbeddingWorker leaves the worker to another process (`livefeed
	// embed`).
	NoEmbeddingWorker bool
	// Blend weighs content and audience in the served stream vector.
	Blend livestream.Blend
	// Seller configures the seller embedding (half-lives, buyers' weight),
	// kept when there is an Embedder and an entity "seller"; its topic and
	// model are filled in by Groups.
	Seller entity.Seller
	// VectorMetrics count the livestream group's vector and audience
	// outcomes (nil: unregistered).
	VectorMetrics *livestream.VectorMetrics
	// Weights and HalfLife of the user taste (see processors/user).
	Weights  user.Weights
	HalfLife time.Duration
	Metrics  *pipeline.Metrics
	Logger   *slog.Logger
	// SweepEvery is how often idle keys are swept from the tables (0:
	// every 10 minutes; negative: never).
	SweepEvery time.Duration
	// FlushInterval is how long a changed state may wait in a group's
	// write-behind cache before it is written to its table (0: 100ms;
	// negative: every change is written at once, as plain goka).
	FlushInterval time.Duration
	// FutureSkew is how far ahead of the wall clock an input event's time
	// may be before it is dead-lettered as "future" (0: 1h; negative: off).
	FutureSkew time.Duration
	// StopGrace is how long a stopping processor waits for its table
	// writes to be acknowledged before it gives up on them (their messages
	// stay uncommitted and are replayed): what a shutdown waits for an
	// unreachable broker. 0: DefaultStopGrace.
	StopGrace time.Duration
	// Misrouted is what every group does with a record in a partition its
	// key does not map to (produced with another partitioner than Kafka's
	// default): re-route it (the default) or dead-letter it
	// (processors/pipeline route.go).
	Misrouted pipeline.Misrouted
	// FenceMetrics count the processors' zombie fencing (kgoka.Fence; nil:
	// unregistered).
	FenceMetrics *kgoka.Metrics
	// BackfillMetrics count the feature backfills (nil: unregistered).
	BackfillMetrics *backfill.Metrics
	// backfills are the groups' backfill coordinators while Run runs
	// them.
	backfills map[goka.Group]*backfill.Coordinator
}

// routing is every group's partition check: all topics have Partitions.
func (t *Topology) routing() pipeline.Routing {
	return pipeline.Routing{Partitions: t.Partitions, Misrouted: t.Misrouted}
}

// DefaultStopGrace is Topology.StopGrace's default.
const DefaultStopGrace = 3 * time.Second

// Topics lists every topic the topology needs. Goka creates only group and
// loop topics, and a missing input or output topic kills a processor, so all
// are created up front.
func (t *Topology) Topics() []broker.TopicSpec {
	const week = int64(7 * 24 * time.Hour / time.Millisecond)
	var specs []broker.TopicSpec
	lt := t.Names.LivestreamTopics()
	streams := append(lt.Inputs(), lt.UserSignals)
	if t.Embedder != nil {
		streams = append(streams, t.Names.VectorsTopic(), t.Names.AudienceTopic())
	}
	if t.sellerEmbedding() {
		streams = append(streams, t.Names.SellerSignalsTopic())
	}
	for _, s := range streams {
		specs = append(specs,
			broker.TopicSpec{Name: string(s), Partitions: t.Partitions, RetentionMS: week},
			broker.TopicSpec{Name: string(pipeline.DLQ(s)), Partitions: t.Partitions, RetentionMS: 4 * week})
	}
	if t.Embedder != nil {
		specs = append(specs, broker.TopicSpec{Name: string(t.Names.EmbeddingDLQ()), Partitions: t.Partitions, RetentionMS: 4 * week})
	}
	for _, e := range t.Entities {
		if e.Name == "user" { // user-signals, created above
			continue
		}
		specs = append(specs,
			broker.TopicSpec{Name: string(t.Names.EntityTopic(e.Name)), Partitions: t.Partitions, RetentionMS: week},
			broker.TopicSpec{Name: string(pipeline.DLQ(t.Names.EntityTopic(e.Name))), Partitions: t.Partitions, RetentionMS: 4 * week})
	}
	for _, tb := range t.TableTopics() {
		specs = append(specs, broker.TopicSpec{Name: tb, Partitions: t.Partitions, Compacted: true})
	}
	for _, g := range t.backfillGroups() {
		specs = append(specs,
			broker.TopicSpec{Name: string(t.Names.BackfillTopic(g)), Partitions: t.Partitions, RetentionMS: week},
			broker.TopicSpec{Name: t.Names.BackfillStateTopic(g), Partitions: t.Partitions, Compacted: true})
	}
	return specs
}

// TableTopics lists the group table topics.
func (t *Topology) TableTopics() []string {
	out := []string{string(t.Names.LivestreamTable()), string(t.Names.UserTable())}
	for _, e := range t.Entities {
		if e.Name != "user" {
			out = append(out, string(t.Names.EntityTable(e.Name)))
		}
	}
	return out
}

// sellerEmbedding reports whether the topology keeps seller embeddings:
// with content embeddings and an entity "seller" (whose group keeps them).
func (t *Topology) sellerEmbedding() bool {
	if t.Embedder == nil {
		return false
	}
	for _, e := range t.Entities {
		if e.Name == "seller" {
			return true
		}
	}
	return false
}

// Groups builds the goka groups.
func (t *Topology) Groups() ([]*pipeline.Group, error) {
	var routes []livestream.Route
	userCfg := user.Config{
		Group:         t.Names.UserGroup(),
		UserSignals:   t.Names.LivestreamTopics().UserSignals,
		Weights:       t.Weights,
		HalfLife:      t.HalfLife,
		Metrics:       t.Metrics,
		Logger:        t.Logger,
		FlushInterval: t.FlushInterval,
		Routing:       t.routing(),
	}
	if t.Embedder != nil {
		userCfg.Audience = t.Names.AudienceTopic()
	}
	var seller *entity.Seller
	if t.sellerEmbedding() {
		userCfg.Sellers = t.Names.SellerSignalsTopic()
		s := t.Seller
		s.Signals, s.Model = t.Names.SellerSignalsTopic(), t.Embedder.Version()
		seller = &s
	}
	var others []*pipeline.Group
	for _, e := range t.Entities {
		routes = append(routes, livestream.Route{Entity: e.Name, KeyField: e.KeyField, Topic: t.Names.EntityTopic(e.Name), Sources: e.sources()})
		if e.Name == "user" {
			userCfg.Features = e.Features
			continue
		}
		ecfg := entity.Config{
			Group: t.Names.EntityGroup(e.Name), Input: t.Names.EntityTopic(e.Name), Features: e.Features,
			Metrics: t.Metrics, Logger: t.Logger, FlushInterval: t.FlushInterval, Routing: t.routing(),
		}
		if e.Name == "seller" {
			ecfg.Seller = seller
		}
		if bf := t.backfills[ecfg.Group]; bf != nil {
			ecfg.Backfill, ecfg.BackfillTopic = bf, t.Names.BackfillTopic(ecfg.Group)
		}
		g, err := entity.New(ecfg)
		if err != nil {
			return nil, fmt.Errorf("entity %s: %w", e.Name, err)
		}
		others = append(others, g)
	}
	lsCfg := livestream.Config{
		Group:         t.Names.LivestreamGroup(),
		Topics:        t.Names.LivestreamTopics(),
		Features:      t.Features,
		Routes:        routes,
		Metrics:       t.Metrics,
		Logger:        t.Logger,
		FlushInterval: t.FlushInterval,
		FutureSkew:    t.FutureSkew,
		Routing:       t.routing(),
	}
	if bf := t.backfills[lsCfg.Group]; bf != nil {
		lsCfg.Backfill, lsCfg.BackfillTopic = bf, t.Names.BackfillTopic(lsCfg.Group)
	}
	if t.Embedder != nil {
		lsCfg.Vectors, lsCfg.Audience, lsCfg.Blend = t.Names.VectorsTopic(), t.Names.AudienceTopic(), t.Blend
		lsCfg.Blend.Model = t.Embedder.Version()
		lsCfg.VectorMetrics = t.VectorMetrics
		if seller != nil {
			lsCfg.Sellers = seller.Signals
		}
	}
	ls, err := livestream.New(lsCfg)
	if err != nil {
		return nil, err
	}
	us, err := user.New(userCfg)
	if err != nil {
		return nil, err
	}
	return append([]*pipeline.Group{ls, us}, others...), nil
}

// logger is l, or slog's default for a Topology built without one.
func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.Default()
	}
	return l
}

// Run runs every group of the topology as a goka processor until ctx is done
// or one fails. ready, if not nil, is closed when all processors are ready
// (partitions assigned and state recovered).
func (t *Topology) Run(ctx context.Context, bc *broker.Config, ready chan<- struct{}) error {
	bfs, err := t.prepareBackfills(ctx, bc)
	if err != nil {
		return err
	}
	t.backfills = bfs
	defer func() { t.backfills = nil }()
	groups, err := t.Groups()
	if err != nil {
		return err
	}
	procs := make([]*goka.Processor, len(groups))
	for i, g := range groups {
		// Each processor's producer writes only while its group
		// membership's lease holds (zombie fencing, broker/kgoka fence.go).
		fence := bc.Fence(t.FenceMetrics)
		opts := append(fence.ProcessorOptions(), g.Options...)
		if g.State != nil {
			opts = append(opts, g.State.ProcessorOptions(bc.ProcessorStateDir(), fence.Producer())...)
		}
		p, err := goka.NewProcessor(bc.Brokers, g.Graph, bc.ProcessorOptions(opts...)...)
		if err != nil {
			return fmt.Errorf("creating processor %s: %w", g.Graph.Group(), err)
		}
		procs[i] = p
	}
	var worker *embedding.Worker
	workerReady := make(chan struct{})
	if t.Embedder != nil && !t.NoEmbeddingWorker {
		if worker, err = t.EmbeddingWorker(bc); err != nil {
			return err
		}
	} else {
		close(workerReady)
	}
	g, ctx := errgroup.WithContext(ctx)
	for _, bf := range bfs {
		g.Go(func() error { return bf.Run(ctx) })
	}
	if worker != nil {
		g.Go(func() error {
			if err := worker.Run(ctx, workerReady); err != nil {
				if ctx.Err() == nil {
					logger(t.Logger).Error("embedding worker failed; stopping every processor of this process", "err", err)
				}
				return fmt.Errorf("embedding worker: %w", err)
			}
			return nil
		})
	}
	grace := t.StopGrace
	if grace <= 0 {
		grace = DefaultStopGrace
	}
	for i, p := range procs {
		g.Go(func() error {
			if st := groups[i].State; st != nil {
				// The flusher outlives the processor: a stopping partition
				// waits for the commits its flushes release, for at most
				// grace once the processor is told to stop (an
				// unreachable broker acknowledges nothing).
				stop, stopped := make(chan struct{}), make(chan struct{})
				go func() { defer close(stopped); st.Run(stop) }()
				defer func() { close(stop); <-stopped }()
				ran, aborted := make(chan struct{}), make(chan struct{})
				unwatch := context.AfterFunc(ctx, func() {
					defer close(aborted)
					select {
					case <-time.After(grace):
						st.Abort()
					case <-ran:
					}
				})
				defer func() {
					close(ran)
					if !unwatch() {
						<-aborted
					}
				}()
			}
			if err := p.Run(ctx); err != nil {
				if ctx.Err() != nil && errors.Is(err, pipeline.ErrStateAborted) {
					// Stopping: the messages Abort gave up on stay
					// uncommitted; the next run replays them.
					t.Logger.Warn("processor stopped before its table writes were acknowledged", "group", p.Graph().Group())
					return nil
				}
				// Logged when it happens: the other processors stop with
				// it, and their shutdown can take a grace period before
				// the error reaches the caller.
				if ctx.Err() == nil {
					logger(t.Logger).Error("processor failed; stopping every processor of this process", "group", p.Graph().Group(), "err", err)
				}
				return fmt.Errorf("processor %s: %w", p.Graph().Group(), err)
			}
			return nil
		})
	}
	every := t.SweepEvery
	if every == 0 {
		every = 10 * time.Minute
	}
	for i, p := range procs {
		if groups[i].Sweep == "" || every < 0 {
			continue
		}
		g.Go(func() error { return sweepLoop(ctx, p, groups[i].Sweep, every, t.Logger) })
	}
	if ready != nil {
		g.Go(func() error {
			for _, p := range procs {
				if err := p.WaitForReadyContext(ctx); err != nil {
					return nil // stopping
				}
			}
			select {
			case <-workerReady:
			case <-ctx.Done():
				return nil
			}
			close(ready)
			return nil
		})
	}
	return g.Wait()
}

// backfillGroups are the groups that backfill new features: the
// livestream group and the entity groups other than the user's.
func (t *Topology) backfillGroups() []goka.Group {
	out := []goka.Group{t.Names.LivestreamGroup()}
	for _, e := range t.Entities {
		if e.Name != "user" {
			out = append(out, t.Names.EntityGroup(e.Name))
		}
	}
	return out
}

// prepareBackfills finds each backfilling group's new features and records
// their backfills, before the processors start (processors/backfill).
func (t *Topology) prepareBackfills(ctx context.Context, bc *broker.Config) (map[goka.Group]*backfill.Coordinator, error) {
	out := map[goka.Group]*backfill.Coordinator{}
	prepare := func(g goka.Group, inputs []string, set *features.Set, replay func(*features.Set) backfill.Replay) error {
		bf, err := backfill.New(backfill.Options{
			Client: bc.KgoOpts(), Group: string(g), Inputs: inputs, Prefix: t.Names.Prefix,
			Topic: string(t.Names.BackfillTopic(g)), StateTopic: t.Names.BackfillStateTopic(g), Partitions: t.Partitions,
			Features: set, Metrics: t.BackfillMetrics, Logger: t.Logger, NewReplay: replay,
		})
		if err == nil {
			err = bf.Prepare(ctx)
		}
		if err != nil {
			return fmt.Errorf("preparing the feature backfills of %s: %w", g, err)
		}
		out[g] = bf
		return nil
	}
	var inputs []string
	for _, s := range t.Names.LivestreamTopics().Inputs() {
		inputs = append(inputs, string(s))
	}
	retention, skew := livestream.Retention(t.Features), t.FutureSkew
	if err := prepare(t.Names.LivestreamGroup(), inputs, t.Features, func(set *features.Set) backfill.Replay {
		return livestream.NewReplay(set, 0, retention, skew)
	}); err != nil {
		return nil, err
	}
	for _, e := range t.Entities {
		if e.Name == "user" {
			continue
		}
		if err := prepare(t.Names.EntityGroup(e.Name), []string{string(t.Names.EntityTopic(e.Name))}, e.Features, entity.NewReplay); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// EmbeddingWorker is the embedding worker of the topology (Embedder must be
// set).
func (t *Topology) EmbeddingWorker(bc *broker.Config) (*embedding.Worker, error) {
	if t.Embedder == nil {
		return nil, errors.New("the embedding worker needs an embedding model")
	}
	cfg := t.Embedding
	cfg.Brokers, cfg.Embedder, cfg.Logger = bc.Brokers, t.Embedder, t.Logger
	// The deployment's TLS and SASL settings (broker.Config.KgoOpts).
	cfg.ClientOptions = append(bc.KgoOpts(), cfg.ClientOptions...)
	cfg.Group = t.Names.EmbeddingGroup(t.Embedder.Version())
	cfg.Input = string(t.Names.LivestreamTopics().Livestreams)
	cfg.Output = string(t.Names.VectorsTopic())
	cfg.DLQ = string(t.Names.EmbeddingDLQ())
	return embedding.New(cfg)
}

// sweepLoop visits every key of a processor's partitions with its idle-key
// visitor every interval, until ctx is done.
func sweepLoop(ctx context.Context, p *goka.Processor, visitor string, every time.Duration, log *slog.Logger) error {
	if err := p.WaitForReadyContext(ctx); err != nil {
		return nil // stopping
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		n, err := p.VisitAllWithStats(ctx, visitor, nil)
		if err != nil && ctx.Err() == nil {
			log.Warn("sweeping idle keys failed; retrying at the next interval", "group", p.Graph().Group(), "err", err)
			continue
		}
		log.Debug("swept idle keys", "group", p.Graph().Group(), "visited", n)
	}
}
