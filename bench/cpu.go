package bench

import (
	"fmt"
	"os"
	"runtime/pprof"
	"syscall"
	"time"
)

// processCPU is the CPU time (user + system) this process has used so far.
// Phase 1 divides the events handled by the CPU the processors used: events
// per CPU-second, i.e. per core, whatever else shares the machine. With the
// embedded broker the broker's CPU is in it too; with real Kafka (a JVM of
// its own) it is not.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// perCPUSecond is n divided by the CPU time used, rounded.
func perCPUSecond(n int64, cpu time.Duration) float64 {
	if cpu <= 0 {
		return 0
	}
	return round1(float64(n) / cpu.Seconds())
}

// StartCPUProfile writes a CPU profile of the process to path until the
// returned stop is called (it stops the profile and closes the file).
func StartCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("creating CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting CPU profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
