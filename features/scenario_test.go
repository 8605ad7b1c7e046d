package features

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
)

// A scenario file (testdata/scenarios/*.yaml) says: these definitions
// (features:, as in a features file) + these events (events:, each with
// at: an offset from start:, source:, and the event's fields) → these
// values (expect:, each at an offset: values by feature, and optionally
// late events dropped per feature). Events are applied in file order, so a
// scenario states its own arrival order (late, out-of-order events).
//
// Expected values: a number, a string, a list of strings (last_k_distinct),
// a list of {key, count} (top_k), or null (empty: mean, min, max, last,
// approx_percentile of an empty window). tolerance: is a relative error
// allowed on numbers (approximate aggregations).
type scenario struct {
	Description string           `yaml:"description"`
	Start       time.Time        `yaml:"start"`
	Events      []map[string]any `yaml:"events"`
	Expect      []struct {
		At        string           `yaml:"at"`
		After     *int             `yaml:"after"`
		Values    map[string]any   `yaml:"values"`
		Dropped   map[string]int64 `yaml:"dropped"`
		Tolerance float64          `yaml:"tolerance"`
	} `yaml:"expect"`
}

func loadScenario(t *testing.T, path string) (*Set, scenario) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defs, more, err := parseYAML(data, makeOptions([]Option{WithFilename(path)}), []string{"description", "start", "events", "expect"})
	if err != nil {
		t.Fatal(err)
	}
	set, err := Compile(defs)
	if err != nil {
		t.Fatal(err)
	}
	var sc scenario
	for key, dst := range map[string]any{"description": &sc.Description, "start": &sc.Start, "events": &sc.Events, "expect": &sc.Expect} {
		if n := more[key]; n != nil {
			if err := yaml.NodeToValue(n, dst); err != nil {
				t.Fatalf("%s: %s: %v", path, key, err)
			}
		}
	}
	if sc.Start.IsZero() {
		sc.Start = t0
	}
	return set, sc
}

func TestScenarios(t *testing.T) {
	files, _ := filepath.Glob("testdata/scenarios/*.yaml")
	if len(files) == 0 {
		t.Fatal("no scenarios")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			set, sc := loadScenario(t, file)
			var st State
			applied := 0
			for ei, expect := range sc.Expect {
				at, err := ParseDuration(expect.At)
				if err != nil {
					t.Fatalf("expect[%d].at: %v", ei, err)
				}
				now := sc.Start.Add(at)
				upto := len(sc.Events)
				if expect.After != nil {
					upto = *expect.After
				}
				if upto < applied || upto > len(sc.Events) {
					t.Fatalf("expect[%d]: after %d: events already applied %d of %d", ei, upto, applied, len(sc.Events))
				}
				for ; applied < upto; applied++ {
					set.ApplyEvent(&st, toEvent(t, sc.Start, sc.Events[applied]))
				}
				got := set.Results(&st, now)
				for name, want := range expect.Values {
					r, ok := got[name]
					if !ok {
						t.Errorf("expect[%d] at %s: no feature %s", ei, expect.At, name)
						continue
					}
					if msg := compareResult(r, want, expect.Tolerance); msg != "" {
						t.Errorf("expect[%d] at %s: %s: %s", ei, expect.At, name, msg)
					}
				}
				for name, want := range expect.Dropped {
					if st.Dropped[name] != want {
						t.Errorf("expect[%d] at %s: %s dropped %d late events, want %d", ei, expect.At, name, st.Dropped[name], want)
					}
				}
				// Every expectation also holds after an encode/decode.
				bin, err := st.MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				var back State
				if err := back.UnmarshalBinary(bin); err != nil {
					t.Fatal(err)
				}
				for name, r := range set.Results(&back, now) {
					if fmt.Sprint(r) != fmt.Sprint(got[name]) {
						t.Errorf("expect[%d]: %s after a codec round trip: %+v, before %+v", ei, name, r, got[name])
					}
				}
			}
		})
	}
}

func toEvent(t *testing.T, start time.Time, e map[string]any) MapEvent {
	t.Helper()
	src, _ := e["source"].(string)
	atS := fmt.Sprint(e["at"])
	at, err := ParseDuration(atS)
	if err != nil {
		t.Fatalf("event %v: at: %v", e, err)
	}
	fields := map[string]any{}
	for k, v := range e {
		switch k {
		case "source", "at":
			continue
		}
		switch x := v.(type) {
		case uint64:
			v = float64(x)
		case int64:
			v = float64(x)
		case int:
			v = float64(x)
		}
		fields[k] = v
	}
	return MapEvent{Src: src, At: start.Add(at), Fields: fields}
}

func compareResult(r Result, want any, tol float64) string {
	if want == nil {
		if r.Empty || r.Kind == ListResult && len(r.Items) == 0 || r.Kind == TopResult && len(r.Top) == 0 {
			return ""
		}
		return fmt.Sprintf("got %+v, want null", r)
	}
	switch w := want.(type) {
	case string:
		if r.Kind != StringResult || r.Text != w {
			return fmt.Sprintf("got %+v, want %q", r, w)
		}
		return ""
	case []any:
		switch r.Kind {
		case ListResult:
			var ws []string
			for _, x := range w {
				ws = append(ws, fmt.Sprint(x))
			}
			if !slices.Equal(r.Items, ws) {
				return fmt.Sprintf("got %q, want %q", r.Items, ws)
			}
		case TopResult:
			var wk []KeyCount
			for _, x := range w {
				m, _ := x.(map[string]any)
				wk = append(wk, KeyCount{Key: fmt.Sprint(m["key"]), Count: int64(toFloat(m["count"]))})
			}
			if !slices.Equal(r.Top, wk) {
				return fmt.Sprintf("got %v, want %v", r.Top, wk)
			}
		default:
			return fmt.Sprintf("got %+v, want a list", r)
		}
		return ""
	}
	wf := toFloat(want)
	if r.Empty {
		return fmt.Sprintf("empty, want %v", wf)
	}
	got := r.Float()
	if math.Abs(got-wf) > tol*math.Abs(wf)+1e-9 {
		return fmt.Sprintf("got %v, want %v (tolerance %v)", got, wf, tol)
	}
	return ""
}

func toFloat(x any) float64 {
	switch v := x.(type) {
	case float64:
		return v
	case uint64:
		return float64(v)
	case int64:
		return float64(v)
	case int:
		return float64(v)
	}
	return math.NaN()
}
