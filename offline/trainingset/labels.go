package trainingset

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// Format is a file format of labels or of a training set.
type Format string

// The formats: CSV with a header row, JSON lines (one object per line) and
// Parquet.
const (
	CSV     Format = "csv"
	JSONL   Format = "jsonl"
	Parquet Format = "parquet"
)

// FormatOf names the format of a path by its extension: .csv, .jsonl /
// .ndjson / .json, .parquet / .pq.
func FormatOf(path string) (Format, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		return CSV, nil
	case ".jsonl", ".ndjson", ".json":
		return JSONL, nil
	case ".parquet", ".pq":
		return Parquet, nil
	}
	return "", fmt.Errorf("%s: unknown format (want .csv, .jsonl or .parquet)", path)
}

// Kind is the type of a label cell or column.
type Kind uint8

// The kinds, ordered so that a column's kind is the widest of its cells'
// (Int and Float widen to Float; anything with String to String).
const (
	Null Kind = iota
	Bool
	Int
	Float
	String
)

// Value is one label cell: a string, an integer, a float, a bool or null.
type Value struct {
	Kind Kind
	Str  string
	bits uint64 // Int: the int64; Float: the float64 bits; Bool: 0 or 1
}

// StringValue, IntValue, FloatValue and BoolValue make values.
func StringValue(s string) Value { return Value{Kind: String, Str: s} }
func IntValue(i int64) Value     { return Value{Kind: Int, bits: uint64(i)} }
func FloatValue(f float64) Value { return Value{Kind: Float, bits: math.Float64bits(f)} }
func BoolValue(b bool) Value {
	if b {
		return Value{Kind: Bool, bits: 1}
	}
	return Value{Kind: Bool}
}

// Int, Float and Bool read the value as its kind.
func (v Value) Int() int64     { return int64(v.bits) }
func (v Value) Float() float64 { return math.Float64frombits(v.bits) }
func (v Value) Bool() bool     { return v.bits == 1 }

// Text is the value as CSV writes it ("" for null).
func (v Value) Text() string {
	switch v.Kind {
	case String:
		return v.Str
	case Int:
		return strconv.FormatInt(v.Int(), 10)
	case Float:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	case Bool:
		return strconv.FormatBool(v.Bool())
	}
	return ""
}

// As converts v to a column's kind (an Int to Float, anything to String).
func (v Value) As(k Kind) Value {
	switch {
	case v.Kind == k || v.Kind == Null:
		return v
	case k == Float && v.Kind == Int:
		return FloatValue(float64(v.Int()))
	case k == String:
		return StringValue(v.Text())
	}
	return v
}

// Column is a column of the labels file other than the timestamp.
type Column struct {
	Name string
	Kind Kind
	// Entity is the feature entity whose key the column holds
	// (livestream_id → livestream), "" for a label carried through.
	Entity string
}

// Row is one label row.
type Row struct {
	At    time.Time
	Cells []Value // one per Labels.Columns
	// Seq is the row's position in the labels file (0-based): rows at the
	// same instant keep the file's order.
	Seq int
}

// Labels are the rows of a labels file, sorted by time.
type Labels struct {
	Columns    []Column
	TimeColumn string
	Rows       []Row
	// Skipped counts rows outside the --from/--to range.
	Skipped int
}

// TimeColumns are the names tried, in order, for the timestamp column
// when none is named.
var TimeColumns = []string{"timestamp", "ts", "event_time", "time"}

// ReadOptions say how to read a labels file.
type ReadOptions struct {
	// TimeColumn names the timestamp column; empty: the first of
	// TimeColumns present.
	TimeColumn string
	// KeyColumns maps a column name to the entity whose key it holds
	// (livestream_id → livestream, user_id → user, …).
	KeyColumns map[string]string
	// From and To bound the rows kept (inclusive; zero: unbounded).
	From, To time.Time
}

// ReadLabels reads a labels file (its format by extension) and sorts its
// rows by time, rows at the same instant in file order.
func ReadLabels(path string, o ReadOptions) (*Labels, error) {
	format, err := FormatOf(path)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening labels: %w", err)
	}
	defer f.Close()
	b := &builder{o: o}
	switch format {
	case CSV:
		err = b.readCSV(bufio.NewReaderSize(f, 1<<16))
	case JSONL:
		err = b.readJSONL(f)
	case Parquet:
		err = b.readParquet(f)
	}
	if err != nil {
		return nil, fmt.Errorf("reading labels %s: %w", path, err)
	}
	return b.finish()
}

// builder collects rows whatever the format: header(names) once, then
// row(cells) per row, cells in the names' order.
type builder struct {
	o       ReadOptions
	names   []string
	timeIdx int
	labels  Labels
	n       int // rows read
	keys    map[string]string
}

func (b *builder) header(names []string) error {
	b.names = names
	b.timeIdx = -1
	want := b.o.TimeColumn
	if want == "" {
		for _, c := range TimeColumns {
			if slices.Contains(names, c) {
				want = c
				break
			}
		}
	}
	seen := map[string]bool{}
	for i, n := range names {
		if seen[n] {
			return fmt.Errorf("column %q appears twice", n)
		}
		seen[n] = true
		if n == want {
			b.timeIdx = i
			continue
		}
		b.labels.Columns = append(b.labels.Columns, Column{Name: n, Entity: b.o.KeyColumns[n]})
	}
	if b.timeIdx < 0 {
		if b.o.TimeColumn != "" {
			return fmt.Errorf("no timestamp column %q (columns: %s)", b.o.TimeColumn, strings.Join(names, ", "))
		}
		return fmt.Errorf("no timestamp column (want one of %s, or name it with --time-column; columns: %s)",
			strings.Join(TimeColumns, ", "), strings.Join(names, ", "))
	}
	b.labels.TimeColumn = want
	return nil
}

func (b *builder) row(cells []Value) error {
	b.n++
	at, err := parseTime(cells[b.timeIdx])
	if err != nil {
		return fmt.Errorf("row %d: %s: %w", b.n, b.names[b.timeIdx], err)
	}
	if (!b.o.From.IsZero() && at.Before(b.o.From)) || (!b.o.To.IsZero() && at.After(b.o.To)) {
		b.labels.Skipped++
		return nil
	}
	out := make([]Value, 0, len(cells)-1)
	for i, c := range cells {
		if i == b.timeIdx {
			continue
		}
		col := &b.labels.Columns[len(out)]
		if col.Entity != "" && c.Kind != Null {
			c = StringValue(b.intern(c.Text())) // keys are strings, whatever they look like
		}
		col.Kind = max(col.Kind, c.Kind)
		out = append(out, c)
	}
	b.labels.Rows = append(b.labels.Rows, Row{At: at, Cells: out, Seq: b.n - 1})
	return nil
}

// intern keeps one copy of each key: rows name the same entities many
// times.
func (b *builder) intern(s string) string {
	if v, ok := b.keys[s]; ok {
		return v
	}
	if b.keys == nil {
		b.keys = map[string]string{}
	}
	s = strings.Clone(s)
	b.keys[s] = s
	return s
}

func (b *builder) finish() (*Labels, error) {
	if b.names == nil {
		return nil, errors.New("reading labels: empty file")
	}
	l := &b.labels
	for i := range l.Columns {
		if l.Columns[i].Entity != "" {
			l.Columns[i].Kind = String
		}
	}
	for _, r := range l.Rows {
		for i, c := range r.Cells {
			r.Cells[i] = c.As(l.Columns[i].Kind)
		}
	}
	slices.SortStableFunc(l.Rows, func(a, b Row) int { return a.At.Compare(b.At) })
	return l, nil
}

// parseTime reads a timestamp: RFC 3339 text (or "YYYY-MM-DD hh:mm:ss[.f]",
// UTC unless it has an offset), or a Unix epoch number whose unit its size
// tells: seconds below 10¹¹, milliseconds below 10¹⁴, microseconds below
// 10¹⁷, else nanoseconds (unambiguous for 1973…5138).
func parseTime(v Value) (time.Time, error) {
	switch v.Kind {
	case String:
		s := strings.TrimSpace(v.Str)
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999"} {
			if t, err := time.Parse(layout, s); err == nil {
				return t.UTC(), nil
			}
		}
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return epochInt(i), nil
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return epoch(f), nil
		}
		return time.Time{}, fmt.Errorf("not a time: %q (want RFC 3339, e.g. 2026-12-07T18:00:00Z, or Unix epoch seconds/ms/µs/ns)", v.Str)
	case Int:
		return epochInt(v.Int()), nil
	case Float:
		return epoch(v.Float()), nil
	}
	return time.Time{}, errors.New("missing timestamp")
}

// epochInt is epoch for integers, exactly.
func epochInt(x int64) time.Time {
	a := max(x, -x)
	switch {
	case a < 1e11:
		return time.Unix(x, 0).UTC()
	case a < 1e14:
		return time.UnixMilli(x).UTC()
	case a < 1e17:
		return time.UnixMicro(x).UTC()
	}
	return time.Unix(0, x).UTC()
}

func epoch(x float64) time.Time {
	a := math.Abs(x)
	switch {
	case a < 1e11:
		return time.Unix(0, int64(x*1e9)).UTC()
	case a < 1e14:
		return time.Unix(0, int64(x*1e6)).UTC()
	case a < 1e17:
		return time.Unix(0, int64(x*1e3)).UTC()
	}
	return time.Unix(0, int64(x)).UTC()
}

// csvValue infers a CSV cell's kind: empty is null, then int, float, bool,
// else a string.
func csvValue(s string) Value {
	if s == "" {
		return Value{}
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return IntValue(i)
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return FloatValue(f)
	}
	if b, err := strconv.ParseBool(s); err == nil && (s == "true" || s == "false" || s == "True" || s == "False" || s == "TRUE" || s == "FALSE") {
		return BoolValue(b)
	}
	return StringValue(s)
}

func (b *builder) readCSV(r io.Reader) error {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		if err == io.EOF {
			return errors.New("empty file")
		}
		return err
	}
	if err := b.header(slices.Clone(head)); err != nil {
		return err
	}
	cells := make([]Value, len(head))
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		for i, s := range rec {
			cells[i] = csvValue(s)
		}
		if err := b.row(cells); err != nil {
			return err
		}
	}
}

// readJSONL reads objects, one per line. The first object's keys are the
// columns, in its order; a later object may leave one out (null) but not
// add one. Nested values are carried as their JSON text.
func (b *builder) readJSONL(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 16<<20)
	var index map[string]int
	var cells []Value
	line := 0
	for sc.Scan() {
		line++
		data := bytes.TrimSpace(sc.Bytes())
		if len(data) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			return fmt.Errorf("line %d: not a JSON object", line)
		}
		var names []string // the first object's keys
		clear(cells)
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return fmt.Errorf("line %d: %w", line, err)
			}
			key := tok.(string)
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return fmt.Errorf("line %d: %s: %w", line, key, err)
			}
			v, err := jsonValue(raw)
			if err != nil {
				return fmt.Errorf("line %d: %s: %w", line, key, err)
			}
			if index == nil {
				names = append(names, key)
				cells = append(cells, v)
				continue
			}
			i, ok := index[key]
			if !ok {
				return fmt.Errorf("line %d: key %q is not in the first line's (the columns)", line, key)
			}
			cells[i] = v
		}
		if index == nil {
			index = make(map[string]int, len(names))
			for i, n := range names {
				index[n] = i
			}
			if err := b.header(names); err != nil {
				return err
			}
		}
		if err := b.row(cells); err != nil {
			return err
		}
	}
	return sc.Err()
}

func jsonValue(raw json.RawMessage) (Value, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return Value{}, nil
	}
	switch raw[0] {
	case '"':
		var s string
		err := json.Unmarshal(raw, &s)
		return StringValue(s), err
	case 't', 'f':
		return BoolValue(raw[0] == 't'), nil
	case '{', '[':
		return StringValue(string(raw)), nil
	}
	if i, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		return IntValue(i), nil
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	return FloatValue(f), err
}

// readParquet reads a flat Parquet file: every top-level leaf column
// (strings, integers, floats, booleans, timestamps); nested columns are an
// error.
func (b *builder) readParquet(f *os.File) error {
	info, err := f.Stat()
	if err != nil {
		return err
	}
	pf, err := parquet.OpenFile(f, info.Size())
	if err != nil {
		return err
	}
	schema := pf.Schema()
	fields := schema.Fields()
	names := make([]string, len(fields))
	for i, fd := range fields {
		if !fd.Leaf() || fd.Repeated() {
			return fmt.Errorf("column %q is nested or repeated; labels need flat columns", fd.Name())
		}
		names[i] = fd.Name()
	}
	if err := b.header(names); err != nil {
		return err
	}
	// The columns of a flat schema are its leaves, in the schema's order.
	conv := make([]func(parquet.Value) Value, len(fields))
	for i, fd := range fields {
		conv[i] = parquetConverter(fd.Type())
	}
	r := parquet.NewReader(pf)
	defer r.Close()
	rows := make([]parquet.Row, 256)
	cells := make([]Value, len(fields))
	for {
		n, err := r.ReadRows(rows)
		for _, row := range rows[:n] {
			clear(cells)
			for _, v := range row {
				if c := v.Column(); c >= 0 && c < len(cells) && !v.IsNull() {
					cells[c] = conv[c](v)
				}
			}
			if err := b.row(cells); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// parquetConverter reads a column's values by their physical type and
// logical annotations: a TIMESTAMP becomes RFC 3339 text, a byte array a
// string.
func parquetConverter(t parquet.Type) func(parquet.Value) Value {
	if lt := t.LogicalType(); lt != nil {
		if ts, ok := lt.Value.(*format.TimestampType); ok {
			unit := time.Millisecond
			if ts.Unit.Value != nil {
				unit = ts.Unit.Value.Duration()
			}
			return func(v parquet.Value) Value {
				return StringValue(time.Unix(0, v.Int64()*int64(unit)).UTC().Format(time.RFC3339Nano))
			}
		}
	}
	switch t.Kind() {
	case parquet.Boolean:
		return func(v parquet.Value) Value { return BoolValue(v.Boolean()) }
	case parquet.Int32:
		return func(v parquet.Value) Value { return IntValue(int64(v.Int32())) }
	case parquet.Int64:
		return func(v parquet.Value) Value { return IntValue(v.Int64()) }
	case parquet.Float:
		return func(v parquet.Value) Value { return FloatValue(float64(v.Float())) }
	case parquet.Double:
		return func(v parquet.Value) Value { return FloatValue(v.Double()) }
	}
	return func(v parquet.Value) Value { return StringValue(string(v.ByteArray())) }
}
