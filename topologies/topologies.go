// Package topologies turns livefeed's processors into goka group graphs: the
// topic names (all derived here from one optional prefix), the topics each
// group needs with their partitions and cleanup policies, and running the
// groups as Kafka consumer groups.
package topologies

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/livefeed/livefeed/broker"
	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/models"
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

// InputTopic is the full name of an input topic such as events.TopicChat.
func (n Names) InputTopic(topic string) string { return n.Prefix + topic }

// Topology is the whole processing graph of a deployment.
type Topology struct {
	Names      Names
	Partitions int32
	// Features are the livestream group's windowed metrics.
	Features *features.Set
	// Embedder embeds stream texts; nil disables content embeddings.
	Embedder models.Embedder
	// Weights and HalfLife of the user taste (see processors/user).
	Weights  user.Weights
	HalfLife time.Duration
	Metrics  *pipeline.Metrics
	Logger   *slog.Logger
}

// Topics lists every topic the topology needs. Goka creates only group and
// loop topics, and a missing input or output topic kills a processor, so all
// are created up front.
func (t *Topology) Topics() []broker.TopicSpec {
	const week = int64(7 * 24 * time.Hour / time.Millisecond)
	var specs []broker.TopicSpec
	lt := t.Names.LivestreamTopics()
	streams := append(lt.Inputs(), lt.UserSignals)
	for _, s := range streams {
		specs = append(specs,
			broker.TopicSpec{Name: string(s), Partitions: t.Partitions, RetentionMS: week},
			broker.TopicSpec{Name: string(pipeline.DLQ(s)), Partitions: t.Partitions, RetentionMS: 4 * week})
	}
	for _, tb := range t.TableTopics() {
		specs = append(specs, broker.TopicSpec{Name: tb, Partitions: t.Partitions, Compacted: true})
	}
	return specs
}

// TableTopics lists the group table topics.
func (t *Topology) TableTopics() []string {
	return []string{string(t.Names.LivestreamTable()), string(t.Names.UserTable())}
}

// Groups builds the goka groups.
func (t *Topology) Groups() ([]*pipeline.Group, error) {
	ls, err := livestream.New(livestream.Config{
		Group:    t.Names.LivestreamGroup(),
		Topics:   t.Names.LivestreamTopics(),
		Features: t.Features,
		Embedder: t.Embedder,
		Metrics:  t.Metrics,
		Logger:   t.Logger,
	})
	if err != nil {
		return nil, err
	}
	us, err := user.New(user.Config{
		Group:       t.Names.UserGroup(),
		UserSignals: t.Names.LivestreamTopics().UserSignals,
		Weights:     t.Weights,
		HalfLife:    t.HalfLife,
		Metrics:     t.Metrics,
		Logger:      t.Logger,
	})
	if err != nil {
		return nil, err
	}
	return []*pipeline.Group{ls, us}, nil
}

// Run runs every group of the topology as a goka processor until ctx is done
// or one fails. ready, if not nil, is closed when all processors are ready
// (partitions assigned and state recovered).
func (t *Topology) Run(ctx context.Context, bc *broker.Config, ready chan<- struct{}) error {
	groups, err := t.Groups()
	if err != nil {
		return err
	}
	procs := make([]*goka.Processor, len(groups))
	for i, g := range groups {
		p, err := goka.NewProcessor(bc.Brokers, g.Graph, bc.ProcessorOptions(g.Options...)...)
		if err != nil {
			return fmt.Errorf("creating processor %s: %w", g.Graph.Group(), err)
		}
		procs[i] = p
	}
	g, ctx := errgroup.WithContext(ctx)
	for _, p := range procs {
		g.Go(func() error {
			if err := p.Run(ctx); err != nil {
				return fmt.Errorf("processor %s: %w", p.Graph().Group(), err)
			}
			return nil
		})
	}
	if ready != nil {
		g.Go(func() error {
			for _, p := range procs {
				if err := p.WaitForReadyContext(ctx); err != nil {
					return nil // stopping
				}
			}
			close(ready)
			return nil
		})
	}
	return g.Wait()
}
