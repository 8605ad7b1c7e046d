package kgoka_test

import (
	"errors"
	"testing"
	"time"

	"github.com/livefeed/livefeed/broker"
	"github.com/livefeed/livefeed/broker/kgoka"
	"github.com/lovoo/goka"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A producer whose broker is gone closes within its CloseTimeout, failing
// the records it still holds (so nothing waiting for them is committed),
// instead of retrying them for the 2-minute delivery timeout.
func TestProducerCloseIsBoundedWithoutBroker(t *testing.T) {
	e, err := broker.StartEmbedded("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	topic := name(t, "out")
	if _, err := broker.EnsureTopics(t.Context(), newClient(t, e.Addrs()), 1, []broker.TopicSpec{{Name: topic, Partitions: 1}}); err != nil {
		t.Fatal(err)
	}
	b := kgoka.New(kgoka.Options{CloseTimeout: 500 * time.Millisecond})
	p, err := b.Producer()(e.Addrs(), "close-test", goka.DefaultHasher())
	if err != nil {
		t.Fatal(err)
	}
	if err := waitPromise(p.Emit(topic, "k", []byte("before"))); err != nil {
		t.Fatalf("emit while the broker is up: %v", err)
	}
	e.Close()
	pending := p.Emit(topic, "k", []byte("after"))
	start := time.Now()
	closeErr := p.Close()
	took := time.Since(start)
	if took > 3*time.Second {
		t.Fatalf("Close took %v without a broker, want about the 500ms CloseTimeout", took)
	}
	if closeErr == nil {
		t.Error("Close reported no error with a record unsent")
	}
	if err := waitPromise(pending); !errors.Is(err, kgo.ErrClientClosed) {
		t.Errorf("the unsent record's promise: %v, want kgo.ErrClientClosed", err)
	}
	t.Logf("Close without a broker: %v", took.Round(time.Millisecond))
}

func newClient(t *testing.T, brokers []string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// waitPromise waits at most 10s for a promise's outcome.
func waitPromise(p *goka.Promise) error {
	done := make(chan error, 1)
	p.Then(func(err error) { done <- err })
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		return errors.New("the promise did not complete in 10s")
	}
}
