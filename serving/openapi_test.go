package serving_test

import (
	"context"
	"io"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/livefeed/livefeed/api"
	"github.com/livefeed/livefeed/serving"
	"github.com/livefeed/livefeed/serving/drift"
	"github.com/livefeed/livefeed/serving/servingtest"
)

// loadDoc parses serving/openapi.json and makes it strict: an object schema
// that lists properties and says nothing of others allows no others, so a
// field the server sends and the document does not list fails validation.
func loadDoc(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(serving.OpenAPI)
	if err != nil {
		t.Fatalf("loading openapi.json: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI 3 document: %v", err)
	}
	no := false
	seen := map[*openapi3.Schema]bool{}
	var strict func(*openapi3.SchemaRef)
	strict = func(ref *openapi3.SchemaRef) {
		if ref == nil || ref.Value == nil || seen[ref.Value] {
			return
		}
		s := ref.Value
		seen[s] = true
		if len(s.Properties) > 0 && s.AdditionalProperties.Has == nil && s.AdditionalProperties.Schema == nil {
			s.AdditionalProperties.Has = &no
		}
		for _, p := range s.Properties {
			strict(p)
		}
		for _, refs := range []openapi3.SchemaRefs{s.AnyOf, s.OneOf, s.AllOf} {
			for _, r := range refs {
				strict(r)
			}
		}
		strict(s.Items)
		strict(s.AdditionalProperties.Schema)
	}
	for _, s := range doc.Components.Schemas {
		strict(s)
	}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			for _, r := range op.Responses.Map() {
				for _, mt := range r.Value.Content {
					strict(mt.Schema)
				}
			}
			if op.RequestBody != nil {
				for _, mt := range op.RequestBody.Value.Content {
					strict(mt.Schema)
				}
			}
		}
	}
	return doc
}

// route finds the documented operation of a request: the path template
// whose segments match, literal segments before parameters
// (/v1/features/livestream/{id} before /v1/features/{entity}/{id}).
func route(doc *openapi3.T, method, path string) *routers.Route {
	segs := strings.Split(path, "/")
	var best *routers.Route
	bestLiterals := -1
	for tmpl, item := range doc.Paths.Map() {
		op := item.GetOperation(method)
		ts := strings.Split(tmpl, "/")
		if op == nil || len(ts) != len(segs) {
			continue
		}
		literals, ok := 0, true
		for i, s := range ts {
			switch {
			case strings.HasPrefix(s, "{"):
			case s == segs[i]:
				literals++
			default:
				ok = false
			}
		}
		if ok && literals > bestLiterals {
			best, bestLiterals = &routers.Route{Spec: doc, Path: tmpl, PathItem: item, Method: method, Operation: op}, literals
		}
	}
	return best
}

// pathParams binds a route's path parameters from the request path.
func pathParams(tmpl, path string) map[string]string {
	out := map[string]string{}
	ps := strings.Split(path, "/")
	for i, s := range strings.Split(tmpl, "/") {
		if strings.HasPrefix(s, "{") {
			out[strings.Trim(s, "{}")] = ps[i]
		}
	}
	return out
}

type apiCall struct {
	method, path, body string
	noToken            bool
	want               int
}

const docToken = "doc-token"

// Every route of the document answers real requests with what the
// document says: each status it returns is documented for the route and
// each body validates against its schema (strictly: no undocumented
// fields). Every documented operation must have answered 2xx at least once;
// a route without a case below gets a request built from the document
// (path parameters by name, no query), so routes added later are covered
// too.
func TestOpenAPIValidatesResponses(t *testing.T) {
	doc := loadDoc(t)
	env := servingtest.Start(t, func(c *serving.Config) {
		c.APIToken = docToken
		c.Embedder = firstAxis{}
		c.MaxBodyBytes = 4 << 10
		// Feature monitoring sampled by the test: the second sample
		// captures the first (1ms) window as the reference, so the
		// distributions carry a reference, bins and a PSI.
		c.Drift = drift.Options{Interval: -1, Window: time.Millisecond, Slots: 1, MinCount: 1}
	})
	env.PutStreams(t,
		servingtest.Stream{ID: "a1", Seller: "A", Category: "cards", Sim: 0.99, Viewers: 1, Minutes: 10},
		servingtest.Stream{ID: "a2", Seller: "A", Category: "cards", Sim: 0.98, Viewers: 100, Minutes: 10, Sold: 2},
		servingtest.Stream{ID: "c1", Seller: "C", Category: "shoes", Sim: 0.5, Viewers: 1000, Minutes: 10, Bids: 7},
	)
	env.PutUser(t, "u1", []string{"cards", "shoes"}, "a1", "c1")
	env.PutSeller(t, "A", 2)
	for range 2 {
		if err := env.Service.Drift().Sample(context.Background()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}

	vec := `[1,0,0,0]`
	cases := []apiCall{
		{"GET", "/v1/recommendations?user_id=u1&k=3", "", false, 200},
		{"GET", "/v1/recommendations?user_id=u1&k=3&explain=true&max_per_seller=1&formula=" + "similarity%20*%20log1p(viewers_now)%20%2B%20max_bid_5m", "", false, 200},
		{"GET", "/v1/recommendations?user_id=nobody&explain=true&category=cards&min.max_bid_5m=1", "", false, 200},
		{"GET", "/v1/recommendations?user_id=u1&k=999", "", false, 400},
		{"GET", "/v1/recommendations?user_id=u1", "", true, 401},
		{"POST", "/v1/search", `{"vector":` + vec + `,"k":2,"explain":true,"filter":{"category":["cards"],"ranges":[{"field":"viewers_now","min":1}]}}`, false, 200},
		{"POST", "/v1/search", `{"text":"cards","k":2}`, false, 200},
		{"POST", "/v1/search", `{"vector":[1,2],"k":2}`, false, 400},
		{"POST", "/v1/search", `{"vector":[` + strings.Repeat("0,", 4000) + `1]}`, false, 413},
		{"GET", "/v1/queries", "", false, 200},
		{"GET", "/v1/queries/for_you?user_id=u1&explain=true", "", false, 200},
		{"GET", "/v1/queries/nope?user_id=u1", "", false, 404},
		{"POST", "/v1/queries/hot_auctions", `{"user_id":"u1","params":{"min_bids":1}}`, false, 200},
		{"POST", "/v1/queries/for_you", `{"user_id":"u1","params":{"category":["cards"],"min_viewers":1}}`, false, 200},
		{"POST", "/v1/queries/for_you", `{"user_id":"u1","params":{"min_viewers":true}}`, false, 400},
		{"GET", "/v1/features/livestream/a1", "", false, 200}, // nulls: no bids
		{"GET", "/v1/features/livestream/c1?embedding=true", "", false, 200},
		{"GET", "/v1/features/livestream/nope", "", false, 404},
		{"GET", "/v1/features/livestream/a1?at=yesterday", "", false, 400},
		{"GET", "/v1/features/user/u1?embedding=true", "", false, 200},
		{"GET", "/v1/features/user/nope", "", false, 404},
		{"GET", "/v1/features/seller/A?embedding=true", "", false, 200},
		{"GET", "/v1/features/seller/nope", "", false, 404},
		{"GET", "/v1/features/planet/x", "", false, 400},
		{"GET", "/v1/features/livestream/max_bid_5m/distribution", "", false, 200},
		{"GET", "/v1/features/seller/seller_gmv_24h/distribution", "", false, 200},
		{"GET", "/v1/features/livestream/nope/distribution", "", false, 404},
		{"GET", "/v1/features/planet/x/distribution", "", false, 404},
		{"GET", "/v1/features/drift", "", false, 200},
		{"GET", "/v1/features/reference", "", false, 200},
		{"GET", "/healthz", "", true, 200},
		{"GET", "/readyz", "", true, 200},
		{"GET", "/metrics", "", true, 200},
		{"GET", "/openapi.json", "", true, 200},
	}
	// Routes without a case: a request from the document.
	covered := map[string]bool{}
	for _, c := range cases {
		if rt := route(doc, c.method, strings.SplitN(c.path, "?", 2)[0]); rt != nil {
			covered[c.method+" "+rt.Path] = true
		}
	}
	byName := map[string]string{"id": "A", "entity": "seller", "name": "for_you"}
	var ops []string
	for tmpl, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			ops = append(ops, method+" "+tmpl)
			if covered[method+" "+tmpl] {
				continue
			}
			path := tmpl
			for _, p := range strings.Split(tmpl, "/") {
				if name, ok := strings.CutPrefix(p, "{"); ok {
					path = strings.Replace(path, p, byName[strings.TrimSuffix(name, "}")], 1)
				}
			}
			body := ""
			if method == http.MethodPost {
				body = "{}"
			}
			cases = append(cases, apiCall{method, path, body, false, 0})
		}
	}
	sort.Strings(ops)

	answered := map[string]bool{}
	for _, c := range cases {
		name := c.method + " " + c.path
		if len(name) > 100 {
			name = name[:100] + "…"
		}
		p := strings.SplitN(c.path, "?", 2)[0]
		rt := route(doc, c.method, p)
		if rt == nil {
			t.Errorf("%s: no documented route", name)
			continue
		}
		req, err := http.NewRequest(c.method, env.URL+c.path, strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		if c.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if !c.noToken {
			req.Header.Set("Authorization", "Bearer "+docToken)
		}
		in := &openapi3filter.RequestValidationInput{Request: req, PathParams: pathParams(rt.Path, p), Route: rt,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true, MultiError: true}}
		if c.want/100 == 2 && c.body != "" {
			// A request the server accepts is one the document accepts.
			in.Request = req.Clone(context.Background())
			in.Request.Body = io.NopCloser(strings.NewReader(c.body))
			if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
				t.Errorf("%s: request does not validate: %v", name, err)
			}
			in.Request = req
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if c.want != 0 && resp.StatusCode != c.want {
			t.Errorf("%s: status %d, want %d: %.300s", name, resp.StatusCode, c.want, body)
			continue
		}
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header, Options: in.Options}
		out.SetBodyBytes(body)
		if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
			t.Errorf("%s: %d answer does not match openapi.json: %v\nbody: %.500s", name, resp.StatusCode, err, body)
			continue
		}
		if resp.StatusCode/100 == 2 {
			answered[c.method+" "+rt.Path] = true
		}
	}
	for _, op := range ops {
		if !answered[op] {
			t.Errorf("%s: no 2xx answer validated; add a case (or path parameter) to TestOpenAPIValidatesResponses", op)
		}
	}
	t.Logf("%d requests over %d documented operations validated", len(cases), len(ops))
}

// firstAxis embeds every text as e₀ (the test streams' vectors are at a
// chosen cosine to it).
type firstAxis struct{}

func (firstAxis) Embed(_ context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	for i := range out {
		out[i] = []float32{1, 0, 0, 0}
	}
	return out, nil
}
func (firstAxis) Dim() int        { return servingtest.Dim }
func (firstAxis) Version() string { return "first-axis" }
func (firstAxis) Close() error    { return nil }

// The document's schemas list exactly the JSON fields of the api types
// (Go is the source of the wire format; the document must follow): a field
// added to, renamed in or removed from either fails here, even one a
// response rarely carries.
func TestOpenAPISchemasMatchTypes(t *testing.T) {
	doc := loadDoc(t)
	for schema, v := range map[string]any{
		"Error": api.ErrorBody{}, "Range": api.Range{}, "Filter": api.Filter{}, "Result": api.Result{},
		"PartitionExplain": api.PartitionExplain{}, "RankStats": api.RankStats{}, "Explain": api.Explain{},
		"Response": api.Response{}, "SearchRequest": api.SearchRequest{}, "Param": api.Param{}, "Query": api.NamedQuery{},
		"QueryRequest": api.QueryRequest{}, "LivestreamFeatures": api.LivestreamFeatures{}, "UserFeatures": api.UserFeatures{},
		"EntityFeatures": api.EntityFeatures{}, "RecentStream": api.RecentStream{}, "KeyCount": api.KeyCount{},
		"WindowStats": api.WindowStats{}, "Quantile": api.Quantile{}, "FeatureReference": api.FeatureReference{},
		"ReferenceDistribution": api.ReferenceDistribution{},
	} {
		ref, ok := doc.Components.Schemas[schema]
		if !ok {
			t.Errorf("openapi.json has no schema %s", schema)
			continue
		}
		var documented []string
		for name := range ref.Value.Properties {
			documented = append(documented, name)
		}
		sort.Strings(documented)
		if fields := jsonFields(reflect.TypeOf(v)); !slices.Equal(fields, documented) {
			t.Errorf("schema %s lists %v; %T has %v", schema, documented, v, fields)
		}
	}
}

func jsonFields(t reflect.Type) []string {
	var out []string
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}
