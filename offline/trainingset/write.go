package trainingset

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/parquet-go/parquet-go"
)

// writer writes one output row: the time column, the label columns (keys
// included) in the labels' order, the features (NaN: null), the vectors
// (nil: null).
type writer interface {
	row(r Row, feats []float64, content, taste []float32) error
	close() error
}

func newWriter(w io.Writer, f Format, p *plan) (writer, error) {
	switch f {
	case CSV:
		return newCSVWriter(w, p)
	case JSONL:
		return &jsonlWriter{w: bufio.NewWriterSize(w, 1<<16), p: p}, nil
	case Parquet:
		return newParquetWriter(w, p)
	}
	return nil, fmt.Errorf("unknown output format %q (want csv, jsonl or parquet)", f)
}

// names are the output's column names in order.
func (p *plan) names() []string {
	out := []string{p.timeColumn}
	for _, c := range p.labelsColumns {
		out = append(out, c.Name)
	}
	out = append(out, p.featureNames...)
	if p.content >= 0 {
		out = append(out, ContentColumn)
	}
	if p.taste >= 0 {
		out = append(out, TasteColumn)
	}
	return out
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// appendVector writes a vector as a JSON array (null when nil).
func appendVector(b []byte, v []float32) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, x := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendFloat(b, float64(x), 'g', -1, 32)
	}
	return append(b, ']')
}

type csvWriter struct {
	w    *csv.Writer
	p    *plan
	rec  []string
	vbuf []byte
}

func newCSVWriter(w io.Writer, p *plan) (*csvWriter, error) {
	cw := &csvWriter{w: csv.NewWriter(w), p: p}
	names := p.names()
	cw.rec = make([]string, len(names))
	return cw, cw.w.Write(names)
}

// row writes a CSV row: null is an empty cell, a vector its JSON array.
func (cw *csvWriter) row(r Row, feats []float64, content, taste []float32) error {
	rec := cw.rec[:0]
	rec = append(rec, formatTime(r.At))
	for _, c := range r.Cells {
		rec = append(rec, c.Text())
	}
	for _, x := range feats {
		s := ""
		if !math.IsNaN(x) {
			s = strconv.FormatFloat(x, 'g', -1, 64)
		}
		rec = append(rec, s)
	}
	vec := func(v []float32) string {
		if v == nil {
			return ""
		}
		cw.vbuf = appendVector(cw.vbuf[:0], v)
		return string(cw.vbuf)
	}
	if cw.p.content >= 0 {
		rec = append(rec, vec(content))
	}
	if cw.p.taste >= 0 {
		rec = append(rec, vec(taste))
	}
	return cw.w.Write(rec)
}

func (cw *csvWriter) close() error {
	cw.w.Flush()
	return cw.w.Error()
}

type jsonlWriter struct {
	w   *bufio.Writer
	p   *plan
	buf []byte
}

func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}

// row writes one JSON object, keys in the output's column order, null for
// a missing value.
func (jw *jsonlWriter) row(r Row, feats []float64, content, taste []float32) error {
	b := append(jw.buf[:0], '{')
	b = appendJSONString(b, jw.p.timeColumn)
	b = append(b, ':')
	b = appendJSONString(b, formatTime(r.At))
	for i, c := range r.Cells {
		b = append(b, ',')
		b = appendJSONString(b, jw.p.labelsColumns[i].Name)
		b = append(b, ':')
		switch c.Kind {
		case Null:
			b = append(b, "null"...)
		case String:
			b = appendJSONString(b, c.Str)
		case Float:
			if f := c.Float(); math.IsNaN(f) || math.IsInf(f, 0) {
				b = append(b, "null"...)
				break
			}
			b = append(b, c.Text()...)
		default:
			b = append(b, c.Text()...)
		}
	}
	for i, x := range feats {
		b = append(b, ',')
		b = appendJSONString(b, jw.p.featureNames[i])
		b = append(b, ':')
		if math.IsNaN(x) {
			b = append(b, "null"...)
		} else {
			b = strconv.AppendFloat(b, x, 'g', -1, 64)
		}
	}
	if jw.p.content >= 0 {
		b = append(b, `,"`+ContentColumn+`":`...)
		b = appendVector(b, content)
	}
	if jw.p.taste >= 0 {
		b = append(b, `,"`+TasteColumn+`":`...)
		b = appendVector(b, taste)
	}
	b = append(b, '}', '\n')
	jw.buf = b
	_, err := jw.w.Write(b)
	return err
}

func (jw *jsonlWriter) close() error { return jw.w.Flush() }

// parquetWriter writes a flat schema: the time column a TIMESTAMP(ns, UTC),
// each label column optional of its kind (strings UTF-8), each feature an
// optional double, each vector an optional list of floats. Parquet orders
// a group's columns by name; readers address them by name.
type parquetWriter struct {
	w *parquet.GenericWriter[any]
	p *plan
	// cols are the leaf columns in the schema's order: what each holds.
	cols []pqColumn
	rows []parquet.Row
}

// pqColumn is one leaf: the time (kind pqTime), label i, feature i, or a
// vector.
type pqColumn struct {
	kind  int
	index int
}

const (
	pqTime = iota
	pqLabel
	pqFeature
	pqContent
	pqTaste
)

// rowGroupRows is the rows per Parquet row group.
const rowGroupRows = 100_000

func newParquetWriter(w io.Writer, p *plan) (*parquetWriter, error) {
	g := parquet.Group{p.timeColumn: parquet.Timestamp(parquet.Nanosecond)}
	what := map[string]pqColumn{p.timeColumn: {pqTime, 0}}
	for i, c := range p.labelsColumns {
		var n parquet.Node
		switch c.Kind {
		case Bool:
			n = parquet.Leaf(parquet.BooleanType)
		case Int:
			n = parquet.Int(64)
		case Float:
			n = parquet.Leaf(parquet.DoubleType)
		default:
			n = parquet.String()
		}
		g[c.Name] = parquet.Optional(n)
		what[c.Name] = pqColumn{pqLabel, i}
	}
	for i, n := range p.featureNames {
		g[n] = parquet.Optional(parquet.Leaf(parquet.DoubleType))
		what[n] = pqColumn{pqFeature, i}
	}
	vec := parquet.Optional(parquet.List(parquet.Leaf(parquet.FloatType)))
	if p.content >= 0 {
		g[ContentColumn] = vec
		what[ContentColumn] = pqColumn{pqContent, 0}
	}
	if p.taste >= 0 {
		g[TasteColumn] = vec
		what[TasteColumn] = pqColumn{pqTaste, 0}
	}
	schema := parquet.NewSchema("training_set", g)
	pw := &parquetWriter{p: p}
	for _, path := range schema.Columns() {
		c, ok := what[path[0]]
		if !ok {
			return nil, fmt.Errorf("parquet schema: unexpected column %v", path)
		}
		pw.cols = append(pw.cols, c)
	}
	// Row groups of rowGroupRows: the writer holds one row group's
	// pages, not the whole file.
	pw.w = parquet.NewGenericWriter[any](w, schema, parquet.Compression(&parquet.Zstd), parquet.MaxRowsPerRowGroup(rowGroupRows))
	return pw, nil
}

// row appends the row's values column by column: an optional leaf has
// definition level 1 when set, 0 when null; a list's elements level 2
// (repetition 0 for the first, 1 for the others).
func (pw *parquetWriter) row(r Row, feats []float64, content, taste []float32) error {
	var row parquet.Row
	if len(pw.rows) < cap(pw.rows) {
		row = pw.rows[:len(pw.rows)+1][len(pw.rows)][:0]
	}
	opt := func(v parquet.Value, set bool, col int) {
		if !set {
			row = append(row, parquet.Value{}.Level(0, 0, col))
			return
		}
		row = append(row, v.Level(0, 1, col))
	}
	list := func(v []float32, col int) {
		if v == nil {
			row = append(row, parquet.Value{}.Level(0, 0, col))
			return
		}
		if len(v) == 0 {
			row = append(row, parquet.Value{}.Level(0, 1, col))
			return
		}
		for i, x := range v {
			row = append(row, parquet.FloatValue(x).Level(min(i, 1), 2, col))
		}
	}
	for col, c := range pw.cols {
		switch c.kind {
		case pqTime:
			row = append(row, parquet.Int64Value(r.At.UnixNano()).Level(0, 0, col))
		case pqLabel:
			v := r.Cells[c.index]
			switch v.Kind {
			case String:
				opt(parquet.ByteArrayValue([]byte(v.Str)), true, col)
			case Int:
				opt(parquet.Int64Value(v.Int()), true, col)
			case Float:
				opt(parquet.DoubleValue(v.Float()), true, col)
			case Bool:
				opt(parquet.BooleanValue(v.Bool()), true, col)
			default:
				opt(parquet.Value{}, false, col)
			}
		case pqFeature:
			x := feats[c.index]
			opt(parquet.DoubleValue(x), !math.IsNaN(x), col)
		case pqContent:
			list(content, col)
		case pqTaste:
			list(taste, col)
		}
	}
	pw.rows = append(pw.rows, row)
	if len(pw.rows) >= 1024 {
		return pw.flush()
	}
	return nil
}

func (pw *parquetWriter) flush() error {
	_, err := pw.w.WriteRows(pw.rows)
	pw.rows = pw.rows[:0]
	return err
}

func (pw *parquetWriter) close() error {
	if err := pw.flush(); err != nil {
		return err
	}
	return pw.w.Close()
}
