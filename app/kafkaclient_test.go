package app

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/serving"
)

// TestPipelineRunsNoSaramaClient: with processors, views and emitters on
// franz-go (broker/kgoka), a running stack that has processed events has no
// sarama client: every sarama client (producer, consumer, group, admin)
// keeps goroutines running in sarama's code, and none is left in the
// process. Sarama remains only as the types goka's interfaces name.
func TestPipelineRunsNoSaramaClient(t *testing.T) {
	r := startPipeline(t)
	resetBase()
	n := 0
	s := catalog[0]
	r.produce(t, events.TopicLivestreams, s.id, events.Livestream{Header: hdr(&n, s.id, 0), SellerID: s.seller,
		Title: s.title, Category: s.category, Tags: s.tags, Language: "en", Status: events.StatusLive})
	r.produce(t, events.TopicViewing, s.id, events.Viewing{Header: hdr(&n, s.id, time.Second), Type: events.ViewingJoin, UserID: "viewer"})
	r.waitFor(t, "the events processed and served", func() bool {
		var lf serving.LivestreamFeatures
		return r.get(t, "/v1/features/livestream/"+s.id, &lf) == 200 && lf.ViewersNow == 1
	})

	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var kgo int
	for g := range bytes.SplitSeq(buf, []byte("\n\n")) {
		stack := string(g)
		if strings.Contains(stack, "github.com/IBM/sarama.") {
			t.Errorf("a goroutine runs sarama code:\n%s", stack)
		}
		if strings.Contains(stack, "github.com/twmb/franz-go/pkg/kgo.") {
			kgo++
		}
	}
	if kgo == 0 {
		t.Error("no franz-go goroutine: the stack dump does not show the Kafka clients")
	}
}
