package models

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/knights-analytics/hugot"
	"github.com/knights-analytics/hugot/options"
	"github.com/knights-analytics/hugot/pipelines"
	"github.com/sugarme/tokenizer"
	"github.com/sugarme/tokenizer/pretrained"

	"github.com/livefeed/livefeed/models/testmodel"
)

// Sequential op execution for GoMLX's pure-Go backend.
//
// simplego runs the ops of a graph in parallel (one goroutine per ready op)
// when a single graph executes at a time. That executor reads
// executionBuffers.numUsed without its mutex (gomlx v0.26.0,
// backends/simplego/exec.go:430) while other workers increment it under the
// mutex (exec.go:478), so `go test -race` reports a data race on every embed
// call. The config option "ops_sequential" runs the ops one after another on
// the calling goroutine (matrix multiplications still use the worker pool);
// with it the race detector is silent.
//
// hugot builds the backend with backends.NewWithConfig("go") and gives no way
// to pass options (GOMLX_BACKEND is not consulted either), so the "go"
// constructor is re-registered here to add "ops_sequential" unless the config
// names an execution mode itself. It is used always, not only under -race:
// measured on 2 cores it was as fast or faster (test model, 64 hidden: 500 vs
// 430 sentences/s at batch 1, 1250 vs 1140 at batch 32; MiniLM-shaped, 6×384:
// 8.0 vs 8.3 at batch 1, 25 vs 26 at batch 8, 31–33 at batch 32).
func init() {
	backends.Register(simplego.BackendName, func(config string) (backends.Backend, error) {
		return simplego.New(withSequentialOps(config))
	})
}

func withSequentialOps(config string) string {
	for _, part := range strings.Split(config, ",") {
		if part == "ops_sequential" || part == "ops_parallel" {
			return config
		}
	}
	if config == "" {
		return "ops_sequential"
	}
	return config + ",ops_sequential"
}

// HugotConfig configures NewHugotEmbedder.
type HugotConfig struct {
	// ModelDir holds exactly one *.onnx file, tokenizer.json and optionally
	// config.json (its max_position_embeddings caps MaxSeqLen).
	ModelDir string
	// MaxBatch is the most texts run through the model at once (default 32).
	MaxBatch int
	// MaxSeqLen is the most tokens per text, [CLS] and [SEP] included
	// (default 128); longer texts are truncated.
	MaxSeqLen int
	// Backend is BackendGo (the default, pure Go) or BackendORT (ONNX
	// Runtime through cgo: only in binaries built with `-tags ORT`, see
	// deploy/models/ort.sh; one ORT embedder per process).
	Backend string
	// ORTLibraryDir is the directory holding libonnxruntime.so (BackendORT
	// only; default: the system's library search path).
	ORTLibraryDir string
}

// Backends of HugotConfig.Backend.
const (
	BackendGo  = "go"
	BackendORT = "ort"
)

const (
	defaultMaxBatch  = 32
	defaultMaxSeqLen = 128
	// bytesPerToken caps the text handed to the tokenizer at
	// MaxSeqLen*bytesPerToken bytes: tokens past MaxSeqLen are dropped anyway,
	// and a huge text would otherwise be tokenized in full.
	bytesPerToken = 100
	warmUpText    = "Warm-up: vintage Pokémon booster box, sealed."
)

// HugotEmbedder is an Embedder running an ONNX sentence encoder (BERT-like:
// inputs input_ids / attention_mask / token_type_ids, output
// last_hidden_state or a pooled [batch, dim] output) on hugot's pure-Go
// backend. Token vectors are mean-pooled with the attention mask and
// L2-normalised.
//
// It is safe for concurrent use, but calls are serialised: the backend is
// not safe for concurrent use, and one call already uses the machine's cores
// for its matrix multiplications. Run one embedder per process.
type HugotEmbedder struct {
	sem chan struct{} // one slot: held while the model runs

	// Guarded by sem.
	session  *hugot.Session
	pipeline *pipelines.FeatureExtractionPipeline
	guard    *tokenizer.Tokenizer // same tokenizer.json, see tokenize
	closed   bool

	// Immutable after construction.
	dir        string
	dim        int
	version    string
	maxSeqLen  int   // effective limit: min(MaxSeqLen, max_position_embeddings)
	batchSizes []int // chunk sizes, descending; also hugot's batch buckets
}

var _ Embedder = (*HugotEmbedder)(nil)

// NewHugotEmbedder loads the model in cfg.ModelDir and embeds one sentence, so
// a model the backend cannot run fails here rather than on the first Embed.
// ctx is checked between the loading steps; loading itself is not interrupted.
func NewHugotEmbedder(ctx context.Context, cfg HugotConfig) (*HugotEmbedder, error) {
	e, err := newHugotEmbedder(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("loading model %s: %w", cfg.ModelDir, err)
	}
	return e, nil
}

func newHugotEmbedder(ctx context.Context, cfg HugotConfig) (*HugotEmbedder, error) {
	if cfg.ModelDir == "" {
		return nil, errors.New("no model directory given")
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = defaultMaxBatch
	}
	if cfg.MaxSeqLen == 0 {
		cfg.MaxSeqLen = defaultMaxSeqLen
	}
	if cfg.MaxBatch < 0 {
		return nil, fmt.Errorf("MaxBatch must be positive, got %d", cfg.MaxBatch)
	}
	if cfg.MaxSeqLen < 2 {
		return nil, fmt.Errorf("MaxSeqLen must be at least 2, got %d", cfg.MaxSeqLen)
	}

	files, err := inspectModelDir(cfg.ModelDir)
	if err != nil {
		return nil, err
	}
	maxSeqLen := cfg.MaxSeqLen
	if files.maxPositions > 0 && files.maxPositions < maxSeqLen {
		maxSeqLen = files.maxPositions
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	e := &HugotEmbedder{
		sem:        make(chan struct{}, 1),
		guard:      files.tokenizer,
		dir:        cfg.ModelDir,
		maxSeqLen:  maxSeqLen,
		batchSizes: batchBuckets(cfg.MaxBatch),
	}
	e.version, err = modelVersion(cfg.ModelDir, files, maxSeqLen)
	if err != nil {
		return nil, err
	}

	// With buckets, hugot pads every batch to a bucketed shape and caps the
	// compiled-graph cache at len(batch)*len(seq) entries. Without them the
	// go backend compiles and keeps one graph per distinct (batch, length)
	// forever: measured ~176 KB each for the test model, ~600 KB for a
	// MiniLM-shaped one, up to MaxBatch*MaxSeqLen graphs. Batches are cut to
	// bucket sizes (see embedLocked), so only the length is padded.
	var session *hugot.Session
	switch cfg.Backend {
	case "", BackendGo:
		session, err = hugot.NewGoSession(
			options.WithGoMLXBatchBuckets(slices.Sorted(slices.Values(e.batchSizes))),
			options.WithGoMLXSequenceBuckets(sequenceBuckets(maxSeqLen)),
		)
	case BackendORT:
		session, err = newORTSession(cfg.ORTLibraryDir)
	default:
		return nil, fmt.Errorf("unknown backend %q (want %q or %q)", cfg.Backend, BackendGo, BackendORT)
	}
	if err != nil {
		return nil, fmt.Errorf("creating hugot %s session: %w", cmp.Or(cfg.Backend, BackendGo), err)
	}
	e.session = session
	ok := false
	defer func() {
		if !ok {
			_ = session.Destroy()
		}
	}()

	err = catchPanic("creating pipeline", func() error {
		p, err := hugot.NewPipeline(session, hugot.FeatureExtractionConfig{
			ModelPath: cfg.ModelDir,
			Name:      "embedder",
			Options:   []hugot.FeatureExtractionOption{pipelines.WithNormalization()},
		})
		e.pipeline = p
		return err
	})
	if err != nil {
		return nil, err
	}
	if e.pipeline.Model == nil || e.pipeline.Model.Tokenizer == nil {
		return nil, errors.New("hugot loaded no tokenizer")
	}
	if n := len(e.pipeline.Output.Dimensions); n != 2 && n != 3 {
		return nil, fmt.Errorf("output %q has rank %d, want [batch, seq, dim] or [batch, dim]",
			e.pipeline.Output.Name, n)
	}
	// hugot truncates to max_position_embeddings only; truncate to MaxSeqLen.
	e.pipeline.Model.Tokenizer.MaxAllowedTokens = maxSeqLen

	if err := ctx.Err(); err != nil {
		return nil, err
	}
	vecs, err := e.embedLocked(ctx, []string{warmUpText})
	if err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	e.dim = len(vecs[0])
	if d := e.pipeline.Output.Dimensions; d[len(d)-1] > 0 && int(d[len(d)-1]) != e.dim {
		return nil, fmt.Errorf("warm-up gave %d dimensions, model declares %d", e.dim, d[len(d)-1])
	}
	ok = true
	return e, nil
}

// Dim is the length of the vectors, read from the warm-up output.
func (e *HugotEmbedder) Dim() int { return e.dim }

// Version is "<model dir base name>-<12 hex digits>", the digits from a
// SHA-256 over the .onnx file, tokenizer.json and the effective MaxSeqLen.
func (e *HugotEmbedder) Version() string { return e.version }

// MaxSeqLen is the effective truncation length in tokens.
func (e *HugotEmbedder) MaxSeqLen() int { return e.maxSeqLen }

// Embed returns one L2-normalised vector per text, in input order. An empty
// slice, or an empty or blank text, gives ErrEmptyText. Invalid UTF-8 is
// replaced by U+FFFD. Texts are sorted by length and run in chunks of at most
// MaxBatch; ctx is checked while waiting for the model and between chunks.
func (e *HugotEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if len(texts) == 0 {
		return nil, fmt.Errorf("%w: no texts", ErrEmptyText)
	}
	for i, t := range texts {
		if strings.TrimSpace(t) == "" {
			return nil, fmt.Errorf("%w: text %d", ErrEmptyText, i)
		}
	}
	select {
	case e.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-e.sem }()
	if e.closed {
		return nil, ErrEmbedderClosed
	}
	return e.embedLocked(ctx, texts)
}

// Close releases the model. It waits for a running Embed; later calls to
// Embed return ErrEmbedderClosed. Closing twice is a no-op.
func (e *HugotEmbedder) Close() error {
	e.sem <- struct{}{}
	defer func() { <-e.sem }()
	if e.closed {
		return nil
	}
	e.closed = true
	err := e.session.Destroy()
	e.session, e.pipeline, e.guard = nil, nil, nil
	if err != nil {
		return fmt.Errorf("closing model %s: %w", e.dir, err)
	}
	return nil
}

// embedLocked runs texts through the model. The caller holds e.sem.
func (e *HugotEmbedder) embedLocked(ctx context.Context, texts []string) ([][]float32, error) {
	inputs := make([]string, len(texts))
	lengths := make([]int, len(texts))
	for i, t := range texts {
		inputs[i] = clipText(t, e.maxSeqLen*bytesPerToken)
		n, err := e.tokenize(inputs[i])
		if err != nil {
			return nil, fmt.Errorf("tokenizing text %d: %w", i, err)
		}
		lengths[i] = min(n, e.maxSeqLen)
	}
	// Sort by token count so each chunk is padded to a length close to its
	// texts' own; results go back to their input positions.
	order := make([]int, len(texts))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return lengths[a] - lengths[b] })

	out := make([][]float32, len(texts))
	chunk := make([]string, 0, e.batchSizes[0])
	for start := 0; start < len(order); {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// The largest bucket that fits: no padded rows.
		size := e.batchSizes[len(e.batchSizes)-1]
		for _, s := range e.batchSizes {
			if s <= len(order)-start {
				size = s
				break
			}
		}
		idx := order[start : start+size]
		chunk = chunk[:0]
		for _, i := range idx {
			chunk = append(chunk, inputs[i])
		}
		vecs, err := e.run(chunk)
		if err != nil {
			return nil, err
		}
		for k, i := range idx {
			out[i] = vecs[k]
		}
		start += size
	}
	return out, nil
}

// run embeds one chunk and checks the vectors.
func (e *HugotEmbedder) run(chunk []string) ([][]float32, error) {
	var res *pipelines.FeatureExtractionOutput
	err := catchPanic("running model", func() error {
		var err error
		res, err = e.pipeline.RunPipeline(chunk)
		return err
	})
	if err != nil {
		return nil, err
	}
	if res == nil || len(res.Embeddings) != len(chunk) {
		return nil, fmt.Errorf("model returned %d vectors for %d texts", lenEmbeddings(res), len(chunk))
	}
	for i, v := range res.Embeddings {
		if len(v) == 0 || (e.dim != 0 && len(v) != e.dim) {
			return nil, fmt.Errorf("model returned a vector of length %d, want %d", len(v), e.dim)
		}
		var sum float64
		for _, x := range v {
			sum += float64(x) * float64(x)
		}
		if math.IsNaN(sum) || math.IsInf(sum, 0) || math.Abs(sum-1) > 1e-3 {
			return nil, fmt.Errorf("model returned a vector with squared norm %g for %q", sum, chunk[i])
		}
	}
	return res.Embeddings, nil
}

func lenEmbeddings(res *pipelines.FeatureExtractionOutput) int {
	if res == nil {
		return 0
	}
	return len(res.Embeddings)
}

// tokenize encodes text with a private instance of the model's tokenizer and
// returns the token count. hugot calls log.Fatal when its own (identical)
// tokenizer fails, so every text goes through this one first.
func (e *HugotEmbedder) tokenize(text string) (int, error) {
	var n int
	err := catchPanic("tokenizer", func() error {
		enc, err := e.guard.EncodeSingle(text, true)
		if err != nil {
			return err
		}
		n = len(enc.Ids)
		return nil
	})
	return n, err
}

// clipText makes text valid UTF-8 and cuts it to at most maxBytes bytes on a
// rune boundary.
func clipText(text string, maxBytes int) string {
	text = strings.ToValidUTF8(text, "\uFFFD")
	if len(text) <= maxBytes {
		return text
	}
	cut := maxBytes
	for cut > 0 && !isRuneStart(text[cut]) {
		cut--
	}
	return text[:cut]
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

func catchPanic(what string, fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: panic: %v", what, r)
		}
	}()
	if err := fn(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// batchBuckets: the powers of two below maxBatch, then maxBatch; descending.
func batchBuckets(maxBatch int) []int {
	out := []int{maxBatch}
	for b := 1; b < maxBatch; b *= 2 {
		out = append(out, b)
	}
	slices.Sort(out)
	slices.Reverse(out)
	return out
}

// sequenceBuckets: 8, 12, 16, 24, 32, 48, … below limit, then limit. A
// sequence is padded by less than half its length.
func sequenceBuckets(limit int) []int {
	var out []int
	for b := 8; b < limit; {
		out = append(out, b)
		if b&(b-1) == 0 {
			b += b / 2
		} else {
			b += b / 3
		}
	}
	return append(out, limit)
}

// modelFiles is what inspectModelDir found.
type modelFiles struct {
	onnxPath       string
	tokenizerBytes []byte
	tokenizer      *tokenizer.Tokenizer
	maxPositions   int // 0 if config.json does not say
}

// tokenizerProbe exercises the normalizer, accents, punctuation, digits,
// CJK and unknown words.
const tokenizerProbe = "Héllo WÖRLD, zzqxjvk 1999! ¿Qué? 日本 🙂"

// inspectModelDir checks what hugot would otherwise report with log.Fatal,
// a panic or a late error: exactly one .onnx file (hugot searches
// subdirectories too), a tokenizer.json that parses and encodes, and a
// readable config.json if there is one.
func inspectModelDir(dir string) (modelFiles, error) {
	var mf modelFiles
	st, err := os.Stat(dir)
	if err != nil {
		return mf, err
	}
	if !st.IsDir() {
		return mf, fmt.Errorf("%s is not a directory", dir)
	}
	var onnx []string
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), ".onnx") {
			onnx = append(onnx, path)
		}
		return nil
	})
	if err != nil {
		return mf, err
	}
	if len(onnx) != 1 {
		return mf, fmt.Errorf("want exactly one .onnx file in %s, found %d %q", dir, len(onnx), onnx)
	}
	mf.onnxPath = onnx[0]

	mf.tokenizerBytes, err = os.ReadFile(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		return mf, fmt.Errorf("tokenizer: %w", err)
	}
	err = catchPanic("tokenizer.json", func() error {
		tk, err := pretrained.FromReader(bytes.NewReader(mf.tokenizerBytes))
		if err != nil {
			return err
		}
		if _, err := tk.EncodeSingle(tokenizerProbe, true); err != nil {
			return fmt.Errorf("encoding a probe text: %w", err)
		}
		mf.tokenizer = tk
		return nil
	})
	if err != nil {
		return mf, err
	}

	cfgBytes, err := os.ReadFile(filepath.Join(dir, "config.json"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return mf, err
	default:
		var cfg struct {
			MaxPositionEmbeddings *float64 `json:"max_position_embeddings"`
		}
		if err := json.Unmarshal(cfgBytes, &cfg); err != nil {
			return mf, fmt.Errorf("config.json: %w", err)
		}
		if cfg.MaxPositionEmbeddings != nil && *cfg.MaxPositionEmbeddings > 0 {
			mf.maxPositions = int(*cfg.MaxPositionEmbeddings)
		}
	}
	return mf, nil
}

func modelVersion(dir string, mf modelFiles, maxSeqLen int) (string, error) {
	h := sha256.New()
	f, err := os.Open(mf.onnxPath)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("reading %s: %w", mf.onnxPath, err)
	}
	h.Write([]byte{0})
	h.Write(mf.tokenizerBytes)
	h.Write([]byte{0})
	h.Write([]byte(strconv.Itoa(maxSeqLen)))
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	return filepath.Base(abs) + "-" + hex.EncodeToString(h.Sum(nil)[:6]), nil
}

// EnsureTestModel writes the default generated test model (package
// testmodel) into dir unless dir already holds one, and returns dir. For
// demos and tests without a downloaded model: the vectors only reflect
// shared words.
func EnsureTestModel(dir string) (string, error) {
	if err := testmodel.Ensure(dir, testmodel.DefaultOptions()); err != nil {
		return "", fmt.Errorf("generating test model in %s: %w", dir, err)
	}
	return dir, nil
}
