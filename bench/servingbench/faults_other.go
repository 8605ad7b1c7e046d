//go:build !unix

package servingbench

// faults is not counted outside unix.
func faults() (minor, major int64) { return 0, 0 }
