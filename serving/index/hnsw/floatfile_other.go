//go:build !unix

package hnsw

import (
	"errors"
	"io"
)

// floatFile: float32 vectors on disk are implemented for unix builds.
type floatFile struct{}

func openFloatFile(string, int) (*floatFile, error) {
	return nil, errors.New("hnsw: float32 vectors on disk need a unix build")
}

func (*floatFile) read(uint32, []float32) error { return nil }
func (*floatFile) set(uint32, []float32) error  { return nil }
func (*floatFile) appendRows([]byte) error      { return nil }
func (*floatFile) writeTo(io.Writer, int) error { return nil }
func (*floatFile) evict() error                 { return nil }
func (*floatFile) close() error                 { return nil }
func (*floatFile) bytes() int                   { return 0 }
func asBytes([]float32) []byte                  { return nil }
