package wire

import (
	"errors"
	"testing"
	"time"
)

// What is appended reads back; an overlong varint, a length beyond the
// data or a time out of range is ErrTruncated, and bytes left over are an
// error at End.
func TestRoundTripAndRejects(t *testing.T) {
	at := time.Date(2026, 11, 25, 12, 0, 0, 123, time.FixedZone("CET", 3600))
	b := AppendString(nil, "héllo")
	b = AppendFloat64(b, -2.5)
	b = AppendFloat32s(b, []float32{1, -0.5})
	b = AppendTime(b, at)
	b = AppendTime(b, time.Time{})
	r := NewReader(b)
	if s, f, v, t1, t0 := r.String(), r.Float64(), r.Float32s(), r.Time(), r.Time(); s != "héllo" || f != -2.5 ||
		len(v) != 2 || v[1] != -0.5 || !t1.Equal(at) || t1.Location() != time.UTC || !t0.IsZero() {
		t.Fatalf("read %q %v %v %v %v", s, f, v, t1, t0)
	}
	if err := r.End(); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"overlong uvarint": {0x81, 0x00},
		"length beyond":    {0x05, 'a'},
		"nanoseconds ≥ 1s": {0x00, 0x80, 0x94, 0xeb, 0xdc, 0x03},
	} {
		r := NewReader(data)
		switch name {
		case "nanoseconds ≥ 1s":
			r.Time()
		default:
			_ = r.String()
		}
		if !errors.Is(r.Err(), ErrTruncated) {
			t.Errorf("%s: %v, want ErrTruncated", name, r.Err())
		}
	}
	if err := NewReader([]byte{0x00, 0x01}).End(); err == nil {
		t.Error("bytes left: no error at End")
	}
}
