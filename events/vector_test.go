package events

import (
	"encoding/json"
	"math"
	"testing"
)

func TestVectorRoundTripsExactly(t *testing.T) {
	in := Vector{0, 1, -1, 0.1, math.MaxFloat32, math.SmallestNonzeroFloat32, float32(math.Inf(1))}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out Vector
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("len %d", len(out))
	}
	for i := range in {
		if math.Float32bits(in[i]) != math.Float32bits(out[i]) {
			t.Fatalf("element %d: %v != %v", i, out[i], in[i])
		}
	}
	var arr Vector
	if err := json.Unmarshal([]byte(`[0.5, -2]`), &arr); err != nil || len(arr) != 2 || arr[1] != -2 {
		t.Fatalf("array form: %v %v", arr, err)
	}
	for _, bad := range []string{`"not base64!"`, `"AAA="`, `{}`, `[1,"x"]`} {
		if err := json.Unmarshal([]byte(bad), &arr); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
