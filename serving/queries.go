package serving

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/livefeed/livefeed/api"
	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/serving/index"
)

// DefaultQueriesYAML is the built-in named-query file.
//
//go:embed queries.yaml
var DefaultQueriesYAML []byte

// Parameter types of named queries.
const (
	ParamString  = "string"  // one string
	ParamStrings = "strings" // a comma-separated list
	ParamNumber  = "number"  // a float
	ParamInteger = "integer" // an integer
)

// Query is a named, parameterised recommendation query (like a Rockset
// query lambda): a filter template, a formula, k and diversity, invoked as
// GET /v1/queries/{name}?user_id=…&<param>=….
type Query struct {
	Name         string     `json:"name"`
	Description  string     `json:"description,omitempty"`
	Params       []Param    `json:"params"`
	Filter       FilterSpec `json:"filter"`
	Formula      string     `json:"formula,omitempty"`
	K            int        `json:"k"`
	MaxPerSeller int        `json:"max_per_seller,omitempty"`
	OverFetch    int        `json:"overfetch,omitempty"`
	ExcludeSeen  bool       `json:"exclude_seen"`

	scorer *scorer
	params map[string]*Param
}

// Param is a named query's parameter.
type Param struct {
	Name        string `json:"name" yaml:"name"`
	Type        string `json:"type" yaml:"type"`
	Description string `json:"description,omitempty" yaml:"description"`
	Required    bool   `json:"required,omitempty" yaml:"required"`
	Default     any    `json:"default,omitempty" yaml:"default"`

	dflt *argValue
}

// FilterSpec is a named query's filter template: each set is a list of
// strings or "$param" references (or one of them), each range bound a
// number or a "$param". A reference to a parameter without a value leaves
// that part of the filter out.
type FilterSpec struct {
	Status         any         `json:"status,omitempty" yaml:"status"`
	Category       any         `json:"category,omitempty" yaml:"category"`
	Language       any         `json:"language,omitempty" yaml:"language"`
	ExcludeSellers any         `json:"exclude_sellers,omitempty" yaml:"exclude_sellers"`
	Ranges         []RangeSpec `json:"ranges,omitempty" yaml:"ranges"`
}

// RangeSpec is a range of a filter template.
type RangeSpec struct {
	Field string `json:"field" yaml:"field"`
	Min   any    `json:"min,omitempty" yaml:"min"`
	Max   any    `json:"max,omitempty" yaml:"max"`
}

type querySpec struct {
	Name         string     `yaml:"name"`
	Description  string     `yaml:"description"`
	Params       []Param    `yaml:"params"`
	Filter       FilterSpec `yaml:"filter"`
	Formula      string     `yaml:"formula"`
	K            int        `yaml:"k"`
	MaxPerSeller int        `yaml:"max_per_seller"`
	OverFetch    int        `yaml:"overfetch"`
	ExcludeSeen  bool       `yaml:"exclude_seen"`
}

type queriesFile struct {
	Version int         `yaml:"version"`
	Queries []querySpec `yaml:"queries"`
}

// QueryError is one problem in a named-query file: where (file, line,
// column, query, key path) and what.
type QueryError struct {
	File   string `json:"file,omitempty"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
	Query  string `json:"query,omitempty"`
	Path   string `json:"path,omitempty"`
	Msg    string `json:"message"`
}

func (e *QueryError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File + ":")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "%d:%d:", e.Line, e.Column)
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	if e.Query != "" {
		fmt.Fprintf(&b, "query %s: ", e.Query)
	}
	if e.Path != "" {
		fmt.Fprintf(&b, "%s: ", e.Path)
	}
	b.WriteString(e.Msg)
	return b.String()
}

// QueryErrors is every problem found in a named-query file, in file order.
type QueryErrors []*QueryError

func (es QueryErrors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// Queries is a parsed named-query file.
type Queries struct {
	byName map[string]*Query
	names  []string // file order
}

// Get returns the named query.
func (qs *Queries) Get(name string) (*Query, bool) {
	if qs == nil {
		return nil, false
	}
	q, ok := qs.byName[name]
	return q, ok
}

// All returns the queries in file order.
func (qs *Queries) All() []*Query {
	if qs == nil {
		return nil
	}
	out := make([]*Query, len(qs.names))
	for i, n := range qs.names {
		out[i] = qs.byName[n]
	}
	return out
}

// ParseQueries parses and validates a named-query file against the
// livestream features; maxK bounds k. The error is QueryErrors.
func ParseQueries(data []byte, filename string, feats *features.Set, maxK int) (*Queries, error) {
	qs, errs := parseQueries(data, filename, feats, maxK)
	if len(errs) > 0 {
		return nil, errs
	}
	return qs, nil
}

// loadQueries loads the configured file, or the built-in one minus the
// queries that do not fit the feature set (logged).
func loadQueries(path string, feats *features.Set, maxK int, log *slog.Logger) (*Queries, error) {
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading named queries: %w", err)
		}
		return ParseQueries(data, path, feats, maxK)
	}
	qs, errs := parseQueries(DefaultQueriesYAML, "serving/queries.yaml", feats, maxK)
	for _, e := range errs {
		if e.Query == "" {
			return nil, errs
		}
		log.Warn("built-in named query left out", "query", e.Query, "err", e.Error())
	}
	return qs, nil
}

var (
	queryNameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)
	paramNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
	// reservedParams are the request parameters every query takes.
	reservedParams = []string{"user_id", "k", "explain", "exclude"}
)

// parseQueries returns the valid queries and the problems; a problem with
// Query set left only that query out.
func parseQueries(data []byte, filename string, feats *features.Set, maxK int) (qs *Queries, errs QueryErrors) {
	defer func() {
		if r := recover(); r != nil {
			qs, errs = nil, QueryErrors{{File: filename, Msg: fmt.Sprintf("cannot parse YAML: %v", r)}}
		}
	}()
	fail := func(err error) QueryErrors {
		e := &QueryError{File: filename, Msg: err.Error()}
		var ye yaml.Error
		if errors.As(err, &ye) {
			e.Msg = ye.GetMessage()
			if tk := ye.GetToken(); tk != nil && tk.Position != nil {
				e.Line, e.Column = tk.Position.Line, tk.Position.Column
			}
		}
		return QueryErrors{e}
	}
	file, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, fail(err)
	}
	var body ast.Node
	for _, doc := range file.Docs {
		if doc != nil && doc.Body != nil {
			if _, comment := doc.Body.(*ast.CommentGroupNode); !comment {
				body = doc.Body
				break
			}
		}
	}
	if body == nil {
		return nil, QueryErrors{{File: filename, Line: 1, Column: 1, Msg: "empty file: want version: 1 and queries: [...]"}}
	}
	var spec queriesFile
	if err := yaml.NodeToValue(body, &spec, yaml.DisallowUnknownField()); err != nil {
		return nil, fail(err)
	}
	at := func(query, path, format string, args ...any) *QueryError {
		e := &QueryError{File: filename, Query: query, Path: path, Msg: fmt.Sprintf(format, args...)}
		e.Line, e.Column = position(file, path)
		return e
	}
	if spec.Version != 1 {
		errs = append(errs, at("", "version", "want version: 1, got %d", spec.Version))
		return nil, errs
	}
	if len(spec.Queries) == 0 {
		errs = append(errs, at("", "queries", "no queries"))
		return nil, errs
	}
	qs = &Queries{byName: map[string]*Query{}}
	for i, qspec := range spec.Queries {
		base := fmt.Sprintf("queries[%d]", i)
		q, qerrs := compileQuery(qspec, base, feats, maxK, func(path, format string, args ...any) *QueryError {
			return at(qspec.Name, path, format, args...)
		})
		if len(qerrs) == 0 {
			if _, dup := qs.byName[q.Name]; dup {
				qerrs = append(qerrs, at(q.Name, base+".name", "defined twice"))
			}
		}
		if len(qerrs) > 0 {
			for _, e := range qerrs {
				if e.Query == "" {
					e.Query = fmt.Sprintf("#%d", i+1)
				}
			}
			errs = append(errs, qerrs...)
			continue
		}
		qs.byName[q.Name] = q
		qs.names = append(qs.names, q.Name)
	}
	return qs, errs
}

// position is the line and column of the YAML node at path (a key path like
// queries[2].filter.ranges[0].min), or of its nearest ancestor present.
func position(file *ast.File, path string) (int, int) {
	for path != "" {
		if p, err := yaml.PathString("$." + path); err == nil {
			if n, err := p.FilterFile(file); err == nil && n != nil {
				if tk := n.GetToken(); tk != nil && tk.Position != nil {
					return tk.Position.Line, tk.Position.Column
				}
			}
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 1, 1 // a missing top-level key: the document
}

func compileQuery(spec querySpec, base string, feats *features.Set, maxK int, at func(path, format string, args ...any) *QueryError) (*Query, QueryErrors) {
	var errs QueryErrors
	q := &Query{Name: spec.Name, Description: spec.Description, Params: spec.Params, Filter: spec.Filter, Formula: spec.Formula,
		K: spec.K, MaxPerSeller: spec.MaxPerSeller, OverFetch: spec.OverFetch, ExcludeSeen: spec.ExcludeSeen, params: map[string]*Param{}}
	if !queryNameRE.MatchString(q.Name) {
		errs = append(errs, at(base+".name", "name %q: want lower-case letters, digits, _ or -, starting with a letter", q.Name))
	}
	// broken are parameters with a bad type or default: reported once,
	// their uses raise no more errors.
	broken := map[string]bool{}
	for i := range q.Params {
		p := &q.Params[i]
		path := fmt.Sprintf("%s.params[%d]", base, i)
		switch {
		case !paramNameRE.MatchString(p.Name):
			errs = append(errs, at(path+".name", "parameter name %q: want lower-case letters, digits or _, starting with a letter", p.Name))
			continue
		case slices.Contains(reservedParams, p.Name):
			errs = append(errs, at(path+".name", "parameter name %q is reserved (%s)", p.Name, strings.Join(reservedParams, ", ")))
			continue
		case q.params[p.Name] != nil:
			errs = append(errs, at(path+".name", "parameter %q defined twice", p.Name))
			continue
		}
		switch p.Type {
		case ParamString, ParamStrings, ParamNumber, ParamInteger:
		default:
			errs = append(errs, at(path+".type", "type %q: want string, strings, number or integer", p.Type))
			broken[p.Name] = true
			continue
		}
		if p.Default != nil {
			v, err := defaultValue(p)
			if err != nil {
				errs = append(errs, at(path+".default", "%v", err))
				broken[p.Name] = true
				continue
			}
			if p.Required {
				errs = append(errs, at(path+".required", "a required parameter has no default"))
				continue
			}
			p.dflt = v
		}
		q.params[p.Name] = p
	}
	used := map[string]bool{}
	ref := func(path string, raw string, types ...string) bool {
		name, ok := strings.CutPrefix(raw, "$")
		if !ok {
			return false
		}
		p := q.params[name]
		switch {
		case broken[name]:
		case p == nil:
			errs = append(errs, at(path, "unknown parameter $%s", name))
		case !slices.Contains(types, p.Type):
			errs = append(errs, at(path, "parameter $%s is a %s; here it must be %s", name, p.Type, strings.Join(types, " or ")))
		}
		used[name] = true
		return true
	}
	for _, set := range []struct {
		key string
		v   any
	}{{"status", spec.Filter.Status}, {"category", spec.Filter.Category}, {"language", spec.Filter.Language}, {"exclude_sellers", spec.Filter.ExcludeSellers}} {
		path := base + ".filter." + set.key
		items, ok := listOf(set.v)
		if !ok {
			errs = append(errs, at(path, "want a string, a list of strings or a $parameter"))
			continue
		}
		for j, it := range items {
			ipath := path
			if _, isList := set.v.([]any); isList {
				ipath = fmt.Sprintf("%s[%d]", path, j)
			}
			if ref(ipath, it, ParamString, ParamStrings) {
				continue
			}
			if set.key == "status" {
				if err := index.ValidateFilter(&index.Filter{Status: []events.Status{events.Status(it)}}, feats); err != nil {
					errs = append(errs, at(ipath, "%v", err))
				}
			}
		}
	}
	for j, r := range spec.Filter.Ranges {
		path := fmt.Sprintf("%s.filter.ranges[%d]", base, j)
		if r.Field != index.AttrViewersNow && r.Field != index.AttrLiveMinutes {
			if _, ok := feats.Get(r.Field); !ok {
				errs = append(errs, at(path+".field", "unknown field %q (viewers_now, live_minutes or a livestream feature name)", r.Field))
			}
		}
		if r.Min == nil && r.Max == nil {
			errs = append(errs, at(path, "%s has neither min nor max", r.Field))
		}
		for _, b := range []struct {
			key string
			v   any
		}{{"min", r.Min}, {"max", r.Max}} {
			if b.v == nil {
				continue
			}
			if s, ok := b.v.(string); ok && ref(path+"."+b.key, s, ParamNumber, ParamInteger) {
				continue
			}
			if _, ok := number(b.v); !ok {
				errs = append(errs, at(path+"."+b.key, "want a number or a $parameter, got %v", b.v))
			}
		}
	}
	if q.Formula != "" {
		numeric := map[string]bool{}
		for name, p := range q.params {
			if p.Type == ParamNumber || p.Type == ParamInteger {
				numeric[name] = true
			}
		}
		for name := range broken {
			numeric[name] = true
		}
		sc, err := newScorer(q.Formula, feats, numeric)
		if err != nil {
			errs = append(errs, at(base+".formula", "%v", err))
		} else {
			q.scorer = sc
			for _, sl := range sc.slots {
				if sl.kind == slotParam {
					used[sl.name] = true
					if p := q.params[sl.name]; p != nil && p.dflt == nil && !p.Required {
						errs = append(errs, at(base+".formula", "parameter $%s is used in the formula: give it a default or make it required", sl.name))
					}
				}
			}
		}
	}
	for i, p := range q.Params {
		if q.params[p.Name] != nil && !used[p.Name] {
			errs = append(errs, at(fmt.Sprintf("%s.params[%d].name", base, i), "parameter %q is never used", p.Name))
		}
	}
	if q.K == 0 {
		q.K = 20
	}
	if q.K < 1 || q.K > maxK {
		errs = append(errs, at(base+".k", "k %d: want 1..%d", q.K, maxK))
	}
	if q.MaxPerSeller < 0 {
		errs = append(errs, at(base+".max_per_seller", "want >= 0"))
	}
	if q.OverFetch < 0 || q.OverFetch > MaxOverFetch {
		errs = append(errs, at(base+".overfetch", "want 0..%d (0: the default %d)", MaxOverFetch, DefaultOverFetch))
	}
	return q, errs
}

// listOf returns a filter set's items: nil for none, one string, or a list
// of strings.
func listOf(v any) ([]string, bool) {
	switch x := v.(type) {
	case nil:
		return nil, true
	case string:
		return []string{x}, true
	case []any:
		out := make([]string, 0, len(x))
		for _, it := range x {
			s, ok := it.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	case float64:
		return x, !math.IsNaN(x) && !math.IsInf(x, 0)
	}
	return 0, false
}

// argValue is a parameter's value for one request.
type argValue struct {
	strs []string // string, strings
	num  float64  // number, integer
}

func defaultValue(p *Param) (*argValue, error) {
	switch p.Type {
	case ParamString:
		s, ok := p.Default.(string)
		if !ok {
			return nil, fmt.Errorf("default %v: want a string", p.Default)
		}
		return &argValue{strs: []string{s}}, nil
	case ParamStrings:
		l, ok := listOf(p.Default)
		if !ok {
			return nil, fmt.Errorf("default %v: want a list of strings", p.Default)
		}
		return &argValue{strs: l}, nil
	default:
		n, ok := number(p.Default)
		if !ok || p.Type == ParamInteger && n != math.Trunc(n) {
			return nil, fmt.Errorf("default %v: want a%s %s", p.Default, map[bool]string{true: "n", false: ""}[p.Type == ParamInteger], p.Type)
		}
		return &argValue{num: n}, nil
	}
}

// parseArg parses a request's value of p.
func parseArg(p *Param, raw string) (*argValue, error) {
	switch p.Type {
	case ParamString:
		return &argValue{strs: []string{raw}}, nil
	case ParamStrings:
		return &argValue{strs: splitList(raw)}, nil
	case ParamInteger:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return nil, badRequest("%s: want an integer, got %q", p.Name, raw)
		}
		return &argValue{num: float64(n)}, nil
	default:
		n, err := strconv.ParseFloat(raw, 64)
		if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
			return nil, badRequest("%s: want a number, got %q", p.Name, raw)
		}
		return &argValue{num: n}, nil
	}
}

// filter builds the query's filter from the request's arguments.
func (q *Query) filter(args map[string]*argValue) *index.Filter {
	strs := func(v any) []string {
		items, _ := listOf(v)
		var out []string
		for _, it := range items {
			if name, ok := strings.CutPrefix(it, "$"); ok {
				if a := args[name]; a != nil {
					out = append(out, a.strs...)
				}
				continue
			}
			out = append(out, it)
		}
		return out
	}
	f := &index.Filter{
		Categories:     strs(q.Filter.Category),
		Languages:      strs(q.Filter.Language),
		ExcludeSellers: strs(q.Filter.ExcludeSellers),
	}
	for _, st := range strs(q.Filter.Status) {
		f.Status = append(f.Status, events.Status(st))
	}
	if len(f.Status) == 0 {
		f.Status = []events.Status{events.StatusLive}
	}
	bound := func(v any) *float64 {
		if s, ok := v.(string); ok {
			if a := args[strings.TrimPrefix(s, "$")]; a != nil {
				x := a.num
				return &x
			}
			return nil
		}
		if x, ok := number(v); ok {
			return &x
		}
		return nil
	}
	for _, r := range q.Filter.Ranges {
		rg := index.Range{Field: r.Field, Min: bound(r.Min), Max: bound(r.Max)}
		if rg.Min != nil || rg.Max != nil {
			f.Ranges = append(f.Ranges, rg)
		}
	}
	return f
}

func (s *Service) handleListQueries(w http.ResponseWriter, r *http.Request) error {
	out := api.QueryList{Queries: []api.NamedQuery{}}
	for _, q := range s.queries.All() {
		nq, err := q.describe()
		if err != nil {
			return err
		}
		out.Queries = append(out.Queries, nq)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// describe is the query as GET /v1/queries lists it.
func (q *Query) describe() (api.NamedQuery, error) {
	filter, err := json.Marshal(q.Filter)
	if err != nil {
		return api.NamedQuery{}, fmt.Errorf("encoding query %s's filter: %w", q.Name, err)
	}
	nq := api.NamedQuery{Name: q.Name, Description: q.Description, Params: make([]api.Param, len(q.Params)), Filter: filter,
		Formula: q.Formula, K: q.K, MaxPerSeller: q.MaxPerSeller, OverFetch: q.OverFetch, ExcludeSeen: q.ExcludeSeen}
	for i, p := range q.Params {
		nq.Params[i] = api.Param{Name: p.Name, Type: p.Type, Description: p.Description, Required: p.Required}
		if d := p.dflt; d != nil {
			var a api.Arg
			switch p.Type {
			case ParamString:
				a = api.String(d.strs[0])
			case ParamStrings:
				a = api.Strings(d.strs...)
			default:
				a = api.Number(d.num)
			}
			nq.Params[i].Default = &a
		}
	}
	return nq, nil
}

func (s *Service) handleQuery(w http.ResponseWriter, r *http.Request) error {
	start := time.Now()
	q, ok := s.queries.Get(r.PathValue("name"))
	if !ok {
		var names []string
		for _, q := range s.queries.All() {
			names = append(names, q.Name)
		}
		sort.Strings(names)
		return notFound("no named query %q (have: %s)", r.PathValue("name"), strings.Join(names, ", "))
	}
	vals := r.URL.Query()
	req, userID, err := s.queryRequest(q, vals)
	if err != nil {
		return err
	}
	resp, err := s.recommend(userID, req, q.ExcludeSeen, start)
	if err != nil {
		return err
	}
	resp.Query = q.Name
	s.metrics.namedQueries.WithLabelValues(q.Name).Inc()
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// QueryRequest is the body of POST /v1/queries/{name} (api.QueryRequest).
type QueryRequest = api.QueryRequest

func (s *Service) handleQueryPost(w http.ResponseWriter, r *http.Request) error {
	start := time.Now()
	q, ok := s.queries.Get(r.PathValue("name"))
	if !ok {
		return notFound("no named query %q (GET /v1/queries lists them)", r.PathValue("name"))
	}
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		return err // over MaxBodyBytes: 413
	}
	var body QueryRequest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		if errors.Is(err, api.ErrArg) {
			return badRequest("%s", badArg(raw))
		}
		return badRequest("body: %v", err)
	}
	vals := url.Values{"user_id": {body.UserID}, "exclude": {strings.Join(body.Exclude, ",")}}
	if body.K != 0 {
		vals.Set("k", strconv.Itoa(body.K))
	}
	if body.Explain {
		vals.Set("explain", "true")
	}
	for name, v := range body.Params {
		if slices.Contains(reservedParams, name) {
			return badRequest("params.%s: give %s at the top level of the body", name, name)
		}
		vals.Set(name, v.Raw())
	}
	req, userID, err := s.queryRequest(q, vals)
	if err != nil {
		return err
	}
	resp, err := s.recommend(userID, req, q.ExcludeSeen, start)
	if err != nil {
		return err
	}
	resp.Query = q.Name
	s.metrics.namedQueries.WithLabelValues(q.Name).Inc()
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// badArg names the parameter of a POST /v1/queries body whose value is not
// an api.Arg.
func badArg(body []byte) string {
	var raw struct {
		Params map[string]json.RawMessage `json:"params"`
	}
	if json.Unmarshal(body, &raw) == nil {
		for name, v := range raw.Params {
			var a api.Arg
			if a.UnmarshalJSON(v) != nil {
				return fmt.Sprintf("params.%s: %v", name, api.ErrArg)
			}
		}
	}
	return "params: " + api.ErrArg.Error()
}

// queryRequest binds a named query's parameters from a request.
func (s *Service) queryRequest(q *Query, vals url.Values) (knn, string, error) {
	var req knn
	for name := range vals {
		if q.params[name] == nil && !slices.Contains(reservedParams, name) {
			declared := make([]string, 0, len(q.Params))
			for _, p := range q.Params {
				declared = append(declared, p.Name)
			}
			return req, "", badRequest("unknown parameter %q: query %s takes %s and its parameters: %s",
				name, q.Name, strings.Join(reservedParams, ", "), strings.Join(declared, ", "))
		}
	}
	userID := vals.Get("user_id")
	if userID == "" {
		return req, "", badRequest("user_id: required")
	}
	var err error
	if req.k, err = s.parseK(vals.Get("k"), q.K); err != nil {
		return req, "", err
	}
	if req.explain, err = api.BoolParam(vals, "explain"); err != nil {
		return req, "", badRequest("%v", err)
	}
	args := make(map[string]*argValue, len(q.Params))
	nums := map[string]float64{}
	for _, p := range q.Params {
		a := p.dflt
		if raw := vals.Get(p.Name); raw != "" {
			if a, err = parseArg(q.params[p.Name], raw); err != nil {
				return req, "", err
			}
		} else if p.Required {
			return req, "", badRequest("%s: required (%s)", p.Name, p.Type)
		}
		if a != nil {
			args[p.Name] = a
			nums[p.Name] = a.num
		}
	}
	req.filter = q.filter(args)
	req.filter.ExcludeStreams = splitList(vals.Get("exclude"))
	if err := s.checkFilter(req.filter, "filter"); err != nil {
		return req, "", err
	}
	req.rank = &ranking{scorer: q.scorer, params: nums, maxPerSeller: q.MaxPerSeller, overFetch: q.OverFetch}
	if req.rank.overFetch == 0 {
		req.rank.overFetch = DefaultOverFetch
	}
	return req, userID, nil
}
