//go:build unix

package hnsw

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"syscall"
	"unsafe"
)

// floatFile keeps a quantized graph's float32 vectors, read only to rescore
// a search's best candidates, in a file instead of the heap: node·dim
// float32s, little-endian, in an unlinked temporary file (it disappears
// with the process, even after a crash). Writes go through pwrite, reads
// through a read-only shared mapping advised MADV_RANDOM (no read-ahead:
// a rescoring read touches the one or two pages of one vector). Writing
// with pwrite rather than through the mapping keeps a build's vectors out
// of the process's resident set: they sit in the page cache, which the
// kernel reclaims under pressure, and only the pages rescoring reads are
// mapped in.
type floatFile struct {
	f        *os.File
	rowBytes int
	size     int64  // bytes written
	rows     int    // whole rows written
	m        []byte // mapping; len ≥ rows·rowBytes, may run past the file's end
	cleanup  runtime.Cleanup
}

// mapping is what a cleanup needs to release a floatFile that was never
// closed.
type mapping struct {
	f *os.File
	m []byte
}

func (mp *mapping) release() {
	if mp.m != nil {
		syscall.Munmap(mp.m)
		mp.m = nil
	}
	if mp.f != nil {
		mp.f.Close()
		mp.f = nil
	}
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
	ff.arm()
	return ff, nil
}

// arm (re)registers the cleanup that releases the file and the current
// mapping should the graph be dropped without Close.
func (ff *floatFile) arm() {
	ff.cleanup.Stop()
	ff.cleanup = runtime.AddCleanup(ff, (*mapping).release, &mapping{f: ff.f, m: ff.m})
}

// row returns node's vector from the mapping (valid until the next
// append that remaps, i.e. the next mutation of the graph).
func (ff *floatFile) row(node uint32) []float32 {
	off := int(node) * ff.rowBytes
	return unsafe.Slice((*float32)(unsafe.Pointer(&ff.m[off])), ff.rowBytes/4)
}

func asBytes(v []float32) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))
}

// set overwrites an existing row.
func (ff *floatFile) set(node uint32, v []float32) error {
	if _, err := ff.f.WriteAt(asBytes(v), int64(node)*int64(ff.rowBytes)); err != nil {
		return fmt.Errorf("hnsw: writing a float32 vector: %w", err)
	}
	return nil
}

// appendRows writes b after what was written (rows, or while restoring
// a snapshot any run of bytes) and maps the whole rows.
func (ff *floatFile) appendRows(b []byte) error {
	if _, err := ff.f.WriteAt(b, ff.size); err != nil {
		return fmt.Errorf("hnsw: writing float32 vectors: %w", err)
	}
	ff.size += int64(len(b))
	ff.rows = int(ff.size / int64(ff.rowBytes))
	return ff.ensureMapped()
}

// ensureMapped grows the mapping to cover every written row: doubled
// (a mapping costs address space only). The graph's writer holds its
// readers off, so the old mapping can go at once.
func (ff *floatFile) ensureMapped() error {
	need := ff.rows * ff.rowBytes
	if need <= len(ff.m) {
		return nil
	}
	size := max(2*len(ff.m), need)
	page := os.Getpagesize()
	size = (size + page - 1) / page * page
	m, err := syscall.Mmap(int(ff.f.Fd()), 0, size, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("hnsw: mapping the float32 vector file: %w", err)
	}
	if err := syscall.Madvise(m, syscall.MADV_RANDOM); err != nil {
		syscall.Munmap(m)
		return fmt.Errorf("hnsw: advising the float32 vector mapping: %w", err)
	}
	if ff.m != nil {
		syscall.Munmap(ff.m)
	}
	ff.m = m
	ff.arm()
	return nil
}

// writeTo copies rows [0, n) to w with pread (not through the mapping, so
// a snapshot does not map in every page).
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

// evict drops the file's pages from this process's mapping (the next read
// of each is a minor fault) and, with pageCache, from the page cache too,
// written back first (the next read of each goes to the disk): for
// measuring a rescoring read's cost.
func (ff *floatFile) evict(pageCache bool) error {
	var errs []error
	if len(ff.m) > 0 {
		errs = append(errs, syscall.Madvise(ff.m, syscall.MADV_DONTNEED))
	}
	if pageCache {
		if err := ff.f.Sync(); err != nil {
			return err
		}
		errs = append(errs, fadviseDontNeed(ff.f))
	}
	return errors.Join(errs...)
}

// close unmaps and closes the file (which, unlinked, is then freed).
func (ff *floatFile) close() error {
	ff.cleanup.Stop()
	var err error
	if ff.m != nil {
		err = syscall.Munmap(ff.m)
		ff.m = nil
	}
	return errors.Join(err, ff.f.Close())
}

// bytes is the file's size.
func (ff *floatFile) bytes() int { return ff.rows * ff.rowBytes }
