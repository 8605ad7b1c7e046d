package serving

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/livefeed/livefeed/api"
	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/serving/index"
	"github.com/livefeed/livefeed/tables"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// route is one entry of the HTTP API.
type route struct {
	pattern string // "METHOD /path", as http.ServeMux takes it
	name    string // metrics label; "" for the open operational routes
	handler http.Handler
}

// routes is the HTTP API: every route is in openapi.json (a test checks).
// The /v1 routes go through apiRoute (auth, limits, errors, metrics);
// /healthz, /readyz, /metrics and /openapi.json are open.
func (s *Service) routes(gatherer prometheus.Gatherer) []route {
	api := func(pattern, name string, h func(http.ResponseWriter, *http.Request) error) route {
		return route{pattern: pattern, name: name, handler: s.apiRoute(name, h)}
	}
	return []route{
		api("GET /v1/recommendations", "recommendations", s.handleRecommendations),
		api("POST /v1/search", "search", s.handleSearch),
		api("GET /v1/queries", "queries_list", s.handleListQueries),
		api("GET /v1/queries/{name}", "query", s.handleQuery),
		api("POST /v1/queries/{name}", "query_post", s.handleQueryPost),
		api("GET /v1/features/livestream/{id}", "features_livestream", s.handleLivestreamFeatures),
		api("GET /v1/features/user/{id}", "features_user", s.handleUserFeatures),
		api("GET /v1/features/{entity}/{id}", "features_entity", s.handleEntityFeatures),
		api("GET /v1/features", "features_catalog", s.handleFeatureCatalog),
		api("GET /v1/features/drift", "features_drift", s.handleFeatureDrift),
		api("GET /v1/features/reference", "features_reference", s.handleFeatureReference),
		api("POST /v1/features/reference", "features_reference_capture", s.handleCaptureReference),
		api("GET /v1/features/{entity}/{name}/distribution", "feature_distribution", s.handleFeatureDistribution),
		{pattern: "GET /healthz", handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		})},
		{pattern: "GET /readyz", handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			code, body := readiness(s.Ready(), s.index.Len(), s.Staleness(), s.cfg.MaxStaleness)
			writeJSON(w, code, body)
		})},
		{pattern: "GET /metrics", handler: promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{})},
		{pattern: "GET /openapi.json", handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(OpenAPI)
		})},
	}
}

// Handler returns the HTTP API. gatherer serves /metrics (nil: the default).
func (s *Service) Handler(gatherer prometheus.Gatherer) http.Handler {
	if gatherer == nil {
		gatherer = prometheus.DefaultGatherer
	}
	mux := http.NewServeMux()
	for _, rt := range s.routes(gatherer) {
		mux.Handle(rt.pattern, rt.handler)
	}
	mountConsole(mux) // the web console at GET / (console.go)
	// Shared user partitions only (userparts.go).
	s.mountUserPartitions(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, apiError{Error: fmt.Sprintf("no route %s %s", r.Method, r.URL.Path)})
	})
	return mux
}

// httpError is an error with a status code for the client.
type httpError struct {
	code int
	msg  string
	// expectedDims and receivedDims: a search vector of the wrong
	// dimension (checkDim).
	expectedDims []int
	receivedDims int
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &httpError{code: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) error {
	return &httpError{code: http.StatusNotFound, msg: fmt.Sprintf(format, args...)}
}

// apiError is the body of every error answer.
type apiError = api.ErrorBody

// writeError writes err as a JSON error: its own status for an httpError,
// 413 for a body over the limit, else 500 (logged, not shown).
func (s *Service) writeError(w http.ResponseWriter, name string, err error) {
	var he *httpError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &he):
		writeJSON(w, he.code, apiError{Error: he.msg, ExpectedDimensions: he.expectedDims, ReceivedDimensions: he.receivedDims})
	case errors.As(err, &mbe):
		writeJSON(w, http.StatusRequestEntityTooLarge, apiError{Error: fmt.Sprintf("request body larger than %d bytes", mbe.Limit)})
	default:
		s.log.Error("request failed", "route", name, "err", err)
		writeJSON(w, http.StatusInternalServerError, apiError{Error: "internal error"})
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// The answers' types are the API's (package api), shared with the client.
type (
	// Result is one recommended or found stream.
	Result = api.Result
	// Response is the body of recommendation, search and named-query
	// answers.
	Response = api.Response
	// Explain is how an answer was computed (explain=true).
	Explain = api.Explain
	// PartitionExplain is one partition's share of the index query.
	PartitionExplain = api.PartitionExplain
	// RankStats explains the re-ranking of one answer.
	RankStats = api.RankStats
	// SearchRequest is the body of POST /v1/search.
	SearchRequest = api.SearchRequest
	// LivestreamFeatures is the body of GET /v1/features/livestream/{id}.
	LivestreamFeatures = api.LivestreamFeatures
	// UserFeatures is the body of GET /v1/features/user/{id}.
	UserFeatures = api.UserFeatures
	// EntityFeatures is the body of GET /v1/features/{entity}/{id}.
	EntityFeatures = api.EntityFeatures
)

func round(x float64) float64 { return math.Round(x*1e6) / 1e6 }

// finite maps ±Inf (and NaN) to ∓MaxFloat64 for JSON, which has no
// infinities; NaN ranks last, so it maps to −MaxFloat64.
func finite(x float64) float64 {
	switch {
	case math.IsNaN(x) || math.IsInf(x, -1):
		return -math.MaxFloat64
	case math.IsInf(x, 1):
		return math.MaxFloat64
	}
	return x
}

// evalTime is when a lookup evaluates windows: ?at=<RFC 3339> (point in
// time, e.g. to compare with offline recomputation), else now.
func (s *Service) evalTime(r *http.Request) (time.Time, error) {
	raw := r.URL.Query().Get("at")
	if raw == "" {
		return s.cfg.Clock(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, raw)
	if err != nil {
		return time.Time{}, badRequest("at: want an RFC 3339 time, got %q", raw)
	}
	return t, nil
}

func (s *Service) parseK(raw string, dflt int) (int, error) {
	if raw == "" {
		return dflt, nil
	}
	k, err := strconv.Atoi(raw)
	if err != nil || k < 1 || k > s.cfg.MaxK {
		return 0, badRequest("k: want an integer in 1..%d, got %q", s.cfg.MaxK, raw)
	}
	return k, nil
}

// knn is one parsed k-NN request, whichever endpoint it came from.
type knn struct {
	k       int
	filter  *index.Filter
	rank    *ranking
	explain bool
}

// checkFilter validates a filter against the features and the size limits.
func (s *Service) checkFilter(f *index.Filter, what string) error {
	n := len(f.Status) + len(f.Categories) + len(f.Languages) + len(f.ExcludeSellers) + len(f.ExcludeStreams)
	if n > s.cfg.MaxFilterValues {
		return badRequest("%s: %d values in its sets (status, category, language, exclude_sellers, exclude); the limit is %d", what, n, s.cfg.MaxFilterValues)
	}
	if len(f.Ranges) > s.cfg.MaxFilterRanges {
		return badRequest("%s: %d ranges; the limit is %d", what, len(f.Ranges), s.cfg.MaxFilterRanges)
	}
	if err := index.ValidateFilter(f, s.cfg.Features); err != nil {
		return badRequest("%s: %v", what, err)
	}
	return nil
}

// rankingFrom builds a request's ranking from a formula, a per-seller cap
// and an over-fetch factor (0: the default when the ranking is active).
func (s *Service) rankingFrom(formulaSrc string, maxPerSeller, overFetch int) (*ranking, error) {
	r := &ranking{maxPerSeller: maxPerSeller, overFetch: overFetch}
	if maxPerSeller < 0 || maxPerSeller > s.cfg.MaxK {
		return nil, badRequest("max_per_seller: want 0..%d, got %d", s.cfg.MaxK, maxPerSeller)
	}
	if overFetch < 0 || overFetch > MaxOverFetch {
		return nil, badRequest("overfetch: want 1..%d, got %d", MaxOverFetch, overFetch)
	}
	if r.overFetch == 0 {
		r.overFetch = DefaultOverFetch
	}
	if formulaSrc != "" {
		sc, err := newScorer(formulaSrc, s.cfg.Features, nil)
		if err != nil {
			return nil, badRequest("formula: %v", err)
		}
		r.scorer = sc
	}
	return r, nil
}

// Over-fetch: with a formula or a per-seller cap, the index returns k ×
// overfetch candidates (at most Config.MaxCandidates) for re-ranking.
const (
	DefaultOverFetch = 10
	MaxOverFetch     = 100
)

// recommendationRequest reads and checks a GET /v1/recommendations query
// (api.ParseRecommendationsRequest, the client's encoding read back).
func (s *Service) recommendationRequest(q url.Values) (api.RecommendationsRequest, knn, error) {
	rr, err := api.ParseRecommendationsRequest(q)
	if err != nil {
		return rr, knn{}, badRequest("%v", err)
	}
	f := rr.Filter
	f.ExcludeStreams = slices.Concat(f.ExcludeStreams, rr.Exclude)
	req := knn{k: rr.K, filter: &f, explain: rr.Explain}
	if q.Get("k") == "" {
		req.k = s.cfg.DefaultK
	}
	if req.k < 1 || req.k > s.cfg.MaxK {
		return rr, knn{}, badRequest("k: want an integer in 1..%d, got %q", s.cfg.MaxK, q.Get("k"))
	}
	if err := s.checkFilter(req.filter, "filter"); err != nil {
		return rr, knn{}, err
	}
	if req.rank, err = s.rankingFrom(rr.Formula, rr.MaxPerSeller, rr.OverFetch); err != nil {
		return rr, knn{}, err
	}
	return rr, req, nil
}

func (s *Service) handleRecommendations(w http.ResponseWriter, r *http.Request) error {
	start := time.Now()
	rr, req, err := s.recommendationRequest(r.URL.Query())
	if err != nil {
		return err
	}
	resp, err := s.recommend(rr.UserID, req, rr.ExcludeSeen, start)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// recommend answers a user: the taste k-NN, or the most engaging streams
// for a user without a taste; excludeSeen leaves out the user's recent
// streams.
func (s *Service) recommend(userID string, req knn, excludeSeen bool, start time.Time) (*Response, error) {
	u, err := s.User(userID)
	if err != nil {
		return nil, err
	}
	if u != nil && excludeSeen {
		for _, rs := range u.Recent {
			req.filter.ExcludeStreams = append(req.filter.ExcludeStreams, rs.LivestreamID)
		}
	}
	now := s.cfg.Clock()
	fetch := req.rank.fetch(req.k, s.cfg.MaxCandidates)
	resp := &Response{UserID: userID}
	var (
		hits     []index.Hit
		st       index.Stats
		fallback string
	)
	idxStart := time.Now()
	if taste := userTaste(u); taste != nil {
		resp.Strategy = "taste"
		hits, st = s.search(taste, req, now)
	}
	if len(hits) == 0 {
		// Unknown user, no taste yet, or no stream with a comparable vector
		// passes the filter: the most engaging streams instead.
		fallback, resp.Strategy = resp.Strategy, "popular"
		hits, st = s.index.Popular(fetch, req.filter, now)
	}
	s.answer(resp, hits, st, req, resp.Strategy != "popular", now, time.Since(idxStart))
	if resp.Explain != nil {
		resp.Explain.FallbackFrom = fallback
	}
	resp.TookMS = ms(time.Since(start))
	return resp, nil
}

// search asks the index for the request's candidates: the top k, or with a
// ranking k × overfetch, each partition contributing its share
// (index.SearchCandidates: the top k stay exact).
func (s *Service) search(vec []float32, req knn, now time.Time) ([]index.Hit, index.Stats) {
	if fetch := req.rank.fetch(req.k, s.cfg.MaxCandidates); fetch > req.k {
		return s.index.SearchCandidates(vec, req.k, fetch, req.filter, now)
	}
	return s.index.Search(vec, req.k, req.filter, now)
}

// answer fills resp from the index's hits: re-ranked when the request has a
// ranking, explained when it asks.
func (s *Service) answer(resp *Response, hits []index.Hit, st index.Stats, req knn, similarity bool, now time.Time, indexTook time.Duration) {
	var rs *RankStats
	if req.rank.active() {
		rr, stats := s.rerank(hits, req.k, req.rank, similarity, now)
		rs = &stats
		resp.Results = make([]Result, 0, len(rr))
		for _, h := range rr {
			res := s.result(h.Hit, now)
			if req.rank.scorer != nil {
				sim := finite(round(h.Similarity))
				res.Similarity = &sim
			}
			resp.Results = append(resp.Results, res)
		}
	} else {
		if len(hits) > req.k {
			hits = hits[:req.k]
		}
		resp.Results = make([]Result, 0, len(hits))
		for _, h := range hits {
			resp.Results = append(resp.Results, s.result(h, now))
		}
	}
	resp.Scanned, resp.Matched = st.Scanned, st.Matched
	if !req.explain {
		return
	}
	ex := &Explain{Strategy: resp.Strategy, Filter: req.filter, K: req.k, Fetched: req.rank.fetch(req.k, s.cfg.MaxCandidates),
		Plan: st.Plan, SubGraph: st.SubGraph, Estimated: st.Estimated, IndexMS: ms(indexTook), Ranking: rs}
	if ex.Fetched > req.k && similarity {
		ex.FetchedPerPartition = s.index.CandidatesPerPartition(req.k, ex.Fetched)
	}
	for _, p := range st.Partitions {
		ex.Partitions = append(ex.Partitions, PartitionExplain{Partition: p.Partition, Plan: p.Plan, Estimated: p.Estimated,
			Scanned: p.Scanned, Matched: p.Matched, TookMS: ms(p.Took), Far: p.Far})
	}
	resp.Explain = ex
}

func (s *Service) result(h index.Hit, now time.Time) Result {
	it := h.Item
	return Result{
		LivestreamID: it.ID, Score: finite(round(h.Score)), Title: it.Title, Category: it.Category,
		SellerID: it.SellerID, Language: it.Language, Status: it.Status, ViewersNow: it.ViewersNow,
		Features: s.cfg.Features.Numbers(&it.Features, now),
	}
}

func userTaste(u *tables.User) []float32 {
	if u == nil {
		return nil
	}
	return u.Taste.Unit()
}

func (s *Service) handleSearch(w http.ResponseWriter, r *http.Request) error {
	start := time.Now()
	var req SearchRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return badRequest("body: %v", err)
	}
	if req.K == 0 {
		req.K = s.cfg.DefaultK
	}
	if req.K < 1 || req.K > s.cfg.MaxK {
		return badRequest("k: want 1..%d, got %d", s.cfg.MaxK, req.K)
	}
	f := &index.Filter{Status: []events.Status{events.StatusLive}}
	if req.Filter != nil {
		f = req.Filter
	}
	f.ExcludeStreams = append(f.ExcludeStreams, req.Exclude...)
	if err := s.checkFilter(f, "filter"); err != nil {
		return err
	}
	rank, err := s.rankingFrom(req.Formula, req.MaxPerSeller, req.OverFetch)
	if err != nil {
		return err
	}
	resp := &Response{}
	vec := req.Vector
	switch {
	case len(vec) > 0 && req.Text != "":
		return badRequest("give either vector or text, not both")
	case len(vec) > 0:
		resp.Strategy = "vector"
		if err := s.checkDim(len(vec)); err != nil {
			return err
		}
		for i, x := range vec {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return badRequest("vector[%d] is not a finite number", i)
			}
		}
	case req.Text != "":
		if s.cfg.Embedder == nil {
			return badRequest("text search needs an embedding model; this server has none")
		}
		if len(req.Text) > events.MaxTextLen {
			return badRequest("text: longer than %d bytes", events.MaxTextLen)
		}
		vecs, err := s.cfg.Embedder.Embed(r.Context(), []string{req.Text})
		if err != nil {
			if r.Context().Err() != nil {
				return &httpError{code: http.StatusServiceUnavailable, msg: "request exceeded its time limit while embedding the text"}
			}
			return fmt.Errorf("embedding query text: %w", err)
		}
		vec, resp.Strategy = vecs[0], "text"
	default:
		return badRequest("give a vector or a text")
	}
	now := s.cfg.Clock()
	kr := knn{k: req.K, filter: f, rank: rank, explain: req.Explain}
	idxStart := time.Now()
	hits, st := s.search(vec, kr, now)
	s.answer(resp, hits, st, kr, true, now, time.Since(idxStart))
	resp.TookMS = ms(time.Since(start))
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// MaxVectorDim bounds a search vector's dimensions.
const MaxVectorDim = 4096

// checkDim checks a query vector's dimension against the index's: the
// dimensions of the vectors it holds, or while it holds none the text
// model's. A vector of another dimension could match nothing, so it is a
// 400 naming both rather than an empty answer.
func (s *Service) checkDim(n int) error {
	if n > MaxVectorDim {
		return badRequest("vector: %d dimensions; the limit is %d", n, MaxVectorDim)
	}
	dims := s.index.Dims()
	if len(dims) == 0 && s.cfg.Embedder != nil {
		dims = []int{s.cfg.Embedder.Dim()}
	}
	if len(dims) == 0 || slices.Contains(dims, n) {
		return nil
	}
	want := make([]string, len(dims))
	for i, d := range dims {
		want[i] = strconv.Itoa(d)
	}
	return &httpError{code: http.StatusBadRequest,
		msg:          fmt.Sprintf("vector: %d dimensions; the index's vectors have %s", n, strings.Join(want, " or ")),
		expectedDims: dims, receivedDims: n}
}

func (s *Service) handleLivestreamFeatures(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	at, err := s.evalTime(r)
	if err != nil {
		return err
	}
	ls, err := s.Livestream(id)
	if err != nil {
		return err
	}
	if ls == nil {
		return notFound("livestream %q not found", id)
	}
	out := LivestreamFeatures{
		LivestreamID: ls.LivestreamID, SellerID: ls.SellerID, Title: ls.Title, Category: ls.Category,
		Tags: ls.Tags, Language: ls.Language, Status: ls.Status, LiveSince: ls.LiveSince,
		ViewersNow: ls.ViewersNow(), Features: s.cfg.Features.Numbers(&ls.Features, at),
		Values:    typed(s.cfg.Features.Results(&ls.Features, at)),
		Watermark: ls.Features.Watermark, EmbeddingModel: ls.EmbeddingModel, Events: ls.Events, LateDropped: ls.LateDropped,
		Warming: ls.Features.WarmingNames(),
	}
	if r.URL.Query().Get("embedding") == "true" {
		out.Embedding = ls.Embedding
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Service) handleUserFeatures(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	at, err := s.evalTime(r)
	if err != nil {
		return err
	}
	u, err := s.User(id)
	if err != nil {
		return err
	}
	if u == nil {
		return notFound("user %q not found", id)
	}
	cats := make(map[string]float64, len(u.Categories))
	for c, v := range u.Categories {
		cats[c] = round(v.Value)
	}
	taste := u.Taste.Unit()
	recent := make([]api.RecentStream, len(u.Recent))
	for i, rs := range u.Recent {
		recent[i] = api.RecentStream{LivestreamID: rs.LivestreamID, Kind: string(rs.Kind), Time: rs.Time}
	}
	signals := make(map[string]int64, len(u.Signals))
	for k, n := range u.Signals {
		signals[string(k)] = n
	}
	out := UserFeatures{UserID: u.UserID, Categories: cats, Recent: recent, Signals: signals,
		LastEvent: u.LastEvent, HasTaste: taste != nil}
	if e, ok := s.cfg.Entities["user"]; ok {
		out.Features = e.Features.Numbers(&u.Features, at)
		out.Values = typed(e.Features.Results(&u.Features, at))
	}
	if r.URL.Query().Get("embedding") == "true" {
		out.Taste = taste
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Service) handleEntityFeatures(w http.ResponseWriter, r *http.Request) error {
	entity, id := r.PathValue("entity"), r.PathValue("id")
	at, err := s.evalTime(r)
	if err != nil {
		return err
	}
	st, ok, err := s.EntityState(entity, id)
	if !ok {
		names := []string{"livestream", "user"}
		for n := range s.others {
			names = append(names, n)
		}
		sort.Strings(names)
		return badRequest("unknown entity %q: want one of %s", entity, strings.Join(names, ", "))
	}
	if err != nil {
		return err
	}
	if st == nil {
		return notFound("%s %q not found", entity, id)
	}
	set := s.cfg.Entities[entity].Features
	out := EntityFeatures{
		Entity: entity, ID: id, Features: set.Numbers(&st.Features, at), Values: typed(set.Results(&st.Features, at)),
		Watermark: st.Features.Watermark, Events: st.Events, LateDropped: st.LateDropped,
		HasEmbedding: len(st.Embedding) > 0, EmbeddingModel: st.EmbeddingModel,
		Warming: st.Features.WarmingNames(),
	}
	if r.URL.Query().Get("embedding") == "true" {
		out.Embedding = st.Embedding
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// typed is the API form of typed feature values: null for an empty value
// or a non-finite number, else the number, string, list or top-k entries.
func typed(rs map[string]features.Result) map[string]api.Value {
	out := make(map[string]api.Value, len(rs))
	for k, r := range rs {
		var v api.Value
		switch {
		case r.Kind == features.ListResult:
			v = api.Value{Kind: api.List, Items: r.Items}
		case r.Kind == features.TopResult:
			v = api.Value{Kind: api.Top, Top: make([]api.KeyCount, len(r.Top))}
			for i, kc := range r.Top {
				v.Top[i] = api.KeyCount{Key: kc.Key, Count: kc.Count}
			}
		case r.Empty:
		case r.Kind == features.StringResult:
			v = api.Value{Kind: api.Text, Text: r.Text}
		case !math.IsNaN(r.Number) && !math.IsInf(r.Number, 0):
			v = api.Value{Kind: api.Num, Number: r.Number}
		}
		out[k] = v
	}
	return out
}
