//go:build !ORT

package models

import (
	"errors"

	"github.com/knights-analytics/hugot"
)

// ORTAvailable reports whether this binary was built with the ONNX Runtime
// backend (`-tags ORT`).
const ORTAvailable = false

func newORTSession(string) (*hugot.Session, error) {
	return nil, errors.New("the ONNX Runtime backend needs a binary built with `-tags ORT` (see deploy/models/ort.sh)")
}
