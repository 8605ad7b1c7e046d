package pipeline

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/livefeed/livefeed/broker"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
)

// Misrouted records. A group's state of a key lives in the partition the
// key maps to under Kafka's default partitioner (murmur2; broker.Partition),
// and only there: goka co-partitions the inputs with the table, serving's
// views look a key up in that partition, and a table write goes to it
// whichever replica makes it. A record produced with another partitioner —
// librdkafka's default, consistent_random (CRC32), is the default of kcat
// and confluent-kafka-python — lands in another partition, whose replica
// would create a second state for the key there (an orphan) and write it
// over the real one in the table topic.
//
// So every wrapped input callback (State.Input, State.EventInput) first
// checks the record's partition. A misrouted record never reaches the
// callback or the state: it is re-routed (Reroute, the default) — emitted
// unchanged, key, value and headers, to the same topic, where the emitter's
// murmur2 hasher puts it in the partition its key maps to — or sent to the
// topic's dead-letter topic with reason "misrouted" (DeadLetterMisrouted).
// Either is counted in livefeed_misrouted_records_total{group,topic,action}
// and logged at most once per MisroutedLogEvery per group, naming the likely
// cause.
//
// A re-routed record carries HeaderRerouted (where it was misrouted, as
// "<topic>/<partition>/<offset>") and, for an input-event topic,
// HeaderOrigin with the same value: a replay of the misrouted record
// re-routes it again with the same origin, and the partition it goes to
// absorbs the copy (origin.go). A record of a topic livefeed emits keeps
// the origin it carried. A re-routed record that is misrouted again
// (replicas that disagree on the partition count or the hasher) is
// dead-lettered, never re-routed twice: no loop.
//
// The misrouted record's commit waits in its partition's order like any
// other (State defers it), and goka commits it only once its re-routed copy
// is acknowledged.

// Misrouted is what a group does with a record in a partition its key does
// not map to.
type Misrouted uint8

const (
	// Reroute emits the record unchanged to the partition its key maps to
	// (the default: nothing is lost).
	Reroute Misrouted = iota
	// DeadLetterMisrouted sends it to its topic's dead-letter topic with
	// reason "misrouted".
	DeadLetterMisrouted
)

// String is the option's name: "reroute" or "dead-letter".
func (m Misrouted) String() string {
	switch m {
	case Reroute:
		return "reroute"
	case DeadLetterMisrouted:
		return "dead-letter"
	default:
		return "Misrouted(" + strconv.Itoa(int(m)) + ")"
	}
}

// ParseMisrouted parses "reroute" or "dead-letter".
func ParseMisrouted(s string) (Misrouted, error) {
	switch s {
	case "reroute":
		return Reroute, nil
	case "dead-letter":
		return DeadLetterMisrouted, nil
	}
	return 0, fmt.Errorf("misrouted records: %q, want %s", s, MisroutedExpected)
}

// MisroutedExpected says what ParseMisrouted accepts.
const MisroutedExpected = "reroute or dead-letter"

// MarshalText implements encoding.TextMarshaler (flag.TextVar).
func (m Misrouted) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler (flag.TextVar).
func (m *Misrouted) UnmarshalText(b []byte) error {
	v, err := ParseMisrouted(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// Expected says what the option accepts (cmd/livefeed's flag errors).
func (m *Misrouted) Expected() string { return MisroutedExpected }

// ErrMisrouted is the error of a dead-lettered misrouted record (Reason
// "misrouted").
var ErrMisrouted = errors.New("misrouted: the record's partition is not the one its key maps to (murmur2)")

// HeaderRerouted is set on a re-routed record: the misrouted record it
// copies, as "<topic>/<partition>/<offset>".
const HeaderRerouted = "livefeed-rerouted"

// MisroutedLogEvery is how often, at most, a group logs a misrouted record.
const MisroutedLogEvery = time.Minute

// Routing configures a group's partition check (StateOptions.Routing).
type Routing struct {
	// Partitions is the partition count of the group's input topics and
	// table (goka co-partitions them; topologies creates every topic with
	// the same count and checks existing ones). 0 or 1: no check (one
	// partition cannot be the wrong one).
	Partitions int32
	// Misrouted is what is done with a misrouted record. Default Reroute.
	Misrouted Misrouted
}

// RerouteOutputs are the output edges re-routing needs: each input topic
// as an output of raw bytes (livefeed's inputs all use codec.Bytes, so a
// re-routed value is the consumed one, byte for byte). Add them to the
// group's edges beside its inputs' dead-letter outputs.
func RerouteOutputs(inputs ...goka.Stream) []goka.Edge {
	out := make([]goka.Edge, len(inputs))
	for i, in := range inputs {
		out[i] = goka.Output(in, new(codec.Bytes))
	}
	return out
}

// router applies a group's Routing.
type router struct {
	Routing
	metrics *Metrics
	log     *slog.Logger

	mu         sync.Mutex
	nextLog    time.Time
	suppressed int // misrouted records not logged since the last line
}

func newRouter(r Routing, m *Metrics, log *slog.Logger) *router {
	return &router{Routing: r, metrics: m, log: log}
}

// placed reports whether the current key belongs to the current partition.
// A record without a key is placed (its callback judges it: livefeed's
// records are all keyed).
func (r *router) placed(ctx goka.Context) bool {
	if r.Partitions <= 1 || ctx.Key() == "" {
		return true
	}
	return broker.PartitionOf(ctx.Key(), r.Partitions) == ctx.Partition()
}

// divert re-routes or dead-letters the current record if it is misrouted,
// and reports whether it did; the caller then leaves the callback and the
// state alone. carried: the topic's records carry HeaderOrigin (a topic
// livefeed emits).
func (r *router) divert(ctx goka.Context, msg any, carried bool) bool {
	if r.placed(ctx) {
		return false
	}
	want := broker.PartitionOf(ctx.Key(), r.Partitions)
	raw, _ := msg.([]byte)
	hdr := ctx.Headers()
	action := r.Misrouted
	var err error
	if from, ok := hdr[HeaderRerouted]; ok {
		action = DeadLetterMisrouted
		err = fmt.Errorf("%w: partition %d, key maps to %d of %d; re-routed once already from %s, so the replicas disagree on the partition count or the partitioner",
			ErrMisrouted, ctx.Partition(), want, r.Partitions, from)
	}
	label := "reroute"
	switch action {
	case Reroute:
		here := originHeaders(ctx)[HeaderOrigin]
		out := make(goka.Headers, len(hdr)+2)
		for k, v := range hdr {
			out[k] = v
		}
		out[HeaderRerouted] = here
		if !carried || out[HeaderOrigin] == nil {
			out[HeaderOrigin] = here
		}
		ctx.Emit(goka.Stream(ctx.Topic()), ctx.Key(), raw, goka.WithCtxEmitHeaders(out))
	default:
		label = "dead_letter"
		if err == nil {
			err = fmt.Errorf("%w: partition %d, key maps to %d of %d", ErrMisrouted, ctx.Partition(), want, r.Partitions)
		}
		DeadLetter(ctx, r.metrics, raw, err)
	}
	r.metrics.Misrouted.WithLabelValues(string(ctx.Group()), string(ctx.Topic()), label).Inc()
	r.logMisrouted(ctx, want, label)
	return true
}

// logMisrouted logs a misrouted record, at most once per MisroutedLogEvery;
// the line counts those not logged since the last one.
func (r *router) logMisrouted(ctx goka.Context, want int32, action string) {
	now := time.Now()
	r.mu.Lock()
	if now.Before(r.nextLog) {
		r.suppressed++
		r.mu.Unlock()
		return
	}
	r.nextLog = now.Add(MisroutedLogEvery)
	suppressed := r.suppressed
	r.suppressed = 0
	r.mu.Unlock()
	r.log.Warn("misrouted record: its partition is not the one its key maps to under Kafka's default partitioner (murmur2); "+
		"the likely cause is the producer's partitioner: librdkafka clients (kcat, confluent-kafka-python, …) default to consistent_random (CRC32), set partitioner=murmur2_random",
		"group", ctx.Group(), "topic", ctx.Topic(), "partition", ctx.Partition(), "offset", ctx.Offset(),
		"key", ctx.Key(), "key_partition", want, "action", action, "not_logged_since_last", suppressed)
}
