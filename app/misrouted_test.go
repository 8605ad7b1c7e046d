package app

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/livefeed/livefeed/broker"
	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/serving"
	"github.com/livefeed/livefeed/tables"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// librdkafkaPartition is where librdkafka's default partitioner,
// consistent_random, puts a keyed record: CRC32 (IEEE) of the key modulo
// the partition count (rd_kafka_msg_partitioner_consistent). It is the
// default of kcat and confluent-kafka-python.
func librdkafkaPartition(key string, partitions int32) int32 {
	return int32(crc32.ChecksumIEEE([]byte(key)) % uint32(partitions))
}

// TestMisroutedRecordDoesNotHideStream is issue 14's first case (on kfake,
// and on real Kafka when LIVEFEED_TEST_BROKERS is set): a stream's events
// produced with Kafka's default partitioner (murmur2), then one chat record
// produced the way librdkafka does by default — with kcat itself when it is
// installed (CI installs it), else to the partition CRC32 picks — lands in
// another partition. It used to start a second state for the stream there,
// whose table write replaced the real one: the features endpoint answered
// that orphan (no title, one event) and the stream left the
// recommendations. Now the record is re-routed: the real state counts the
// chat, the stream stays recommended, the metric counts the record. And a
// misplaced copy written straight to another partition of the table
// (before the fix, or by a foreign tool) shadows nothing in serving.
func TestMisroutedRecordDoesNotHideStream(t *testing.T) {
	r := startPipeline(t)
	resetBase()
	const parts = 4 // startStack's
	id := ""
	for i := 0; id == ""; i++ {
		if k := fmt.Sprintf("ls-misrouted-%d", i); librdkafkaPartition(k, parts) != broker.PartitionOf(k, parts) {
			id = k
		}
	}
	crcPart := librdkafkaPartition(id, parts)
	n := 0
	r.produce(t, events.TopicLivestreams, id, events.Livestream{Header: hdr(&n, id, 0), SellerID: "s-misrouted",
		Title: "vintage pokemon cards, misrouted chat", Category: "trading-cards", Tags: []string{"pokemon"}, Language: "en",
		Status: events.StatusLive})
	r.produce(t, events.TopicViewing, id, events.Viewing{Header: hdr(&n, id, time.Second), Type: events.ViewingJoin, UserID: "u-1"})
	r.produce(t, events.TopicChat, id, events.Chat{Header: hdr(&n, id, 2*time.Second), UserID: "u-1", Text: "first"})
	r.waitFor(t, "the stream live with one chat", func() bool {
		var lf serving.LivestreamFeatures
		return r.get(t, "/v1/features/livestream/"+id, &lf) == 200 && lf.Status == events.StatusLive &&
			lf.Features["chat_1m"] == 1 && lf.ViewersNow == 1
	})
	recommended := func() bool {
		var pop serving.Response
		if r.get(t, "/v1/recommendations?user_id=nobody&k=50", &pop) != 200 {
			return false
		}
		for _, res := range pop.Results {
			if res.LivestreamID == id {
				return true
			}
		}
		return false
	}
	r.waitFor(t, "the stream recommended", recommended)

	// One chat record, partitioned as librdkafka does by default.
	chat := mustJSON(t, events.Chat{Header: hdr(&n, id, 3*time.Second), UserID: "u-2", Text: "sent with kcat"})
	chatTopic := r.prefix + events.TopicChat
	before := endOffsets(t, r, chatTopic)
	if kcat, err := exec.LookPath("kcat"); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// No -X partitioner: librdkafka's default.
		cmd := exec.CommandContext(ctx, kcat, "-P", "-b", strings.Join(r.app.Brokers(), ","), "-t", chatTopic, "-K", "\t")
		cmd.Stdin = bytes.NewReader(append(append([]byte(id+"\t"), chat...), '\n'))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("kcat: %v: %s", err, out)
		}
		t.Logf("the chat record produced with kcat's default partitioner")
	} else {
		cl, err := kgo.NewClient(kgo.SeedBrokers(r.app.Brokers()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		rec := &kgo.Record{Topic: chatTopic, Partition: crcPart, Key: []byte(id), Value: chat}
		if err := cl.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
		t.Logf("kcat not installed: the chat record produced to CRC32's partition %d", crcPart)
	}
	// (The key's own partition may have its re-routed copy already.)
	if after := endOffsets(t, r, chatTopic); after[crcPart] != before[crcPart]+1 {
		t.Fatalf("chat partition %d (CRC32's) went from end offset %d to %d: the record is not where librdkafka's default puts it",
			crcPart, before[crcPart], after[crcPart])
	}

	// The real state counts the chat; no answer in between is an orphan.
	r.waitFor(t, "the misrouted chat counted in the stream's state", func() bool {
		var lf serving.LivestreamFeatures
		if r.get(t, "/v1/features/livestream/"+id, &lf) != 200 {
			return false
		}
		if lf.Title == "" || lf.Status != events.StatusLive {
			t.Fatalf("/v1/features/livestream/%s answered a second state: %+v", id, lf)
		}
		return lf.Features["chat_1m"] == 2 && lf.ViewersNow == 1 && lf.Events == 4
	})
	if !recommended() {
		t.Fatal("the stream left the recommendations")
	}
	group, topic := string(r.app.Topology.Names.LivestreamGroup()), chatTopic
	if got := misroutedCount(t, r, group, topic, "reroute"); got != 1 {
		t.Errorf("livefeed_misrouted_records_total{group=%q,topic=%q,action=reroute} = %v, want 1", group, topic, got)
	}

	// A misplaced copy in the table, written to a partition the key does
	// not map to (a stale live copy, as a table copied with another
	// partitioner would hold).
	orphan, err := tables.LivestreamCodec{}.Encode(&tables.Livestream{LivestreamID: id, SellerID: "s-misrouted",
		Title: "a stale copy", Category: "trading-cards", Language: "en", Status: events.StatusLive, Events: 1})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.app.Brokers()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	table := string(r.app.Topology.Names.LivestreamTable())
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: table, Partition: crcPart, Key: []byte(id), Value: orphan}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	r.waitFor(t, "the misplaced copy seen by serving", func() bool {
		return indexOp(t, r, "misplaced") == 1
	})
	var lf serving.LivestreamFeatures
	if r.get(t, "/v1/features/livestream/"+id, &lf) != 200 || lf.Title == "a stale copy" || lf.Events != 4 {
		t.Fatalf("with a misplaced copy in the table: %+v", lf)
	}
	var pop serving.Response
	r.get(t, "/v1/recommendations?user_id=nobody&k=50", &pop)
	seen := 0
	for _, res := range pop.Results {
		if res.LivestreamID == id {
			seen++
		}
	}
	if seen != 1 {
		t.Fatalf("the stream is recommended %d times with a misplaced copy in the table: %+v", seen, pop.Results)
	}
}

// endOffsets lists a topic's end offsets by partition.
func endOffsets(t *testing.T, r *running, topic string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(r.client).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("end offset of %s/%d: %v", topic, o.Partition, o.Err)
		}
		out[o.Partition] = o.Offset
	})
	return out
}

// misroutedCount is livefeed_misrouted_records_total{group,topic,action}.
func misroutedCount(t *testing.T, r *running, group, topic, action string) float64 {
	t.Helper()
	return labelled(t, r, "livefeed_misrouted_records_total", map[string]string{"group": group, "topic": topic, "action": action})
}

// indexOp is livefeed_index_updates_total{op}.
func indexOp(t *testing.T, r *running, op string) float64 {
	t.Helper()
	return labelled(t, r, "livefeed_index_updates_total", map[string]string{"op": op})
}

// labelled is the value of the series of a counter with these labels.
func labelled(t *testing.T, r *running, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := r.app.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue series
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}
