//go:build !NODOWNLOAD

package models

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/livefeed/livefeed/models/testmodel"
)

func TestPullRejectsBadNames(t *testing.T) {
	for _, name := range []string{"", "../etc", "a/b/c", "owner/", "/abs", "a b", "owner/..", "-x"} {
		if _, err := Pull(name, t.TempDir(), PullOptions{}); !errors.Is(err, ErrBadModelName) {
			t.Errorf("Pull(%q): %v, want ErrBadModelName", name, err)
		}
	}
}

// Without access to Hugging Face the error names the model, the endpoint
// and the offline alternative; nothing is left behind.
func TestPullUnreachableSaysWhy(t *testing.T) {
	var asked []string
	hf := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = append(asked, r.URL.Path)
		http.Error(w, `{"error":"Repository not found"}`, http.StatusNotFound)
	}))
	defer hf.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()

	for _, endpoint := range []string{hf.URL, closed} {
		t.Setenv("HF_ENDPOINT", endpoint)
		t.Setenv("HF_HOME", t.TempDir())
		dest := t.TempDir()
		_, err := Pull("sentence-transformers/all-MiniLM-L6-v2", dest, PullOptions{Retries: 1})
		if err == nil {
			t.Fatalf("%s: pull succeeded", endpoint)
		}
		for _, want := range []string{"sentence-transformers/all-MiniLM-L6-v2", endpoint, "fetch.sh"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q does not mention %q", endpoint, err, want)
			}
		}
	}
	if len(asked) == 0 || !strings.Contains(asked[0], "all-MiniLM-L6-v2") {
		t.Errorf("the downloader asked %v", asked)
	}
}

// A model already in place is not downloaded again (HF_ENDPOINT points
// nowhere, so a download would fail).
func TestPullKeepsAModelInPlace(t *testing.T) {
	t.Setenv("HF_ENDPOINT", "http://127.0.0.1:1")
	dest := t.TempDir()
	if err := testmodel.Write(PullDir(dest, "acme/mini"), testmodel.DefaultOptions()); err != nil {
		t.Fatal(err)
	}
	dir, err := Pull("acme/mini", dest, PullOptions{})
	if err != nil || dir != PullDir(dest, "acme/mini") {
		t.Fatalf("Pull: %q, %v", dir, err)
	}
}
