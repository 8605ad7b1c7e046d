package tables

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/internal/wire"
	"github.com/livefeed/livefeed/models"
)

// binaryFields is a table value whose small fields have a binary form
// (codec version 3) instead of JSON: the user table, whose flushes encoded
// up to 50 recent streams' times as RFC 3339 text for every changed user
// and cost 7 % of the processors' CPU, and the livestream table, whose
// flushes encoded every current viewer (thousands on a busy stream) as a
// JSON object with sorted keys: a fifth of the processors' CPU under live
// traffic of 10k events/s.
type binaryFields interface {
	// fieldsVersion is the codec version appendFields writes.
	fieldsVersion() byte
	appendFields(b []byte) []byte
	// readFields reads the fields of a value of codec version.
	readFields(r *wire.Reader, version byte) error
}

func (*User) fieldsVersion() byte       { return codecVersion3 }
func (*Livestream) fieldsVersion() byte { return codecVersion4 }

// appendFields appends the user's small fields: id, taste (vector, weight,
// time), categories (sorted by name), recent streams, signal counts (sorted
// by kind), last event.
func (u *User) appendFields(b []byte) []byte {
	b = wire.AppendString(b, u.UserID)
	b = appendDecayedSum(b, &u.Taste)
	b = binary.AppendUvarint(b, uint64(len(u.Categories)))
	var cats [32]string
	for _, c := range wire.AppendSortedKeys(cats[:0], u.Categories) {
		b = wire.AppendString(b, c)
		b = wire.AppendFloat64(b, u.Categories[c].Value)
		b = wire.AppendTime(b, u.Categories[c].Time)
	}
	b = binary.AppendUvarint(b, uint64(len(u.Recent)))
	for _, r := range u.Recent {
		b = wire.AppendString(b, r.LivestreamID)
		b = wire.AppendString(b, string(r.Kind))
		b = wire.AppendTime(b, r.Time)
	}
	b = binary.AppendUvarint(b, uint64(len(u.Signals)))
	var kinds [16]events.SignalKind
	for _, k := range wire.AppendSortedKeys(kinds[:0], u.Signals) {
		b = wire.AppendString(b, string(k))
		b = binary.AppendVarint(b, u.Signals[k])
	}
	return wire.AppendTime(b, u.LastEvent)
}

func (u *User) readFields(r *wire.Reader, version byte) error {
	if version != codecVersion3 {
		return fmt.Errorf("user fields of codec version %d", version)
	}
	*u = User{UserID: r.String()}
	u.Taste = readDecayedSum(r)
	if n := r.Count(11); n > 0 { // a category takes at least 11 bytes
		u.Categories = make(map[string]models.DecayedValue, n)
		for range n {
			c := r.String()
			u.Categories[c] = models.DecayedValue{Value: r.Float64(), Time: r.Time()}
		}
	}
	if n := r.Count(4); n > 0 {
		u.Recent = make([]RecentStream, n)
		for i := range u.Recent {
			u.Recent[i] = RecentStream{LivestreamID: r.String(), Kind: InternKind(events.SignalKind(r.String())), Time: r.Time()}
		}
	}
	if n := r.Count(2); n > 0 {
		u.Signals = make(map[events.SignalKind]int64, n)
		for range n {
			k := InternKind(events.SignalKind(r.String()))
			u.Signals[k] = r.Varint()
		}
	}
	u.LastEvent = r.Time()
	return r.End()
}

// appendFields appends the stream's small fields in declaration order
// (codec version 4: the viewers as appendViewers writes them, in map
// order, so the same stream may encode to other bytes each time; nothing
// compares them).
func (l *Livestream) appendFields(b []byte) []byte {
	for _, s := range [...]string{l.LivestreamID, l.SellerID, l.Title, l.Category} {
		b = wire.AppendString(b, s)
	}
	b = binary.AppendUvarint(b, uint64(len(l.Tags)))
	for _, t := range l.Tags {
		b = wire.AppendString(b, t)
	}
	b = wire.AppendString(b, l.Language)
	b = wire.AppendString(b, string(l.Status))
	for _, t := range [...]time.Time{l.MetadataTime, l.LiveSince, l.EndedAt} {
		b = wire.AppendTime(b, t)
	}
	b = wire.AppendFloat32s(b, l.Embedding)
	b = wire.AppendString(b, l.EmbeddingModel)
	b = wire.AppendString(b, l.EmbeddedText)
	b = wire.AppendFloat32s(b, l.Content)
	b = wire.AppendString(b, l.ContentHash)
	b = wire.AppendString(b, l.ContentModel)
	b = wire.AppendTime(b, l.ContentTime)
	b = appendDecayedSum(b, &l.Audience)
	b = appendViewers(b, l.Viewers)
	b = binary.AppendVarint(b, l.Events)
	return binary.AppendVarint(b, l.LateDropped)
}

func (l *Livestream) readFields(r *wire.Reader, version byte) error {
	*l = Livestream{LivestreamID: r.String(), SellerID: r.String(), Title: r.String(), Category: r.String()}
	if n := r.Count(1); n > 0 {
		l.Tags = make([]string, n)
		for i := range l.Tags {
			l.Tags[i] = r.String()
		}
	}
	l.Language, l.Status = r.String(), events.Status(r.String())
	l.MetadataTime, l.LiveSince, l.EndedAt = r.Time(), r.Time(), r.Time()
	l.Embedding = r.Float32s()
	l.EmbeddingModel, l.EmbeddedText = r.String(), r.String()
	l.Content = r.Float32s()
	l.ContentHash, l.ContentModel, l.ContentTime = r.String(), r.String(), r.Time()
	l.Audience = readDecayedSum(r)
	if version == codecVersion3 {
		l.Viewers = readViewersV3(r)
	} else {
		l.Viewers = readViewers(r)
	}
	l.Events, l.LateDropped = r.Varint(), r.Varint()
	return r.End()
}

func appendDecayedSum(b []byte, d *models.DecayedSum) []byte {
	b = wire.AppendFloat32s(b, d.Vector)
	b = wire.AppendFloat64(b, d.Weight)
	return wire.AppendTime(b, d.Time)
}

func readDecayedSum(r *wire.Reader) models.DecayedSum {
	return models.DecayedSum{Vector: r.Float32s(), Weight: r.Float64(), Time: r.Time()}
}
