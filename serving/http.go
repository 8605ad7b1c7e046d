package serving

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
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

// Handler returns the HTTP API. gatherer serves /metrics (nil: the default).
func (s *Service) Handler(gatherer prometheus.Gatherer) http.Handler {
	if gatherer == nil {
		gatherer = prometheus.DefaultGatherer
	}
	mux := http.NewServeMux()
	mux.Handle("GET /v1/recommendations", s.route("recommendations", s.handleRecommendations))
	mux.Handle("POST /v1/search", s.route("search", s.handleSearch))
	mux.Handle("GET /v1/features/livestream/{id}", s.route("features_livestream", s.handleLivestreamFeatures))
	mux.Handle("GET /v1/features/user/{id}", s.route("features_user", s.handleUserFeatures))
	mux.Handle("GET /v1/features/{entity}/{id}", s.route("features_entity", s.handleEntityFeatures))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !s.Ready() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "recovering"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "indexed_streams": s.index.Len()})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
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

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) { w.code = code; w.ResponseWriter.WriteHeader(code) }

// route wraps a handler with error mapping and latency metrics.
func (s *Service) route(name string, h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		if err := h(sw, r); err != nil {
			var he *httpError
			if errors.As(err, &he) {
				writeJSON(sw, he.code, apiError{Error: he.msg})
			} else {
				s.log.Error("request failed", "route", name, "err", err)
				writeJSON(sw, http.StatusInternalServerError, apiError{Error: "internal error"})
			}
		}
		s.metrics.requests.WithLabelValues(name, strconv.Itoa(sw.code)).Observe(time.Since(start).Seconds())
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Result is one recommended or found stream.
type Result struct {
	LivestreamID string             `json:"livestream_id"`
	Score        float64            `json:"score"`
	Title        string             `json:"title"`
	Category     string             `json:"category"`
	SellerID     string             `json:"seller_id"`
	Language     string             `json:"language"`
	Status       events.Status      `json:"status"`
	ViewersNow   int                `json:"viewers_now"`
	Features     map[string]float64 `json:"features"`
}

// Response is the body of recommendation and search answers.
type Response struct {
	UserID   string   `json:"user_id,omitempty"`
	Strategy string   `json:"strategy"` // taste, popular, vector, text
	Results  []Result `json:"results"`
	Scanned  int      `json:"scanned"`
	Matched  int      `json:"matched"`
	TookMS   float64  `json:"took_ms"`
}

func (s *Service) results(hits []index.Hit, now time.Time) []Result {
	out := make([]Result, 0, len(hits))
	for _, h := range hits {
		it := h.Item
		out = append(out, Result{
			LivestreamID: it.ID, Score: round(h.Score), Title: it.Title, Category: it.Category,
			SellerID: it.SellerID, Language: it.Language, Status: it.Status, ViewersNow: it.ViewersNow,
			Features: s.cfg.Features.Values(&it.Features, now),
		})
	}
	return out
}

func round(x float64) float64 { return math.Round(x*1e6) / 1e6 }

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

func (s *Service) parseK(raw string) (int, error) {
	if raw == "" {
		return s.cfg.DefaultK, nil
	}
	k, err := strconv.Atoi(raw)
	if err != nil || k < 1 || k > s.cfg.MaxK {
		return 0, badRequest("k: want an integer in 1..%d, got %q", s.cfg.MaxK, raw)
	}
	return k, nil
}

func (s *Service) handleRecommendations(w http.ResponseWriter, r *http.Request) error {
	start := time.Now()
	q := r.URL.Query()
	userID := q.Get("user_id")
	if userID == "" {
		return badRequest("user_id: required")
	}
	k, err := s.parseK(q.Get("k"))
	if err != nil {
		return err
	}
	f, err := filterFromQuery(q)
	if err != nil {
		return err
	}
	if err := f.Validate(s.cfg.Features); err != nil {
		return badRequest("%v", err)
	}
	u, err := s.User(userID)
	if err != nil {
		return err
	}
	if u != nil && q.Get("exclude_seen") == "true" {
		for _, rs := range u.Recent {
			f.ExcludeStreams = append(f.ExcludeStreams, rs.LivestreamID)
		}
	}
	now := s.cfg.Clock()
	resp := Response{UserID: userID}
	var hits []index.Hit
	var st index.Stats
	if taste := userTaste(u); taste != nil {
		resp.Strategy = "taste"
		hits, st = s.index.Search(taste, k, f, now)
	}
	if len(hits) == 0 {
		// Unknown user, no taste yet, or no stream with a comparable vector
		// passes the filter: the most engaging streams instead.
		resp.Strategy = "popular"
		hits, st = s.index.Popular(k, f, now)
	}
	resp.Results, resp.Scanned, resp.Matched = s.results(hits, now), st.Scanned, st.Matched
	resp.TookMS = float64(time.Since(start).Microseconds()) / 1000
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func userTaste(u *tables.User) []float32 {
	if u == nil {
		return nil
	}
	return u.Taste.Unit()
}

// SearchRequest is the body of POST /v1/search: a vector or a text, k and a
// filter.
type SearchRequest struct {
	Vector []float32     `json:"vector,omitempty"`
	Text   string        `json:"text,omitempty"`
	K      int           `json:"k,omitempty"`
	Filter *index.Filter `json:"filter,omitempty"`
}

func (s *Service) handleSearch(w http.ResponseWriter, r *http.Request) error {
	start := time.Now()
	var req SearchRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
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
	if err := f.Validate(s.cfg.Features); err != nil {
		return badRequest("filter.%v", err)
	}
	resp := Response{}
	vec := req.Vector
	switch {
	case len(vec) > 0 && req.Text != "":
		return badRequest("give either vector or text, not both")
	case len(vec) > 0:
		resp.Strategy = "vector"
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
			return fmt.Errorf("embedding query text: %w", err)
		}
		vec, resp.Strategy = vecs[0], "text"
	default:
		return badRequest("give a vector or a text")
	}
	now := s.cfg.Clock()
	hits, st := s.index.Search(vec, req.K, f, now)
	resp.Results, resp.Scanned, resp.Matched = s.results(hits, now), st.Scanned, st.Matched
	resp.TookMS = float64(time.Since(start).Microseconds()) / 1000
	writeJSON(w, http.StatusOK, resp)
	return nil
}

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
	writeJSON(w, http.StatusOK, EntityFeatures{
		Entity: entity, ID: id, Features: set.Values(&st.Features, at), Values: typed(set.Results(&st.Features, at)),
		Watermark: st.Features.Watermark, Events: st.Events, LateDropped: st.LateDropped,
	})
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
