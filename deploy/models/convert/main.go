// Command convert turns a sentence-transformers BERT checkpoint
// (config.json, model.safetensors, tokenizer.json, modules.json with mean
// pooling) into a model directory for livefeed's hugot embedder
// (model.onnx, tokenizer.json, config.json). Used by deploy/models/fetch.sh;
// needs no Python packages.
//
//	go run ./deploy/models/convert SRC_DIR DST_DIR
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/livefeed/livefeed/models/bertonnx"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: convert SRC_DIR DST_DIR")
		os.Exit(2)
	}
	start := time.Now()
	c, err := bertonnx.Convert(os.Args[1], os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "convert:", err)
		os.Exit(1)
	}
	cfg := c.Config
	fmt.Fprintf(os.Stderr, "convert: %s -> %s in %v: BERT %d layers, hidden %d, %d heads, vocab %d, %d weights; pooling %q, normalized %v; tokenizer: %s\n",
		os.Args[1], os.Args[2], time.Since(start).Round(time.Millisecond), cfg.Layers, cfg.Hidden, cfg.Heads, cfg.VocabSize,
		c.Params, c.Pooling, c.Normalized, c.Tokenizer)
}
