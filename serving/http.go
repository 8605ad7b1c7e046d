package serving

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

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
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, apiError{Error: fmt.Sprintf("no route %s %s", r.Method, r.URL.Path)})
	})
	return mux
}

// httpError is an error with a status code for the client.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &httpError{code: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) error {
	return &httpError{code: http.StatusNotFound, msg: fmt.Sprintf(format, args...)}
}

type apiError struct {
	Error string `json:"error"`
}

// writeError writes err as a JSON error: its own status for an httpError,
// 413 for a body over the limit, else 500 (logged, not shown).
func (s *Service) writeError(w http.ResponseWriter, name string, err error) {
	var he *httpError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &he):
		writeJSON(w, he.code, apiError{Error: he.msg})
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

// Result is one recommended or found stream.
type Result struct {
	LivestreamID string  `json:"livestream_id"`
	Score        float64 `json:"score"`
	// Similarity is the index's score (cosine, or engagement in the
	// popular fallback) when a formula computed Score.
	Similarity *float64           `json:"similarity,omitempty"`
	Title      string             `json:"title"`
	Category   string             `json:"category"`
	SellerID   string             `json:"seller_id"`
	Language   string             `json:"language"`
	Status     events.Status      `json:"status"`
	ViewersNow int                `json:"viewers_now"`
	Features   map[string]float64 `json:"features"`
}

// Response is the body of recommendation, search and named-query answers.
type Response struct {
	UserID   string   `json:"user_id,omitempty"`
	Query    string   `json:"query,omitempty"` // the named query
	Strategy string   `json:"strategy"`        // taste, popular, vector, text
	Results  []Result `json:"results"`
	Scanned  int      `json:"scanned"`
	Matched  int      `json:"matched"`
	TookMS   float64  `json:"took_ms"`
	Explain  *Explain `json:"explain,omitempty"` // with explain=true
}

// Explain is how an answer was computed (explain=true).
type Explain struct {
	Strategy string `json:"strategy"`
	// FallbackFrom is "taste" when the taste search found nothing and the
	// popular fallback answered.
	FallbackFrom string `json:"fallback_from,omitempty"`
	// Filter is the effective filter (defaults, named-query template and
	// seen streams applied).
	Filter *index.Filter `json:"filter"`
	// K is the results asked for, Fetched the candidates asked of the index.
	K       int `json:"k"`
	Fetched int `json:"fetched"`
	// FetchedPerPartition is the most each partition contributed to a
	// vector search's candidates (at least k; see index.SearchCandidates).
	FetchedPerPartition int `json:"fetched_per_partition,omitempty"`
	// Plan is the partitions' common plan ("mixed" if they differ),
	// Estimated the planner's estimate of the filtered set.
	Plan       string             `json:"plan"`
	Estimated  int                `json:"estimated"`
	Partitions []PartitionExplain `json:"partitions"`
	IndexMS    float64            `json:"index_ms"`
	Ranking    *RankStats         `json:"ranking,omitempty"`
}

// PartitionExplain is one partition's share of the index query.
type PartitionExplain struct {
	Partition int     `json:"partition"`
	Plan      string  `json:"plan"` // exact, graph, graph+exact, far-exact, none
	Estimated int     `json:"estimated"`
	Scanned   int     `json:"scanned"`
	Matched   int     `json:"matched"`
	TookMS    float64 `json:"took_ms"`
	Far       bool    `json:"far,omitempty"`
}

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
	if err := f.Validate(s.cfg.Features); err != nil {
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

func intParam(q url.Values, name string) (int, error) {
	raw := q.Get(name)
	if raw == "" {
		return 0, nil
	}
	v, err := strconv.Atoi(raw)
	if err != nil {
		return 0, badRequest("%s: want an integer, got %q", name, raw)
	}
	return v, nil
}

func boolParam(q url.Values, name string) (bool, error) {
	switch raw := q.Get(name); raw {
	case "", "false", "0":
		return false, nil
	case "true", "1":
		return true, nil
	default:
		return false, badRequest("%s: want true or false, got %q", name, raw)
	}
}

// recommendationParams are the parameters of GET /v1/recommendations
// besides the filter's.
var recommendationParams = map[string]bool{
	"user_id": true, "k": true, "exclude_seen": true, "exclude": true, "explain": true,
	"formula": true, "max_per_seller": true, "overfetch": true,
}

func (s *Service) handleRecommendations(w http.ResponseWriter, r *http.Request) error {
	start := time.Now()
	q := r.URL.Query()
	userID := q.Get("user_id")
	if userID == "" {
		return badRequest("user_id: required")
	}
	k, err := s.parseK(q.Get("k"), s.cfg.DefaultK)
	if err != nil {
		return err
	}
	f, err := filterFromQuery(q, recommendationParams)
	if err != nil {
		return err
	}
	f.ExcludeStreams = splitList(q.Get("exclude"))
	if err := s.checkFilter(f, "filter"); err != nil {
		return err
	}
	req := knn{k: k, filter: f}
	var seen bool
	for name, dst := range map[string]*bool{"explain": &req.explain, "exclude_seen": &seen} {
		if *dst, err = boolParam(q, name); err != nil {
			return err
		}
	}
	mps, err := intParam(q, "max_per_seller")
	if err != nil {
		return err
	}
	of, err := intParam(q, "overfetch")
	if err != nil {
		return err
	}
	if req.rank, err = s.rankingFrom(q.Get("formula"), mps, of); err != nil {
		return err
	}
	resp, err := s.recommend(userID, req, seen, start)
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
		Plan: st.Plan, Estimated: st.Estimated, IndexMS: ms(indexTook), Ranking: rs}
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
		Features: s.cfg.Features.Values(&it.Features, now),
	}
}

func userTaste(u *tables.User) []float32 {
	if u == nil {
		return nil
	}
	return u.Taste.Unit()
}

// SearchRequest is the body of POST /v1/search: a vector or a text, k, a
// filter and optionally a ranking.
type SearchRequest struct {
	Vector []float32     `json:"vector,omitempty"`
	Text   string        `json:"text,omitempty"`
	K      int           `json:"k,omitempty"`
	Filter *index.Filter `json:"filter,omitempty"`
	// Formula re-ranks the candidates (see the README's formula language).
	Formula string `json:"formula,omitempty"`
	// MaxPerSeller caps results per seller; 0: no cap.
	MaxPerSeller int `json:"max_per_seller,omitempty"`
	// OverFetch is the candidates fetched per result when re-ranking.
	OverFetch int `json:"overfetch,omitempty"`
	// Exclude lists stream ids to leave out.
	Exclude []string `json:"exclude,omitempty"`
	Explain bool     `json:"explain,omitempty"`
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
		if len(vec) > MaxVectorDim {
			return badRequest("vector: %d dimensions; the limit is %d", len(vec), MaxVectorDim)
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

// LivestreamFeatures is the body of GET /v1/features/livestream/{id}.
type LivestreamFeatures struct {
	LivestreamID string             `json:"livestream_id"`
	SellerID     string             `json:"seller_id"`
	Title        string             `json:"title"`
	Category     string             `json:"category"`
	Tags         []string           `json:"tags,omitempty"`
	Language     string             `json:"language"`
	Status       events.Status      `json:"status"`
	LiveSince    time.Time          `json:"live_since,omitzero"`
	ViewersNow   int                `json:"viewers_now"`
	Features     map[string]float64 `json:"features"`
	// Values are the features as typed values: numbers, null for an empty
	// window's mean/min/max, lists for last_k_distinct, {key, count} lists
	// for top_k. Features gives each as one number (a list's length).
	Values         map[string]any `json:"values"`
	Watermark      time.Time      `json:"watermark,omitzero"`
	EmbeddingModel string         `json:"embedding_model,omitempty"`
	Embedding      []float32      `json:"embedding,omitempty"`
	Events         int64          `json:"events"`
	LateDropped    int64          `json:"late_dropped"`
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
		ViewersNow: ls.ViewersNow(), Features: s.cfg.Features.Values(&ls.Features, at),
		Values:    typed(s.cfg.Features.Results(&ls.Features, at)),
		Watermark: ls.Features.Watermark, EmbeddingModel: ls.EmbeddingModel, Events: ls.Events, LateDropped: ls.LateDropped,
	}
	if r.URL.Query().Get("embedding") == "true" {
		out.Embedding = ls.Embedding
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// UserFeatures is the body of GET /v1/features/user/{id}.
type UserFeatures struct {
	UserID     string                      `json:"user_id"`
	Categories map[string]float64          `json:"categories"`
	Recent     []tables.RecentStream       `json:"recent"`
	Signals    map[events.SignalKind]int64 `json:"signals"`
	LastEvent  time.Time                   `json:"last_event,omitzero"`
	HasTaste   bool                        `json:"has_taste"`
	Taste      []float32                   `json:"taste,omitempty"`
	Features   map[string]float64          `json:"features,omitempty"`
	Values     map[string]any              `json:"values,omitempty"`
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
	out := UserFeatures{UserID: u.UserID, Categories: cats, Recent: u.Recent, Signals: u.Signals,
		LastEvent: u.LastEvent, HasTaste: taste != nil}
	if e, ok := s.cfg.Entities["user"]; ok {
		out.Features = e.Features.Values(&u.Features, at)
		out.Values = typed(e.Features.Results(&u.Features, at))
	}
	if r.URL.Query().Get("embedding") == "true" {
		out.Taste = taste
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// EntityFeatures is the body of GET /v1/features/{entity}/{id} for entities
// other than livestream and user.
type EntityFeatures struct {
	Entity      string             `json:"entity"`
	ID          string             `json:"id"`
	Features    map[string]float64 `json:"features"`
	Values      map[string]any     `json:"values"`
	Watermark   time.Time          `json:"watermark,omitzero"`
	Events      int64              `json:"events"`
	LateDropped int64              `json:"late_dropped"`
	// HasEmbedding says the entity has an embedding (a seller's: its
	// streams' content blended with its buyers' tastes); EmbeddingModel is
	// the model of its content part (empty for buyers only) and Embedding,
	// with ?embedding=true, the unit vector.
	HasEmbedding   bool      `json:"has_embedding,omitempty"`
	EmbeddingModel string    `json:"embedding_model,omitempty"`
	Embedding      []float32 `json:"embedding,omitempty"`
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
		Entity: entity, ID: id, Features: set.Values(&st.Features, at), Values: typed(set.Results(&st.Features, at)),
		Watermark: st.Features.Watermark, Events: st.Events, LateDropped: st.LateDropped,
		HasEmbedding: len(st.Embedding) > 0, EmbeddingModel: st.EmbeddingModel,
	}
	if r.URL.Query().Get("embedding") == "true" {
		out.Embedding = st.Embedding
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// typed is the JSON form of typed feature values (features.Result encodes
// itself as a number, null, a string or a list).
func typed(rs map[string]features.Result) map[string]any {
	out := make(map[string]any, len(rs))
	for k, r := range rs {
		out[k] = r
	}
	return out
}
