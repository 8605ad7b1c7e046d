package serving

import (
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
)

func TestDefaultQueriesValidate(t *testing.T) {
	qs, err := ParseQueries(DefaultQueriesYAML, "serving/queries.yaml", livestreamFeatures(t), 200)
	if err != nil {
		t.Fatal(err)
	}
	if len(qs.All()) != 3 {
		t.Fatalf("%d queries", len(qs.All()))
	}
	for _, q := range qs.All() {
		if q.Description == "" || q.scorer == nil {
			t.Errorf("%s: no description or formula", q.Name)
		}
	}
}

// A feature set without the features the built-in file uses loses those
// queries (logged), not the server.
func TestDefaultQueriesWithOtherFeatures(t *testing.T) {
	feats := livestreamFeatures(t).ForEntity("nothing")
	qs, err := loadQueries("", feats, 200, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := qs.Get("for_you"); !ok {
		t.Fatal("for_you uses no feature and should stay")
	}
	if _, ok := qs.Get("hot_auctions"); ok {
		t.Fatal("hot_auctions needs bids_5m and should be left out")
	}
}

func TestQueryFileErrors(t *testing.T) {
	feats := livestreamFeatures(t)
	cases := []struct {
		name, yaml string
		line       int
		msg        string
	}{
		{"syntax", "version: 1\nqueries:\n  - name: [x\n", 3, ""},
		{"unknown key", "version: 1\nqueries:\n  - name: a\n    colour: red\n", 4, "unknown field"},
		{"version", "version: 2\nqueries:\n  - name: a\n", 1, "want version: 1"},
		{"empty", "# nothing\n", 1, "empty file"},
		{"no queries", "version: 1\n", 1, "no queries"},
		{"bad name", "version: 1\nqueries:\n  - name: Not OK\n", 3, `name "Not OK"`},
		{"bad formula", "version: 1\nqueries:\n  - name: a\n    formula: similarity *\n", 4, "unexpected end of formula"},
		{"formula variable", "version: 1\nqueries:\n  - name: a\n    formula: similarity * colour\n", 4, `unknown variable "colour"`},
		{"unknown param in formula", "version: 1\nqueries:\n  - name: a\n    formula: similarity * $w\n", 4, "unknown variable"},
		{"param type", "version: 1\nqueries:\n  - name: a\n    params:\n      - name: w\n        type: float\n    formula: $w\n", 6, `type "float"`},
		{"param default", "version: 1\nqueries:\n  - name: a\n    params:\n      - name: w\n        type: number\n        default: lots\n    formula: $w\n", 7, "default lots: want a number"},
		{"param reserved", "version: 1\nqueries:\n  - name: a\n    params:\n      - name: k\n        type: number\n", 5, "reserved"},
		{"param unused", "version: 1\nqueries:\n  - name: a\n    params:\n      - name: w\n        type: number\n        default: 1\n", 5, "never used"},
		{"formula param without value", "version: 1\nqueries:\n  - name: a\n    params:\n      - name: w\n        type: number\n    formula: similarity * $w\n", 7, "give it a default"},
		{"string param in range", "version: 1\nqueries:\n  - name: a\n    params:\n      - name: c\n        type: string\n    filter:\n      ranges:\n        - field: viewers_now\n          min: $c\n", 10, "parameter $c is a string"},
		{"range field", "version: 1\nqueries:\n  - name: a\n    filter:\n      ranges:\n        - field: colour\n          min: 1\n", 6, `unknown field "colour"`},
		{"range bounds", "version: 1\nqueries:\n  - name: a\n    filter:\n      ranges:\n        - field: viewers_now\n", 6, "neither min nor max"},
		{"status", "version: 1\nqueries:\n  - name: a\n    filter:\n      status: [live, ended]\n", 5, "ended streams are not indexed"},
		{"set type", "version: 1\nqueries:\n  - name: a\n    filter:\n      category: {a: 1}\n", 5, "want a string, a list"},
		{"unknown set param", "version: 1\nqueries:\n  - name: a\n    filter:\n      category: $cat\n", 5, "unknown parameter $cat"},
		{"k", "version: 1\nqueries:\n  - name: a\n    k: 500\n", 4, "want 1..200"},
		{"duplicate", "version: 1\nqueries:\n  - name: a\n  - name: a\n", 4, "defined twice"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseQueries([]byte(c.yaml), "q.yaml", feats, 200)
			var errs QueryErrors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error %v, want QueryErrors", err)
			}
			e := errs[0]
			if len(errs) != 1 {
				t.Errorf("%d errors, want one: %v", len(errs), errs)
			}
			if e.Line != c.line || !strings.Contains(e.Error(), c.msg) || !strings.HasPrefix(e.Error(), "q.yaml:") {
				t.Fatalf("got %q (line %d), want line %d and %q", e.Error(), e.Line, c.line, c.msg)
			}
		})
	}
}
