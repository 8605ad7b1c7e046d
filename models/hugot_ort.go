//go:build ORT

package models

import (
	"runtime"

	"github.com/knights-analytics/hugot"
	"github.com/knights-analytics/hugot/options"
)

// ORTAvailable reports whether this binary was built with the ONNX Runtime
// backend (`-tags ORT`).
const ORTAvailable = true

// newORTSession starts hugot's ONNX Runtime session: libonnxruntime.so from
// libDir (or the system's search path), one inter-op thread (a BERT graph is
// a chain) and one intra-op thread per core, which do not spin while idle.
//
// Spinning (ORT's default) measured on 2 cores with all-MiniLM-L6-v2: alone
// on the machine 370–400 sentences/s at batch 1 against 280–310 without, and
// about the same at batch 32 (585–670 vs 610–640); but with one other busy
// process 57–64 against 227–231 at batch 1 and 136–180 against 408–410 at
// batch 32. livefeed's embedder shares its cores with the stream processors.
func newORTSession(libDir string) (*hugot.Session, error) {
	opts := []options.WithOption{
		options.WithInterOpNumThreads(1),
		options.WithIntraOpNumThreads(runtime.GOMAXPROCS(0)),
		options.WithIntraOpSpinning(false),
		options.WithInterOpSpinning(false),
	}
	if libDir != "" {
		opts = append(opts, options.WithOnnxLibraryPath(libDir))
	}
	return hugot.NewORTSession(opts...)
}
