package tables

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/internal/wire"
	fastjson "github.com/segmentio/encoding/json"
)

// codecVersion starts every binary table value; a JSON value starts with
// '{', so both are told apart and older JSON values still decode. Version 2
// added the applied offsets (binary, between the JSON and the features);
// version 3 has the small fields in binary instead of JSON (values with
// binaryFields: the user table). Versions 1 and 2 still decode.
const (
	codecVersion  byte = 2
	codecVersion1 byte = 1
	codecVersion3 byte = 3
	// codecVersion4: a stream's viewers as 64-bit keys (ViewerSet)
	// instead of user ids; only livestream values use it.
	codecVersion4 byte = 4
)

// featured is a table value with windowed-feature state and applied
// offsets.
type featured[T any] interface {
	*T
	featureState() *features.State
	AppliedOffsets() *map[uint64]int64
}

func (l *Livestream) featureState() *features.State { return &l.Features }
func (u *User) featureState() *features.State       { return &u.Features }
func (e *Entity) featureState() *features.State     { return &e.Features }

// Codec is the goka codec of the state tables: a version byte, the value's
// small fields as JSON or, for values with binaryFields, binary
// (length-prefixed), its applied offsets (count, then
// uvarint key and varint offset per entry, keys ascending) and its feature state
// in the features package's compact binary form. The feature state is most of a
// value's bytes; encoding it as JSON (base64 inside a JSON document that
// encoding/json then re-validates) cost a third of the processors' CPU.
type Codec[T any, PT featured[T]] struct{}

// Encode encodes a *T.
func (Codec[T, PT]) Encode(value any) ([]byte, error) {
	p, ok := value.(*T)
	if !ok || p == nil {
		var zero T
		return nil, fmt.Errorf("encoding %T: want %T", value, &zero)
	}
	return Marshal[T, PT](p)
}

// AppendEncode appends the encoding of a *T to dst: the write-behind
// state encodes into buffers it recycles once a value is written.
func (Codec[T, PT]) AppendEncode(dst []byte, value any) ([]byte, error) {
	p, ok := value.(*T)
	if !ok || p == nil {
		var zero T
		return nil, fmt.Errorf("encoding %T: want %T", value, &zero)
	}
	return appendValue[T, PT](dst, p)
}

// Decode decodes into a new *T.
func (Codec[T, PT]) Decode(data []byte) (any, error) {
	v := new(T)
	if err := Unmarshal[T, PT](data, v); err != nil {
		return nil, err
	}
	return v, nil
}

// Marshal encodes a table value.
func Marshal[T any, PT featured[T]](v *T) ([]byte, error) {
	bp := scratch.Get().(*[]byte)
	defer scratch.Put(bp)
	out, err := appendValue[T, PT]((*bp)[:0], v)
	if err != nil {
		return nil, err
	}
	*bp = out
	// One allocation of the exact size: the value is handed on (to the
	// local store and the changelog), the scratch buffer is kept.
	return slices.Clone(out), nil
}

// scratch holds encoding buffers: a busy stream's value is tens of KiB, and
// growing a fresh slice to it took several allocations and copies per flush.
var scratch = sync.Pool{New: func() any { return new([]byte) }}

// appendValue appends v's encoding to out.
func appendValue[T any, PT featured[T]](out []byte, v *T) ([]byte, error) {
	if bf, ok := any(v).(binaryFields); ok {
		out = append(out, bf.fieldsVersion())
		at := len(out)
		out = wire.PrefixLength(bf.appendFields(out), at)
	} else {
		js, err := fastjson.Marshal(v) // the feature state is not part of the JSON
		if err != nil {
			return nil, fmt.Errorf("encoding %T: %w", v, err)
		}
		out = append(out, codecVersion)
		out = binary.AppendUvarint(out, uint64(len(js)))
		out = append(out, js...)
	}
	out = appendApplied(out, *PT(v).AppliedOffsets())
	out, err := PT(v).featureState().AppendBinary(out)
	if err != nil {
		return nil, fmt.Errorf("encoding %T features: %w", v, err)
	}
	return out, nil
}

// Unmarshal decodes a table value, binary or legacy JSON.
func Unmarshal[T any, PT featured[T]](data []byte, v *T) error {
	if len(data) > 0 && data[0] == '{' {
		if err := fastjson.Unmarshal(data, v); err != nil {
			return fmt.Errorf("decoding %T: %w", v, err)
		}
		return nil
	}
	bf, binFields := any(v).(binaryFields)
	binVersion := len(data) > 0 && (data[0] == codecVersion3 || data[0] == codecVersion4)
	if len(data) == 0 || (data[0] != codecVersion && data[0] != codecVersion1 && (!binVersion || !binFields)) {
		return fmt.Errorf("decoding %T: unknown encoding", v)
	}
	n, k := binary.Uvarint(data[1:])
	if k <= 0 || uint64(len(data)-1-k) < n {
		return fmt.Errorf("decoding %T: %w", v, errors.New("truncated value"))
	}
	small := data[1+k : 1+k+int(n)]
	if binVersion {
		if err := bf.readFields(wire.NewReader(small), data[0]); err != nil {
			return fmt.Errorf("decoding %T: %w", v, err)
		}
	} else if err := fastjson.Unmarshal(small, v); err != nil {
		return fmt.Errorf("decoding %T: %w", v, err)
	}
	rest := data[1+k+int(n):]
	applied := PT(v).AppliedOffsets()
	*applied = nil
	if data[0] != codecVersion1 {
		var err error
		if *applied, rest, err = readApplied(rest); err != nil {
			return fmt.Errorf("decoding %T applied offsets: %w", v, err)
		}
	}
	st := PT(v).featureState()
	*st = features.State{}
	if err := st.UnmarshalBinary(rest); err != nil {
		return fmt.Errorf("decoding %T features: %w", v, err)
	}
	return nil
}

// appendApplied appends the applied offsets, keys ascending (a value
// encodes to the same bytes every time).
func appendApplied(out []byte, applied map[uint64]int64) []byte {
	out = binary.AppendUvarint(out, uint64(len(applied)))
	if len(applied) == 0 {
		return out
	}
	var buf [64]uint64
	keys := buf[:0]
	for k := range applied {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		out = binary.AppendUvarint(out, k)
		out = binary.AppendVarint(out, applied[k])
	}
	return out
}

// maxApplied bounds the applied offsets a value may claim (a value has one
// per input partition that fed it).
const maxApplied = 1 << 16

func readApplied(data []byte) (map[uint64]int64, []byte, error) {
	r := wire.NewReader(data)
	n := r.Count(2) // an entry takes at least 2 bytes
	if n > maxApplied {
		return nil, nil, fmt.Errorf("%d applied offsets, at most %d", n, maxApplied)
	}
	var applied map[uint64]int64
	if n > 0 {
		applied = make(map[uint64]int64, n)
	}
	for range n {
		key := r.Uvarint()
		applied[key] = r.Varint()
	}
	if err := r.Err(); err != nil {
		return nil, nil, err
	}
	return applied, r.Rest(), nil
}
