package features

import (
	"fmt"
	"strings"
)

// Error is one problem in a feature definition: where (file, line and
// column when it came from YAML; the feature and the key path), what, and
// how to fix it.
type Error struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Feature string `json:"feature,omitempty"`
	Path    string `json:"path,omitempty"` // key path in the definition, e.g. "window.hop"
	Msg     string `json:"message"`
	Fix     string `json:"fix,omitempty"`

	exprPos int // byte offset + 1 of an error in a filter or field expression
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteByte(':')
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "%d:%d:", e.Line, e.Column)
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	if e.Feature != "" {
		fmt.Fprintf(&b, "feature %s: ", e.Feature)
	}
	if e.Path != "" && !strings.HasPrefix(e.Msg, e.Path) {
		fmt.Fprintf(&b, "%s: ", e.Path)
	}
	b.WriteString(e.Msg)
	if e.Fix != "" {
		b.WriteString(" (fix: ")
		b.WriteString(e.Fix)
		b.WriteByte(')')
	}
	return b.String()
}

// Errors is every problem found, in file order; it is the error type of
// Parse, NewSet and Definition.Validate.
type Errors []*Error

func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

func (es Errors) err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}
