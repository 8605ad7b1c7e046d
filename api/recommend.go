package api

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// RecommendationsRequest is GET /v1/recommendations: the top live streams
// for a user. Its URL form is Query; the server reads it with
// ParseRecommendationsRequest, so both ends share one encoding.
type RecommendationsRequest struct {
	UserID string // required
	// K is the number of results (1..the server's max, 200 by default);
	// 0: the server's default (20).
	K int
	// Filter restricts the candidates; Status empty means live. Its
	// ExcludeStreams go out as exclude. One range per field.
	Filter Filter
	// ExcludeSeen leaves out the streams the user recently engaged with.
	ExcludeSeen bool
	// Exclude lists stream ids to leave out.
	Exclude []string
	// Formula re-ranks the candidates (README, "Formula language");
	// MaxPerSeller caps results per seller (0: no cap); OverFetch is the
	// candidates fetched per result when re-ranking (0: the default, 10).
	Formula      string
	MaxPerSeller int
	OverFetch    int
	// Explain asks for the plan, partitions and ranking statistics.
	Explain bool
}

// filterParams are the URL parameters of a filter besides min./max.
var filterParams = []string{"status", "category", "language", "exclude_sellers", "min_viewers"}

// recommendationParams are the URL parameters of GET /v1/recommendations
// besides the filter's.
var recommendationParams = []string{"user_id", "k", "exclude_seen", "exclude", "explain", "formula", "max_per_seller", "overfetch"}

// Query is the request's URL query.
func (r RecommendationsRequest) Query() url.Values {
	q := FilterQuery(r.Filter)
	q.Set("user_id", r.UserID)
	if r.K != 0 {
		q.Set("k", strconv.Itoa(r.K))
	}
	if r.ExcludeSeen {
		q.Set("exclude_seen", "true")
	}
	if ex := append(slices.Clone(r.Filter.ExcludeStreams), r.Exclude...); len(ex) > 0 {
		q.Set("exclude", strings.Join(ex, ","))
	}
	if r.Formula != "" {
		q.Set("formula", r.Formula)
	}
	if r.MaxPerSeller != 0 {
		q.Set("max_per_seller", strconv.Itoa(r.MaxPerSeller))
	}
	if r.OverFetch != 0 {
		q.Set("overfetch", strconv.Itoa(r.OverFetch))
	}
	if r.Explain {
		q.Set("explain", "true")
	}
	return q
}

// ParseRecommendationsRequest reads a GET /v1/recommendations query. Any
// parameter it does not know is an error; so is a malformed number or
// bool. Limits (k's range, filter sizes) are the server's to check.
func ParseRecommendationsRequest(q url.Values) (RecommendationsRequest, error) {
	var r RecommendationsRequest
	f, err := ParseFilterQuery(q, recommendationParams...)
	if err != nil {
		return r, err
	}
	r.Filter = *f
	if r.UserID = q.Get("user_id"); r.UserID == "" {
		return r, fmt.Errorf("user_id: required")
	}
	for name, dst := range map[string]*int{"k": &r.K, "max_per_seller": &r.MaxPerSeller, "overfetch": &r.OverFetch} {
		if *dst, err = intParam(q, name); err != nil {
			return r, err
		}
	}
	for name, dst := range map[string]*bool{"explain": &r.Explain, "exclude_seen": &r.ExcludeSeen} {
		if *dst, err = BoolParam(q, name); err != nil {
			return r, err
		}
	}
	r.Exclude = SplitList(q.Get("exclude"))
	r.Formula = q.Get("formula")
	return r, nil
}

// FilterQuery is a filter's URL form:
//
//	status=live,scheduled  category=a,b  language=en  exclude_sellers=s1,s2
//	min.<field>=x  max.<field>=y
//
// (ExcludeStreams has no URL form of its own: requests carry it as
// exclude.)
func FilterQuery(f Filter) url.Values {
	q := url.Values{}
	list := func(name string, vs []string) {
		if len(vs) > 0 {
			q.Set(name, strings.Join(vs, ","))
		}
	}
	status := make([]string, len(f.Status))
	for i, s := range f.Status {
		status[i] = string(s)
	}
	list("status", status)
	list("category", f.Categories)
	list("language", f.Languages)
	list("exclude_sellers", f.ExcludeSellers)
	num := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	for _, r := range f.Ranges {
		if r.Min != nil {
			q.Set("min."+r.Field, num(*r.Min))
		}
		if r.Max != nil {
			q.Set("max."+r.Field, num(*r.Max))
		}
	}
	return q
}

// ParseFilterQuery reads a filter from URL parameters (see FilterQuery;
// min_viewers=n is min.viewers_now=n). Status defaults to live. other are
// the endpoint's parameters besides the filter's; any other parameter is an
// error. Ranges come out sorted by field.
func ParseFilterQuery(q url.Values, other ...string) (*Filter, error) {
	f := &Filter{
		Categories:     SplitList(q.Get("category")),
		Languages:      SplitList(q.Get("language")),
		ExcludeSellers: SplitList(q.Get("exclude_sellers")),
	}
	for _, s := range SplitList(q.Get("status")) {
		f.Status = append(f.Status, Status(s))
	}
	if len(f.Status) == 0 {
		f.Status = []Status{StatusLive}
	}
	ranges := map[string]*Range{}
	get := func(field string) *Range {
		if r, ok := ranges[field]; ok {
			return r
		}
		r := &Range{Field: field}
		ranges[field] = r
		return r
	}
	parse := func(param, raw string) (*float64, error) {
		v, err := strconv.ParseFloat(raw, 64)
		if err != nil || v != v {
			return nil, fmt.Errorf("%s: want a number, got %q", param, raw)
		}
		return &v, nil
	}
	for param, vals := range q {
		if len(vals) == 0 {
			continue
		}
		var err error
		switch {
		case param == "min_viewers":
			get(AttrViewersNow).Min, err = parse(param, vals[0])
		case strings.HasPrefix(param, "min."):
			get(strings.TrimPrefix(param, "min.")).Min, err = parse(param, vals[0])
		case strings.HasPrefix(param, "max."):
			get(strings.TrimPrefix(param, "max.")).Max, err = parse(param, vals[0])
		case slices.Contains(filterParams, param), slices.Contains(other, param):
		default:
			return nil, fmt.Errorf("unknown parameter %q", param)
		}
		if err != nil {
			return nil, err
		}
	}
	fields := make([]string, 0, len(ranges))
	for field := range ranges {
		fields = append(fields, field)
	}
	slices.Sort(fields)
	for _, field := range fields {
		f.Ranges = append(f.Ranges, *ranges[field])
	}
	return f, nil
}

// SplitList splits a comma-separated parameter, trimming spaces and
// dropping empty items.
func SplitList(v string) []string {
	if v == "" {
		return nil
	}
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func intParam(q url.Values, name string) (int, error) {
	raw := q.Get(name)
	if raw == "" {
		return 0, nil
	}
	v, err := strconv.Atoi(raw)
	if err != nil {
		return 0, fmt.Errorf("%s: want an integer, got %q", name, raw)
	}
	return v, nil
}

// BoolParam reads a boolean query parameter: empty, "false" or "0" is
// false, "true" or "1" true; anything else an error naming the parameter.
func BoolParam(q url.Values, name string) (bool, error) {
	switch raw := q.Get(name); raw {
	case "", "false", "0":
		return false, nil
	case "true", "1":
		return true, nil
	default:
		return false, fmt.Errorf("%s: want true or false, got %q", name, raw)
	}
}
