package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
)

// Parameter types of named queries.
const (
	ParamString  = "string"  // one string
	ParamStrings = "strings" // a list (a comma-separated list in a URL)
	ParamNumber  = "number"  // a float
	ParamInteger = "integer" // an integer
)

// QueryList is the body of GET /v1/queries.
type QueryList struct {
	Queries []NamedQuery `json:"queries"`
}

// NamedQuery describes one named query (serving/queries.yaml).
type NamedQuery struct {
	Name        string  `json:"name"`
	Description string  `json:"description,omitempty"`
	Params      []Param `json:"params"`
	// Filter is the query's filter template as its file gives it: sets are
	// a string or a list of strings, range bounds a number, and either may
	// be a "$param" reference.
	Filter       json.RawMessage `json:"filter"`
	Formula      string          `json:"formula,omitempty"`
	K            int             `json:"k"`
	MaxPerSeller int             `json:"max_per_seller,omitempty"`
	OverFetch    int             `json:"overfetch,omitempty"`
	ExcludeSeen  bool            `json:"exclude_seen"`
}

// Param is a named query's parameter.
type Param struct {
	Name        string `json:"name"`
	Type        string `json:"type"` // ParamString, ParamStrings, ParamNumber, ParamInteger
	Description string `json:"description,omitempty"`
	Required    bool   `json:"required,omitempty"`
	// Default is the value used when a request leaves the parameter out,
	// as JSON of the parameter's type; absent: none.
	Default *Arg `json:"default,omitempty"`
}

// QueryRequest is the body of POST /v1/queries/{name}: the GET parameters
// as JSON.
type QueryRequest struct {
	UserID  string         `json:"user_id"`
	K       int            `json:"k,omitempty"`
	Explain bool           `json:"explain,omitempty"`
	Exclude []string       `json:"exclude,omitempty"`
	Params  map[string]Arg `json:"params,omitempty"`
}

// Arg is the value of a named query's parameter: a string, a number or a
// list of strings. A strings parameter also takes a comma-separated string,
// a number parameter a numeric string. Make one with String, Number or
// Strings.
type Arg struct {
	kind argKind
	str  string
	num  float64
	list []string
}

type argKind uint8

const (
	argNone argKind = iota
	argString
	argNumber
	argList
)

// String is a string argument.
func String(s string) Arg { return Arg{kind: argString, str: s} }

// Number is a number argument.
func Number(x float64) Arg { return Arg{kind: argNumber, num: x} }

// Strings is a list argument.
func Strings(s ...string) Arg { return Arg{kind: argList, list: s} }

// Raw is the argument as a URL parameter value: the string, the number in
// its shortest form, or the list joined with commas.
func (a Arg) Raw() string {
	switch a.kind {
	case argNumber:
		return strconv.FormatFloat(a.num, 'g', -1, 64)
	case argList:
		return strings.Join(a.list, ",")
	}
	return a.str
}

// MarshalJSON writes a string, a number or a list of strings.
func (a Arg) MarshalJSON() ([]byte, error) {
	switch a.kind {
	case argNumber:
		return json.Marshal(a.num)
	case argList:
		if a.list == nil {
			return []byte("[]"), nil
		}
		return json.Marshal(a.list)
	}
	return json.Marshal(a.str)
}

// ErrArg is the error of an argument that is neither a string, a number
// nor a list of strings.
var ErrArg = errors.New("want a string, a number or a list of strings")

// UnmarshalJSON reads a string, a number or a list of strings.
func (a *Arg) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return ErrArg
	}
	switch b[0] {
	case '"':
		*a = Arg{kind: argString}
		return json.Unmarshal(b, &a.str)
	case '[':
		*a = Arg{kind: argList, list: []string{}}
		if err := json.Unmarshal(b, &a.list); err != nil {
			return ErrArg
		}
		return nil
	case 't', 'f', 'n', '{':
		return ErrArg
	}
	*a = Arg{kind: argNumber}
	return json.Unmarshal(b, &a.num)
}
