package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/offline"
	"github.com/livefeed/livefeed/processors/pipeline"
	"github.com/livefeed/livefeed/serving"
	"github.com/lovoo/goka"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// hostileRecord is one record of the poison-pill test: reason is the
// dead-letter reason it must get, "" for a good event.
type hostileRecord struct {
	topic, key string
	value      []byte
	reason     string
	// notOffline: the record is judged by the wall clock (a future event),
	// which the offline engine does not read; it is left out of the
	// offline replay.
	notOffline bool
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPipelineHostileInput is the poison-pill test (on kfake, and on real
// Kafka when LIVEFEED_TEST_BROKERS is set): every kind of bad record —
// malformed, wrong-typed fields, oversized (a compressible 1.5 MB value: the
// brokers' max.message.bytes — kfake's as Kafka's — limits the compressed
// batch; an incompressible one is refused with MESSAGE_TOO_LARGE), far
// future, ancient, key mismatch, empty, null — interleaved with good events on
// the same partition of each input topic. The good events' features equal
// the offline recomputation of the same log and the hand count; every bad
// record is in its topic's dead-letter topic with its reason; the
// dead-letter counters match; the livestream group's committed offsets
// reach the end of every input partition.
func TestPipelineHostileInput(t *testing.T) {
	r := startPipeline(t)
	resetBase()
	ctx := context.Background()
	const id = "ls-hostile"
	realKafka := testBrokers() != ""
	// The oversized value: 1.5 MB. Real Kafka's default max.message.bytes
	// (1 MiB) applies to the batch as sent, compressed: this value (mostly
	// spaces) compresses to a few KiB and gets through, so livefeed does
	// see 1 MB+ events; an incompressible one is refused at the producer
	// (tested below).
	bigSize := 1500 << 10
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.app.Brokers()...), kgo.ProducerBatchMaxBytes(4<<20),
		kgo.ProducerBatchCompression(kgo.SnappyCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	n := 0
	meta := events.Livestream{Header: hdr(&n, id, 0), SellerID: "s-hostile", Title: "vintage sneakers under attack",
		Category: "sneakers", Tags: []string{"jordan"}, Language: "en", Status: events.StatusLive}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: r.prefix + events.TopicLivestreams, Key: []byte(id), Value: mustJSON(t, meta)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	r.waitFor(t, "the stream live", func() bool {
		var lf serving.LivestreamFeatures
		return r.get(t, "/v1/features/livestream/"+id, &lf) == 200 && lf.Status == events.StatusLive
	})

	var retention time.Duration
	for _, d := range r.app.Topology.Features.All() {
		retention = max(retention, d.Window.Size+d.Lateness)
	}
	if retention <= 0 {
		t.Fatal("no windowed stream feature: nothing can be ancient")
	}
	good := func(topic string, v any) hostileRecord {
		return hostileRecord{topic: topic, key: id, value: mustJSON(t, v)}
	}
	bad := func(topic, reason string, value []byte) hostileRecord {
		return hostileRecord{topic: topic, key: id, value: value, reason: reason}
	}
	chat := func(at time.Duration, user, text string) events.Chat {
		return events.Chat{Header: hdr(&n, id, at), UserID: user, Text: text}
	}
	// A valid chat event padded with a long text (and spaces) to size.
	oversized := func(size int) []byte {
		b := mustJSON(t, chat(4*time.Second, "u-2", "x"))
		return append(b[:len(b)-1], append(bytes.Repeat([]byte(" "), size-len(b)), '}')...)
	}
	future := chat(0, "u-1", "from the future")
	future.EventTime = time.Now().UTC().Add(2 * time.Hour)
	ancient := chat(0, "u-1", "from long ago")
	ancient.EventTime = base.Add(5*time.Second - retention - time.Minute) // the chat watermark is base+5s by then
	bidAbc := strings.Replace(string(mustJSON(t, events.Auction{Header: hdr(&n, id, 6*time.Second), AuctionID: "a-1",
		Type: events.AuctionBid, UserID: "u-2", Amount: 7, Currency: "USD"})), `"amount":7`, `"amount":"abc"`, 1)
	timeNum := strings.Replace(string(mustJSON(t, chat(5*time.Second, "u-1", "x"))), `"event_time":"`+base.Add(5*time.Second).Format(time.RFC3339)+`"`, `"event_time":42`, 1)
	if !strings.Contains(timeNum, `"event_time":42`) || !strings.Contains(bidAbc, `"amount":"abc"`) {
		t.Fatalf("test records not built: %s %s", timeNum, bidAbc)
	}
	wrongKey := mustJSON(t, chat(5*time.Second, "u-1", "x"))

	futureRec := bad(events.TopicChat, "future", mustJSON(t, future))
	futureRec.notOffline = true
	recs := []hostileRecord{
		good(events.TopicViewing, events.Viewing{Header: hdr(&n, id, time.Second), Type: events.ViewingJoin, UserID: "u-1"}),
		bad(events.TopicViewing, "malformed", []byte(`{"event_id":"v-bad","event_time":`)),
		good(events.TopicViewing, events.Viewing{Header: hdr(&n, id, 2*time.Second), Type: events.ViewingJoin, UserID: "u-2"}),
		bad(events.TopicViewing, "oversized", oversized(bigSize)),
		good(events.TopicViewing, events.Viewing{Header: hdr(&n, id, 3*time.Second), Type: events.ViewingHeartbeat, UserID: "u-1"}),

		good(events.TopicChat, chat(time.Second, "u-1", "first")),
		bad(events.TopicChat, "malformed", []byte("{not json")),
		good(events.TopicChat, chat(2*time.Second, "u-2", "second")),
		bad(events.TopicChat, "invalid:event_time", []byte(timeNum)),
		good(events.TopicChat, chat(3*time.Second, "u-1", "third")),
		bad(events.TopicChat, "oversized", oversized(bigSize)),
		bad(events.TopicChat, "oversized", oversized(events.MaxEventBytes+1)), // kept whole in the DLQ
		good(events.TopicChat, chat(4*time.Second, "u-2", "fourth")),
		futureRec,
		good(events.TopicChat, chat(5*time.Second, "u-1", "fifth")),
		bad(events.TopicChat, "ancient", mustJSON(t, ancient)),
		bad(events.TopicChat, "malformed", []byte{}),
		// A null value (a tombstone) is no event: goka skips it (its
		// default NilIgnore) and commits past it; no dead letter.
		{topic: events.TopicChat, key: id, value: nil, notOffline: true},
		{topic: events.TopicChat, key: "ls-other", value: wrongKey, reason: "invalid:key"},
		good(events.TopicChat, chat(5*time.Second, "u-3", "sixth")),

		good(events.TopicAuctions, events.Auction{Header: hdr(&n, id, time.Second), AuctionID: "a-1", Type: events.AuctionStart}),
		bad(events.TopicAuctions, "invalid:amount", []byte(bidAbc)),
		good(events.TopicAuctions, events.Auction{Header: hdr(&n, id, 2*time.Second), AuctionID: "a-1", Type: events.AuctionBid, UserID: "u-2", Amount: 40, Currency: "USD"}),
		bad(events.TopicAuctions, "oversized", oversized(bigSize)),
		good(events.TopicAuctions, events.Auction{Header: hdr(&n, id, 3*time.Second), AuctionID: "a-1", Type: events.AuctionSold, UserID: "u-2", Amount: 40, Currency: "USD"}),
	}
	// "ls-other" hashes to some partition; the wrong-key record is a
	// dead letter wherever it lands. Every other record shares id's
	// partition of its topic.
	batch := make([]*kgo.Record, len(recs))
	for i, rec := range recs {
		batch[i] = &kgo.Record{Topic: r.prefix + rec.topic, Key: []byte(rec.key), Value: rec.value}
	}
	if err := cl.ProduceSync(ctx, batch...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{} // topic/partition/offset → reason
	wantCount := map[[2]string]int{}
	for i, rec := range recs {
		if rec.reason != "" {
			want[fmt.Sprintf("%s/%d/%d", batch[i].Topic, batch[i].Partition, batch[i].Offset)] = rec.reason
			wantCount[[2]string{batch[i].Topic, rec.reason}]++
		}
	}

	if realKafka {
		// What happens to an incompressible 1 MB+ event on a broker with
		// the default max.message.bytes: the producer gets
		// MESSAGE_TOO_LARGE and the event never reaches livefeed.
		raw, err := kgo.NewClient(kgo.SeedBrokers(r.app.Brokers()...), kgo.ProducerBatchMaxBytes(4<<20),
			kgo.ProducerBatchCompression(kgo.NoCompression()))
		if err != nil {
			t.Fatal(err)
		}
		noise := make([]byte, 1500<<10)
		for i := range noise {
			noise[i] = byte(i*7919 + i>>8*31 + i>>16*131)
		}
		err = raw.ProduceSync(ctx, &kgo.Record{Topic: r.prefix + events.TopicChat, Key: []byte(id), Value: noise}).FirstErr()
		raw.Close()
		if !errors.Is(err, kerr.MessageTooLarge) {
			t.Fatalf("an uncompressed 1.5 MB record on real Kafka: %v, want MESSAGE_TOO_LARGE", err)
		}
	}

	// The offline recomputation of the same log (streams first, as
	// produced), without the wall-clock-judged record.
	topo, release, err := OfflineTopology(ctx, Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	en := offline.New(topo)
	en.Apply(ctx, offline.Record{Topic: events.TopicLivestreams, Key: id, Value: mustJSON(t, meta)})
	offlineWant := map[string]int{}
	for _, rec := range recs {
		if !rec.notOffline {
			en.Apply(ctx, offline.Record{Topic: rec.topic, Key: rec.key, Value: rec.value})
			if rec.reason != "" {
				offlineWant[rec.reason]++
			}
		}
	}
	if fmt.Sprint(en.Rejected) != fmt.Sprint(offlineWant) {
		t.Fatalf("offline rejected %v, want %v", en.Rejected, offlineWant)
	}

	// Every bad record is in its dead-letter topic with its reason.
	var dlqTopics []string
	for _, tp := range events.InputTopics() {
		dlqTopics = append(dlqTopics, r.prefix+string(pipeline.DLQ(goka.Stream(tp))))
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(r.app.Brokers()...), kgo.ConsumeTopics(dlqTopics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(8<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	got := map[string]string{}
	dctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	for len(got) < len(want) && dctx.Err() == nil {
		fetches := cons.PollFetches(dctx)
		fetches.EachRecord(func(rec *kgo.Record) {
			h := map[string]string{}
			for _, x := range rec.Headers {
				h[x.Key] = string(x.Value)
			}
			k := h[pipeline.HeaderTopic] + "/" + h[pipeline.HeaderPartition] + "/" + h[pipeline.HeaderOffset]
			got[k] = h[pipeline.HeaderReason]
			if h[pipeline.HeaderReason] != "oversized" {
				return
			}
			if size, _ := strconv.Atoi(h[pipeline.HeaderOriginalSize]); size > pipeline.MaxDeadLetterBytes {
				if len(rec.Value) != pipeline.MaxDeadLetterBytes || size != bigSize {
					t.Errorf("oversized dead letter %s: %d bytes kept, original %d; want %d of %d", k, len(rec.Value), size, pipeline.MaxDeadLetterBytes, bigSize)
				}
			} else if h[pipeline.HeaderOriginalSize] != "" || len(rec.Value) != events.MaxEventBytes+1 {
				t.Errorf("oversized dead letter %s under the DLQ limit: %d bytes, original-size %q; want it whole", k, len(rec.Value), h[pipeline.HeaderOriginalSize])
			}
		})
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("dead letters (topic/partition/offset → reason)\n got %v\nwant %v", got, want)
	}

	// The counters match.
	mfs, err := r.app.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	gotCount := map[[2]string]int{}
	for _, mf := range mfs {
		if mf.GetName() != "livefeed_dead_letters_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var topic, reason string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "topic":
					topic = l.GetValue()
				case "reason":
					reason = l.GetValue()
				}
			}
			if strings.HasPrefix(topic, r.prefix) {
				gotCount[[2]string{topic, reason}] += int(m.GetCounter().GetValue())
			}
		}
	}
	if fmt.Sprint(gotCount) != fmt.Sprint(wantCount) {
		t.Fatalf("livefeed_dead_letters_total\n got %v\nwant %v", gotCount, wantCount)
	}

	// The good events' features are exact: equal to the offline
	// recomputation, and to the hand count.
	at := base.Add(10 * time.Second)
	offlineValues := en.Values(at)
	q := "?at=" + url.QueryEscape(at.Format(time.RFC3339Nano))
	diff := "not compared yet"
	for deadline := time.Now().Add(45 * time.Second); diff != "" && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		diff = firstDifference(t, r, offlineValues, q)
	}
	if diff != "" {
		t.Fatalf("online differs from offline: %s", diff)
	}
	var lf serving.LivestreamFeatures
	if r.get(t, "/v1/features/livestream/"+id+q, &lf) != 200 {
		t.Fatal("stream not served")
	}
	for name, v := range map[string]float64{"chat_5m": 6, "joins_5m": 2, "bids_5m": 1, "sold_1h": 1, "gmv_1h": 40} {
		if got, ok := lf.Features[name]; ok && got != v {
			t.Errorf("%s = %v, want %v (the good events only)", name, got, v)
		} else if !ok {
			t.Logf("feature %s not defined in this topology", name)
		}
	}
	if lf.ViewersNow != 2 {
		t.Errorf("viewers now %d, want 2", lf.ViewersNow)
	}

	// The partitions kept flowing: the livestream group's committed
	// offsets reach the end of every input partition it read.
	adm := kadm.NewClient(cl)
	group := string(r.app.Topology.Names.LivestreamGroup())
	var inputs []string
	for _, tp := range events.InputTopics() {
		inputs = append(inputs, r.prefix+tp)
	}
	lag := "not measured"
	for deadline := time.Now().Add(45 * time.Second); lag != "" && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		lag = ""
		ends, err := adm.ListEndOffsets(ctx, inputs...)
		if err != nil {
			lag = err.Error()
			continue
		}
		committed, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			lag = err.Error()
			continue
		}
		ends.Each(func(o kadm.ListedOffset) {
			if o.Offset == 0 {
				return
			}
			c, ok := committed.Lookup(o.Topic, o.Partition)
			if !ok || c.At != o.Offset {
				lag += fmt.Sprintf(" %s/%d committed %d of %d;", o.Topic, o.Partition, c.At, o.Offset)
			}
		})
	}
	if lag != "" {
		t.Fatalf("committed offsets do not reach the end:%s", lag)
	}
}
