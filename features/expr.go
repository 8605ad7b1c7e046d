package features

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The filter and projection language: a small, typed expression language
// over an event's fields.
//
//	expr    = or
//	or      = and { "||" and }
//	and     = unary { "&&" unary }
//	unary   = "!" unary | compare
//	compare = operand [ ( "==" | "!=" | "<" | "<=" | ">" | ">=" ) operand
//	                  | "in" ( list | field ) ]
//	operand = field | string | number | "true" | "false" | "(" expr ")"
//	list    = "[" [ literal { "," literal } ] "]"
//
// Strings are double- or single-quoted (Go escapes in double quotes).
// Fields are the JSON names of the source's schema; a field the event does
// not carry reads as its type's zero value ("" or 0). Types are checked when
// the definition is compiled: both sides of a comparison have one type,
// "<" and friends need numbers or strings, "&&", "||" and "!" need bools,
// `x in [..]` needs literals of x's type, `"v" in tags` a list field.

const (
	maxExprLen   = 4096
	maxExprDepth = 64
)

// ExprError is an error in an expression at byte offset Pos.
type ExprError struct {
	Pos int
	Msg string
	Fix string
}

func (e *ExprError) Error() string { return fmt.Sprintf("at offset %d: %s", e.Pos, e.Msg) }

type tokKind uint8

const (
	tEOF tokKind = iota
	tIdent
	tString
	tNumber
	tOp
)

type etoken struct {
	kind tokKind
	text string // operator, identifier, or the decoded string
	num  float64
	pos  int
}

func lex(src string) ([]etoken, *ExprError) {
	var toks []etoken
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '"' || c == '\'':
			j := i + 1
			for j < len(src) && src[j] != c {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(src) {
				return nil, &ExprError{Pos: i, Msg: "unterminated string", Fix: fmt.Sprintf("close it with %c", c)}
			}
			raw := src[i : j+1]
			var s string
			if c == '"' {
				var err error
				if s, err = strconv.Unquote(raw); err != nil {
					return nil, &ExprError{Pos: i, Msg: "bad string " + raw}
				}
			} else {
				s = strings.ReplaceAll(raw[1:len(raw)-1], `\'`, `'`)
			}
			toks = append(toks, etoken{kind: tString, text: s, pos: i})
			i = j + 1
		case c >= '0' && c <= '9' || c == '.' || (c == '-' && i+1 < len(src) && (src[i+1] >= '0' && src[i+1] <= '9' || src[i+1] == '.') && negOK(toks)):
			j := i + 1
			for j < len(src) && (src[j] >= '0' && src[j] <= '9' || src[j] == '.' || src[j] == 'e' || src[j] == 'E' ||
				(src[j] == '-' || src[j] == '+') && (src[j-1] == 'e' || src[j-1] == 'E') || src[j] == '_') {
				j++
			}
			f, err := strconv.ParseFloat(src[i:j], 64)
			if err != nil || !finite(f) {
				return nil, &ExprError{Pos: i, Msg: fmt.Sprintf("bad number %q", src[i:j])}
			}
			toks = append(toks, etoken{kind: tNumber, num: f, text: src[i:j], pos: i})
			i = j
		case c == '_' || c < utf8.RuneSelf && unicode.IsLetter(rune(c)):
			j := i + 1
			for j < len(src) && (src[j] == '_' || src[j] < utf8.RuneSelf && (unicode.IsLetter(rune(src[j])) || unicode.IsDigit(rune(src[j])))) {
				j++
			}
			toks = append(toks, etoken{kind: tIdent, text: src[i:j], pos: i})
			i = j
		default:
			op := ""
			for _, o := range []string{"==", "!=", "<=", ">=", "&&", "||", "<", ">", "!", "(", ")", "[", "]", ","} {
				if strings.HasPrefix(src[i:], o) {
					op = o
					break
				}
			}
			if op == "" {
				r, _ := utf8.DecodeRuneInString(src[i:])
				e := &ExprError{Pos: i, Msg: fmt.Sprintf("unexpected %q", r)}
				switch r {
				case '=':
					e.Fix = `use == to compare`
				case '&':
					e.Fix = `use && for "and"`
				case '|':
					e.Fix = `use || for "or"`
				}
				return nil, e
			}
			toks = append(toks, etoken{kind: tOp, text: op, pos: i})
			i += len(op)
		}
	}
	return append(toks, etoken{kind: tEOF, pos: len(src)}), nil
}

// negOK reports whether a '-' here starts a negative number (after an
// operator or at the start) rather than being a stray minus.
func negOK(toks []etoken) bool {
	return len(toks) == 0 || toks[len(toks)-1].kind == tOp && toks[len(toks)-1].text != ")" && toks[len(toks)-1].text != "]"
}

// AST.
type exprNode interface{ position() int }

type (
	identExpr struct {
		name string
		pos  int
	}
	litExpr struct {
		v   Value
		pos int
	}
	listExpr struct {
		items []litExpr
		pos   int
	}
	notExpr struct {
		x   exprNode
		pos int
	}
	binExpr struct {
		op   string
		l, r exprNode
		pos  int
	}
)

func (e *identExpr) position() int { return e.pos }
func (e *litExpr) position() int   { return e.pos }
func (e *listExpr) position() int  { return e.pos }
func (e *notExpr) position() int   { return e.pos }
func (e *binExpr) position() int   { return e.pos }

type exprParser struct {
	toks  []etoken
	i     int
	depth int
}

func (p *exprParser) peek() etoken { return p.toks[p.i] }
func (p *exprParser) next() etoken {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}
func (p *exprParser) isOp(op string) bool { t := p.peek(); return t.kind == tOp && t.text == op }

func parseExpr(src string) (exprNode, *ExprError) {
	if len(src) > maxExprLen {
		return nil, &ExprError{Pos: maxExprLen, Msg: fmt.Sprintf("expression longer than %d bytes", maxExprLen)}
	}
	if strings.TrimSpace(src) == "" {
		return nil, &ExprError{Msg: "empty expression"}
	}
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &exprParser{toks: toks}
	n, err := p.or()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		e := &ExprError{Pos: t.pos, Msg: fmt.Sprintf("unexpected %s after the expression", describe(t))}
		if t.kind == tIdent && (t.text == "and" || t.text == "or" || t.text == "not") {
			e.Fix = map[string]string{"and": "use &&", "or": "use ||", "not": "use !"}[t.text]
		}
		return nil, e
	}
	return n, nil
}

func describe(t etoken) string {
	switch t.kind {
	case tEOF:
		return "end of expression"
	case tString:
		return strconv.Quote(t.text)
	case tNumber:
		return t.text
	}
	return fmt.Sprintf("%q", t.text)
}

func (p *exprParser) enter() *ExprError {
	p.depth++
	if p.depth > maxExprDepth {
		return &ExprError{Pos: p.peek().pos, Msg: fmt.Sprintf("expression nested deeper than %d", maxExprDepth)}
	}
	return nil
}

func (p *exprParser) or() (exprNode, *ExprError) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.isOp("||") {
		t := p.next()
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		l = &binExpr{op: "||", l: l, r: r, pos: t.pos}
	}
	return l, nil
}

func (p *exprParser) and() (exprNode, *ExprError) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	for p.isOp("&&") {
		t := p.next()
		r, err := p.unary()
		if err != nil {
			return nil, err
		}
		l = &binExpr{op: "&&", l: l, r: r, pos: t.pos}
	}
	return l, nil
}

func (p *exprParser) unary() (exprNode, *ExprError) {
	if p.isOp("!") {
		if err := p.enter(); err != nil {
			return nil, err
		}
		defer func() { p.depth-- }()
		t := p.next()
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return &notExpr{x: x, pos: t.pos}, nil
	}
	return p.compare()
}

func (p *exprParser) compare() (exprNode, *ExprError) {
	l, err := p.operand()
	if err != nil {
		return nil, err
	}
	t := p.peek()
	switch {
	case t.kind == tOp && (t.text == "==" || t.text == "!=" || t.text == "<" || t.text == "<=" || t.text == ">" || t.text == ">="):
		p.next()
		r, err := p.operand()
		if err != nil {
			return nil, err
		}
		return &binExpr{op: t.text, l: l, r: r, pos: t.pos}, nil
	case t.kind == tIdent && t.text == "in":
		p.next()
		var r exprNode
		if p.isOp("[") {
			r, err = p.list()
		} else {
			r, err = p.operand()
		}
		if err != nil {
			return nil, err
		}
		return &binExpr{op: "in", l: l, r: r, pos: t.pos}, nil
	}
	return l, nil
}

func (p *exprParser) list() (exprNode, *ExprError) {
	open := p.next()
	le := &listExpr{pos: open.pos}
	if p.isOp("]") {
		p.next()
		return le, nil
	}
	for {
		t := p.next()
		switch t.kind {
		case tString:
			le.items = append(le.items, litExpr{v: StringValue(t.text), pos: t.pos})
		case tNumber:
			le.items = append(le.items, litExpr{v: NumberValue(t.num), pos: t.pos})
		case tIdent:
			if t.text == "true" || t.text == "false" {
				le.items = append(le.items, litExpr{v: BoolValue(t.text == "true"), pos: t.pos})
				break
			}
			return nil, &ExprError{Pos: t.pos, Msg: fmt.Sprintf("list items must be literals, got %s", t.text),
				Fix: fmt.Sprintf("quote it: %q", t.text)}
		default:
			return nil, &ExprError{Pos: t.pos, Msg: fmt.Sprintf("want a literal in the list, got %s", describe(t))}
		}
		if p.isOp(",") {
			p.next()
			continue
		}
		if p.isOp("]") {
			p.next()
			return le, nil
		}
		t = p.peek()
		return nil, &ExprError{Pos: t.pos, Msg: fmt.Sprintf("want , or ] in the list, got %s", describe(t))}
	}
}

func (p *exprParser) operand() (exprNode, *ExprError) {
	t := p.next()
	switch t.kind {
	case tIdent:
		switch t.text {
		case "true", "false":
			return &litExpr{v: BoolValue(t.text == "true"), pos: t.pos}, nil
		case "in", "and", "or", "not":
			return nil, &ExprError{Pos: t.pos, Msg: fmt.Sprintf("unexpected %q", t.text),
				Fix: map[string]string{"in": "write field in [...]", "and": "use &&", "or": "use ||", "not": "use !"}[t.text]}
		}
		return &identExpr{name: t.text, pos: t.pos}, nil
	case tString:
		return &litExpr{v: StringValue(t.text), pos: t.pos}, nil
	case tNumber:
		return &litExpr{v: NumberValue(t.num), pos: t.pos}, nil
	case tOp:
		if t.text == "(" {
			if err := p.enter(); err != nil {
				return nil, err
			}
			x, err := p.or()
			p.depth--
			if err != nil {
				return nil, err
			}
			if !p.isOp(")") {
				u := p.peek()
				return nil, &ExprError{Pos: u.pos, Msg: fmt.Sprintf("want ) got %s", describe(u)), Fix: "close the parenthesis"}
			}
			p.next()
			return x, nil
		}
		if t.text == "!" {
			p.i--
			return p.unary()
		}
		if t.text == "[" {
			return nil, &ExprError{Pos: t.pos, Msg: "a list is only allowed after in", Fix: "write field in [...]"}
		}
	case tEOF:
		return nil, &ExprError{Pos: t.pos, Msg: "expression ends too early"}
	}
	return nil, &ExprError{Pos: t.pos, Msg: fmt.Sprintf("unexpected %s", describe(t))}
}

// Type checking and compilation.

type evalFn func(Event) Value

type compiledExpr struct {
	typ    FieldType
	eval   evalFn
	fields []string // fields read, in order of appearance
}

// exprSchema is what an expression may read: the fields common to every
// source of the feature, and for an unknown one, which source lacks it.
type exprSchema struct {
	fields  map[string]FieldType
	sources []string
}

func (s exprSchema) unknown(name string, pos int) *ExprError {
	e := &ExprError{Pos: pos}
	var lacking []string
	for _, src := range s.sources {
		if _, ok := schemas[src][name]; !ok {
			lacking = append(lacking, src)
		}
	}
	if len(lacking) < len(s.sources) {
		e.Msg = fmt.Sprintf("field %q is not in the schema of source %s", name, strings.Join(lacking, ", "))
		e.Fix = "read it only from sources that have it (a separate feature per source)"
		return e
	}
	e.Msg = fmt.Sprintf("unknown field %q for %s", name, strings.Join(s.sources, ", "))
	if m := suggest(name, fieldNames(s.fields)); m != "" {
		e.Fix = fmt.Sprintf("did you mean %q?", m)
	} else {
		e.Fix = "fields: " + strings.Join(fieldNames(s.fields), ", ")
	}
	return e
}

// compileExpr parses, checks and compiles src against the schema.
func compileExpr(src string, sch exprSchema) (*compiledExpr, *ExprError) {
	n, err := parseExpr(src)
	if err != nil {
		return nil, err
	}
	c := &compiledExpr{}
	typ, fn, err := c.compile(n, sch)
	if err != nil {
		return nil, err
	}
	c.typ, c.eval = typ, fn
	return c, nil
}

func zeroOf(t FieldType) Value {
	switch t {
	case TypeString:
		return StringValue("")
	case TypeNumber:
		return NumberValue(0)
	case TypeBool:
		return BoolValue(false)
	case TypeList:
		return ListValue(nil)
	}
	return Value{}
}

func kindOf(t FieldType) Kind {
	switch t {
	case TypeString:
		return String
	case TypeNumber:
		return Number
	case TypeBool:
		return Bool
	case TypeList:
		return List
	}
	return Missing
}

func typeOfKind(k Kind) FieldType {
	switch k {
	case String:
		return TypeString
	case Number:
		return TypeNumber
	case Bool:
		return TypeBool
	case List:
		return TypeList
	}
	return 0
}

var (
	trueV  = BoolValue(true)
	falseV = BoolValue(false)
)

func boolV(b bool) Value {
	if b {
		return trueV
	}
	return falseV
}

func (c *compiledExpr) compile(n exprNode, sch exprSchema) (FieldType, evalFn, *ExprError) {
	switch n := n.(type) {
	case *litExpr:
		v := n.v
		return typeOfKind(v.kind), func(Event) Value { return v }, nil
	case *identExpr:
		t, ok := sch.fields[n.name]
		if !ok {
			return 0, nil, sch.unknown(n.name, n.pos)
		}
		if t == TypeTime {
			return 0, nil, &ExprError{Pos: n.pos, Msg: fmt.Sprintf("%s is a time: windows, not filters, select by time", n.name),
				Fix: "remove it from the expression"}
		}
		c.fields = append(c.fields, n.name)
		name, want, zero := n.name, kindOf(t), zeroOf(t)
		return t, func(ev Event) Value {
			v, ok := ev.Field(name)
			if !ok || v.kind != want {
				return zero
			}
			return v
		}, nil
	case *listExpr:
		return 0, nil, &ExprError{Pos: n.pos, Msg: "a list is only allowed after in", Fix: "write field in [...]"}
	case *notExpr:
		t, x, err := c.compile(n.x, sch)
		if err != nil {
			return 0, nil, err
		}
		if t != TypeBool {
			return 0, nil, &ExprError{Pos: n.pos, Msg: fmt.Sprintf("! needs a bool, got a %s", t), Fix: `compare it, e.g. x == ""`}
		}
		return TypeBool, func(ev Event) Value { return boolV(!x(ev).Bool()) }, nil
	case *binExpr:
		return c.compileBin(n, sch)
	}
	return 0, nil, &ExprError{Msg: "unknown expression"}
}

func (c *compiledExpr) compileBin(n *binExpr, sch exprSchema) (FieldType, evalFn, *ExprError) {
	if n.op == "in" {
		lt, l, err := c.compile(n.l, sch)
		if err != nil {
			return 0, nil, err
		}
		if le, ok := n.r.(*listExpr); ok {
			if lt == TypeList {
				return 0, nil, &ExprError{Pos: n.pos, Msg: "the left of in must be a value, not a list"}
			}
			set := map[string]bool{}
			for _, it := range le.items {
				if typeOfKind(it.v.kind) != lt {
					return 0, nil, &ExprError{Pos: it.pos, Msg: fmt.Sprintf("list item %s is a %s, the left side a %s", it.v, typeOfKind(it.v.kind), lt),
						Fix: fmt.Sprintf("use %s items", lt)}
				}
				set[it.v.Key()] = true
			}
			return TypeBool, func(ev Event) Value { return boolV(set[l(ev).Key()]) }, nil
		}
		rt, r, err := c.compile(n.r, sch)
		if err != nil {
			return 0, nil, err
		}
		if rt != TypeList {
			return 0, nil, &ExprError{Pos: n.r.position(), Msg: fmt.Sprintf("in needs a list on the right, got a %s", rt),
				Fix: `write x in ["a", "b"] or "a" in tags`}
		}
		if lt != TypeString {
			return 0, nil, &ExprError{Pos: n.l.position(), Msg: fmt.Sprintf("a list field holds strings, the left side is a %s", lt)}
		}
		return TypeBool, func(ev Event) Value {
			s := l(ev).str
			for _, x := range r(ev).list {
				if x == s {
					return trueV
				}
			}
			return falseV
		}, nil
	}
	lt, l, err := c.compile(n.l, sch)
	if err != nil {
		return 0, nil, err
	}
	rt, r, err := c.compile(n.r, sch)
	if err != nil {
		return 0, nil, err
	}
	switch n.op {
	case "&&", "||":
		if lt != TypeBool || rt != TypeBool {
			bad, pos := lt, n.l.position()
			if lt == TypeBool {
				bad, pos = rt, n.r.position()
			}
			return 0, nil, &ExprError{Pos: pos, Msg: fmt.Sprintf("%s needs bools on both sides, got a %s", n.op, bad),
				Fix: `compare it, e.g. amount > 0`}
		}
		if n.op == "&&" {
			return TypeBool, func(ev Event) Value { return boolV(l(ev).Bool() && r(ev).Bool()) }, nil
		}
		return TypeBool, func(ev Event) Value { return boolV(l(ev).Bool() || r(ev).Bool()) }, nil
	}
	if lt != rt {
		fix := ""
		if lt == TypeString && rt == TypeNumber || lt == TypeNumber && rt == TypeString {
			fix = "quote strings, leave numbers bare"
		}
		return 0, nil, &ExprError{Pos: n.pos, Msg: fmt.Sprintf("%s compares a %s with a %s", n.op, lt, rt), Fix: fix}
	}
	if lt == TypeList {
		return 0, nil, &ExprError{Pos: n.pos, Msg: "lists cannot be compared", Fix: `test membership: "x" in tags`}
	}
	op := n.op
	if lt == TypeBool && op != "==" && op != "!=" {
		return 0, nil, &ExprError{Pos: n.pos, Msg: fmt.Sprintf("bools have no order for %s", op), Fix: "use == or !="}
	}
	if lt == TypeNumber {
		var f func(a, b float64) bool
		switch op {
		case "==":
			f = func(a, b float64) bool { return a == b }
		case "!=":
			f = func(a, b float64) bool { return a != b }
		case "<":
			f = func(a, b float64) bool { return a < b }
		case "<=":
			f = func(a, b float64) bool { return a <= b }
		case ">":
			f = func(a, b float64) bool { return a > b }
		case ">=":
			f = func(a, b float64) bool { return a >= b }
		}
		return TypeBool, func(ev Event) Value { return boolV(f(l(ev).num, r(ev).num)) }, nil
	}
	// Strings (and bools, by their key).
	var f func(a, b string) bool
	switch op {
	case "==":
		f = func(a, b string) bool { return a == b }
	case "!=":
		f = func(a, b string) bool { return a != b }
	case "<":
		f = func(a, b string) bool { return a < b }
	case "<=":
		f = func(a, b string) bool { return a <= b }
	case ">":
		f = func(a, b string) bool { return a > b }
	case ">=":
		f = func(a, b string) bool { return a >= b }
	}
	if lt == TypeBool {
		return TypeBool, func(ev Event) Value { return boolV(f(l(ev).Key(), r(ev).Key())) }, nil
	}
	// Fast path: field == "literal".
	if id, ok := n.l.(*identExpr); ok {
		if lit, ok := n.r.(*litExpr); ok && (op == "==" || op == "!=") {
			name, want, neg := id.name, lit.v.str, op == "!="
			return TypeBool, func(ev Event) Value {
				v, _ := ev.Field(name)
				return boolV((v.kind == String && v.str == want || v.kind != String && want == "") != neg)
			}, nil
		}
	}
	return TypeBool, func(ev Event) Value { return boolV(f(l(ev).str, r(ev).str)) }, nil
}

// CheckExpr parses and type-checks an expression against the fields of
// the given sources; it returns the expression's type. It is what
// validation runs on filters (which must be bool) and projections.
func CheckExpr(src string, sources ...string) (FieldType, error) {
	c, err := compileExpr(src, schemaOf(sources))
	if err != nil {
		return 0, err
	}
	return c.typ, nil
}

// schemaOf is the fields common (same name and type) to every source.
func schemaOf(sources []string) exprSchema {
	s := exprSchema{fields: map[string]FieldType{}, sources: sources}
	for i, src := range sources {
		sc := schemas[src]
		if i == 0 {
			for k, v := range sc {
				s.fields[k] = v
			}
			continue
		}
		for k, v := range s.fields {
			if sc[k] != v {
				delete(s.fields, k)
			}
		}
	}
	return s
}
