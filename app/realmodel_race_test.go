//go:build race

package app

// raceDetector: the race detector slows the pure-Go model ~20×; the
// real-model test uses a smaller catalogue under it.
const raceDetector = true
