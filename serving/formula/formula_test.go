package formula

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestEval(t *testing.T) {
	vars := map[string]float64{"similarity": 0.8, "viewers_now": 99, "live_minutes": 30, "$half": 60, "bids_5m": 3}
	isVar := func(n string) bool { _, ok := vars[n]; return ok }
	cases := []struct {
		src  string
		want float64
	}{
		{"1", 1},
		{"1 + 2 * 3", 7},
		{"(1 + 2) * 3", 9},
		{"10 - 4 - 3", 3},
		{"24 / 4 / 2", 3},
		{"-2 * -3", 6},
		{"+2 - -2", 4},
		{"1.5e2 + .5", 150.5},
		{"similarity", 0.8},
		{"similarity * log(1 + viewers_now) * exp(-live_minutes/60)", 0.8 * math.Log(100) * math.Exp(-0.5)},
		{"similarity * log1p(viewers_now) * exp(-live_minutes / $half)", 0.8 * math.Log1p(99) * math.Exp(-0.5)},
		{"sqrt(16) + abs(-3) + pow(2, 10)", 4 + 3 + 1024},
		{"min(viewers_now, 5, bids_5m) + max(1, 2)", 3 + 2},
		{"max(similarity, similarity * 2)", 1.6},
		{"viewers_now / (bids_5m - 3)", math.Inf(1)},
		// coalesce: the first argument unless it is NaN (a null feature).
		{"coalesce(bids_5m, 7)", 3},
		{"coalesce(log(-1), 7) + 1", 8},
		{"coalesce(log(-1), log(-1) + 1)", math.NaN()},
	}
	for _, c := range cases {
		e, err := Parse(c.src, isVar)
		if err != nil {
			t.Fatalf("%s: %v", c.src, err)
		}
		vals := make([]float64, len(e.Vars()))
		for i, n := range e.Vars() {
			vals[i] = vars[n]
		}
		if got := e.Eval(vals); math.Abs(got-c.want) > 1e-12 && got != c.want && !(math.IsNaN(got) && math.IsNaN(c.want)) {
			t.Errorf("%s = %v, want %v", c.src, got, c.want)
		}
	}
}

func TestVarsAreSlots(t *testing.T) {
	e, err := Parse("a * b + a / c", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(e.Vars(), ","); got != "a,b,c" {
		t.Fatalf("vars %s", got)
	}
	if got := e.Eval([]float64{2, 3, 4}); got != 6.5 {
		t.Fatalf("got %v", got)
	}
}

func TestErrors(t *testing.T) {
	isVar := func(n string) bool { return n == "x" }
	cases := []struct{ src, msg string }{
		{"", "empty"},
		{"   ", "empty"},
		{"x +", "unexpected end"},
		{"(x", "missing )"},
		{"x)", `unexpected ")"`},
		{"y * 2", `unknown variable "y"`},
		{"foo(x)", `unknown function "foo"`},
		{"log(x, x)", "log takes 1 argument(s), got 2"},
		{"min(x)", "min takes two or more arguments"},
		{"pow(x)", "pow takes 2"},
		{"log", "log is a function"},
		{"x ^ 2", "pow(x, y)"},
		{"x == 2", `unexpected "="`},
		{"1..2", "bad number"},
		{"1e999", "bad number"},
		{"$", "parameter name"},
		{"x x", `unexpected "x"`},
		{strings.Repeat("(", 40) + "x" + strings.Repeat(")", 40), "nested deeper than 32"},
		{strings.Repeat("-", 40) + "x", "nested deeper than 32"},
		{strings.Repeat("x+", 200) + "x", "more than 256 terms"},
		{strings.Repeat("x+", 600) + "x", "longer than 1024 bytes"},
		{"min(" + strings.Repeat("x,", 80) + "x)", "too complex"},
	}
	for _, c := range cases {
		_, err := Parse(c.src, isVar)
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%q: error %v, want one containing %q", c.src, err, c.msg)
		}
	}
}

// FuzzParse: no input makes Parse or Eval panic, and a parsed formula
// evaluates on any values.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"similarity * log(1 + viewers_now) * exp(-live_minutes/60)", "min(a,b,c)", "((((x))))", "-+-x", "pow(x, 1e3)/0", "$p*2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		e, err := Parse(src, nil)
		if err != nil {
			return
		}
		vals := make([]float64, len(e.Vars()))
		for i := range vals {
			vals[i] = float64(i) - 1.5
		}
		_ = e.Eval(vals)
	})
}

// BenchmarkEval evaluates the example formula over 1,000 candidates'
// values (the per-request re-ranking work besides reading the values).
func BenchmarkEval(b *testing.B) {
	e, err := Parse("similarity * log(1 + viewers_now) * exp(-live_minutes / 60)", nil)
	if err != nil {
		b.Fatal(err)
	}
	const n = 1000
	rng := rand.New(rand.NewPCG(1, 2))
	vals := make([][]float64, n)
	for i := range vals {
		vals[i] = []float64{rng.Float64(), float64(rng.IntN(500)), rng.Float64() * 240}
	}
	b.ReportAllocs()
	b.ResetTimer()
	var sink float64
	for b.Loop() {
		for _, v := range vals {
			sink += e.Eval(v)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/candidate")
	_ = sink
}
