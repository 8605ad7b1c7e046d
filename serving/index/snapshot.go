package index

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/serving/index/hnsw"
	"github.com/livefeed/livefeed/serving/index/internal/binio"
)

// Snapshot format: a header (magic, version, options that shape the
// graphs, partitions, creation time) as one checksummed section, then one
// section per partition: the table offset it reflects, its items and row
// tables; then one section with the graphs (vectors or codes, links,
// tombstones, level generator state, each node's partition and row); each
// section closed by its CRC-32C; a trailer magic. Attribute bitmaps are
// rebuilt from the items on restore (a second or so at 1M); graphs are
// restored as they were, never rebuilt.
//
// Version 3 adds the sub-graphs (Options.SubGraphs): their attributes in
// the header, and after each graph its sub-graphs (attribute, then per
// value the value and the sub-graph: links and base nodes, no vectors).
// Version 2 (no sub-graphs) still loads, as an index without them. Version
// 1 had one graph set per partition: such a snapshot is refused with an
// error, and serving rebuilds the index from the view.
const (
	snapshotMagic   = "LFIXSNAP"
	snapshotTrailer = "LFIXEND\n"
	// SnapshotVersion is the format this build writes and reads.
	SnapshotVersion = 3
)

// ErrSnapshotMismatch: the snapshot's graphs were built with options the
// loader was not asked for (M, efConstruction, quantization): the caller
// should rebuild instead.
var ErrSnapshotMismatch = errors.New("index snapshot built with other options")

// SnapshotInfo describes a snapshot.
type SnapshotInfo struct {
	Version int
	Created time.Time
	// Offsets holds, per partition, the table offset the partition's
	// shard reflects (set by MarkOffset: the offset of the last message
	// applied); −1 where none was marked.
	Offsets []int64
	Items   int
	Bytes   int64
}

// MarkOffset records that partition's shard reflects its table up to and
// including offset (call it after applying that message). Snapshots
// carry the marks so that a restored replica knows where to resume.
func (ix *Index) MarkOffset(partition int32, offset int64) {
	ix.mu.Lock()
	ix.shard(partition).offset = offset
	ix.mu.Unlock()
}

// Offsets returns each partition's marked offset (−1: none).
func (ix *Index) Offsets() []int64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	out := make([]int64, len(ix.shards))
	for i, s := range ix.shards {
		out[i] = s.offset
	}
	return out
}

// WriteSnapshot writes the index to w under the index's read lock: queries
// go on, writers wait for the whole snapshot (the graphs span every
// partition), so every section is consistent with its marked offset.
func (ix *Index) WriteSnapshot(w io.Writer) (SnapshotInfo, error) {
	return ix.writeSnapshot(w, SnapshotVersion)
}

// writeSnapshot writes format version (SnapshotVersion, or 2 for an index
// without sub-graphs: tests of loading older snapshots).
func (ix *Index) writeSnapshot(w io.Writer, version int) (SnapshotInfo, error) {
	if version == 2 && len(ix.opts.SubGraphs) > 0 {
		return SnapshotInfo{}, errors.New("index snapshot: version 2 has no sub-graphs")
	}
	if !binio.LittleEndian() {
		return SnapshotInfo{}, binio.ErrBigEndian
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	shards := ix.shards
	info := SnapshotInfo{Version: version, Created: time.Now().UTC(), Offsets: make([]int64, len(shards))}
	bw := binio.NewWriter(w)
	bw.Bytes([]byte(snapshotMagic))
	bw.Uvarint(uint64(version))
	o := ix.opts
	bw.Uvarint(uint64(o.M))
	bw.Uvarint(uint64(o.EfConstruction))
	bw.Uvarint(uint64(b2u(o.Quantize) | b2u(o.DropFloats)<<1))
	bw.Uvarint(o.Seed)
	bw.Varint(info.Created.UnixNano())
	bw.Uvarint(uint64(len(shards)))
	if version >= 3 {
		bw.Uvarint(uint64(len(o.SubGraphs)))
		for _, a := range o.SubGraphs {
			bw.String(a)
		}
	}
	bw.EndSection()
	for i, s := range shards {
		info.Offsets[i] = s.offset
		info.Items += len(s.rowOf)
		if err := s.writeTo(bw); err != nil {
			return info, fmt.Errorf("index snapshot: partition %d: %w", i, err)
		}
		bw.EndSection()
	}
	bw.Uvarint(uint64(len(ix.graphs)))
	for _, vg := range ix.graphs {
		vg.g.WriteTo(bw)
		parts := make([]uint32, len(vg.refs))
		rows := make([]uint32, len(vg.refs))
		for i, r := range vg.refs {
			parts[i], rows[i] = r.part, r.row
		}
		binio.Slice(bw, parts)
		binio.Slice(bw, rows)
		for _, sg := range vg.subs {
			bw.Uvarint(uint64(len(sg.graphs)))
			for i, g := range sg.graphs {
				bw.String(sg.vals[i])
				g.WriteTo(bw)
			}
		}
	}
	if err := bw.Err(); err != nil {
		return info, fmt.Errorf("index snapshot: graphs: %w", err)
	}
	bw.EndSection()
	bw.Bytes([]byte(snapshotTrailer))
	err := bw.Flush()
	info.Bytes = bw.Written()
	if err != nil {
		return info, fmt.Errorf("index snapshot: %w", err)
	}
	return info, nil
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

func (s *shard) writeTo(w *binio.Writer) error {
	w.Varint(s.offset)
	w.Uvarint(uint64(len(s.items)))
	var fb []byte
	for _, it := range s.items {
		if it == nil {
			w.Uvarint(0)
			continue
		}
		w.Uvarint(1)
		for _, str := range []string{it.ID, it.SellerID, it.Title, it.Category, it.Language, string(it.Status)} {
			w.String(str)
		}
		if it.LiveSince.IsZero() {
			w.Uvarint(0)
		} else {
			w.Uvarint(1)
			w.Varint(it.LiveSince.UnixNano())
		}
		w.Varint(int64(it.ViewersNow))
		var err error
		if fb, err = it.Features.AppendBinary(fb[:0]); err != nil {
			return fmt.Errorf("features of %s: %w", it.ID, err)
		}
		w.Blob(fb)
	}
	binio.Slice(w, s.free)
	binio.Slice(w, s.rowG)
	binio.Slice(w, s.rowNode)
	return w.Err()
}

// ReadSnapshot restores an index written by WriteSnapshot. opts must shape
// the graphs as the snapshot's were (M, efConstruction, Quantize,
// DropFloats; else ErrSnapshotMismatch); the search-time options
// (efSearch, thresholds) are opts'. A corrupt or truncated snapshot is an
// error.
func ReadSnapshot(r io.Reader, feats *features.Set, opts Options) (*Index, SnapshotInfo, error) {
	return readSnapshot(r, -1, feats, opts)
}

// readSnapshot reads a snapshot of size bytes (−1: unknown).
func readSnapshot(r io.Reader, size int64, feats *features.Set, opts Options) (*Index, SnapshotInfo, error) {
	var info SnapshotInfo
	if !binio.LittleEndian() {
		return nil, info, binio.ErrBigEndian
	}
	br := binio.NewReader(r)
	br.SetSize(size)
	magic := make([]byte, len(snapshotMagic))
	br.Bytes(magic)
	if err := br.Err(); err != nil {
		return nil, info, fmt.Errorf("index snapshot: %w", err)
	}
	if string(magic) != snapshotMagic {
		return nil, info, errors.New("index snapshot: not a snapshot (bad magic)")
	}
	info.Version = int(br.Uvarint())
	if br.Err() == nil && info.Version != SnapshotVersion && info.Version != 2 {
		return nil, info, fmt.Errorf("index snapshot: version %d, this build reads 2 and %d", info.Version, SnapshotVersion)
	}
	ix := NewWithOptions(0, feats, opts)
	o := ix.opts
	m, efc, flags, seed := br.Uvarint(), br.Uvarint(), br.Uvarint(), br.Uvarint()
	info.Created = time.Unix(0, br.Varint()).UTC()
	parts := br.Len()
	var subs []string
	if info.Version >= 3 {
		n := br.Len()
		for i := 0; i < n && i < 8 && br.Err() == nil; i++ {
			subs = append(subs, br.String())
		}
	}
	br.EndSection("header")
	if err := br.Err(); err != nil {
		return nil, info, fmt.Errorf("index snapshot: header: %w", err)
	}
	if m != uint64(o.M) || efc != uint64(o.EfConstruction) || flags != uint64(b2u(o.Quantize)|b2u(o.DropFloats)<<1) {
		return nil, info, fmt.Errorf("%w: M %d efConstruction %d quantization flags %d; asked for M %d efConstruction %d quantize %v drop floats %v",
			ErrSnapshotMismatch, m, efc, flags, o.M, o.EfConstruction, o.Quantize, o.DropFloats)
	}
	if !slices.Equal(subs, o.SubGraphs) {
		return nil, info, fmt.Errorf("%w: sub-graphs %q; asked for %q", ErrSnapshotMismatch, subs, o.SubGraphs)
	}
	_ = seed // graphs restore their level generators; Seed only seeds new graphs
	if parts > 1<<16 {
		return nil, info, fmt.Errorf("index snapshot: %d partitions", parts)
	}
	ix.grow(parts)
	info.Offsets = make([]int64, parts)
	for i, s := range ix.shards {
		if err := s.readFrom(br); err != nil {
			return nil, info, fmt.Errorf("index snapshot: partition %d: %w", i, err)
		}
		br.EndSection(fmt.Sprintf("partition %d", i))
		if err := br.Err(); err != nil {
			return nil, info, fmt.Errorf("index snapshot: partition %d: %w", i, err)
		}
		info.Offsets[i] = s.offset
		info.Items += len(s.rowOf)
	}
	if err := ix.readGraphs(br); err != nil {
		return nil, info, fmt.Errorf("index snapshot: graphs: %w", err)
	}
	br.EndSection("graphs")
	if err := br.Err(); err != nil {
		return nil, info, fmt.Errorf("index snapshot: graphs: %w", err)
	}
	for i, s := range ix.shards {
		if err := ix.restoreRows(s, uint32(i)); err != nil {
			return nil, info, fmt.Errorf("index snapshot: partition %d: %w", i, err)
		}
	}
	trailer := make([]byte, len(snapshotTrailer))
	br.Bytes(trailer)
	if err := br.Err(); err != nil || string(trailer) != snapshotTrailer {
		return nil, info, fmt.Errorf("index snapshot: bad trailer (truncated?): %v", err)
	}
	return ix, info, nil
}

func (s *shard) readFrom(r *binio.Reader) error {
	s.offset = r.Varint()
	rows := r.Len()
	if err := r.Err(); err != nil {
		return err
	}
	if rows > 1<<31 {
		return fmt.Errorf("%d rows", rows)
	}
	// rows is not trusted before the checksum: grow as items arrive.
	s.items = make([]*Item, 0, min(rows, 1<<16))
	intern := map[string]string{}
	in := func(x string) string {
		if v, ok := intern[x]; ok {
			return v
		}
		if len(intern) < 1<<16 {
			intern[x] = x
		}
		return x
	}
	var fb []byte
	for row := range rows {
		s.items = append(s.items, nil)
		presence := r.Uvarint()
		if err := r.Err(); err != nil {
			return err
		}
		switch presence {
		case 0:
			continue
		case 1:
		default:
			return fmt.Errorf("row %d: bad presence byte", row)
		}
		it := &Item{ID: r.String(), SellerID: in(r.String()), Title: r.String(), Category: in(r.String()),
			Language: in(r.String()), Status: events.Status(in(r.String()))}
		if r.Uvarint() == 1 {
			it.LiveSince = time.Unix(0, r.Varint()).UTC()
		}
		it.ViewersNow = int(r.Varint())
		fb = r.Blob()
		if err := r.Err(); err != nil {
			return err
		}
		if err := it.Features.UnmarshalBinary(fb); err != nil {
			return fmt.Errorf("row %d (%s): %w", row, it.ID, err)
		}
		if _, dup := s.rowOf[it.ID]; dup {
			return fmt.Errorf("row %d: duplicate id %q", row, it.ID)
		}
		it.engagement = new(atomic.Pointer[scoreAt])
		s.items[row] = it
		s.rowOf[it.ID] = uint32(row)
	}
	s.free = binio.ReadSlice[uint32](r)
	s.rowG = binio.ReadSlice[uint8](r)
	s.rowNode = binio.ReadSlice[uint32](r)
	if err := r.Err(); err != nil {
		return err
	}
	if len(s.rowG) != rows || len(s.rowNode) != rows {
		return fmt.Errorf("row tables of %d and %d rows for %d items", len(s.rowG), len(s.rowNode), rows)
	}
	return nil
}

// readGraphs reads the graphs section.
func (ix *Index) readGraphs(r *binio.Reader) error {
	ng := r.Len()
	if err := r.Err(); err != nil {
		return err
	}
	if ng > 255 {
		return fmt.Errorf("%d graphs", ng)
	}
	for range ng {
		g, err := hnsw.ReadGraphWith(r, hnsw.ReadOptions{FloatsDir: ix.opts.FloatsDir})
		if err != nil {
			return err
		}
		parts := binio.ReadSlice[uint32](r)
		rows := binio.ReadSlice[uint32](r)
		if err := r.Err(); err != nil {
			return err
		}
		if len(parts) != len(rows) || len(rows) < g.Nodes() {
			return fmt.Errorf("graph of %d nodes with %d partition and %d row numbers", g.Nodes(), len(parts), len(rows))
		}
		refs := make([]rowRef, len(rows))
		for i := range refs {
			refs[i] = rowRef{part: parts[i], row: rows[i]}
		}
		vg := &vgraph{g: g, refs: refs, subs: ix.newSubs(g)}
		ix.graphs = append(ix.graphs, vg)
		for _, sg := range vg.subs {
			nv := r.Len()
			if err := r.Err(); err != nil {
				return err
			}
			if nv > 1<<16-1 {
				return fmt.Errorf("%d %s sub-graphs", nv, sg.attr)
			}
			for range nv {
				v := r.String()
				sub, err := hnsw.ReadGraphWith(r, hnsw.ReadOptions{Base: g})
				if err != nil {
					return fmt.Errorf("%s sub-graph %q: %w", sg.attr, v, err)
				}
				if _, dup := sg.byVal[v]; dup {
					return fmt.Errorf("%s sub-graph %q twice", sg.attr, v)
				}
				sg.byVal[v] = len(sg.graphs)
				sg.vals = append(sg.vals, v)
				sg.graphs = append(sg.graphs, sub)
			}
			if err := sg.restore(); err != nil {
				return err
			}
		}
	}
	return nil
}

// restoreRows cross-checks partition's row tables against the graphs and
// rebuilds its live set and attribute index in row order.
func (ix *Index) restoreRows(s *shard, partition uint32) error {
	rs := make([]uint32, 0, len(s.items))
	for row, it := range s.items {
		if it == nil {
			continue
		}
		rs = append(rs, uint32(row))
		if gi := s.rowG[row]; gi != 0 {
			if int(gi) > len(ix.graphs) {
				return fmt.Errorf("row %d in graph %d of %d", row, gi, len(ix.graphs))
			}
			vg := ix.graphs[gi-1]
			node := s.rowNode[row]
			if int(node) >= vg.g.Nodes() || vg.g.Deleted(node) || vg.refs[node] != (rowRef{part: partition, row: uint32(row)}) {
				return fmt.Errorf("row %d and node %d of graph %d disagree", row, node, gi)
			}
		}
		s.status.Set(uint32(row), string(it.Status))
		s.category.Set(uint32(row), it.Category)
		s.language.Set(uint32(row), it.Language)
		s.seller.Set(uint32(row), it.SellerID)
		s.viewers.Set(uint32(row), int64(it.ViewersNow))
	}
	for _, f := range s.free {
		if int(f) >= len(s.items) || s.items[f] != nil {
			return fmt.Errorf("free row %d is in use", f)
		}
	}
	s.live = roaring.BitmapOf(rs...)
	return nil
}

// SaveSnapshot writes the index to path atomically (a temporary file in
// the same directory, synced, then renamed over path).
func (ix *Index) SaveSnapshot(path string) (SnapshotInfo, error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("index snapshot: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename: a no-op error, ignored
	info, err := ix.WriteSnapshot(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		if d, derr := os.Open(dir); derr == nil {
			err = d.Sync()
			d.Close()
		}
	}
	if err != nil {
		return info, fmt.Errorf("index snapshot %s: %w", path, err)
	}
	return info, nil
}

// LoadSnapshot restores an index from a file written by SaveSnapshot.
func LoadSnapshot(path string, feats *features.Set, opts Options) (*Index, SnapshotInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, SnapshotInfo{}, fmt.Errorf("index snapshot: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, SnapshotInfo{}, fmt.Errorf("index snapshot: %w", err)
	}
	ix, info, err := readSnapshot(f, st.Size(), feats, opts)
	if err != nil {
		return nil, info, fmt.Errorf("%s: %w", path, err)
	}
	info.Bytes = st.Size()
	return ix, info, nil
}
