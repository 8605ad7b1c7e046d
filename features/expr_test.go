package features

import (
	"strings"
	"testing"
)

func TestFilterExpressions(t *testing.T) {
	bid := ev("auctions", 0, "type", "bid", "amount", 25.0, "currency", "USD", "user_id", "u1")
	sold := ev("auctions", 0, "type", "sold", "amount", 5.0, "currency", "EUR")
	start := ev("auctions", 0, "type", "start") // amount, currency, user_id missing: zero values
	cases := []struct {
		expr             string
		bid, sold, start bool
	}{
		{`type == "bid"`, true, false, false},
		{`type != "bid"`, false, true, true},
		{`type in ["bid","sold"]`, true, true, false},
		{`type in ['bid', 'sold']`, true, true, false},
		{`amount > 10 && currency == "USD"`, true, false, false},
		{`amount > 10 || currency == "EUR"`, true, true, false},
		{`!(type == "bid")`, false, true, true},
		{`!!(type == "bid")`, true, false, false},
		{`amount >= 5 && amount <= 25`, true, true, false},
		{`amount == 0`, false, false, true},
		{`user_id == ""`, false, true, true},
		{`amount in [5, 25]`, true, true, false},
		{`(type == "bid" || type == "sold") && !(amount < 10)`, true, false, false},
		{`type < "c"`, true, false, false},
		{`true`, true, true, true},
		{`amount > -1`, true, true, true},
		{`amount > 1e1`, true, false, false},
	}
	for _, c := range cases {
		ce, err := compileExpr(c.expr, schemaOf([]string{"auctions"}))
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		if ce.typ != TypeBool {
			t.Errorf("%s: type %v", c.expr, ce.typ)
		}
		for i, e := range []MapEvent{bid, sold, start} {
			want := []bool{c.bid, c.sold, c.start}[i]
			if got := ce.eval(e).Bool(); got != want {
				t.Errorf("%s on %v = %v, want %v", c.expr, e.Fields, got, want)
			}
		}
	}
	// Lists: "x" in tags.
	ls := ev("livestreams", 0, "tags", []any{"vintage", "cards"}, "category", "trading-cards")
	for expr, want := range map[string]bool{`"vintage" in tags`: true, `"toys" in tags`: false, `category in tags`: false} {
		ce, err := compileExpr(expr, schemaOf([]string{"livestreams"}))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		if got := ce.eval(ls).Bool(); got != want {
			t.Errorf("%s = %v", expr, got)
		}
	}
}

func TestFilterErrors(t *testing.T) {
	cases := map[string]string{
		`type = "bid"`:              "use == to compare",
		`type == "bid" and x`:       "use &&",
		`typ == "bid"`:              `did you mean "type"?`,
		`amount > "10"`:             "quote strings, leave numbers bare",
		`type == bid`:               `unknown field "bid"`,
		`type in [bid]`:             `quote it: "bid"`,
		`type in ["bid", 3]`:        "list item 3 is a number",
		`amount && true`:            "needs bools on both sides",
		`!amount`:                   "! needs a bool",
		`(type == "bid"`:            "close the parenthesis",
		`"x`:                        "unterminated string",
		`event_time > 3`:            "windows, not filters",
		``:                          "empty expression",
		`type in "bid"`:             "in needs a list",
		strings.Repeat("(", 100):    "nested deeper",
		`amount > 1 ||`:             "ends too early",
		`type == "a" type == "b"`:   "unexpected",
		`amount $ 3`:                "unexpected",
		`true < false`:              "no order",
		`[1, 2]`:                    "only allowed after in",
		`type in ["a" "b"]`:         "want , or ]",
		`amount == 1.2.3`:           "bad number",
		`currency == "USD" & true`:  `use && for "and"`,
		`currency == "USD" | true`:  `use || for "or"`,
		`"a" in ["a"] in ["b"]`:     "unexpected",
		`not (type == "bid")`:       "use !",
		`amount > 1 or amount < 0`:  "use ||",
		`user_idd == "a"`:           `did you mean "user_id"?`,
		`livestream_idd == "a"`:     `did you mean "livestream_id"?`,
		`amount == 1 && tags == ""`: `unknown field "tags"`,
	}
	for expr, want := range cases {
		_, err := CheckExpr(expr, "auctions")
		if err == nil {
			t.Errorf("%q accepted", expr)
			continue
		}
		msg := err.Error()
		if e, ok := err.(*ExprError); ok {
			msg += " " + e.Fix
		}
		if !strings.Contains(msg, want) {
			t.Errorf("%q: error %q lacks %q", expr, msg, want)
		}
	}
}

func TestListFieldErrors(t *testing.T) {
	for expr, want := range map[string]string{
		`tags == "x"`:        "compares a list with a string",
		`3 in tags`:          "holds strings",
		`tags in ["a"]`:      "not a list",
		`tags == tags`:       "lists cannot be compared",
		`status in [1]`:      "list item 1 is a number",
		`title in tags`:      "",
		`"vintage" in tags`:  "",
		`language == "en"`:   "",
		`status == "ended"`:  "",
		`seller_id == "s1"`:  "",
		`category != "toys"`: "",
	} {
		_, err := CheckExpr(expr, "livestreams")
		switch {
		case want == "" && err != nil:
			t.Errorf("%q: %v", expr, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%q: error %v lacks %q", expr, err, want)
		}
	}
	// Enriched fields exist on the other sources.
	for _, src := range []string{"viewing", "chat", "auctions"} {
		if _, err := CheckExpr(`seller_id == "s" && category == "c"`, src); err != nil {
			t.Errorf("%s: %v", src, err)
		}
	}
}

func FuzzFilter(f *testing.F) {
	for _, s := range []string{`type == "bid"`, `type in ["bid","sold"]`, `amount > 10 && currency == "USD"`,
		`!(a || b)`, `"v" in tags`, `amount >= -1e3`, `'x' != "y"`, `((((true))))`, `type in []`} {
		f.Add(s)
	}
	events := []MapEvent{
		ev("auctions", 0, "type", "bid", "amount", 25.0, "currency", "USD", "user_id", "u1"),
		ev("auctions", 0),
		ev("livestreams", 0, "tags", []any{"a"}, "status", "live"),
	}
	f.Fuzz(func(t *testing.T, src string) {
		for _, source := range []string{"auctions", "livestreams"} {
			c, err := compileExpr(src, schemaOf([]string{source}))
			if err != nil {
				if err.Pos < 0 || err.Pos > len(src) {
					t.Fatalf("%q: error position %d outside the expression", src, err.Pos)
				}
				continue
			}
			for _, e := range events {
				v := c.eval(e)
				if typeOfKind(v.kind) != c.typ {
					t.Fatalf("%q: evaluates to a %v, checked as %v", src, v.kind, c.typ)
				}
			}
		}
	})
}
