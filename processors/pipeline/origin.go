package pipeline

import (
	"strconv"
	"strings"

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
	// AppliedOffsets is the value's map from origin partition ("<consumed
	// topic>|<origin topic>/<partition>") to the newest offset applied.
	AppliedOffsets() *map[string]int64
}

// origin is where a record comes from: its partition key in Applied and
// its offset.
type origin struct {
	key    string
	offset int64
}

// originOf is the record's origin: HeaderOrigin's when it carries one (a
// record emitted by a livefeed group), else the record itself (an input
// event).
func originOf(ctx goka.Context) origin {
	topic := string(ctx.Topic())
	if h := ctx.Headers()[HeaderOrigin]; len(h) > 0 {
		s := string(h)
		if i := strings.LastIndexByte(s, '/'); i > 0 {
			if off, err := strconv.ParseInt(s[i+1:], 10, 64); err == nil {
				return origin{key: topic + "|" + s[:i], offset: off}
			}
		}
	}
	return origin{key: topic + "/" + strconv.Itoa(int(ctx.Partition())), offset: ctx.Offset()}
}

// seen reports whether o was applied to the value already.
func seen(applied map[string]int64, o origin) bool {
	last, ok := applied[o.key]
	return ok && o.offset <= last
}

// OriginHeaders are the headers that carry the current input record as the
// origin of what the callback emits.
func OriginHeaders(ctx goka.Context) goka.Headers {
	return goka.Headers{HeaderOrigin: []byte(string(ctx.Topic()) + "/" + strconv.Itoa(int(ctx.Partition())) + "/" +
		strconv.FormatInt(ctx.Offset(), 10))}
}

// Emit emits value to topic with the current record as its origin (so the
// receiving group absorbs the duplicates a replay here would send it).
func Emit(ctx goka.Context, topic goka.Stream, key string, value any) {
	ctx.Emit(topic, key, value, goka.WithCtxEmitHeaders(OriginHeaders(ctx)))
}
