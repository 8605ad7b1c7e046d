package serving

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestBearerToken(t *testing.T) {
	const token = "s3cret-token-value"
	var logs bytes.Buffer
	env := startEnv(t, func(c *Config) {
		c.APIToken = token
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	env.putStreams(t, catalogue[:2]...)
	for _, c := range []call{
		{path: "/v1/recommendations?user_id=u"},
		{path: "/v1/recommendations?user_id=u", token: "wrong"},
		{path: "/v1/recommendations?user_id=u", token: token + "x"},
		{path: "/v1/queries"},
		{path: "/v1/features/livestream/a1"},
		{method: "POST", path: "/v1/search", body: `{"vector":[1,0,0,0]}`},
	} {
		var e apiError
		if code := env.do(t, c, &e); code != http.StatusUnauthorized || !strings.Contains(e.Error, "bearer token") {
			t.Errorf("%s %s token %q: %d %q, want 401", c.method, c.path, c.token, code, e.Error)
		}
	}
	// A raw header without the Bearer scheme is refused too.
	req, _ := http.NewRequest("GET", env.url+"/v1/queries", nil)
	req.Header.Set("Authorization", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("token without scheme: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	var r Response
	if code := env.do(t, call{path: "/v1/recommendations?user_id=u&k=1", token: token}, &r); code != 200 || len(r.Results) != 1 {
		t.Fatalf("with the token: %d %+v", code, r)
	}
	// Operational routes stay open.
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/openapi.json"} {
		if code := env.do(t, call{path: p}, nil); code != 200 {
			t.Errorf("%s: %d without a token", p, code)
		}
	}
	// A failing request logs, but never the token.
	env.do(t, call{path: "/v1/recommendations?user_id=u&formula=(", token: token}, nil)
	if strings.Contains(logs.String(), token) {
		t.Fatalf("the token was logged: %s", logs.String())
	}
}

// TestTimeout: a handler that outlives the request's time limit gets a
// 503 JSON answer at the limit, and serveAPI returns only after the
// handler, which saw its context cancelled, has returned.
func TestTimeout(t *testing.T) {
	s := &Service{cfg: Config{RequestTimeout: 50 * time.Millisecond, MaxBodyBytes: 1 << 10}, metrics: newMetrics(nil),
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	returned := make(chan error, 1)
	slow := func(w http.ResponseWriter, r *http.Request) error {
		<-r.Context().Done()
		writeJSON(w, 200, map[string]string{"late": "answer"})
		returned <- r.Context().Err()
		return nil
	}
	rec := httptest.NewRecorder()
	start := time.Now()
	code := s.serveAPI(rec, httptest.NewRequest("GET", "/v1/x", nil), "x", slow)
	if took := time.Since(start); code != 503 || rec.Code != 503 || took > 5*time.Second {
		t.Fatalf("code %d/%d after %v", code, rec.Code, took)
	}
	select {
	case err := <-returned:
		if err != context.DeadlineExceeded {
			t.Fatalf("handler context: %v", err)
		}
	default:
		t.Fatal("serveAPI returned before the handler")
	}
	var e apiError
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || !strings.Contains(e.Error, "time limit of 50ms") || strings.Contains(rec.Body.String(), "late") {
		t.Fatalf("body %q (%v)", rec.Body.String(), err)
	}
	// A fast handler's answer passes through, headers and all.
	rec = httptest.NewRecorder()
	s.serveAPI(rec, httptest.NewRequest("GET", "/v1/x", nil), "x", func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("X-Test", "1")
		writeJSON(w, 201, map[string]string{"ok": "yes"})
		return nil
	})
	if rec.Code != 201 || rec.Header().Get("X-Test") != "1" || !strings.Contains(rec.Body.String(), "yes") {
		t.Fatalf("fast: %d %v %q", rec.Code, rec.Header(), rec.Body.String())
	}
	// A panicking handler is a 500 JSON error, not a crash.
	rec = httptest.NewRecorder()
	s.serveAPI(rec, httptest.NewRequest("GET", "/v1/x", nil), "x", func(w http.ResponseWriter, r *http.Request) error {
		w.Write([]byte("partial"))
		panic("boom")
	})
	if rec.Code != 500 || strings.Contains(rec.Body.String(), "partial") {
		t.Fatalf("panic: %d %q", rec.Code, rec.Body.String())
	}
}

// TestOpenAPIDocumentsEveryRoute: the served document is valid JSON,
// OpenAPI 3, and has every registered route with its method.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	s := &Service{metrics: newMetrics(nil)}
	srv := httptest.NewServer(s.Handler(prometheus.NewRegistry()))
	defer srv.Close()
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if code := doURL(t, srv.URL, call{path: "/openapi.json"}, &doc); code != 200 || !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("GET /openapi.json: %d, openapi %q", code, doc.OpenAPI)
	}
	routes := s.routes(prometheus.NewRegistry())
	if len(routes) < 10 {
		t.Fatalf("only %d routes", len(routes))
	}
	documented := 0
	for _, rt := range routes {
		method, path, ok := strings.Cut(rt.pattern, " ")
		if !ok {
			t.Fatalf("route %q has no method", rt.pattern)
		}
		op, ok := doc.Paths[path][strings.ToLower(method)]
		if !ok {
			t.Errorf("route %s is not in openapi.json", rt.pattern)
			continue
		}
		var o struct {
			OperationID string `json:"operationId"`
			Responses   map[string]json.RawMessage
		}
		if err := json.Unmarshal(op, &o); err != nil || o.OperationID == "" || o.Responses["200"] == nil {
			t.Errorf("%s: operation without an id or a 200 response (%v)", rt.pattern, err)
		}
		documented++
	}
	// And nothing documented that is not served.
	n := 0
	for _, ops := range doc.Paths {
		n += len(ops)
	}
	if n != documented {
		t.Errorf("openapi.json documents %d operations, the handler serves %d", n, documented)
	}
}
