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
	w   *parquet.GenericWriter[map[string]any]
	p   *plan
	buf []map[string]any
}

func newParquetWriter(w io.Writer, p *plan) (*parquetWriter, error) {
	g := parquet.Group{p.timeColumn: parquet.Timestamp(parquet.Nanosecond)}
	for _, c := range p.labelsColumns {
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
	}
	for _, n := range p.featureNames {
		g[n] = parquet.Optional(parquet.Leaf(parquet.DoubleType))
	}
	vec := parquet.Optional(parquet.List(parquet.Leaf(parquet.FloatType)))
	if p.content >= 0 {
		g[ContentColumn] = vec
	}
	if p.taste >= 0 {
		g[TasteColumn] = vec
	}
	schema := parquet.NewSchema("training_set", g)
	pw := parquet.NewGenericWriter[map[string]any](w, schema, parquet.Compression(&parquet.Zstd))
	return &parquetWriter{w: pw, p: p}, nil
}

func (pw *parquetWriter) row(r Row, feats []float64, content, taste []float32) error {
	m := make(map[string]any, 1+len(r.Cells)+len(feats)+2)
	m[pw.p.timeColumn] = r.At.UTC()
	for i, c := range r.Cells {
		var v any
		switch c.Kind {
		case String:
			v = c.Str
		case Int:
			v = c.Int()
		case Float:
			v = c.Float()
		case Bool:
			v = c.Bool()
		}
		m[pw.p.labelsColumns[i].Name] = v
	}
	for i, x := range feats {
		if math.IsNaN(x) {
			m[pw.p.featureNames[i]] = nil
		} else {
			m[pw.p.featureNames[i]] = x
		}
	}
	if pw.p.content >= 0 {
		m[ContentColumn] = vector(content)
	}
	if pw.p.taste >= 0 {
		m[TasteColumn] = vector(taste)
	}
	pw.buf = append(pw.buf, m)
	if len(pw.buf) == cap(pw.buf) && len(pw.buf) >= 1024 {
		return pw.flush()
	}
	if cap(pw.buf) < 1024 {
		pw.buf = append(make([]map[string]any, 0, 1024), pw.buf...)
	}
	return nil
}

func vector(v []float32) any {
	if v == nil {
		return nil
	}
	return v
}

func (pw *parquetWriter) flush() error {
	_, err := pw.w.Write(pw.buf)
	clear(pw.buf)
	pw.buf = pw.buf[:0]
	return err
}

func (pw *parquetWriter) close() error {
	if err := pw.flush(); err != nil {
		return err
	}
	return pw.w.Close()
}
