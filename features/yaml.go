package features

import (
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// Parse reads a features file (YAML, see README.md) and validates every
// definition. Its error is Errors, each with the line and column of the
// offending key or value and a suggested fix.
func Parse(data []byte, opts ...Option) ([]Definition, error) {
	defs, _, err := parseYAML(data, makeOptions(opts), nil)
	return defs, err
}

// ParseFile reads and parses a features file.
func ParseFile(path string, opts ...Option) ([]Definition, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, append([]Option{WithFilename(path)}, opts...)...)
}

// Load parses a features file and compiles it into a Set.
func Load(data []byte, opts ...Option) (*Set, error) {
	defs, err := Parse(data, opts...)
	if err != nil {
		return nil, err
	}
	return Compile(defs, opts...)
}

var (
	topKeys     = []string{"version", "defaults", "features"}
	defaultKeys = []string{"entity", "lateness"}
	featureKeys = []string{"name", "description", "entity", "sources", "source", "filter", "field", "aggregation", "window",
		"lateness", "k", "p", "half_life", "per", "precision", "capacity"}
	windowKeys = []string{"type", "size", "hop", "bucket", "emit"}
)

type yamlParser struct {
	o    options
	errs Errors
}

func (p *yamlParser) errAt(n ast.Node, feature, path, fix, format string, args ...any) {
	e := &Error{File: p.o.filename, Feature: feature, Path: path, Msg: fmt.Sprintf(format, args...), Fix: fix}
	if pos := position(n); pos != nil {
		e.Line, e.Column = pos.Line, pos.Column
	}
	p.errs = append(p.errs, e)
}

func position(n ast.Node) *token.Position {
	if n == nil {
		return nil
	}
	if mv, ok := n.(*ast.MappingValueNode); ok && mv.Key != nil {
		n = mv.Key
	}
	tk := n.GetToken()
	if tk == nil || tk.Position == nil {
		return nil
	}
	return tk.Position
}

// parseYAML parses data; extra lists more top-level keys allowed (and
// returned by name) for scenario files.
func parseYAML(data []byte, o options, extra []string) (defs []Definition, more map[string]ast.Node, err error) {
	defer func() {
		if r := recover(); r != nil {
			defs, more, err = nil, nil, Errors{{File: o.filename, Msg: fmt.Sprintf("cannot parse YAML: %v", r)}}
		}
	}()
	p := &yamlParser{o: o}
	file, perr := parser.ParseBytes(data, 0)
	if perr != nil {
		e := &Error{File: o.filename, Msg: "YAML syntax: " + perr.Error()}
		var se *yaml.SyntaxError
		if errors.As(perr, &se) {
			e.Msg = "YAML syntax: " + se.GetMessage()
			if tk := se.GetToken(); tk != nil && tk.Position != nil {
				e.Line, e.Column = tk.Position.Line, tk.Position.Column
			}
		}
		if strings.Contains(e.Msg, "tag") || strings.Contains(e.Msg, "!") {
			e.Fix = `quote expressions that start with ! or [, e.g. filter: '!(type == "bid")'`
		}
		return nil, nil, Errors{e}
	}
	var body ast.Node
	for _, doc := range file.Docs {
		if doc == nil || doc.Body == nil {
			continue
		}
		if _, isComment := doc.Body.(*ast.CommentGroupNode); isComment {
			continue
		}
		if body != nil {
			p.errAt(doc.Body, "", "", "keep one document", "more than one YAML document")
			break
		}
		body = doc.Body
	}
	if body == nil {
		return nil, nil, Errors{{File: o.filename, Line: 1, Column: 1, Msg: "empty file: no features", Fix: "features: [...]"}}
	}
	top, ok := p.mapping(body, "", "")
	if !ok {
		return nil, nil, p.errs
	}
	allowed := append(append([]string{}, topKeys...), extra...)
	var featuresNode ast.Node
	dflt := Definition{}
	more = map[string]ast.Node{}
	for _, kv := range top {
		key := keyName(kv)
		switch key {
		case "version":
			if v, ok := p.integer(kv.Value, "", "version"); ok && v != 1 {
				p.errAt(kv.Value, "", "version", "version: 1", "unknown version %d", v)
			}
		case "defaults":
			m, ok := p.mapping(kv.Value, "", "defaults")
			if !ok {
				continue
			}
			for _, dkv := range m {
				switch dk := keyName(dkv); dk {
				case "entity":
					dflt.Entity, _ = p.str(dkv.Value, "", "defaults.entity")
				case "lateness":
					dflt.Lateness, _ = p.duration(dkv.Value, "", "defaults.lateness")
					if dflt.Lateness == 0 {
						dflt.Lateness = -1 // explicit zero
					}
				default:
					p.errAt(dkv, "", "defaults", didYouMean(dk, defaultKeys), "unknown key %q in defaults", dk)
				}
			}
		case "features":
			featuresNode = kv.Value
		default:
			if contains(extra, key) {
				more[key] = kv.Value
				continue
			}
			p.errAt(kv, "", "", didYouMean(key, allowed), "unknown top-level key %q", key)
		}
	}
	if featuresNode == nil {
		p.errAt(body, "", "features", "add a features: list", "no features key")
		return nil, more, p.errs
	}
	seq, ok := unwrap(featuresNode).(*ast.SequenceNode)
	if !ok {
		if _, null := unwrap(featuresNode).(*ast.NullNode); null {
			p.errAt(featuresNode, "", "features", "list at least one feature", "features is empty")
		} else {
			p.errAt(featuresNode, "", "features", "make it a list: features: [- name: ...]", "features must be a list")
		}
		return nil, more, p.errs
	}
	names := map[string]bool{}
	for _, item := range seq.Values {
		d, pos, ok := p.feature(item, dflt)
		exprNodes := map[string]ast.Node{}
		if entries, ok := unwrap(item).(*ast.MappingNode); ok {
			for _, kv := range entries.Values {
				if k := keyName(kv); k == "filter" || k == "field" {
					exprNodes[k] = kv.Value
				}
			}
		}
		if !ok {
			continue
		}
		errs := d.check(p.o.retention)
		for _, e := range errs {
			e.File = p.o.filename
			if n := lookupPos(pos, e.Path); n != nil {
				e.Line, e.Column = n.Line, n.Column
				if e.exprPos > 0 && exprNodes[e.Path] != nil {
					e.Column += exprColumn(exprNodes[e.Path], e.exprPos-1)
				}
			}
		}
		p.errs = append(p.errs, errs...)
		if len(errs) > 0 {
			continue
		}
		if names[d.Name] {
			p.errAt(nil, d.Name, "name", "a changed definition gets a new name (e.g. "+d.Name+"_v2)", "defined twice")
			if n := pos["name"]; n != nil {
				e := p.errs[len(p.errs)-1]
				e.Line, e.Column = n.Line, n.Column
			}
			continue
		}
		names[d.Name] = true
		defs = append(defs, d)
	}
	if len(p.errs) > 0 {
		sort.SliceStable(p.errs, func(i, j int) bool {
			a, b := p.errs[i], p.errs[j]
			return a.Line < b.Line || a.Line == b.Line && a.Column < b.Column
		})
		return nil, more, p.errs
	}
	return defs, more, nil
}

// exprColumn is the column offset of byte off of an expression written as
// the scalar n: exact for plain and simply quoted one-line scalars.
func exprColumn(n ast.Node, off int) int {
	s, ok := unwrap(n).(*ast.StringNode)
	if !ok || s.Token == nil || strings.ContainsAny(s.Value, "\n") {
		return 0
	}
	switch s.Token.Type {
	case token.DoubleQuoteType, token.SingleQuoteType:
		if strings.ContainsAny(s.Value, `"'\`) {
			return 1
		}
		return off + 1
	}
	return off
}

func lookupPos(pos map[string]*token.Position, path string) *token.Position {
	for path != "" {
		if n := pos[path]; n != nil {
			return n
		}
		i := strings.LastIndexByte(path, '.')
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return pos[""]
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func unwrap(n ast.Node) ast.Node {
	for i := 0; i < 16; i++ {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			return n
		default:
			return n
		}
	}
	return n
}

func keyName(kv *ast.MappingValueNode) string {
	if kv.Key == nil {
		return ""
	}
	if s, ok := unwrap(kv.Key).(ast.ScalarNode); ok {
		return fmt.Sprint(s.GetValue())
	}
	return kv.Key.String()
}

// mapping returns the entries of a mapping node.
func (p *yamlParser) mapping(n ast.Node, feature, path string) ([]*ast.MappingValueNode, bool) {
	switch v := unwrap(n).(type) {
	case *ast.MappingNode:
		return v.Values, true
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{v}, true
	case *ast.AliasNode:
		p.errAt(n, feature, path, "write the mapping out", "YAML aliases are not supported")
		return nil, false
	}
	what := "a mapping (key: value lines)"
	p.errAt(n, feature, path, "", "%s must be %s", orTop(path), what)
	return nil, false
}

func orTop(path string) string {
	if path == "" {
		return "the file"
	}
	return path
}

// scalar returns a scalar's text.
func (p *yamlParser) scalar(n ast.Node, feature, path string) (string, bool) {
	switch v := unwrap(n).(type) {
	case *ast.StringNode:
		return v.Value, true
	case *ast.LiteralNode:
		if v.Value == nil {
			return "", true
		}
		return strings.TrimRight(v.Value.Value, "\n"), true
	case *ast.NullNode:
		return "", true
	case *ast.TagNode:
		p.errAt(n, feature, path, fmt.Sprintf("quote it: %s: '%s'", lastKey(path), strings.TrimSpace(v.String())),
			"a value starting with ! is a YAML tag")
		return "", false
	case *ast.SequenceNode:
		if path == "filter" || path == "field" {
			p.errAt(n, feature, path, fmt.Sprintf("quote it: %s: '%s'", path, strings.TrimSpace(v.String())), "a value starting with [ is a YAML list")
			return "", false
		}
	case *ast.AliasNode:
		p.errAt(n, feature, path, "write the value out", "YAML aliases are not supported")
		return "", false
	case ast.ScalarNode:
		return fmt.Sprint(v.GetValue()), true
	}
	p.errAt(n, feature, path, "", "%s must be a single value", path)
	return "", false
}

func lastKey(path string) string {
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[i+1:]
	}
	return path
}

func (p *yamlParser) str(n ast.Node, feature, path string) (string, bool) {
	switch unwrap(n).(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		p.errAt(n, feature, path, "quote it if it contains \": \"", "%s must be a string, not a mapping", path)
		return "", false
	}
	s, ok := p.scalar(n, feature, path)
	return strings.TrimSpace(s), ok
}

func (p *yamlParser) integer(n ast.Node, feature, path string) (int, bool) {
	s, ok := p.scalar(n, feature, path)
	if !ok {
		return 0, false
	}
	v, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		p.errAt(n, feature, path, "e.g. "+lastKey(path)+": 10", "%s must be a whole number, got %q", path, s)
		return 0, false
	}
	return v, true
}

func (p *yamlParser) number(n ast.Node, feature, path string) (float64, bool) {
	s, ok := p.scalar(n, feature, path)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		p.errAt(n, feature, path, "e.g. p: 0.9", "%s must be a number, got %q", path, s)
		return 0, false
	}
	return v, true
}

func (p *yamlParser) duration(n ast.Node, feature, path string) (time.Duration, bool) {
	s, ok := p.scalar(n, feature, path)
	if !ok {
		return 0, false
	}
	d, err := ParseDuration(s)
	if err != nil {
		fix := "e.g. 30s, 5m, 1h, 7d"
		if _, nerr := strconv.ParseFloat(strings.TrimSpace(s), 64); nerr == nil && s != "0" {
			fix = fmt.Sprintf("add a unit: %ss or %sm", strings.TrimSpace(s), strings.TrimSpace(s))
		}
		p.errAt(n, feature, path, fix, "%s: bad duration %q", path, s)
		return 0, false
	}
	return d, true
}

func (p *yamlParser) stringList(n ast.Node, feature, path string) ([]string, bool) {
	if seq, ok := unwrap(n).(*ast.SequenceNode); ok {
		var out []string
		for _, v := range seq.Values {
			s, ok := p.str(v, feature, path)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	s, ok := p.str(n, feature, path)
	if !ok {
		return nil, false
	}
	return []string{s}, true
}

// feature reads one feature mapping. pos maps key paths to positions.
func (p *yamlParser) feature(n ast.Node, dflt Definition) (Definition, map[string]*token.Position, bool) {
	var d Definition
	pos := map[string]*token.Position{"": position(n)}
	entries, ok := p.mapping(n, "", "features[]")
	if !ok {
		return d, nil, false
	}
	for _, kv := range entries {
		if keyName(kv) == "name" {
			d.Name, _ = p.str(kv.Value, "", "name")
		}
	}
	nerr := len(p.errs)
	hasLateness, hasWindow := false, false
	for _, kv := range entries {
		key := keyName(kv)
		pos[key] = position(kv.Value)
		if pos[key] == nil {
			pos[key] = position(kv)
		}
		v := kv.Value
		switch key {
		case "name":
		case "description":
			d.Description, _ = p.str(v, d.Name, key)
		case "entity":
			d.Entity, _ = p.str(v, d.Name, key)
		case "sources", "source":
			if d.Sources != nil {
				p.errAt(kv, d.Name, key, "use one sources: list", "both source and sources given")
				continue
			}
			d.Sources, _ = p.stringList(v, d.Name, "sources")
			pos["sources"] = pos[key]
		case "filter":
			d.Filter, _ = p.str(v, d.Name, key)
		case "field":
			d.Field, _ = p.str(v, d.Name, key)
		case "aggregation":
			s, _ := p.str(v, d.Name, key)
			d.Aggregation = Aggregation(s)
		case "window":
			hasWindow = true
			d.Window, _ = p.window(v, d.Name, pos)
		case "lateness":
			hasLateness = true
			d.Lateness, _ = p.duration(v, d.Name, key)
		case "k":
			d.K, _ = p.integer(v, d.Name, key)
		case "p":
			d.P, _ = p.number(v, d.Name, key)
		case "half_life":
			d.HalfLife, _ = p.duration(v, d.Name, key)
		case "per":
			d.Per, _ = p.duration(v, d.Name, key)
		case "precision":
			d.Precision, _ = p.integer(v, d.Name, key)
		case "capacity":
			d.Capacity, _ = p.integer(v, d.Name, key)
		default:
			p.errAt(kv, d.Name, key, didYouMean(key, featureKeys), "unknown key %q", key)
		}
	}
	if d.Entity == "" {
		d.Entity = dflt.Entity
	}
	if !hasLateness {
		switch {
		case dflt.Lateness > 0:
			d.Lateness = dflt.Lateness
		case dflt.Lateness < 0:
			d.Lateness = 0
		default:
			p.errAt(n, d.Name, "lateness", "add lateness: 2m (how late an event may arrive), or defaults: {lateness: 2m}",
				"lateness required: there is no hidden default")
		}
	}
	if !hasWindow {
		if d.Aggregation.decayed() {
			d.Window = AllTimeWindow()
		} else {
			p.errAt(n, d.Name, "window", "e.g. window: {type: sliding, size: 5m, hop: 30s}, or window: all_time", "window required")
		}
	}
	return d, pos, len(p.errs) == nerr
}

func (p *yamlParser) window(n ast.Node, feature string, pos map[string]*token.Position) (Window, bool) {
	if s, ok := unwrap(n).(*ast.StringNode); ok {
		switch s.Value {
		case "all_time", "all-time", "alltime":
			return AllTimeWindow(), true
		}
		p.errAt(n, feature, "window", "window: all_time, or window: {type: sliding, size: 5m, hop: 30s}", "unknown window %q", s.Value)
		return Window{}, false
	}
	entries, ok := p.mapping(n, feature, "window")
	if !ok {
		return Window{}, false
	}
	var w Window
	typ := ""
	var emitNode ast.Node
	emit := ""
	for _, kv := range entries {
		key := keyName(kv)
		pos["window."+key] = position(kv.Value)
		switch key {
		case "type":
			typ, _ = p.str(kv.Value, feature, "window.type")
		case "size":
			w.Size, _ = p.duration(kv.Value, feature, "window.size")
		case "hop", "bucket":
			w.Bucket, _ = p.duration(kv.Value, feature, "window.hop")
			pos["window.hop"] = pos["window."+key]
		case "emit":
			emitNode = kv.Value
			emit, _ = p.str(kv.Value, feature, "window.emit")
		default:
			p.errAt(kv, feature, "window", didYouMean(key, windowKeys), "unknown window key %q", key)
		}
	}
	switch typ {
	case "sliding", "hopping":
		w.Kind = Sliding
	case "tumbling":
		w.Kind = Tumbling
	case "all_time":
		w.Kind = AllTime
	case "":
		p.errAt(n, feature, "window.type", "type: sliding, tumbling or all_time", "window type required")
		return w, false
	default:
		p.errAt(n, feature, "window.type", didYouMean(typ, []string{"sliding", "tumbling", "all_time"}), "unknown window type %q", typ)
		return w, false
	}
	switch emit {
	case "", "complete":
	case "current":
		w.Emit = Current
	default:
		p.errAt(emitNode, feature, "window.emit", didYouMean(emit, []string{"complete", "current"}), "unknown emit %q", emit)
	}
	if w.Kind == Tumbling && emitNode == nil {
		w.Emit = Complete
	}
	if w.Kind != Tumbling && emitNode != nil {
		p.errAt(emitNode, feature, "window.emit", "remove emit", "emit applies to tumbling windows only")
	}
	return w, true
}
