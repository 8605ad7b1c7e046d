package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/livefeed/livefeed/models"
	"github.com/livefeed/livefeed/models/testmodel"
	"golang.org/x/sync/errgroup"
)

const modelsUsage = `usage:
  livefeed models testmodel DIR
  livefeed models pull [--dir DIR] [--token TOKEN] NAME   (NAME: a Hugging Face id, e.g. sentence-transformers/all-MiniLM-L6-v2)`

// runModels handles `livefeed models ...`.
func runModels(args []string) error {
	if len(args) == 0 {
		return errors.New(modelsUsage)
	}
	switch args[0] {
	case "testmodel":
		if len(args) != 2 {
			return errors.New(modelsUsage)
		}
		if err := testmodel.Write(args[1], testmodel.DefaultOptions()); err != nil {
			return err
		}
		fmt.Println("wrote", args[1])
		return nil
	case "pull":
		return runModelsPull(args[1:])
	default:
		return fmt.Errorf("unknown models command %q\n%s", args[0], modelsUsage)
	}
}

func runModelsPull(args []string) error {
	fs := flag.NewFlagSet("models pull", flag.ContinueOnError)
	dir := fs.String("dir", env("models-dir", filepath.Join("data", "models")), "directory the model goes under (as owner_name)")
	token := fs.String("token", "", "Hugging Face token for gated models (empty: $HF_TOKEN)")
	// NAME may come before or after the flags.
	var name string
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		name, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if name == "" && fs.NArg() == 1 {
		name = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %v\n%s", fs.Args(), modelsUsage)
	}
	if name == "" {
		return errors.New("models pull: a model NAME is required\n" + modelsUsage)
	}
	if *token == "" {
		*token = os.Getenv("HF_TOKEN")
	}
	got, err := models.Pull(name, *dir, models.PullOptions{Token: *token})
	if err != nil {
		return err
	}
	fmt.Printf("model ready in %s\nuse it with: livefeed demo --model %s\n", got, got)
	return nil
}

// runEmbed runs only the embedding worker (a separate deployment of it;
// run the processors with --no-embedding-worker then).
func runEmbed(ctx context.Context, args []string) error {
	f := newFlags("embed", false, false)
	f.needModel = true
	a, err := openApp(ctx, f, args, true)
	if err != nil {
		return err
	}
	defer a.Close()
	if a.Embedder == nil {
		return errors.New("embed: embeddings are disabled (--no-embeddings)")
	}
	ln, err := net.Listen("tcp", f.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", f.cfg.HTTPAddr, err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.RunEmbeddingWorker(gctx, nil) })
	g.Go(func() error { return a.ServeMetrics(gctx, ln) })
	return ignoreCanceled(g.Wait())
}
