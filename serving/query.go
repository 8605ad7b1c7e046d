package serving

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/serving/index"
)

func splitList(v string) []string {
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

// filterFromQuery reads a filter from URL parameters:
//
//	status=live,scheduled  category=a,b  language=en  exclude_sellers=s1,s2
//	min_viewers=10  min.<field>=x  max.<field>=y
//
// status defaults to live. other are the endpoint's parameters besides the
// filter's; any other parameter is an error.
func filterFromQuery(q url.Values, other map[string]bool) (*index.Filter, error) {
	f := &index.Filter{
		Categories:     splitList(q.Get("category")),
		Languages:      splitList(q.Get("language")),
		ExcludeSellers: splitList(q.Get("exclude_sellers")),
	}
	for _, s := range splitList(q.Get("status")) {
		f.Status = append(f.Status, events.Status(s))
	}
	if len(f.Status) == 0 {
		f.Status = []events.Status{events.StatusLive}
	}
	ranges := map[string]*index.Range{}
	get := func(field string) *index.Range {
		if r, ok := ranges[field]; ok {
			return r
		}
		r := &index.Range{Field: field}
		ranges[field] = r
		return r
	}
	parse := func(param, raw string) (*float64, error) {
		v, err := strconv.ParseFloat(raw, 64)
		if err != nil || v != v {
			return nil, badRequest("%s: want a number, got %q", param, raw)
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
			get(index.AttrViewersNow).Min, err = parse(param, vals[0])
		case strings.HasPrefix(param, "min."):
			get(strings.TrimPrefix(param, "min.")).Min, err = parse(param, vals[0])
		case strings.HasPrefix(param, "max."):
			get(strings.TrimPrefix(param, "max.")).Max, err = parse(param, vals[0])
		case param == "status", param == "category", param == "language", param == "exclude_sellers", other[param]:
		default:
			return nil, badRequest("unknown parameter %q", param)
		}
		if err != nil {
			return nil, err
		}
	}
	for _, r := range ranges {
		f.Ranges = append(f.Ranges, *r)
	}
	return f, nil
}
