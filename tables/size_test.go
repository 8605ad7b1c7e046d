package tables

import (
	"testing"
	"time"
	"unsafe"

	"github.com/livefeed/livefeed/events"
)

// SizeBytes grows with what a value holds, and a decoded value estimates
// about what the value it was encoded from does.
func TestSizeBytesFollowsContent(t *testing.T) {
	var l Livestream
	empty := l.SizeBytes()
	for i := range 1000 {
		l.SeeViewer(uint64(i), int64(i))
	}
	l.Embedding = make(events.Vector, 64)
	if got := l.SizeBytes() - empty; got < 1000*16+64*4 {
		t.Fatalf("1000 viewers and a 64-d vector add %d bytes", got)
	}
	u := User{UserID: "u-1", Recent: make([]RecentStream, 0, MaxRecent)}
	small := u.SizeBytes() - MaxRecent*int(unsafe.Sizeof(RecentStream{}))
	for i := range MaxRecent {
		u.Recent = append(u.Recent, RecentStream{LivestreamID: "ls-" + string(rune('a'+i%26)), Kind: events.SignalWatch, Time: time.Unix(int64(i), 0)})
	}
	if got := u.SizeBytes() - small; got < MaxRecent*int(unsafe.Sizeof(RecentStream{})) {
		t.Fatalf("%d recent streams add %d bytes", MaxRecent, got)
	}
	b, err := UserCodec{}.Encode(&u)
	if err != nil {
		t.Fatal(err)
	}
	v, err := UserCodec{}.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if d := v.(*User).SizeBytes(); d < u.SizeBytes()*3/4 || d > u.SizeBytes()*4/3 {
		t.Fatalf("decoded %d bytes, encoded from %d", d, u.SizeBytes())
	}
}

func TestDecodedKindsAreTheConstants(t *testing.T) {
	u := User{UserID: "u", Recent: []RecentStream{{LivestreamID: "ls", Kind: events.SignalBuy, Time: time.Unix(1, 0)}},
		Signals: map[events.SignalKind]int64{events.SignalBuy: 1}}
	b, err := UserCodec{}.Encode(&u)
	if err != nil {
		t.Fatal(err)
	}
	v, err := UserCodec{}.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	d := v.(*User)
	if unsafe.StringData(string(d.Recent[0].Kind)) != unsafe.StringData(string(events.SignalBuy)) {
		t.Fatal("a decoded recent kind is a copy, not the constant")
	}
	for k := range d.Signals {
		if unsafe.StringData(string(k)) != unsafe.StringData(string(events.SignalBuy)) {
			t.Fatal("a decoded signal kind is a copy, not the constant")
		}
	}
	if InternKind("other") != "other" {
		t.Fatal("an unknown kind changed")
	}
}
