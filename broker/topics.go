package broker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TopicSpec describes one topic livefeed needs.
type TopicSpec struct {
	Name       string
	Partitions int32
	// Compacted topics (goka tables) keep the last value per key forever.
	Compacted bool
	// Retention of non-compacted topics; 0 = the broker's default.
	RetentionMS int64
}

func (t TopicSpec) configs() map[string]*string {
	cfg := map[string]*string{}
	if t.Compacted {
		cfg["cleanup.policy"] = kadm.StringPtr("compact")
		// Without this kfake (and a broker with a default retention) also
		// deletes old segments of compacted topics by time.
		cfg["retention.ms"] = kadm.StringPtr("-1")
	} else if t.RetentionMS != 0 {
		cfg["retention.ms"] = kadm.StringPtr(strconv.FormatInt(t.RetentionMS, 10))
	}
	return cfg
}

// EnsureTopics creates the topics that do not exist yet and checks that those
// that do exist have the expected partition count (co-partitioning depends on
// it). It returns the names it created.
func EnsureTopics(ctx context.Context, cl *kgo.Client, replication int16, specs []TopicSpec) ([]string, error) {
	adm := kadm.NewClient(cl)
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	existing, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("listing topics: %w", err)
	}
	var created []string
	var errs []error
	for _, s := range specs {
		if d, ok := existing[s.Name]; ok && d.Err == nil {
			if got := int32(len(d.Partitions)); got != s.Partitions {
				errs = append(errs, fmt.Errorf("topic %s has %d partitions, livefeed needs %d: all topics must be co-partitioned (recreate it or set the partition count to %d)", s.Name, got, s.Partitions, got))
			}
			continue
		}
		// kadm returns the topic's own error as err too. Another process
		// creating the same topic at the same moment (process and serve
		// starting together) is not an error: the topic exists.
		_, err := adm.CreateTopic(ctx, s.Partitions, replication, s.configs(), s.Name)
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("creating topic %s: %w", s.Name, err))
			continue
		}
		created = append(created, s.Name)
	}
	if err := errors.Join(errs...); err != nil {
		return created, err
	}
	return created, waitForTopics(ctx, cl, created)
}

// waitForTopics waits until every broker's metadata lists topics with a
// leader for each partition. One broker's is not enough: on a multi-broker
// cluster the others learn of a new topic a moment later, and goka's sarama
// clients ask any of them — a view created in that moment failed with
// "requested topic was not found" (3-broker cluster, issue 6).
func waitForTopics(ctx context.Context, cl *kgo.Client, topics []string) error {
	if len(topics) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = false
	for _, t := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	for {
		missing, err := topicsMissing(ctx, cl, req, len(topics))
		if err == nil && missing == "" {
			return nil
		}
		if err == nil {
			err = errors.New(missing)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for every broker to know the created topics: %w", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// topicsMissing asks every broker of the cluster for req's topics; it
// describes the first broker that lacks one (or a partition leader), "" if
// none does.
func topicsMissing(ctx context.Context, cl *kgo.Client, req *kmsg.MetadataRequest, want int) (string, error) {
	first, err := cl.Request(ctx, req)
	if err != nil {
		return "", fmt.Errorf("metadata: %w", err)
	}
	for _, b := range first.(*kmsg.MetadataResponse).Brokers {
		kresp, err := cl.Broker(int(b.NodeID)).Request(ctx, req)
		if err != nil {
			return "", fmt.Errorf("metadata from broker %d: %w", b.NodeID, err)
		}
		resp := kresp.(*kmsg.MetadataResponse)
		if len(resp.Topics) != want {
			return fmt.Sprintf("broker %d knows %d of %d topics", b.NodeID, len(resp.Topics), want), nil
		}
		for _, t := range resp.Topics {
			name := ""
			if t.Topic != nil {
				name = *t.Topic
			}
			if t.ErrorCode != 0 || len(t.Partitions) == 0 {
				return fmt.Sprintf("broker %d: topic %s not ready (error code %d)", b.NodeID, name, t.ErrorCode), nil
			}
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 || p.Leader < 0 {
					return fmt.Sprintf("broker %d: %s[%d] has no leader", b.NodeID, name, p.Partition), nil
				}
			}
		}
	}
	return "", nil
}
