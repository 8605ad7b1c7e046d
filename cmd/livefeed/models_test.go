package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestModelsPullArguments(t *testing.T) {
	t.Setenv("HF_ENDPOINT", "http://127.0.0.1:1") // nothing listens: no download can happen
	t.Setenv("HF_HOME", t.TempDir())
	dir := t.TempDir()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{}, "usage"},
		{[]string{"pull"}, "a model NAME is required"},
		{[]string{"pull", "a", "b"}, "unexpected arguments"},
		{[]string{"pull", "../../etc"}, "not a Hugging Face model id"},
		{[]string{"nope"}, "unknown models command"},
		{[]string{"pull", "--dir", dir, "sentence-transformers/all-MiniLM-L6-v2"}, "downloading sentence-transformers/all-MiniLM-L6-v2 from http://127.0.0.1:1"},
		{[]string{"pull", "sentence-transformers/all-MiniLM-L6-v2", "--dir", dir}, "deploy/models/fetch.sh"},
	}
	for _, c := range cases {
		err := runModels(c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("models %v: %v, want an error containing %q", c.args, err, c.want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a failed pull left %v", entries)
	}
	// testmodel still works through the same command.
	out := filepath.Join(t.TempDir(), "m")
	if err := runModels([]string{"testmodel", out}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, "model.onnx")); err != nil {
		t.Fatal(err)
	}
}
