//go:build unix && !(linux && (amd64 || arm64))

package hnsw

import (
	"errors"
	"os"
)

func fadviseDontNeed(*os.File) error {
	return errors.New("hnsw: dropping pages from the page cache is implemented on Linux only")
}
