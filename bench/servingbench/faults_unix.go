//go:build unix

package servingbench

import "syscall"

// faults is the process's minor and major page faults so far.
func faults() (minor, major int64) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0, 0
	}
	return int64(ru.Minflt), int64(ru.Majflt)
}
