//go:build unix

package hnsw

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"unsafe"
)

// floatFile keeps a quantized graph's float32 vectors, read only to rescore
// a search's best candidates, in a file instead of the heap: node·dim
// float32s, little-endian, in an unlinked temporary file (it disappears
// with the process, even after a crash). Writes go through pwrite, reads
// through pread into the caller's buffer (one 1,536-byte read per
// rescored candidate at 384 dimensions): the vectors sit in the page cache
// (the kernel's, dropped under memory pressure, read back from the disk
// when needed), never in the process's resident set. A read-only mapping
// was measured first and dropped: each page fault maps the cached pages
// around it too (the kernel's fault-around, which MADV_RANDOM does not
// turn off), so the queries of a 1M × 384 benchmark mapped 1.4 GB of the
// 1.5 GB file into the resident set.
type floatFile struct {
	f        *os.File
	rowBytes int
	size     int64 // bytes written
	rows     int   // whole rows written
	cleanup  runtime.Cleanup
}

// openFloatFile creates the file in dir for vectors of dimension dim.
func openFloatFile(dir string, dim int) (*floatFile, error) {
	f, err := os.CreateTemp(dir, "hnsw-floats-*.f32")
	if err != nil {
		return nil, fmt.Errorf("hnsw: creating the float32 vector file: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("hnsw: unlinking the float32 vector file: %w", err)
	}
	ff := &floatFile{f: f, rowBytes: 4 * dim}
	// Closed with the graph (Close), or when a graph dropped without it
	// is collected.
	ff.cleanup = runtime.AddCleanup(ff, func(f *os.File) { f.Close() }, f)
	return ff, nil
}

func asBytes(v []float32) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))
}

// read reads node's vector into dst (len dim).
func (ff *floatFile) read(node uint32, dst []float32) error {
	_, err := ff.f.ReadAt(asBytes(dst), int64(node)*int64(ff.rowBytes))
	return err
}

// set overwrites an existing row.
func (ff *floatFile) set(node uint32, v []float32) error {
	if _, err := ff.f.WriteAt(asBytes(v), int64(node)*int64(ff.rowBytes)); err != nil {
		return fmt.Errorf("hnsw: writing a float32 vector: %w", err)
	}
	return nil
}

// appendRows writes b after what was written (rows, or while restoring a
// snapshot any run of bytes).
func (ff *floatFile) appendRows(b []byte) error {
	if _, err := ff.f.WriteAt(b, ff.size); err != nil {
		return fmt.Errorf("hnsw: writing float32 vectors: %w", err)
	}
	ff.size += int64(len(b))
	ff.rows = int(ff.size / int64(ff.rowBytes))
	return nil
}

// writeTo copies rows [0, n) to w.
func (ff *floatFile) writeTo(w io.Writer, n int) error {
	buf := make([]byte, 0, 4<<20)
	for off, end := int64(0), int64(n)*int64(ff.rowBytes); off < end; {
		b := buf[:min(int64(cap(buf)), end-off)]
		if _, err := ff.f.ReadAt(b, off); err != nil {
			return fmt.Errorf("hnsw: reading float32 vectors: %w", err)
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		off += int64(len(b))
	}
	return nil
}

// evict drops the file's pages from the page cache (written back first),
// so that the next reads go to the disk: for measuring a rescoring read's
// cost.
func (ff *floatFile) evict() error {
	if err := ff.f.Sync(); err != nil {
		return err
	}
	return fadviseDontNeed(ff.f)
}

// close closes the file (which, unlinked, is then freed).
func (ff *floatFile) close() error {
	ff.cleanup.Stop()
	return errors.Join(ff.f.Close())
}

// bytes is the file's size.
func (ff *floatFile) bytes() int { return ff.rows * ff.rowBytes }
