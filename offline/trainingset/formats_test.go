package trainingset

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/livefeed/livefeed/offline"
	"github.com/livefeed/livefeed/processors/livestream"
	"github.com/parquet-go/parquet-go"
)

// labelRow is a label row as a Parquet file holds it.
type labelRow struct {
	TS           time.Time `parquet:"ts,timestamp(millisecond)"`
	LivestreamID string    `parquet:"livestream_id"`
	UserID       string    `parquet:"user_id"`
	SellerID     string    `parquet:"seller_id"`
	Bought       bool      `parquet:"bought"`
	Price        float64   `parquet:"price"`
}

// The same labels as CSV, JSON lines and Parquet give the same training
// set, written as JSON lines, CSV and Parquet alike: every cell, labels
// carried through with their types, nulls kept.
func TestFormats(t *testing.T) {
	topo := defaultTopology(t)
	recs := simulatedLog(t, 3000)
	jsonl := randomLabels(recs, 40, 2)
	var rows []labelRow
	for _, line := range strings.Split(strings.TrimSpace(jsonl), "\n") {
		var m struct {
			TS                             time.Time
			LivestreamID, UserID, SellerID string
			Bought                         bool
			Price                          float64
		}
		var raw map[string]any
		if err := json.Unmarshal([]byte(line), &raw); err != nil {
			t.Fatal(err)
		}
		m.TS, _ = time.Parse(time.RFC3339Nano, raw["ts"].(string))
		rows = append(rows, labelRow{m.TS.Truncate(time.Millisecond), raw["livestream_id"].(string), raw["user_id"].(string),
			raw["seller_id"].(string), raw["bought"].(bool), raw["price"].(float64)})
	}
	dir := t.TempDir()
	// The three inputs (times at millisecond precision, as Parquet's).
	var jl, cs bytes.Buffer
	cw := csv.NewWriter(&cs)
	cw.Write([]string{"ts", "livestream_id", "user_id", "seller_id", "bought", "price"})
	for _, r := range rows {
		fmt.Fprintf(&jl, `{"ts":%q,"livestream_id":%q,"user_id":%q,"seller_id":%q,"bought":%v,"price":%v}`+"\n",
			r.TS.Format(time.RFC3339Nano), r.LivestreamID, r.UserID, r.SellerID, r.Bought, r.Price)
		cw.Write([]string{strconv.FormatInt(r.TS.UnixMilli(), 10), r.LivestreamID, r.UserID, r.SellerID, strconv.FormatBool(r.Bought), strconv.FormatFloat(r.Price, 'g', -1, 64)})
	}
	cw.Flush()
	inputs := map[string][]byte{"labels.jsonl": jl.Bytes(), "labels.csv": cs.Bytes()}
	var pq bytes.Buffer
	if err := parquet.Write(&pq, rows); err != nil {
		t.Fatal(err)
	}
	inputs["labels.parquet"] = pq.Bytes()

	var want []map[string]any
	for in, data := range inputs {
		path := filepath.Join(dir, in)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		l, err := ReadLabels(path, ReadOptions{KeyColumns: KeyColumns(topo)})
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		for _, f := range []Format{JSONL, CSV, Parquet} {
			var out bytes.Buffer
			if _, err := Build(context.Background(), Options{Topology: topo, Format: f}, l, &sliceSource{recs: recs}, &out); err != nil {
				t.Fatalf("%s → %s: %v", in, f, err)
			}
			got := readOutput(t, f, out.Bytes())
			if len(got) != len(rows) {
				t.Fatalf("%s → %s: %d rows, want %d", in, f, len(got), len(rows))
			}
			if want == nil {
				want = got
				continue
			}
			for i := range want {
				for k, w := range want[i] {
					if g := got[i][k]; fmt.Sprint(g) != fmt.Sprint(w) {
						t.Fatalf("%s → %s: row %d: %s = %v (%T), want %v (%T)", in, f, i, k, g, g, w, w)
					}
				}
				if len(got[i]) != len(want[i]) {
					t.Fatalf("%s → %s: row %d has %d columns, want %d", in, f, i, len(got[i]), len(want[i]))
				}
			}
		}
	}
	nulls := 0
	for _, r := range want {
		if r["max_bid_5m"] == nil {
			nulls++
		}
		if _, ok := r["bought"].(bool); !ok {
			t.Fatalf("bought is %T, want a bool carried through", r["bought"])
		}
	}
	if nulls == 0 || nulls == len(want) {
		t.Errorf("max_bid_5m is null in %d of %d rows; the test would not compare nulls and numbers", nulls, len(want))
	}
}

// readOutput reads a training set into one map per row: times as RFC 3339
// text, numbers as float64, null as nil.
func readOutput(t *testing.T, f Format, data []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	switch f {
	case JSONL:
		dec := json.NewDecoder(bytes.NewReader(data))
		for dec.More() {
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				t.Fatal(err)
			}
			out = append(out, m)
		}
	case CSV:
		recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range recs[1:] {
			m := map[string]any{}
			for i, name := range recs[0] {
				m[name] = csvValue(rec[i]).any()
			}
			out = append(out, m)
		}
	case Parquet:
		r := parquet.NewReader(bytes.NewReader(data))
		ts, ok := r.Schema().Lookup("ts")
		if lt := ts.Node.Type().LogicalType(); !ok || lt == nil || lt.String() != "TIMESTAMP(isAdjustedToUTC=true,unit=NANOS)" {
			t.Fatalf("the time column's type is %v, want a TIMESTAMP in ns, UTC", lt)
		}
		for {
			m := map[string]any{}
			if err := r.Read(&m); err != nil {
				break
			}
			m["ts"] = time.Unix(0, m["ts"].(int64)).UTC().Format(time.RFC3339Nano)
			out = append(out, m)
		}
	}
	for _, m := range out {
		if s, ok := m["ts"].(string); ok {
			if tm, err := time.Parse(time.RFC3339Nano, s); err == nil {
				m["ts"] = tm.UTC().Format(time.RFC3339Nano)
			}
		}
		for k, v := range m {
			if i, ok := v.(int64); ok {
				m[k] = float64(i)
			}
		}
	}
	return out
}

func (v Value) any() any {
	switch v.Kind {
	case String:
		return v.Str
	case Int:
		return float64(v.Int())
	case Float:
		return v.Float()
	case Bool:
		return v.Bool()
	}
	return nil
}

// hashEmbedder is a deterministic 4-dimensional embedder: a model in the
// test's hands, so the expected vectors are known.
type hashEmbedder struct{}

func (hashEmbedder) Embed(_ context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	for i, s := range texts {
		h := fnv.New64a()
		h.Write([]byte(s))
		x := h.Sum64()
		v := make([]float32, 4)
		var n float64
		for j := range v {
			v[j] = float32(int16(x>>(16*j))) + 0.5
			n += float64(v[j]) * float64(v[j])
		}
		for j := range v {
			v[j] /= float32(math.Sqrt(n))
		}
		out[i] = v
	}
	return out, nil
}
func (hashEmbedder) Dim() int        { return 4 }
func (hashEmbedder) Version() string { return "hash-4" }
func (hashEmbedder) Close() error    { return nil }

// With --embeddings a row carries its stream's content vector and its
// user's taste as of its instant: those the processors' code had made from
// the part of the log the row sees.
func TestEmbeddings(t *testing.T) {
	topo := defaultTopology(t)
	topo.Embedder = hashEmbedder{}
	recs := simulatedLog(t, 3000)
	rows, _ := buildRows(t, Options{Topology: topo, Embeddings: true, Features: []string{"bids_5m"}}, randomLabels(recs, 30, 3), recs)
	vectors := 0
	for i, row := range rows {
		at, _ := time.Parse(time.RFC3339Nano, row["ts"].(string))
		en := offline.New(topo)
		for _, r := range prefixAt(recs, at) {
			en.Apply(context.Background(), r)
		}
		var content, taste []float32
		if st := en.Streams()[row["livestream_id"].(string)]; st != nil {
			content = st.Embedding
			if content != nil {
				want, _ := hashEmbedder{}.Embed(context.Background(), []string{livestream.ContentText(st)})
				if fmt.Sprint(want[0]) != fmt.Sprint(content) {
					t.Fatalf("row %d: the engine's content vector is not the embedder's of the stream's text", i)
				}
			}
		}
		if u := en.Users()[row["user_id"].(string)]; u != nil {
			taste = u.Taste.Unit()
		}
		for col, want := range map[string][]float32{ContentColumn: content, TasteColumn: taste} {
			got := row[col]
			if want == nil {
				if got != nil {
					t.Errorf("row %d: %s = %v, want null", i, col, got)
				}
				continue
			}
			vectors++
			list, _ := got.([]any)
			if len(list) != len(want) {
				t.Fatalf("row %d: %s = %v, want %v", i, col, got, want)
			}
			for j := range want {
				if float32(list[j].(float64)) != want[j] {
					t.Errorf("row %d: %s[%d] = %v, want %v", i, col, j, list[j], want[j])
				}
			}
		}
	}
	if vectors < len(rows) {
		t.Errorf("only %d vectors in %d rows; the test compares too few", vectors, len(rows))
	}
}
