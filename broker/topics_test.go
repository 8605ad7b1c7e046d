package broker

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Two processes creating the same topics at the same moment (`process` and
// `serve` starting together on a fresh prefix) both succeed: a topic another
// creator made first exists, which is all EnsureTopics promises.
func TestEnsureTopicsConcurrently(t *testing.T) {
	brokers := testBrokers(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	prefix := fmt.Sprintf("race-%d-", time.Now().UnixNano())
	var specs []TopicSpec
	for i := range 6 {
		specs = append(specs, TopicSpec{Name: fmt.Sprintf("%s%d", prefix, i), Partitions: 4})
	}
	const creators = 4
	errs := make([]error, creators)
	var wg sync.WaitGroup
	for i := range creators {
		wg.Go(func() {
			cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
			if err != nil {
				errs[i] = err
				return
			}
			defer cl.Close()
			_, errs[i] = EnsureTopics(ctx, cl, 1, specs)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("creator %d: %v", i, err)
		}
	}
}
