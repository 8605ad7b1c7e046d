package bertonnx

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
)

// Safetensors is a parsed .safetensors file: an 8-byte little-endian header
// length, a JSON header mapping tensor names to dtype, shape and byte range,
// then the tensors' bytes.
type Safetensors struct {
	data    []byte // everything after the header
	tensors map[string]safetensor
}

type safetensor struct {
	DType   string  `json:"dtype"`
	Shape   []int64 `json:"shape"`
	Offsets [2]int  `json:"data_offsets"`
}

// maxSafetensorsHeader bounds the JSON header (the format's own limit is
// 100 MB; BERT checkpoints have ~10 KB).
const maxSafetensorsHeader = 100 << 20

// ReadSafetensors reads and checks a whole .safetensors file.
func ReadSafetensors(path string) (*Safetensors, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	st, err := ParseSafetensors(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return st, nil
}

// ParseSafetensors parses the bytes of a .safetensors file; the result keeps
// a reference to raw.
func ParseSafetensors(raw []byte) (*Safetensors, error) {
	if len(raw) < 8 {
		return nil, fmt.Errorf("safetensors: %d bytes, too short", len(raw))
	}
	n := binary.LittleEndian.Uint64(raw)
	if n > maxSafetensorsHeader || n > uint64(len(raw)-8) {
		return nil, fmt.Errorf("safetensors: header length %d does not fit in %d bytes", n, len(raw))
	}
	var header map[string]json.RawMessage
	if err := json.Unmarshal(raw[8:8+n], &header); err != nil {
		return nil, fmt.Errorf("safetensors: header: %w", err)
	}
	st := &Safetensors{data: raw[8+n:], tensors: make(map[string]safetensor, len(header))}
	for name, msg := range header {
		if name == "__metadata__" {
			continue
		}
		var t safetensor
		if err := json.Unmarshal(msg, &t); err != nil {
			return nil, fmt.Errorf("safetensors: tensor %s: %w", name, err)
		}
		size, ok := dtypeSize[t.DType]
		if !ok {
			size = 0 // unknown dtypes are listed but cannot be read
		}
		count := 1
		for _, d := range t.Shape {
			if d < 0 {
				return nil, fmt.Errorf("safetensors: tensor %s: negative dimension in %v", name, t.Shape)
			}
			count *= int(d)
		}
		b, e := t.Offsets[0], t.Offsets[1]
		if b < 0 || e < b || e > len(st.data) {
			return nil, fmt.Errorf("safetensors: tensor %s: byte range %d..%d outside %d data bytes", name, b, e, len(st.data))
		}
		if size > 0 && e-b != count*size {
			return nil, fmt.Errorf("safetensors: tensor %s: %d bytes for %s%v, want %d", name, e-b, t.DType, t.Shape, count*size)
		}
		st.tensors[name] = t
	}
	return st, nil
}

var dtypeSize = map[string]int{"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}

// Names lists the tensors, sorted.
func (s *Safetensors) Names() []string {
	names := make([]string, 0, len(s.tensors))
	for n := range s.tensors {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Shape returns the shape of the named tensor and whether it exists.
func (s *Safetensors) Shape(name string) ([]int64, bool) {
	t, ok := s.tensors[name]
	return slices.Clone(t.Shape), ok
}

// Float32 returns the named tensor as float32 values, row-major. F32, F16
// and BF16 tensors are read (half precision widened exactly).
func (s *Safetensors) Float32(name string) ([]float32, []int64, error) {
	t, ok := s.tensors[name]
	if !ok {
		return nil, nil, fmt.Errorf("safetensors: no tensor %q", name)
	}
	b := s.data[t.Offsets[0]:t.Offsets[1]]
	var out []float32
	switch t.DType {
	case "F32":
		out = make([]float32, len(b)/4)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	case "BF16":
		out = make([]float32, len(b)/2)
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*i:])) << 16)
		}
	case "F16":
		out = make([]float32, len(b)/2)
		for i := range out {
			out[i] = halfToFloat32(binary.LittleEndian.Uint16(b[2*i:]))
		}
	default:
		return nil, nil, fmt.Errorf("safetensors: tensor %q has dtype %s, want F32, F16 or BF16", name, t.DType)
	}
	return out, slices.Clone(t.Shape), nil
}

// halfToFloat32 widens an IEEE 754 binary16 value.
func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf, NaN
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+127-15)<<23 | frac<<13)
	case frac == 0: // ±0
		return math.Float32frombits(sign)
	default: // subnormal: value = frac · 2^-24
		f := float32(frac) * (1.0 / (1 << 24))
		if sign != 0 {
			f = -f
		}
		return f
	}
}
