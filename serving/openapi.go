package serving

import (
	_ "embed"
	"time"
)

// OpenAPI is the OpenAPI 3 document of the HTTP API, served at
// /openapi.json.
//
//go:embed openapi.json
var OpenAPI []byte

// limitDefaults fills the unset limits of the HTTP API.
func (c *Config) limitDefaults() {
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 5 * time.Second
	}
	if c.MaxFilterValues == 0 {
		c.MaxFilterValues = 256
	}
	if c.MaxFilterRanges == 0 {
		c.MaxFilterRanges = 16
	}
	if c.MaxCandidates == 0 {
		c.MaxCandidates = 2000
	}
}
