package features

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const badFile = `version: 1
defaults:
  lateness: 2m
features:
  - name: gmv_1h
    entity: livestream
    sources: [auction]
    filter: type == "sold"
    field: amount
    aggregation: summ
    window: {type: sliding, size: 1h, hop: 5m}
  - name: bids_30s
    sources: [auctions]
    filter: type == "bid" && amout > 10
    aggregation: count
    window: {type: sliding, size: 30s, hop: 1m}
    lateness: 10d
  - name: p90
    sources: [auctions]
    field: amount
    aggregation: approx_percentile
    p: 90
    window: {type: sliding, size: 1h, hop: 5m}
  - name: u
    entity: usr
    sources: [chat]
    aggregation: count
    windw: {type: sliding, size: 1h, hop: 5m}
  - name: neg
    sources: [auctions]
    filter: !(type == "bid")
    aggregation: count
    window: all_time
`

func TestParseErrorsCarryPositionsAndFixes(t *testing.T) {
	_, err := Parse([]byte(badFile), WithFilename("bad.yaml"))
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("error %T %v", err, err)
	}
	fixed := strings.Replace(badFile, `filter: !(type == "bid")`, `filter: '!(type == "bid")'`, 1)
	if _, err := Parse([]byte(fixed)); strings.Contains(err.Error(), "YAML tag") {
		t.Fatalf("quoted filter still a tag: %v", err)
	}
	want := []string{
		`bad.yaml:31:13: feature neg: filter: a value starting with ! is a YAML tag (fix: quote it: filter: '!(type == "bid")')`,
		`bad.yaml:7:14: feature gmv_1h: sources: unknown source "auction" (fix: did you mean "auctions"?)`,
		`bad.yaml:10:18: feature gmv_1h: aggregation: unknown aggregation "summ" (fix: did you mean "sum"?)`,
		`bad.yaml:14:30: feature bids_30s: filter: unknown field "amout"`, // column of the field in the expression
		`(fix: did you mean "amount"?)`,
		`bad.yaml:16:35: feature bids_30s: window.size: window 30s is smaller than its bucket (hop) 1m`,
		`bad.yaml:17:15: feature bids_30s: lateness 10d is longer than the source retention 7d`,
		`bad.yaml:22:8: feature p90: p: approx_percentile needs p in (0, 1), got 90 (fix: did you mean p: 0.9?)`,
		`bad.yaml:28:5: feature u: windw: unknown key "windw" (fix: did you mean "window"?)`,
	}
	if len(es) != 9 {
		t.Errorf("%d errors:\n%v", len(es), err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("errors lack %q; got:\n%v", w, err)
		}
	}
	// With the structural error fixed, the entity's is reported.
	fixed = strings.Replace(fixed, "windw:", "window:", 1)
	_, err = Parse([]byte(fixed))
	if !strings.Contains(err.Error(), `25:13: feature u: entity usr is keyed by usr, which is missing from source chat's schema (fix: did you mean "user"?)`) {
		t.Errorf("entity error missing:\n%v", err)
	}
}

func TestParseStructuralErrors(t *testing.T) {
	cases := map[string]string{
		"":                                    "empty file",
		"features:":                           "features is empty",
		"features: 3":                         "features must be a list",
		"feature: []":                         `did you mean "features"?`,
		"version: 2\nfeatures: []":            "unknown version 2",
		"features:\n  - name: [a]":            "name must be a single value",
		"features: [{name: a}]":               "lateness required",
		"features:\n  - 3":                    "must be a mapping",
		"features: [{name: a, k: x}]":         "k must be a whole number",
		"features: [{name: a, p: x}]":         "p must be a number",
		"features: [{name: a, lateness: 30}]": "add a unit: 30s",
		"features: [{name: a, lateness: 2m, window: weekly}]":                                            "unknown window",
		"features: [{name: a, lateness: 2m, window: {size: 1m}}]":                                        "window type required",
		"features: [{name: a, lateness: 2m, window: {type: tumbling, size: 1h, emit: now}}]":             `unknown emit "now"`,
		"features: [{name: a, lateness: 2m, window: {type: sliding, size: 1h, hop: 1m, emit: current}}]": "tumbling windows only",
		"features: [{name: a, lateness: 2m, window: {type: sliding, sise: 1h}}]":                         `did you mean "size"?`,
		"defaults: {latenes: 2m}\nfeatures: [{name: a}]":                                                 `did you mean "lateness"?`,
		"a: &x 1\nb: *x\nfeatures: []":                                                                   "unknown top-level key",
		"features:\n  - name: a\n    filter: [x]\n":                                                      "a value starting with [ is a YAML list",
		"features: [{name: a, source: chat, sources: [chat]}]":                                           "both source and sources",
		"features: [{name: a, lateness: 2m, aggregation: count, sources: [chat], window: all_time}, {name: a, lateness: 2m, aggregation: count, sources: [chat], window: all_time}]": "defined twice",
		"---\nfeatures: []\n---\nfeatures: []": "more than one YAML document",
		"features: [{":                         "YAML syntax",
	}
	for src, want := range cases {
		_, err := Parse([]byte(src))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v lacks %q", src, err, want)
		}
	}
}

func TestParseDefaultsAndShorthands(t *testing.T) {
	defs, err := Parse([]byte(`
defaults:
  entity: user
  lateness: 0
features:
  - name: spend
    source: auctions         # single-source form
    filter: 'type == "sold"'
    field: amount
    aggregation: decayed_sum # all-time: no window needed
    half_life: 1w
  - name: chats
    sources: [chat]
    aggregation: count
    window: {type: hopping, size: 1d12h, bucket: 6h}
    lateness: 1h
  - name: note
    description: |
      a multi-line
      description
    sources: [chat]
    filter: >-
      user_id != ""
    aggregation: count
    window: all_time
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(defs) != 3 {
		t.Fatalf("%d defs", len(defs))
	}
	s, c := defs[0], defs[1]
	if s.Entity != "user" || s.Lateness != 0 || s.Window.Kind != AllTime || s.HalfLife != 7*24*time.Hour || s.Sources[0] != "auctions" {
		t.Errorf("spend %+v", s)
	}
	if c.Window != SlidingWindow(36*time.Hour, 6*time.Hour) || c.Lateness != time.Hour {
		t.Errorf("chats %+v", c)
	}
	if defs[2].Filter != `user_id != ""` || !strings.Contains(defs[2].Description, "multi-line\ndescription") {
		t.Errorf("note %+v", defs[2])
	}
}

func TestParseDurations(t *testing.T) {
	for s, want := range map[string]time.Duration{"30s": 30 * time.Second, "7d": 7 * 24 * time.Hour, "1d12h": 36 * time.Hour,
		"2w": 14 * 24 * time.Hour, "1.5h": 90 * time.Minute, "0": 0, "500ms": 500 * time.Millisecond} {
		if got, err := ParseDuration(s); err != nil || got != want {
			t.Errorf("%s = %v, %v", s, got, err)
		}
		if got, _ := ParseDuration(FormatDuration(want)); got != want {
			t.Errorf("format %v = %s", want, FormatDuration(want))
		}
	}
	for _, s := range []string{"", "d", "7", "7x", "-1h", "1e400d"} {
		if _, err := ParseDuration(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func FuzzParse(f *testing.F) {
	// Small seeds: the fuzzer minimizes what it finds, slowly for big inputs.
	if i := strings.Index(string(DefaultsYAML), "  - name: leaves_5m"); i > 0 {
		f.Add(string(DefaultsYAML[:i]))
	}
	f.Add(badFile)
	files, _ := filepath.Glob("testdata/scenarios/*.yaml")
	for _, file := range files {
		b, _ := os.ReadFile(file)
		f.Add(string(b))
	}
	f.Add("features: [{name: a, lateness: 2m, aggregation: count, sources: [chat], window: all_time}]")
	f.Fuzz(func(t *testing.T, src string) {
		defs, err := Parse([]byte(src))
		if err != nil {
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("error %T %v is not Errors", err, err)
			}
			for _, e := range es {
				if e.Line < 0 || e.Column < 0 || e.Msg == "" {
					t.Fatalf("bad error %+v", e)
				}
			}
			return
		}
		set, err := Compile(defs)
		if err != nil {
			t.Fatalf("parsed definitions do not compile: %v", err)
		}
		// A parsed set can take an event and be evaluated.
		var st State
		for _, src := range SourceNames() {
			set.ApplyEvent(&st, ev(src, 0, "type", "bid", "amount", 3.0, "user_id", "u"))
		}
		set.Results(&st, t0)
		if _, err := st.MarshalBinary(); err != nil {
			t.Fatal(err)
		}
	})
}
