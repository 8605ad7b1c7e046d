// Package plot draws the benchmarks' JSON reports as SVG charts
// (`livefeed bench plot`): recall against queries per second per filter
// for the serving index and its peers, the processors' events per
// CPU-second against the goka and franz-go floors, and the latency
// percentiles of data freshness and recommendation queries.
//
// The SVG is written by hand: a chart here is a few axes, lines, bars and
// labels, and plain SVG 1.1 renders the same in every browser and in
// GitHub's Markdown view without fonts, scripts or a plotting library.
package plot

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// palette: distinguishable colours (Okabe–Ito), in the order series are
// assigned them.
var palette = []string{"#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#f0e442"}

// canvas accumulates the elements of one SVG document.
type canvas struct {
	w, h float64
	b    bytes.Buffer
}

func newCanvas(w, h float64, title string) *canvas {
	c := &canvas{w: w, h: h}
	fmt.Fprintf(&c.b, `<svg xmlns="http://www.w3.org/2000/svg" width="%s" height="%s" viewBox="0 0 %s %s" font-family="Helvetica, Arial, sans-serif" font-size="12">`+"\n",
		num(w), num(h), num(w), num(h))
	fmt.Fprintf(&c.b, "<title>%s</title>\n", esc(title))
	c.rect(0, 0, w, h, "#ffffff", "none")
	c.text(w/2, 22, title, "middle", 15, "bold", "")
	return c
}

// bytes closes the document and returns it.
func (c *canvas) bytes() []byte {
	c.b.WriteString("</svg>\n")
	return c.b.Bytes()
}

func (c *canvas) rect(x, y, w, h float64, fill, stroke string) {
	fmt.Fprintf(&c.b, `<rect x="%s" y="%s" width="%s" height="%s" fill="%s" stroke="%s"/>`+"\n",
		num(x), num(y), num(w), num(h), fill, stroke)
}

func (c *canvas) line(x1, y1, x2, y2 float64, stroke string, width float64, dash string) {
	extra := ""
	if dash != "" {
		extra = fmt.Sprintf(` stroke-dasharray="%s"`, dash)
	}
	fmt.Fprintf(&c.b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="%s"%s/>`+"\n",
		num(x1), num(y1), num(x2), num(y2), stroke, num(width), extra)
}

// text writes a label; anchor is start, middle or end; rotate in degrees
// about the anchor point ("" for none).
func (c *canvas) text(x, y float64, s, anchor string, size float64, weight, rotate string) {
	attrs := ""
	if weight != "" {
		attrs += fmt.Sprintf(` font-weight="%s"`, weight)
	}
	if rotate != "" {
		attrs += fmt.Sprintf(` transform="rotate(%s %s %s)"`, rotate, num(x), num(y))
	}
	fmt.Fprintf(&c.b, `<text x="%s" y="%s" text-anchor="%s" font-size="%s"%s>%s</text>`+"\n",
		num(x), num(y), anchor, num(size), attrs, esc(s))
}

// series opens a group holding one data series, so that a reader of the
// SVG (and the tests) can find it by name.
func (c *canvas) series(name string) func() {
	fmt.Fprintf(&c.b, `<g class="series" data-series="%s">`+"\n", esc(name))
	return func() { c.b.WriteString("</g>\n") }
}

func (c *canvas) polyline(pts [][2]float64, stroke string) {
	if len(pts) < 2 {
		return
	}
	var sb strings.Builder
	for i, p := range pts {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(num(p[0]) + "," + num(p[1]))
	}
	fmt.Fprintf(&c.b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", sb.String(), stroke)
}

// marker draws a point with a tooltip.
func (c *canvas) marker(x, y float64, fill, tip string) {
	fmt.Fprintf(&c.b, `<circle cx="%s" cy="%s" r="3.5" fill="%s"><title>%s</title></circle>`+"\n", num(x), num(y), fill, esc(tip))
}

// legend draws one row per entry from (x, y) down.
func (c *canvas) legend(x, y float64, names, colours []string) {
	for i, n := range names {
		yy := y + float64(i)*17
		c.rect(x, yy-9, 12, 12, colours[i], "none")
		c.text(x+17, yy+1, n, "start", 12, "", "")
	}
}

// scale maps data values to pixels, linearly or logarithmically.
type scale struct {
	lo, hi float64 // data range
	p0, p1 float64 // pixel range (p0 for lo)
	log    bool
	unit   string // appended to tick labels
}

func (s scale) at(v float64) float64 {
	lo, hi := s.lo, s.hi
	if s.log {
		v, lo, hi = math.Log10(math.Max(v, s.lo)), math.Log10(lo), math.Log10(hi)
	}
	if hi == lo {
		return (s.p0 + s.p1) / 2
	}
	return s.p0 + (v-lo)/(hi-lo)*(s.p1-s.p0)
}

// ticks are the values labelled on the axis.
func (s scale) ticks() []float64 {
	if s.log {
		var out []float64
		for e := math.Floor(math.Log10(s.lo)); e <= math.Ceil(math.Log10(s.hi)); e++ {
			for _, m := range []float64{1, 2, 5} {
				v := m * math.Pow(10, e)
				if v >= s.lo*0.999 && v <= s.hi*1.001 {
					out = append(out, v)
				}
			}
		}
		return out
	}
	step := niceStep((s.hi - s.lo) / 5)
	var out []float64
	for v := math.Ceil(s.lo/step) * step; v <= s.hi+step*1e-9; v += step {
		out = append(out, v)
	}
	return out
}

// niceStep rounds a raw tick step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

// logRange widens [lo, hi] to whole 1-2-5 steps for a log axis.
func logRange(lo, hi float64) (float64, float64) {
	if lo <= 0 {
		lo = hi / 10
	}
	if hi <= 0 {
		return 1, 10
	}
	down := func(v float64) float64 {
		p := math.Pow(10, math.Floor(math.Log10(v)))
		for _, m := range []float64{5, 2, 1} {
			if m*p <= v {
				return m * p
			}
		}
		return p
	}
	up := func(v float64) float64 {
		p := math.Pow(10, math.Floor(math.Log10(v)))
		for _, m := range []float64{1, 2, 5, 10} {
			if m*p >= v {
				return m * p
			}
		}
		return 10 * p
	}
	lo, hi = down(lo), up(hi)
	if lo == hi {
		hi = lo * 10
	}
	return lo, hi
}

// frame is a plot area with its axes.
type frame struct {
	x, y             scale
	left, top, right float64
	bottom           float64
}

func newFrame(left, top, w, h float64, x, y scale) frame {
	x.p0, x.p1 = left, left+w
	y.p0, y.p1 = top+h, top
	return frame{x: x, y: y, left: left, top: top, right: left + w, bottom: top + h}
}

// axes draws the frame, the grid and the tick labels, and the axis titles.
func (f frame) axes(c *canvas, xTitle, yTitle string) {
	c.rect(f.left, f.top, f.right-f.left, f.bottom-f.top, "#ffffff", "#888888")
	for _, v := range f.x.ticks() {
		px := f.x.at(v)
		c.line(px, f.top, px, f.bottom, "#e5e5e5", 1, "")
		c.text(px, f.bottom+15, label(v)+f.x.unit, "middle", 11, "", "")
	}
	for _, v := range f.y.ticks() {
		py := f.y.at(v)
		c.line(f.left, py, f.right, py, "#e5e5e5", 1, "")
		c.text(f.left-5, py+4, label(v)+f.y.unit, "end", 11, "", "")
	}
	if xTitle != "" {
		c.text((f.left+f.right)/2, f.bottom+32, xTitle, "middle", 12, "", "")
	}
	if yTitle != "" {
		x := f.left - 48
		y := (f.top + f.bottom) / 2
		c.text(x, y, yTitle, "middle", 12, "", "-90")
	}
}

// label formats a tick value compactly: 0.95, 20, 5k, 1.2M.
func label(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e6:
		return strconv.FormatFloat(v/1e6, 'g', 3, 64) + "M"
	case a >= 1e3:
		return strconv.FormatFloat(v/1e3, 'g', 3, 64) + "k"
	case a == 0:
		return "0"
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// num formats a coordinate with at most two decimals.
func num(v float64) string {
	return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64)
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
