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
	n += features.MapBytes(len(l.Viewers), 16)
	n += l.Features.SizeBytes() - int(unsafe.Sizeof(l.Features))
	return n + appliedBytes(l.Applied)
}

// SizeBytes estimates the memory a decoded user holds (see
// Livestream.SizeBytes).
func (u *User) SizeBytes() int {
	n := int(unsafe.Sizeof(*u)) + len(u.UserID)
	n += 4 * cap(u.Taste.Vector)
	n += features.MapBytes(len(u.Categories), 16+int(unsafe.Sizeof(models.DecayedValue{})))
	for c := range u.Categories {
		n += len(c)
	}
	n += cap(u.Recent) * int(unsafe.Sizeof(RecentStream{}))
	for _, r := range u.Recent {
		n += len(r.LivestreamID) // the kinds are constants
	}
	n += features.MapBytes(len(u.Signals), 16+8) // the kinds are constants
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

func appliedBytes(m map[uint64]int64) int { return features.MapBytes(len(m), 16) }

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
