package index

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sameResults runs queries × filters on both indexes and requires equal
// hits rank for rank (ids and scores) and equal plans.
func sameResults(t *testing.T, a, b *Index, queries []*Item, filters []*Filter) {
	t.Helper()
	for qi, q := range queries {
		for fi, f := range filters {
			ha, sa := a.Search(q.Vector, 10, f, now)
			hb, sb := b.Search(q.Vector, 10, f, now)
			if len(ha) != len(hb) || sa.Plan != sb.Plan || sa.Scanned != sb.Scanned {
				t.Fatalf("query %d filter %d: %d hits plan %s scanned %d, restored %d hits plan %s scanned %d",
					qi, fi, len(ha), sa.Plan, sa.Scanned, len(hb), sb.Plan, sb.Scanned)
			}
			for j := range ha {
				if ha[j].Item.ID != hb[j].Item.ID || ha[j].Score != hb[j].Score {
					t.Fatalf("query %d filter %d rank %d: %s %v, restored %s %v", qi, fi, j,
						ha[j].Item.ID, ha[j].Score, hb[j].Item.ID, hb[j].Score)
				}
			}
		}
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	items := clusteredItems(4000, 48, 5)
	for i, it := range items {
		if i%3 == 0 {
			it.LiveSince = now.Add(-time.Duration(i) * time.Second)
			it.Title = fmt.Sprintf("stream %d", i)
		}
	}
	queries := clusteredItems(20, 48, 6)
	filters := []*Filter{
		{},
		{Languages: []string{"es"}},
		{Categories: []string{"cat-7"}},
		{Ranges: []Range{{Field: AttrViewersNow, Min: f64(990)}}},
		{Languages: []string{"en"}, Categories: []string{"cat-3"}, ExcludeSellers: []string{"s-001"}},
	}
	for _, opts := range []Options{
		{ExactThreshold: 100},
		{ExactThreshold: 100, Quantize: true},
		{ExactThreshold: 100, Quantize: true, DropFloats: true},
		{ExactThreshold: 100, Quantize: true, FloatsDir: "(temp)"},
	} {
		t.Run(fmt.Sprintf("quantize=%v,drop=%v,disk=%v", opts.Quantize, opts.DropFloats, opts.FloatsDir != ""), func(t *testing.T) {
			if opts.FloatsDir != "" {
				opts.FloatsDir = t.TempDir()
			}
			ix := build(t, items, 4, opts)
			// Tombstones, a moved vector and free rows must survive too.
			for i := 0; i < len(items); i += 7 {
				ix.Delete(int32(i%4), items[i].ID)
			}
			moved := *items[1]
			moved.Vector = items[2].Vector
			ix.Upsert(1, &moved)
			for p := range int32(4) {
				ix.MarkOffset(p, int64(1000+p))
			}
			path := filepath.Join(t.TempDir(), "index.snap")
			winfo, err := ix.SaveSnapshot(path)
			if err != nil {
				t.Fatal(err)
			}
			rx, info, err := LoadSnapshot(path, ix.feats, opts)
			if err != nil {
				t.Fatal(err)
			}
			if info.Items != ix.Len() || winfo.Items != ix.Len() || rx.Len() != ix.Len() || info.Bytes != winfo.Bytes {
				t.Fatalf("items %d/%d/%d of %d, bytes %d/%d", info.Items, winfo.Items, rx.Len(), ix.Len(), info.Bytes, winfo.Bytes)
			}
			for p, off := range info.Offsets {
				if off != int64(1000+p) || rx.Offsets()[p] != off {
					t.Fatalf("partition %d: offset %d", p, off)
				}
			}
			if a, b := ix.MemoryBytes(), rx.MemoryBytes(); b > a+a/4 {
				t.Errorf("restored index uses %d bytes, original %d", b, a)
			}
			sameResults(t, ix, rx, queries, filters)
			if opts.Quantize && !opts.DropFloats {
				// Where the floats are kept is not in the snapshot: a
				// snapshot loads with them in the heap or on disk.
				other := opts
				other.FloatsDir = map[bool]string{true: "", false: t.TempDir()}[opts.FloatsDir != ""]
				ox, _, err := LoadSnapshot(path, ix.feats, other)
				if err != nil {
					t.Fatal(err)
				}
				sameResults(t, ix, ox, queries, filters)
				if err := ox.Close(); err != nil {
					t.Fatal(err)
				}
			}
			for i := 3; i < 60; i += 7 {
				r, ok := rx.shards[i%4].rowOf[items[i].ID]
				it := rx.shards[i%4].items[r]
				if !ok || it.Title != items[i].Title || !it.LiveSince.Equal(items[i].LiveSince) || it.ViewersNow != items[i].ViewersNow || it.SellerID != items[i].SellerID {
					t.Fatalf("item %d restored as %+v", i, it)
				}
			}
			// Writes after the restore behave as on the original: same
			// slot reuse, same level draws, same links.
			for _, x := range []*Index{ix, rx} {
				for i := 0; i < len(items); i += 7 {
					x.Upsert(int32(i%4), items[(i+5)%len(items)].withID(items[i].ID))
				}
				x.Delete(0, items[4].ID)
			}
			sameResults(t, ix, rx, queries, filters)
		})
	}
}

func (it *Item) withID(id string) *Item {
	cp := *it
	cp.ID = id
	return &cp
}

func TestSnapshotRejectsCorruptionAndMismatch(t *testing.T) {
	items := clusteredItems(800, 32, 7)
	ix := build(t, items, 2, Options{Quantize: true})
	var buf bytes.Buffer
	if _, err := ix.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	if _, _, err := ReadSnapshot(bytes.NewReader(good), ix.feats, Options{Quantize: true}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadSnapshot(bytes.NewReader(good), ix.feats, Options{}); !errors.Is(err, ErrSnapshotMismatch) {
		t.Fatalf("float index from a quantized snapshot: %v", err)
	}
	// A version-1 snapshot (graphs per partition) is refused: the caller
	// rebuilds from the view.
	if good[len(snapshotMagic)] != SnapshotVersion {
		t.Fatalf("version byte %d", good[len(snapshotMagic)])
	}
	v1 := bytes.Clone(good)
	v1[len(snapshotMagic)] = 1
	if _, _, err := ReadSnapshot(bytes.NewReader(v1), ix.feats, Options{Quantize: true}); err == nil || !strings.Contains(err.Error(), "version 1") {
		t.Fatalf("version-1 snapshot: %v", err)
	}
	// Flip one byte at many places, truncate at many lengths: always an
	// error, never a panic or a silently different index.
	for _, at := range []int{3, 9, 20, 40, 100, len(good) / 3, len(good) / 2, len(good) - 20, len(good) - 3} {
		bad := bytes.Clone(good)
		bad[at] ^= 0x5a
		if _, _, err := ReadSnapshot(bytes.NewReader(bad), ix.feats, Options{Quantize: true}); err == nil {
			t.Errorf("byte %d of %d flipped: no error", at, len(good))
		}
	}
	for _, n := range []int{0, 5, 8, 30, len(good) / 2, len(good) - 1} {
		if _, _, err := ReadSnapshot(bytes.NewReader(good[:n]), ix.feats, Options{Quantize: true}); err == nil {
			t.Errorf("truncated to %d of %d: no error", n, len(good))
		}
	}
}

// TestSnapshotHugeLengthsFailCheaply: 5 bytes at each of the first 120
// positions overwritten with the varint 2^31−1 (a length, a row count, a
// dimension... depending on where it lands), read from a reader of
// unknown size: always an error, never a panic or gigabytes allocated.
func TestSnapshotHugeLengthsFailCheaply(t *testing.T) {
	items := clusteredItems(50, 16, 8)
	ix := build(t, items, 1, Options{})
	var buf bytes.Buffer
	if _, err := ix.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	for at := len(snapshotMagic); at < min(len(good)-5, 120); at++ {
		bad := append(bytes.Clone(good[:at]), 0xff, 0xff, 0xff, 0xff, 0x07)
		bad = append(bad, good[at+5:]...)
		if _, _, err := ReadSnapshot(bytes.NewReader(bad), ix.feats, Options{}); err == nil {
			t.Fatalf("huge varint at byte %d: no error", at)
		}
	}
}
