package embedding

import (
	"bytes"
	"context"
	"strconv"
	"testing"

	"github.com/livefeed/livefeed/processors/pipeline"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A 1.5 MB livestream record is dead-lettered as oversized, truncated to
// pipeline.MaxDeadLetterBytes with its original size in a header, so the
// dead letter fits the producer's limit; the good record beside it is
// embedded.
func TestOversizedRecordIsTruncatedInTheDeadLetter(t *testing.T) {
	w, m := newWorker(t, testEmbedder(t))
	big := metaRecord(t, 1, "ls-1", "pokemon booster box")
	big.Value = append(big.Value[:len(big.Value)-1], append(bytes.Repeat([]byte(" "), 1500<<10), '}')...)
	out := w.Process(context.Background(), []*kgo.Record{big, metaRecord(t, 2, "ls-2", "vintage sneakers")})
	if len(out) != 2 {
		t.Fatalf("%d outputs, want a dead letter and a vector", len(out))
	}
	dl := out[0]
	h := map[string]string{}
	for _, x := range dl.Headers {
		h[x.Key] = string(x.Value)
	}
	if dl.Topic != "embedding.dlq" || h[pipeline.HeaderReason] != "oversized" {
		t.Fatalf("first output %s reason %q, want an oversized dead letter", dl.Topic, h[pipeline.HeaderReason])
	}
	if len(dl.Value) != pipeline.MaxDeadLetterBytes || h[pipeline.HeaderOriginalSize] != strconv.Itoa(len(big.Value)) ||
		!bytes.Equal(dl.Value, big.Value[:pipeline.MaxDeadLetterBytes]) {
		t.Fatalf("dead letter keeps %d bytes, original-size %q; want the first %d of %d", len(dl.Value),
			h[pipeline.HeaderOriginalSize], pipeline.MaxDeadLetterBytes, len(big.Value))
	}
	if out[1].Topic != "vectors" {
		t.Fatalf("second output to %s, want vectors", out[1].Topic)
	}
	if got := testutil.ToFloat64(m.DeadLetters.WithLabelValues("oversized")); got != 1 {
		t.Fatalf("oversized dead letters counted %v", got)
	}
}
