package serving

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// apiRoute wraps a /v1 handler: bearer-token auth (when configured), the
// body size limit, the per-request time limit, error mapping to JSON and
// latency metrics.
func (s *Service) apiRoute(name string, h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		code := s.serveAPI(w, r, name, h)
		s.metrics.requests.WithLabelValues(name, strconv.Itoa(code)).Observe(time.Since(start).Seconds())
	})
}

// serveAPI runs h on a worker goroutine with the request's deadline and a
// buffered response: the answer is copied out when h returns in time, a 503
// JSON error is sent (and flushed) when the deadline passes first, and
// serveAPI then waits for the worker, which sees its context cancelled.
// It returns the status code sent.
func (s *Service) serveAPI(w http.ResponseWriter, r *http.Request, name string, h func(http.ResponseWriter, *http.Request) error) int {
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="livefeed"`)
		writeJSON(w, http.StatusUnauthorized, apiError{Error: "missing or invalid bearer token (Authorization: Bearer <token>)"})
		return http.StatusUnauthorized
	}
	buf := &bufferedWriter{header: http.Header{}, code: http.StatusOK}
	parent := r.Context()
	ctx, cancel := context.WithTimeout(parent, s.cfg.RequestTimeout)
	defer cancel()
	r = r.WithContext(ctx)
	// The worker owns buf until done; w stays with this goroutine.
	r.Body = http.MaxBytesReader(buf, r.Body, s.cfg.MaxBodyBytes)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("request panicked", "route", name, "panic", p, "stack", string(debug.Stack()))
				buf.reset()
				writeJSON(buf, http.StatusInternalServerError, apiError{Error: "internal error"})
			}
		}()
		if err := h(buf, r); err != nil {
			buf.reset()
			s.writeError(buf, name, err)
		}
	}()
	select {
	case <-done:
		buf.copyTo(w)
		return buf.code
	case <-ctx.Done():
		code := http.StatusServiceUnavailable
		msg := fmt.Sprintf("request exceeded the time limit of %v", s.cfg.RequestTimeout)
		if parent.Err() != nil {
			msg = "request cancelled"
		}
		writeJSON(w, code, apiError{Error: msg})
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		<-done
		return code
	}
}

// authorized reports whether r carries the configured bearer token (always
// true without one). The comparison is constant-time over SHA-256 digests,
// so neither the token nor its length leaks through timing.
func (s *Service) authorized(r *http.Request) bool {
	if s.tokenHash == nil {
		return true
	}
	auth := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	return subtle.ConstantTimeCompare(got[:], s.tokenHash) == 1
}

func hashToken(tok string) []byte {
	if tok == "" {
		return nil
	}
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

// bufferedWriter collects a response so that it can be dropped for a
// timeout or error answer.
type bufferedWriter struct {
	header http.Header
	code   int
	wrote  bool
	body   bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header { return b.header }
func (b *bufferedWriter) WriteHeader(code int) {
	if !b.wrote {
		b.code, b.wrote = code, true
	}
}
func (b *bufferedWriter) Write(p []byte) (int, error) {
	b.wrote = true
	return b.body.Write(p)
}

func (b *bufferedWriter) reset() {
	b.header, b.code, b.wrote = http.Header{}, http.StatusOK, false
	b.body.Reset()
}

func (b *bufferedWriter) copyTo(w http.ResponseWriter) {
	for k, v := range b.header {
		w.Header()[k] = v
	}
	w.WriteHeader(b.code)
	_, _ = w.Write(b.body.Bytes())
}
