// Package web is livefeed's console: a single page (plain HTML, CSS and
// JavaScript, no build step, nothing fetched from other origins) embedded in
// the binary and served by `livefeed serve` and `demo` at /.
//
// The page is static. Everything it shows it reads from the serving API:
// /v1/recommendations (the stream board ranks the popular fallback by a
// formula), /v1/queries, /v1/search, /v1/features (the feature catalogue) and
// /v1/features/user/{id}, with the API's bearer token when one is set (asked
// once, kept in sessionStorage), and the process's /metrics in the
// Prometheus text format for the health page. Charts are small SVGs drawn by
// the page itself.
package web

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed static
var assets embed.FS

// Prefix is the path the assets are served under; the page itself is at /.
const Prefix = "/console/"

// Handler serves the page at / and the assets under Prefix. Anything else
// is a 404. Responses forbid other origins (Content-Security-Policy) so a
// stray CDN link would fail loudly in the browser instead of working online
// only, and are revalidated on every load (no stale console after an
// upgrade).
func Handler() http.Handler {
	static, err := fs.Sub(assets, "static")
	if err != nil {
		panic(err) // the embedded directory is part of the binary
	}
	files := http.FileServerFS(static)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-cache")
		switch {
		case r.URL.Path == "/":
			r2 := r.Clone(r.Context())
			r2.URL.Path = "/index.html"
			serveFile(files, w, r2)
		case strings.HasPrefix(r.URL.Path, Prefix) && path.Clean(r.URL.Path) == r.URL.Path:
			r2 := r.Clone(r.Context())
			r2.URL.Path = "/" + strings.TrimPrefix(r.URL.Path, Prefix)
			if r2.URL.Path == "/" || r2.URL.Path == "/index.html" {
				http.NotFound(w, r)
				return
			}
			serveFile(files, w, r2)
		default:
			http.NotFound(w, r)
		}
	})
}

// serveFile serves r.URL.Path from files. http.FileServer redirects
// /index.html to ./ and lists directories; the console has neither.
func serveFile(files http.Handler, w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/index.html" {
		b, err := assets.ReadFile("static/index.html")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(b)
		return
	}
	if strings.HasSuffix(r.URL.Path, "/") {
		http.NotFound(w, r)
		return
	}
	files.ServeHTTP(w, r)
}
