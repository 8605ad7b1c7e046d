package offline

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// The scanner's fast path reads each line as the full JSON decode does,
// and leaves every other line to it.
func TestLogScannerFastPath(t *testing.T) {
	lines := []string{
		`{"topic":"chat","key":"ls-1","value":{"event_id":"e1","text":"a } b"}}`,
		`{"topic":"chat","key":"ls-1","value":"\u0000bad"}`,
		`{"topic":"chat","key":"ls\"1","value":{"event_id":"e2"}}`,
		`{"topic":"chat","key":"ls-1","value":{"event_id":"e3"},"extra":1}`,
		`{"key":"ls-1","topic":"chat","value":{"event_id":"e4"}}`,
		`{"topic":"chat","key":"ls-1","value":{"event_id":"e5"}  }  `,
		`{"topic":"chat","key":"ls-1","value":{"event_id":"e6"}`,
	}
	fast := 0
	for i, line := range lines {
		var want Record
		werr := json.Unmarshal([]byte(line), &want)
		got, ok := parseRecord([]byte(line))
		if ok {
			fast++
			if werr != nil {
				t.Errorf("line %d: the fast path reads %+v, the JSON decoder fails: %v", i, got, werr)
				continue
			}
			if got.Topic != want.Topic || got.Key != want.Key || !bytes.Equal(got.Value, want.Value) {
				t.Errorf("line %d: the fast path reads %q %q %s, the JSON decoder %q %q %s", i, got.Topic, got.Key, got.Value, want.Topic, want.Key, want.Value)
			}
		}
		sc := NewLogScanner(strings.NewReader(line + "\n"))
		if sc.Scan() != (werr == nil) {
			t.Errorf("line %d: Scan disagrees with the JSON decoder (%v): %v", i, werr, sc.Err())
		}
	}
	if fast < 3 {
		t.Errorf("only %d lines took the fast path", fast)
	}
}
