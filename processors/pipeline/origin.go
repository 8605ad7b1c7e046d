package pipeline

import (
	"bytes"
	"strconv"

	"github.com/lovoo/goka"
)

// HeaderOrigin is set on every record a group emits: the input record it
// was made from, as "<topic>/<partition>/<offset>" (Kafka topic names
// contain no '/').
const HeaderOrigin = "livefeed-origin"

// Duplicate absorption. A crash replays the input records whose state had
// not reached the changelog, and with them their emits. Each table value
// therefore records, per input partition it was fed from, the offset of the
// newest record applied to it (Applied); a record at or below that offset
// is a replay and is skipped. For a group's own input topics the partition
// is the record's own; for records another group emitted it is the origin
// carried in HeaderOrigin — the upstream group's input record — so a record
// re-emitted by a replaying upstream replica (a new offset in this topic,
// the same origin) is recognised too. Per value and origin partition,
// origins arrive in offset order: the upstream group handles that partition
// in order, and a key's records go to one partition of one idempotent
// producer.
//
// This is exact because of the emit barrier in State: a value is written to
// the table (local storage and changelog) only after every record emitted
// by the callbacks before its flush is acknowledged. So a value that says
// "applied up to offset o" is durable only with the emits of every record
// up to o.

// Deduplicated is a table value that records the offsets applied to it.
type Deduplicated interface {
	// AppliedOffsets is the value's map from origin partition (OriginKey)
	// to the newest offset applied.
	AppliedOffsets() *map[uint64]int64
}

// OriginKey identifies an origin partition in a value's applied offsets:
// the FNV-1a hash of "<consumed topic>|<origin topic>" in the high 32 bits,
// the origin partition in the low ones. Eight bytes instead of two topic
// names: a user value has one per input partition of two topics that fed
// it (~50), and it is encoded on every flush.
func OriginKey(consumed, originTopic string, partition int32) uint64 {
	return originKey(consumed, originTopic, partition)
}

// originKey is OriginKey for an origin topic as a string or, parsed from a
// header without a copy, as bytes.
func originKey[S ~string | ~[]byte](consumed string, originTopic S, partition int32) uint64 {
	h := fnv(fnvOffset32, consumed)
	h = (h ^ '|') * fnvPrime32
	h = fnv(h, originTopic)
	return uint64(h)<<32 | uint64(uint32(partition))
}

const (
	fnvOffset32 = 2166136261
	fnvPrime32  = 16777619
)

func fnv[S ~string | ~[]byte](h uint32, s S) uint32 {
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * fnvPrime32
	}
	return h
}

// origin is where a record comes from: its partition key in Applied and
// its offset.
type origin struct {
	key    uint64
	offset int64
}

// originOf is the record's origin: HeaderOrigin's when it carries one (a
// record emitted by a livefeed group, or one re-routed to this partition:
// route.go), else the record itself (an input event, or a record of a topic
// not carried). No allocation: it runs for every record.
func originOf(ctx goka.Context, carried bool) origin {
	consumed := string(ctx.Topic())
	if !carried {
		_, carried = ctx.Headers()[HeaderRerouted]
	}
	if carried {
		if topic, partition, offset, ok := parseOrigin(ctx.Headers()[HeaderOrigin]); ok {
			return origin{key: originKey(consumed, topic, partition), offset: offset}
		}
	}
	return origin{key: OriginKey(consumed, consumed, ctx.Partition()), offset: ctx.Offset()}
}

// HeaderOriginKey is the origin a record of topic consumed carries in a
// HeaderOrigin value h, keyed as the group's duplicate absorption keys it
// (OriginKey), and its offset; ok is false for a malformed value. For
// code that reads a group's input outside goka (a backfill's replay).
func HeaderOriginKey(consumed string, h []byte) (key uint64, offset int64, ok bool) {
	topic, partition, offset, ok := parseOrigin(h)
	if !ok {
		return 0, 0, false
	}
	return originKey(consumed, topic, partition), offset, true
}

// parseOrigin splits "<topic>/<partition>/<offset>".
func parseOrigin(h []byte) (topic []byte, partition int32, offset int64, ok bool) {
	i := bytes.LastIndexByte(h, '/')
	if i <= 0 {
		return nil, 0, 0, false
	}
	j := bytes.LastIndexByte(h[:i], '/')
	if j <= 0 {
		return nil, 0, 0, false
	}
	p, ok := parseDecimal(h[j+1:i], 31)
	if !ok {
		return nil, 0, 0, false
	}
	off, ok := parseDecimal(h[i+1:], 63)
	if !ok {
		return nil, 0, 0, false
	}
	return h[:j], int32(p), off, true
}

// parseDecimal parses a non-negative decimal below 1<<bits.
func parseDecimal(b []byte, bits uint) (int64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	if n >= 1<<bits {
		return 0, false
	}
	return int64(n), true
}

// seen reports whether o was applied to the value already.
func seen(applied map[uint64]int64, o origin) bool {
	last, ok := applied[o.key]
	return ok && o.offset <= last
}

// originHeaders are the headers that carry the current input record as the
// origin of what the callback emits.
func originHeaders(ctx goka.Context) goka.Headers {
	v := make([]byte, 0, len(ctx.Topic())+24)
	v = append(v, ctx.Topic()...)
	v = append(v, '/')
	v = strconv.AppendInt(v, int64(ctx.Partition()), 10)
	v = append(v, '/')
	v = strconv.AppendInt(v, ctx.Offset(), 10)
	return goka.Headers{HeaderOrigin: v}
}
