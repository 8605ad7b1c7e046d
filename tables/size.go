package tables

import (
	"unsafe"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/models"
)

// SizeBytes estimates the memory a decoded value holds (its struct,
// strings, vectors, maps and feature state): what processors/pipeline's
// caches count against their byte limit. An estimate, cheap enough to
// take once per flush of the value.
func (l *Livestream) SizeBytes() int {
	n := int(unsafe.Sizeof(*l))
	n += len(l.LivestreamID) + len(l.SellerID) + len(l.Title) + len(l.Category) + len(l.Language)
	n += cap(l.Tags) * 16
	for _, t := range l.Tags {
		n += len(t)
	}
	n += len(l.EmbeddingModel) + len(l.EmbeddedText) + len(l.ContentHash) + len(l.ContentModel)
	n += 4 * (cap(l.Embedding) + cap(l.Content) + cap(l.Audience.Vector))
	n += len(l.Viewers) * (16 + features.MapEntryBytes)
	n += l.Features.SizeBytes() - int(unsafe.Sizeof(l.Features))
	return n + appliedBytes(l.Applied)
}

// SizeBytes estimates the memory a decoded user holds (see
// Livestream.SizeBytes).
func (u *User) SizeBytes() int {
	n := int(unsafe.Sizeof(*u)) + len(u.UserID)
	n += 4 * cap(u.Taste.Vector)
	for c := range u.Categories {
		n += 16 + len(c) + int(unsafe.Sizeof(models.DecayedValue{})) + features.MapEntryBytes
	}
	n += cap(u.Recent) * int(unsafe.Sizeof(RecentStream{}))
	for _, r := range u.Recent {
		n += len(r.LivestreamID) + len(r.Kind)
	}
	for k := range u.Signals {
		n += 16 + len(k) + 8 + features.MapEntryBytes
	}
	n += u.Features.SizeBytes() - int(unsafe.Sizeof(u.Features))
	return n + appliedBytes(u.Applied)
}

// SizeBytes estimates the memory a decoded entity holds (see
// Livestream.SizeBytes).
func (e *Entity) SizeBytes() int {
	n := int(unsafe.Sizeof(*e)) + len(e.ID) + len(e.ContentModel) + len(e.EmbeddingModel)
	n += 4 * (cap(e.Content.Vector) + cap(e.Buyers.Vector) + cap(e.Embedding))
	n += e.Features.SizeBytes() - int(unsafe.Sizeof(e.Features))
	return n + appliedBytes(e.Applied)
}

func appliedBytes(m map[uint64]int64) int { return len(m) * (16 + features.MapEntryBytes) }

// InternKind is k, as the constant of its kind when it is one: a kind
// read from a record is a substring of the record, and a value that keeps
// it (User.Recent, User.Signals) would keep the whole record alive.
func InternKind(k events.SignalKind) events.SignalKind {
	for _, c := range [...]events.SignalKind{events.SignalWatch, events.SignalChat, events.SignalBid, events.SignalBuy} {
		if k == c {
			return c
		}
	}
	return k
}
