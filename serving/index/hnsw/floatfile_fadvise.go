//go:build linux && (amd64 || arm64)

package hnsw

import (
	"os"
	"syscall"
)

// fadviseDontNeed asks the kernel to drop f's clean pages from the page
// cache (POSIX_FADV_DONTNEED).
func fadviseDontNeed(f *os.File) error {
	const posixFadvDontNeed = 4
	_, _, e := syscall.Syscall6(syscall.SYS_FADVISE64, f.Fd(), 0, 0, posixFadvDontNeed, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}
