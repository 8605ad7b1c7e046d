package features

import (
	_ "embed"
	"fmt"
	"slices"
)

// DefaultsYAML is the default features file, embedded.
//
//go:embed defaults.yaml
var DefaultsYAML []byte

var defaultDefs = func() []Definition {
	defs, err := Parse(DefaultsYAML, WithFilename("features/defaults.yaml"))
	if err != nil {
		panic(fmt.Sprintf("features: invalid defaults.yaml: %v", err))
	}
	return defs
}()

// Defaults returns the default feature set (defaults.yaml): livestream,
// seller and user features. Use Set.ForEntity to give each processor its
// own.
func Defaults() []Definition { return cloneDefs(defaultDefs) }

// LivestreamDefaults are the default features of the livestream entity.
func LivestreamDefaults() []Definition {
	var out []Definition
	for _, d := range defaultDefs {
		if d.entity() == "livestream" {
			out = append(out, d)
		}
	}
	return cloneDefs(out)
}

func cloneDefs(defs []Definition) []Definition {
	out := make([]Definition, len(defs))
	for i, d := range defs {
		d.Sources = slices.Clone(d.Sources)
		d.c = nil
		out[i] = d
	}
	return out
}
