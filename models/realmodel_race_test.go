//go:build race

package models_test

// raceDetector: the race detector slows the pure-Go backend's matrix
// multiplications ~20×; the real-model tests check fewer texts under it.
const raceDetector = true
