package serving

import (
	"io"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// The console's page is at / and its assets under /console/; every other
// unknown path, /v1 ones included, is still the API's JSON 404.
func TestConsoleMounted(t *testing.T) {
	s := &Service{metrics: newMetrics(nil)}
	h := s.Handler(prometheus.NewRegistry())
	for _, tc := range []struct {
		path, ctype, body string
		code              int
	}{
		{"/", "text/html", "livefeed console", 200},
		{"/console/app.js", "javascript", "", 200},
		{"/v1/nope", "application/json", `"error":"no route GET /v1/nope"`, 404},
		{"/nope", "application/json", `"error":"no route GET /nope"`, 404},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", tc.path, nil))
		b, _ := io.ReadAll(rec.Body)
		if rec.Code != tc.code || !strings.Contains(rec.Header().Get("Content-Type"), tc.ctype) || !strings.Contains(string(b), tc.body) {
			t.Errorf("GET %s: %d %q %.100q", tc.path, rec.Code, rec.Header().Get("Content-Type"), b)
		}
	}
}

func TestDistribution(t *testing.T) {
	d := distribution([]float64{4, 0, 1, 2, 3, 0, 10}, 5)
	want := Distribution{Count: 7, NonZero: 5, Min: 0, Max: 10, Mean: 20.0 / 7, P50: 2, P90: 10,
		Bins: []Bin{{Lo: 0, Hi: 2, Count: 3}, {Lo: 2, Hi: 4, Count: 2}, {Lo: 4, Hi: 6, Count: 1}, {Lo: 6, Hi: 8, Count: 0}, {Lo: 8, Hi: 10, Count: 1}}}
	want.Mean = round(want.Mean)
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("got  %+v\nwant %+v", d, want)
	}
	if d := distribution([]float64{3, 3}, 5); d.Count != 2 || len(d.Bins) != 1 || d.Bins[0] != (Bin{Lo: 3, Hi: 3, Count: 2}) {
		t.Fatalf("equal values: %+v", d)
	}
	if d := distribution(nil, 5); d.Count != 0 || d.Bins == nil || len(d.Bins) != 0 {
		t.Fatalf("no values: %+v", d)
	}
}
