package models

import (
	"context"
	"errors"
)

// Embedder turns texts into L2-normalised vectors.
type Embedder interface {
	// Embed returns one vector of length Dim() per text, in input order.
	Embed(ctx context.Context, texts []string) ([][]float32, error)
	// Dim is the length of the vectors.
	Dim() int
	// Version identifies the model: vectors from embedders with different
	// versions must not be compared.
	Version() string
	Close() error
}

var (
	// ErrEmptyText is returned by Embed for an empty slice of texts, or for a
	// text that is empty or only white space (its vector would carry no
	// meaning). Test with errors.Is.
	ErrEmptyText = errors.New("models: empty text")
	// ErrEmbedderClosed is returned by Embed after Close.
	ErrEmbedderClosed = errors.New("models: embedder closed")
)
