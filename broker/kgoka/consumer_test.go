package kgoka_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestPartitionConsumer: a partition consumer starts at the asked offset,
// reports the high watermark, and one reopened at an earlier offset after
// a close gets that offset first (nothing of the closed one leaks into it).
func TestPartitionConsumer(t *testing.T) {
	brokers := testBrokers(t)
	k := builders(t)
	topic := name(t, "t")
	createTopics(t, brokers, 2, false, topic)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const n = 200
	for i := range n {
		for p := range int32(2) {
			if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Partition: p, Value: []byte(fmt.Sprint(i)),
				Headers: []kgo.RecordHeader{{Key: "i", Value: []byte(fmt.Sprint(i))}}}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	cons, err := k.Consumer()(brokers, "kgoka-test")
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()

	read := func(pc sarama.PartitionConsumer, from int64, count int) {
		t.Helper()
		for i := range count {
			select {
			case m := <-pc.Messages():
				want := from + int64(i)
				if m.Offset != want || string(m.Value) != fmt.Sprint(want) || len(m.Headers) != 1 || string(m.Headers[0].Value) != fmt.Sprint(want) {
					t.Fatalf("message %d: offset %d value %q headers %d, want offset %d", i, m.Offset, m.Value, len(m.Headers), want)
				}
			case err := <-pc.Errors():
				t.Fatal(err)
			case <-time.After(30 * time.Second):
				t.Fatalf("no message %d from %d", i, from)
			}
		}
	}
	closeAndDrain := func(pc sarama.PartitionConsumer) {
		t.Helper()
		pc.AsyncClose()
		for range pc.Messages() {
		}
		for err := range pc.Errors() {
			t.Fatal(err)
		}
	}

	p0, err := cons.ConsumePartition(topic, 0, 150)
	if err != nil {
		t.Fatal(err)
	}
	p1, err := cons.ConsumePartition(topic, 1, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cons.ConsumePartition(topic, 1, 3); err == nil {
		t.Fatal("a partition consumed twice")
	}
	read(p0, 150, 20)
	read(p1, 0, 50)
	if hwm := cons.HighWaterMarks()[topic][0]; hwm != n {
		t.Errorf("high watermark %d, want %d", hwm, n)
	}
	closeAndDrain(p0)
	p0, err = cons.ConsumePartition(topic, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	read(p0, 10, n-10)
	if got := p0.HighWaterMarkOffset(); got != n {
		t.Errorf("partition high watermark %d, want %d", got, n)
	}
	closeAndDrain(p0)
	read(p1, 50, 150)
	closeAndDrain(p1)

	// A consumer that starts at the end gets only what comes after.
	pn, err := cons.ConsumePartition(topic, 1, sarama.OffsetNewest)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // let it resolve the end before producing
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Partition: 1, Value: []byte(fmt.Sprint(n)),
		Headers: []kgo.RecordHeader{{Key: "i", Value: []byte(fmt.Sprint(n))}}}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	read(pn, n, 1)
	closeAndDrain(pn)
}

// TestPartitionConsumerBackpressure: a partition whose reader stalls pauses
// its fetching without holding up another partition of the same client,
// and loses nothing when read again.
func TestPartitionConsumerBackpressure(t *testing.T) {
	brokers := testBrokers(t)
	topic := name(t, "t")
	createTopics(t, brokers, 2, false, topic)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const n = 3000
	for p := range int32(2) {
		rs := make([]*kgo.Record, n)
		for i := range rs {
			rs[i] = &kgo.Record{Topic: topic, Partition: p, Value: []byte(fmt.Sprint(i))}
		}
		if err := cl.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	k := kgokaWithQueue(t, 100)
	cons, err := k.Consumer()(brokers, "kgoka-test")
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	stalled, err := cons.ConsumePartition(topic, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	flowing, err := cons.ConsumePartition(topic, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		select {
		case m := <-flowing.Messages():
			if m.Offset != int64(i) {
				t.Fatalf("flowing partition: offset %d, want %d", m.Offset, i)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("flowing partition stuck at %d while the other is not read", i)
		}
	}
	for i := range n {
		select {
		case m := <-stalled.Messages():
			if m.Offset != int64(i) {
				t.Fatalf("stalled partition: offset %d, want %d", m.Offset, i)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("stalled partition stuck at %d after reading resumed", i)
		}
	}
}
