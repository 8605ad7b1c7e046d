package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, path string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	resp := rec.Result()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// The page at /, its assets under /console/, nothing else; every answer
// forbids other origins.
func TestHandler(t *testing.T) {
	h := Handler()
	resp, body := get(t, h, "/")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, "<title>livefeed console</title>") {
		t.Fatalf("GET /: %d %q %.80q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Fatalf("GET /: Content-Security-Policy %q", csp)
	}
	for path, ctype := range map[string]string{
		"/console/app.js": "javascript", "/console/style.css": "text/css", "/console/favicon.svg": "image/svg+xml",
	} {
		resp, body := get(t, h, path)
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), ctype) || len(body) == 0 {
			t.Errorf("GET %s: %d %q, %d bytes", path, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
		}
	}
	for _, path := range []string{"/console/", "/console/index.html", "/console/nope.js", "/console/../web.go", "/x", "/console"} {
		if resp, _ := get(t, h, path); resp.StatusCode != 404 {
			t.Errorf("GET %s: %d, want 404", path, resp.StatusCode)
		}
	}
}

// The page loads nothing from another origin: every src and href in the
// HTML is a local path or a fragment, and the script fetches only paths.
func TestNoRemoteAssets(t *testing.T) {
	for _, name := range []string{"static/index.html", "static/app.js", "static/style.css"} {
		b, err := assets.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		// The SVG namespace is a name, never fetched.
		text := strings.ReplaceAll(string(b), "'http://www.w3.org/2000/svg'", "")
		if m := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/`).FindString(text); m != "" {
			t.Errorf("%s refers to another origin: %q", name, m)
		}
		for _, m := range regexp.MustCompile(`(?:src|href)="([^"]*)"`).FindAllStringSubmatch(text, -1) {
			if u := m[1]; !strings.HasPrefix(u, "/") && !strings.HasPrefix(u, "#") {
				t.Errorf("%s: %q is not a local path", name, u)
			}
		}
	}
}
