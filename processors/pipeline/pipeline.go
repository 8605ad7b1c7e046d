// Package pipeline holds what every livefeed goka group shares: Prometheus
// metrics and the dead-letter path that keeps bad input from stopping a
// partition.
package pipeline

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the processors' Prometheus metrics.
type Metrics struct {
	Events      *prometheus.CounterVec // group, topic, outcome (ok, dead_letter, late)
	DeadLetters *prometheus.CounterVec // topic, reason
	LateDropped *prometheus.CounterVec // group, topic
	IdleDeleted *prometheus.CounterVec // group
	Duplicates  *prometheus.CounterVec // group, topic
	// Misrouted counts the records found in a partition their key does
	// not map to, by what was done with them (route.go).
	Misrouted *prometheus.CounterVec // group, topic, action (reroute, dead_letter)
	// BeforeMetadata counts the events applied to a stream whose metadata
	// (seller, category) is not known yet: they reach no entity keyed by
	// those fields.
	BeforeMetadata *prometheus.CounterVec // group, topic
	// StateQueued is the encoded bytes of the write-behind state that are
	// flushed but not yet acknowledged by the changelog, by table;
	// StateWaits the callbacks that waited because it was at its limit.
	StateQueued *prometheus.GaugeVec   // table
	StateWaits  *prometheus.CounterVec // table
	// StateCached is the estimated memory of the decoded values the
	// write-behind state caches, by table (StateOptions.CacheBytes).
	StateCached *prometheus.GaugeVec // table
	// StateUnstored is the bytes of flushed values waiting for their
	// table partition's next checkpoint to the local store, by table
	// (StateOptions.CheckpointInterval, CheckpointBytes).
	StateUnstored *prometheus.GaugeVec // table
	EmbedErrors   prometheus.Counter
	Embeddings    prometheus.Counter
	EmbedTime     prometheus.Histogram
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "livefeed_processor_events_total",
			Help: "Input events handled by the processors, by group, topic and outcome.",
		}, []string{"group", "topic", "outcome"}),
		DeadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "livefeed_dead_letters_total",
			Help: "Input events sent to a dead-letter topic, by input topic and reason.",
		}, []string{"topic", "reason"}),
		LateDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "livefeed_late_events_dropped_total",
			Help: "Events later than every feature's allowed lateness, dropped from windows.",
		}, []string{"group", "topic"}),
		IdleDeleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "livefeed_idle_keys_deleted_total",
			Help: "Keys deleted from a group table because every feature expired (and, for streams, the stream ended).",
		}, []string{"group"}),
		Duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "livefeed_duplicates_absorbed_total",
			Help: "Records skipped because their origin offset was already applied to the key's state (replays after a crash or a rebalance), by group and topic.",
		}, []string{"group", "topic"}),
		Misrouted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "livefeed_misrouted_records_total",
			Help: "Records found in a partition their key does not map to under Kafka's default murmur2 partitioner (a producer with another partitioner, e.g. librdkafka's default), by group, topic and action (reroute, dead_letter); none reached the state.",
		}, []string{"group", "topic", "action"}),
		BeforeMetadata: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "livefeed_events_before_stream_metadata_total",
			Help: "Stream events applied before the stream's own livestream record (its seller and category unknown), by group and topic: they count for the stream, but routes keyed by seller_id or category skip them and their user signals carry no seller or category. Expected only when a backlog is read out of order across topics.",
		}, []string{"group", "topic"}),
		StateQueued: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "livefeed_state_queued_bytes",
			Help: "Encoded table values flushed by the write-behind state and not yet acknowledged by the changelog, by table.",
		}, []string{"table"}),
		StateCached: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "livefeed_state_cache_bytes",
			Help: "Estimated memory of the decoded table values cached by the write-behind state, by table (bounded by the state's cache bytes).",
		}, []string{"table"}),
		StateUnstored: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "livefeed_state_unstored_bytes",
			Help: "Flushed table values in the changelog but not yet in the local store (written at the partition's next checkpoint; recovery reads them from the changelog), by table.",
		}, []string{"table"}),
		StateWaits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "livefeed_state_backpressure_waits_total",
			Help: "Callbacks that waited because the write-behind state's queue was at its byte limit, by table.",
		}, []string{"table"}),
		EmbedErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "livefeed_embed_errors_total",
			Help: "Content embeddings that failed (the stream keeps its previous vector).",
		}),
		Embeddings: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "livefeed_embeddings_total",
			Help: "Content embeddings computed by the processors.",
		}),
		EmbedTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "livefeed_embed_seconds",
			Help:    "Time to embed one stream's text in the processor.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.Events, m.DeadLetters, m.LateDropped, m.IdleDeleted, m.Duplicates, m.Misrouted, m.BeforeMetadata, m.StateQueued, m.StateCached, m.StateUnstored, m.StateWaits, m.EmbedErrors, m.Embeddings, m.EmbedTime)
	}
	return m
}

// DLQ is the dead-letter topic of an input topic.
func DLQ(topic goka.Stream) goka.Stream { return topic + ".dlq" }

// Header names set on dead letters.
const (
	HeaderReason    = "livefeed-reason"
	HeaderError     = "livefeed-error"
	HeaderTopic     = "livefeed-topic"
	HeaderPartition = "livefeed-partition"
	HeaderOffset    = "livefeed-offset"
	// HeaderOriginalSize is set, with the value's length in bytes, on a
	// dead letter whose value was truncated to MaxDeadLetterBytes.
	HeaderOriginalSize = "livefeed-original-size"
)

// MaxDeadLetterBytes is the most of a value a dead letter keeps
// (events.MaxRecordBytes): a longer value — only an oversized one can be —
// is truncated to its first MaxDeadLetterBytes bytes and its original
// length goes in HeaderOriginalSize, so the dead letter always fits the
// producer's and the broker's default limits (~1 MB) however large the
// input record was.
const MaxDeadLetterBytes = events.MaxRecordBytes

// DeadLetterValue is what a dead letter keeps of raw, and the header
// (HeaderOriginalSize, else nil) that says it was truncated.
func DeadLetterValue(raw []byte) (value []byte, originalSize []byte) {
	if len(raw) <= MaxDeadLetterBytes {
		return raw, nil
	}
	return raw[:MaxDeadLetterBytes], []byte(strconv.Itoa(len(raw)))
}

// Reason classifies a decode error for metrics: "oversized", "future",
// "ancient", "misrouted" (ErrMisrouted), "invalid:<field>" (a field of the wrong type or an invalid
// value; the field name comes from the event's schema, never from the
// input), "malformed" or "other".
func Reason(err error) string {
	var ve *events.ValidationError
	switch {
	case errors.Is(err, events.ErrOversized):
		return "oversized"
	case errors.Is(err, events.ErrFuture):
		return "future"
	case errors.Is(err, events.ErrAncient):
		return "ancient"
	case errors.Is(err, ErrMisrouted):
		return "misrouted"
	case errors.As(err, &ve):
		// "tags[3]" and "vector[17]" count as "tags" and "vector": the
		// label's values stay as few as the schema's fields.
		field, _, _ := strings.Cut(ve.Field, "[")
		return "invalid:" + field
	case errors.Is(err, events.ErrMalformed):
		return "malformed"
	default:
		return "other"
	}
}

// maxErrorHeader bounds the error text in a dead letter's header (an
// invalid field's value is quoted in it).
const maxErrorHeader = 1024

func errorText(err error) string {
	s := err.Error()
	if len(s) > maxErrorHeader {
		s = strings.ToValidUTF8(s[:maxErrorHeader], "") + "…"
	}
	return s
}

// DeadLetter sends the current input message, unchanged (truncated if
// longer than MaxDeadLetterBytes, see DeadLetterValue), to its topic's
// dead-letter topic with the reason in headers, and counts it. The partition
// goes on with the next message.
func DeadLetter(ctx goka.Context, m *Metrics, raw []byte, err error) {
	reason := Reason(err)
	hdr := goka.Headers{
		HeaderReason:    []byte(reason),
		HeaderError:     []byte(errorText(err)),
		HeaderTopic:     []byte(ctx.Topic()),
		HeaderPartition: []byte(strconv.Itoa(int(ctx.Partition()))),
		HeaderOffset:    []byte(strconv.FormatInt(ctx.Offset(), 10)),
	}
	raw, size := DeadLetterValue(raw)
	if size != nil {
		hdr[HeaderOriginalSize] = size
	}
	ctx.Emit(DLQ(ctx.Topic()), ctx.Key(), raw, goka.WithCtxEmitHeaders(hdr))
	m.DeadLetters.WithLabelValues(string(ctx.Topic()), reason).Inc()
	m.Events.WithLabelValues(string(ctx.Group()), string(ctx.Topic()), "dead_letter").Inc()
}

// Group is a goka group ready to run: its graph and the processor options it
// needs beyond the deployment's (e.g. its state cache's rebalance hook).
type Group struct {
	Graph   *goka.GroupGraph
	Options []goka.ProcessorOption
	// Sweep, if set, is the name of the group's visitor that deletes idle
	// keys; the runner visits every key with it now and then.
	Sweep string
	// State, if set, is the group's write-behind table state: the runner
	// adds its processor options and runs its flusher beside the processor.
	State StateRunner
}

// StateRunner is what a runner needs of a group's State.
type StateRunner interface {
	ProcessorOptions(stateDir string, pb goka.ProducerBuilder) []goka.ProcessorOption
	// WrapOptions is ProcessorOptions over another storage (goka's tester's).
	WrapOptions(sb storage.Builder, pb goka.ProducerBuilder) []goka.ProcessorOption
	Run(stop <-chan struct{})
	// Abort fails the commits still waiting for the changelog (a bounded
	// shutdown while the brokers are unreachable).
	Abort()
	// Sync flushes now and waits until the flush is written.
	Sync(ctx context.Context) error
}

// SweepVisitor is the visitor name of idle-key sweeps.
const SweepVisitor = "sweep-idle"

// PartitionMarks keeps, per partition, the newest event time per source
// (features.Watermarks). Each partition's marks are written and read by that
// partition's goroutine (callbacks and visits alike); the map of partitions
// is guarded.
type PartitionMarks struct {
	mu sync.Mutex
	m  map[int32]*features.Watermarks
}

// Of returns the marks of a partition.
func (pm *PartitionMarks) Of(p int32) *features.Watermarks {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	if pm.m == nil {
		pm.m = map[int32]*features.Watermarks{}
	}
	w := pm.m[p]
	if w == nil {
		w = &features.Watermarks{}
		pm.m[p] = w
	}
	return w
}
