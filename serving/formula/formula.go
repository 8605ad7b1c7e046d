// Package formula is serving's ranking-formula language: a small arithmetic
// expression over a candidate's numbers, parsed once and evaluated per
// candidate.
//
//	expr    = term { ("+" | "-") term }
//	term    = unary { ("*" | "/") unary }
//	unary   = ("-" | "+") unary | primary
//	primary = number | variable | function "(" expr { "," expr } ")" | "(" expr ")"
//
// Functions: log, log1p, exp, sqrt, abs (one argument), pow and coalesce
// (two), min and max (two or more). coalesce(x, y) is x, or y when x is NaN:
// serving gives a feature without a value (null) as NaN, so
// coalesce(max_bid_5m, 0) reads a missing value as 0. Variables are names ([A-Za-z_$][A-Za-z0-9_]*) that the
// caller declares when parsing; each gets a slot, and Eval reads the values
// from a slice in slot order. Parsing bounds the source length, nesting depth,
// node count and evaluation stack; evaluation is a loop over a postfix
// program on a fixed-size stack: no allocation, no reflection.
package formula

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Limits of a formula.
const (
	MaxLen   = 1024 // bytes of source
	MaxDepth = 32   // nesting of parentheses, calls and unary operators
	MaxNodes = 256  // numbers, variables, operators and calls
	maxStack = 64   // evaluation stack
)

// Error is a problem in a formula at byte offset Pos.
type Error struct {
	Pos int
	Msg string
}

func (e *Error) Error() string { return fmt.Sprintf("at offset %d: %s", e.Pos, e.Msg) }

type op uint8

const (
	opConst op = iota
	opVar
	opNeg
	opAdd
	opSub
	opMul
	opDiv
	opLog
	opLog1p
	opExp
	opSqrt
	opAbs
	opPow
	opMin
	opMax
	opCoalesce
)

type instr struct {
	op op
	n  int32 // variable slot, or argument count of min/max
	c  float64
}

// functions by name: opcode and arity (−2: two or more).
var functions = map[string]struct {
	op    op
	arity int
}{
	"log": {opLog, 1}, "log1p": {opLog1p, 1}, "exp": {opExp, 1}, "sqrt": {opSqrt, 1}, "abs": {opAbs, 1},
	"pow": {opPow, 2}, "min": {opMin, -2}, "max": {opMax, -2}, "coalesce": {opCoalesce, 2},
}

// Functions lists the function names (documentation, error messages).
func Functions() []string {
	return []string{"log", "log1p", "exp", "sqrt", "abs", "pow", "min", "max", "coalesce"}
}

// Expr is a parsed formula. It is immutable and safe for concurrent use.
type Expr struct {
	src  string
	prog []instr
	vars []string
}

// String returns the formula's source.
func (e *Expr) String() string { return e.src }

// Vars returns the variables the formula uses, in slot order: Eval reads
// vals[i] for Vars()[i].
func (e *Expr) Vars() []string { return e.vars }

// Parse parses src. isVar says whether a name is a variable (nil: any name
// that is not a function); an unknown name is an error.
func Parse(src string, isVar func(name string) bool) (*Expr, error) {
	if len(src) > MaxLen {
		return nil, &Error{Pos: MaxLen, Msg: fmt.Sprintf("longer than %d bytes", MaxLen)}
	}
	if strings.TrimSpace(src) == "" {
		return nil, &Error{Msg: "empty formula"}
	}
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks, isVar: isVar, slots: map[string]int32{}}
	if err := p.expr(); err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, &Error{Pos: t.pos, Msg: fmt.Sprintf("unexpected %q", t.text)}
	}
	e := &Expr{src: src, prog: p.prog, vars: p.vars}
	if d := e.stackDepth(); d > maxStack {
		return nil, &Error{Msg: fmt.Sprintf("too complex: needs an evaluation stack of %d (limit %d)", d, maxStack)}
	}
	return e, nil
}

func (e *Expr) stackDepth() int {
	d, top := 0, 0
	for _, in := range e.prog {
		switch in.op {
		case opConst, opVar:
			d++
		case opAdd, opSub, opMul, opDiv, opPow, opCoalesce:
			d--
		case opMin, opMax:
			d -= int(in.n) - 1
		}
		top = max(top, d)
	}
	return top
}

// Eval evaluates the formula with vals in slot order (len(vals) ≥
// len(Vars())). The result may be NaN or ±Inf (log of 0, 0/0, ...); callers
// decide how to rank those.
func (e *Expr) Eval(vals []float64) float64 {
	var st [maxStack]float64
	sp := 0
	for _, in := range e.prog {
		switch in.op {
		case opConst:
			st[sp] = in.c
			sp++
		case opVar:
			st[sp] = vals[in.n]
			sp++
		case opNeg:
			st[sp-1] = -st[sp-1]
		case opAdd:
			sp--
			st[sp-1] += st[sp]
		case opSub:
			sp--
			st[sp-1] -= st[sp]
		case opMul:
			sp--
			st[sp-1] *= st[sp]
		case opDiv:
			sp--
			st[sp-1] /= st[sp]
		case opLog:
			st[sp-1] = math.Log(st[sp-1])
		case opLog1p:
			st[sp-1] = math.Log1p(st[sp-1])
		case opExp:
			st[sp-1] = math.Exp(st[sp-1])
		case opSqrt:
			st[sp-1] = math.Sqrt(st[sp-1])
		case opAbs:
			st[sp-1] = math.Abs(st[sp-1])
		case opPow:
			sp--
			st[sp-1] = math.Pow(st[sp-1], st[sp])
		case opCoalesce:
			sp--
			if math.IsNaN(st[sp-1]) {
				st[sp-1] = st[sp]
			}
		case opMin, opMax:
			n := int(in.n)
			x := st[sp-n]
			for _, y := range st[sp-n+1 : sp] {
				if in.op == opMin {
					x = math.Min(x, y)
				} else {
					x = math.Max(x, y)
				}
			}
			sp -= n - 1
			st[sp-1] = x
		}
	}
	return st[0]
}

// Lexer.

type tokKind uint8

const (
	tEOF tokKind = iota
	tNum
	tIdent
	tOp
)

type token struct {
	kind tokKind
	text string
	num  float64
	pos  int
}

func isLetter(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

func lex(src string) ([]token, error) {
	var toks []token
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case isDigit(c) || c == '.':
			j := i
			for j < len(src) && (isDigit(src[j]) || src[j] == '.') {
				j++
			}
			if j < len(src) && (src[j] == 'e' || src[j] == 'E') {
				k := j + 1
				if k < len(src) && (src[k] == '+' || src[k] == '-') {
					k++
				}
				if k < len(src) && isDigit(src[k]) {
					for k < len(src) && isDigit(src[k]) {
						k++
					}
					j = k
				}
			}
			f, err := strconv.ParseFloat(src[i:j], 64)
			if err != nil || math.IsInf(f, 0) {
				return nil, &Error{Pos: i, Msg: fmt.Sprintf("bad number %q", src[i:j])}
			}
			toks = append(toks, token{kind: tNum, text: src[i:j], num: f, pos: i})
			i = j
		case isLetter(c) || c == '$':
			j := i + 1
			for j < len(src) && (isLetter(src[j]) || isDigit(src[j])) {
				j++
			}
			if c == '$' && j == i+1 {
				return nil, &Error{Pos: i, Msg: "$ must start a parameter name, e.g. $half_life"}
			}
			toks = append(toks, token{kind: tIdent, text: src[i:j], pos: i})
			i = j
		case strings.IndexByte("+-*/(),", c) >= 0:
			toks = append(toks, token{kind: tOp, text: src[i : i+1], pos: i})
			i++
		default:
			msg := fmt.Sprintf("unexpected %q", src[i:i+1])
			if c == '^' {
				msg += " (use pow(x, y))"
			}
			return nil, &Error{Pos: i, Msg: msg}
		}
	}
	return append(toks, token{kind: tEOF, pos: len(src)}), nil
}

// Parser: recursive descent emitting postfix code.

type parser struct {
	toks  []token
	i     int
	depth int
	nodes int
	prog  []instr
	vars  []string
	slots map[string]int32
	isVar func(string) bool
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}
func (p *parser) isOp(s string) bool { t := p.peek(); return t.kind == tOp && t.text == s }

func (p *parser) emit(in instr, pos int) error {
	p.nodes++
	if p.nodes > MaxNodes {
		return &Error{Pos: pos, Msg: fmt.Sprintf("more than %d terms", MaxNodes)}
	}
	p.prog = append(p.prog, in)
	return nil
}

func (p *parser) enter(pos int) error {
	p.depth++
	if p.depth > MaxDepth {
		return &Error{Pos: pos, Msg: fmt.Sprintf("nested deeper than %d", MaxDepth)}
	}
	return nil
}

func (p *parser) expr() error {
	if err := p.term(); err != nil {
		return err
	}
	for p.isOp("+") || p.isOp("-") {
		t := p.next()
		if err := p.term(); err != nil {
			return err
		}
		o := opAdd
		if t.text == "-" {
			o = opSub
		}
		if err := p.emit(instr{op: o}, t.pos); err != nil {
			return err
		}
	}
	return nil
}

func (p *parser) term() error {
	if err := p.unary(); err != nil {
		return err
	}
	for p.isOp("*") || p.isOp("/") {
		t := p.next()
		if err := p.unary(); err != nil {
			return err
		}
		o := opMul
		if t.text == "/" {
			o = opDiv
		}
		if err := p.emit(instr{op: o}, t.pos); err != nil {
			return err
		}
	}
	return nil
}

func (p *parser) unary() error {
	if p.isOp("-") || p.isOp("+") {
		t := p.next()
		if err := p.enter(t.pos); err != nil {
			return err
		}
		defer func() { p.depth-- }()
		if err := p.unary(); err != nil {
			return err
		}
		if t.text == "-" {
			return p.emit(instr{op: opNeg}, t.pos)
		}
		return nil
	}
	return p.primary()
}

func (p *parser) primary() error {
	t := p.next()
	switch {
	case t.kind == tNum:
		return p.emit(instr{op: opConst, c: t.num}, t.pos)
	case t.kind == tOp && t.text == "(":
		if err := p.enter(t.pos); err != nil {
			return err
		}
		defer func() { p.depth-- }()
		if err := p.expr(); err != nil {
			return err
		}
		if !p.isOp(")") {
			return &Error{Pos: p.peek().pos, Msg: "missing )"}
		}
		p.next()
		return nil
	case t.kind == tIdent && p.isOp("("):
		return p.call(t)
	case t.kind == tIdent:
		if _, isFn := functions[t.text]; isFn {
			return &Error{Pos: t.pos, Msg: fmt.Sprintf("%s is a function: call it, e.g. %s(x)", t.text, t.text)}
		}
		if p.isVar != nil && !p.isVar(t.text) {
			return &Error{Pos: t.pos, Msg: fmt.Sprintf("unknown variable %q", t.text)}
		}
		slot, ok := p.slots[t.text]
		if !ok {
			slot = int32(len(p.vars))
			p.slots[t.text] = slot
			p.vars = append(p.vars, t.text)
		}
		return p.emit(instr{op: opVar, n: slot}, t.pos)
	case t.kind == tEOF:
		return &Error{Pos: t.pos, Msg: "unexpected end of formula"}
	default:
		return &Error{Pos: t.pos, Msg: fmt.Sprintf("unexpected %q", t.text)}
	}
}

func (p *parser) call(name token) error {
	fn, ok := functions[name.text]
	if !ok {
		return &Error{Pos: name.pos, Msg: fmt.Sprintf("unknown function %q (have %s)", name.text, strings.Join(Functions(), ", "))}
	}
	if err := p.enter(name.pos); err != nil {
		return err
	}
	defer func() { p.depth-- }()
	p.next() // (
	n := 0
	if !p.isOp(")") {
		for {
			if err := p.expr(); err != nil {
				return err
			}
			n++
			if !p.isOp(",") {
				break
			}
			p.next()
		}
	}
	if !p.isOp(")") {
		return &Error{Pos: p.peek().pos, Msg: fmt.Sprintf("missing ) after the arguments of %s", name.text)}
	}
	p.next()
	switch {
	case fn.arity == -2 && n < 2:
		return &Error{Pos: name.pos, Msg: fmt.Sprintf("%s takes two or more arguments, got %d", name.text, n)}
	case fn.arity >= 0 && n != fn.arity:
		return &Error{Pos: name.pos, Msg: fmt.Sprintf("%s takes %d argument(s), got %d", name.text, fn.arity, n)}
	}
	return p.emit(instr{op: fn.op, n: int32(n)}, name.pos)
}
