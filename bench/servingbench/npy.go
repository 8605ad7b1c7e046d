package servingbench

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// writeNPY writes a little-endian .npy file (format 1.0) of the given dtype
// ("<f4", "|u1") and shape from raw little-endian bytes produced by fill.
func writeNPY(path, dtype string, shape []int, fill func(w io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = strconv.Itoa(d)
	}
	sh := strings.Join(dims, ", ")
	if len(shape) == 1 {
		sh += ","
	}
	header := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", dtype, sh)
	pad := 64 - (10+len(header)+1)%64
	header += strings.Repeat(" ", pad%64) + "\n"
	_, _ = w.WriteString("\x93NUMPY\x01\x00")
	_ = binary.Write(w, binary.LittleEndian, uint16(len(header)))
	_, _ = w.WriteString(header)
	err = fill(w)
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func writeFloat32NPY(path string, data []float32, rows, cols int) error {
	return writeNPY(path, "<f4", []int{rows, cols}, func(w io.Writer) error {
		buf := make([]byte, 4*4096)
		for i := 0; i < len(data); i += 4096 {
			chunk := data[i:min(len(data), i+4096)]
			for j, x := range chunk {
				binary.LittleEndian.PutUint32(buf[4*j:], math.Float32bits(x))
			}
			if _, err := w.Write(buf[:4*len(chunk)]); err != nil {
				return err
			}
		}
		return nil
	})
}

func writeMaskNPY(path string, mask []bool) error {
	return writeNPY(path, "|u1", []int{len(mask)}, func(w io.Writer) error {
		buf := make([]byte, len(mask))
		for i, m := range mask {
			if m {
				buf[i] = 1
			}
		}
		_, err := w.Write(buf)
		return err
	})
}

// readInt64NPY reads a 2-d little-endian int64 .npy file.
func readInt64NPY(path string) (data []int64, rows, cols int, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, 0, err
	}
	if len(b) < 10 || string(b[:6]) != "\x93NUMPY" {
		return nil, 0, 0, fmt.Errorf("%s: not a .npy file", path)
	}
	var hl, off int
	switch b[6] {
	case 1:
		hl, off = int(binary.LittleEndian.Uint16(b[8:])), 10
	default:
		hl, off = int(binary.LittleEndian.Uint32(b[8:])), 12
	}
	header := string(b[off : off+hl])
	if !strings.Contains(header, "'<i8'") || strings.Contains(header, "'fortran_order': True") {
		return nil, 0, 0, fmt.Errorf("%s: want C-order <i8, header %s", path, header)
	}
	i, j := strings.Index(header, "("), strings.Index(header, ")")
	parts := strings.Split(header[i+1:j], ",")
	if len(parts) < 2 {
		return nil, 0, 0, fmt.Errorf("%s: want 2 dimensions, header %s", path, header)
	}
	rows, _ = strconv.Atoi(strings.TrimSpace(parts[0]))
	cols, _ = strconv.Atoi(strings.TrimSpace(parts[1]))
	body := b[off+hl:]
	if len(body) != 8*rows*cols {
		return nil, 0, 0, fmt.Errorf("%s: %d bytes for %d×%d", path, len(body), rows, cols)
	}
	data = make([]int64, rows*cols)
	for k := range data {
		data[k] = int64(binary.LittleEndian.Uint64(body[8*k:]))
	}
	return data, rows, cols, nil
}
