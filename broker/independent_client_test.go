package broker

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// testBrokers is the real-Kafka tier's broker (LIVEFEED_TEST_BROKERS) or, when
// unset, a fresh embedded cluster.
func testBrokers(t *testing.T) []string {
	if b := os.Getenv("LIVEFEED_TEST_BROKERS"); b != "" {
		return strings.Split(b, ",")
	}
	return startEmbedded(t).Addrs()
}

// Records produced by an independent client, librdkafka (kcat) with the
// Java-compatible murmur2 partitioner, land where Partition says: the same
// partition goka's processors and views use for the key.
func TestPartitionMatchesIndependentClient(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat not installed (.ci/run installs it: apt-get install kcat)")
	}
	brokers := testBrokers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	topic := fmt.Sprintf("kcat-partitioning-%d", time.Now().UnixNano())
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.MetadataMinAge(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := EnsureTopics(ctx, cl, 1, []TopicSpec{{Name: topic, Partitions: 8}}); err != nil {
		t.Fatal(err)
	}
	const n = 300
	var in bytes.Buffer
	for i := range n {
		fmt.Fprintf(&in, "ls-%04d:v%d\n", i, i)
	}
	cmd := exec.CommandContext(ctx, kcat, "-P", "-b", strings.Join(brokers, ","), "-t", topic, "-K:",
		"-X", "partitioner=murmur2_random")
	cmd.Stdin = &in
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcat: %v: %s", err, out)
	}
	seen := 0
	for seen < n {
		fetches := cl.PollFetches(ctx)
		if err := fetches.Err0(); err != nil {
			t.Fatalf("consuming after %d records: %v", seen, err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			seen++
			if want := Partition(r.Key, 8); r.Partition != want {
				t.Errorf("kcat put %s on partition %d, Partition says %d", r.Key, r.Partition, want)
			}
		})
	}
}
