package servingbench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/livefeed/livefeed/bench/peers"
)

type peerCase struct {
	Name string  `json:"name"`
	Mask string  `json:"mask"`
	Sel  float64 `json:"sel"`
}

type peerConfig struct {
	K              int        `json:"k"`
	M              int        `json:"M"`
	EfConstruction int        `json:"ef_construction"`
	EfSearch       int        `json:"ef_search"`
	Overfetch      float64    `json:"overfetch"`
	Threads        int        `json:"threads"`
	Seed           uint64     `json:"seed"`
	Cases          []peerCase `json:"cases"`
}

type peerResult struct {
	Engines []Engine `json:"engines"`
	Rows    []struct {
		Case       string  `json:"case"`
		Engine     string  `json:"engine"`
		IDs        string  `json:"ids"`
		FetchK     int     `json:"fetch_k"`
		Ef         int     `json:"ef"`
		P50MS      float64 `json:"p50_ms"`
		P99MS      float64 `json:"p99_ms"`
		QPS1       float64 `json:"qps_1"`
		QPSClients float64 `json:"qps_clients"`
	} `json:"rows"`
}

// runPeers writes the catalogue, queries and filter masks as .npy files,
// runs bench/peers/ann_peers.py and scores its answers against the same
// exact results as livefeed's.
func runPeers(ctx context.Context, cfg Config, cat *Catalogue, cases []Case, masks [][]bool, sels []float64,
	truth [][][]int, logf func(string, ...any)) ([]Row, []Engine, string, error) {
	check := exec.CommandContext(ctx, cfg.Python, "-c", "import faiss, hnswlib, numpy")
	if out, err := check.CombinedOutput(); err != nil {
		note := fmt.Sprintf("peers skipped: %v (%s); pip install faiss-cpu hnswlib numpy", ErrNoPeers, strings.TrimSpace(string(out)))
		logf("%s", note)
		return nil, nil, note, nil
	}
	dir := cfg.TempDir
	if dir == "" {
		d, err := os.MkdirTemp("", "livefeed-bench-serving-")
		if err != nil {
			return nil, nil, "", err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	t0 := time.Now()
	nq := min(cfg.PeerQueries, cat.NQ)
	if err := writeFloat32NPY(filepath.Join(dir, "base.npy"), cat.Vectors, cat.N, cat.Dim); err != nil {
		return nil, nil, "", err
	}
	if err := writeFloat32NPY(filepath.Join(dir, "queries.npy"), cat.Queries[:nq*cat.Dim], nq, cat.Dim); err != nil {
		return nil, nil, "", err
	}
	opts := cfg.Options.WithDefaults()
	pc := peerConfig{K: cfg.K, M: opts.M, EfConstruction: opts.EfConstruction, EfSearch: cfg.PeerEf,
		Overfetch: cfg.Overfetch, Threads: cfg.Clients, Seed: cfg.Seed}
	for ci, c := range cases {
		name := fmt.Sprintf("mask_%d.npy", ci)
		if err := writeMaskNPY(filepath.Join(dir, name), masks[ci]); err != nil {
			return nil, nil, "", err
		}
		pc.Cases = append(pc.Cases, peerCase{Name: c.Name, Mask: name, Sel: sels[ci]})
	}
	b, _ := json.MarshalIndent(pc, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		return nil, nil, "", err
	}
	script := filepath.Join(dir, "ann_peers.py")
	if err := os.WriteFile(script, peers.ANNScript, 0o644); err != nil {
		return nil, nil, "", err
	}
	logf("wrote the peers' data to %s in %.1fs; running %s", dir, time.Since(t0).Seconds(), script)
	cmd := exec.CommandContext(ctx, cfg.Python, script, dir)
	var stderr bytes.Buffer
	cmd.Stderr = &multiWriter{&stderr, cfg.Progress}
	// Latency is per query on one thread; faiss's OpenMP and numpy's BLAS
	// must not spin extra threads beside it.
	cmd.Env = append(os.Environ(), "OMP_WAIT_POLICY=PASSIVE")
	if err := cmd.Run(); err != nil {
		return nil, nil, "", fmt.Errorf("%s: %w: %s", script, err, lastLines(stderr.String(), 5))
	}
	rb, err := os.ReadFile(filepath.Join(dir, "result.json"))
	if err != nil {
		return nil, nil, "", err
	}
	var pr peerResult
	if err := json.Unmarshal(rb, &pr); err != nil {
		return nil, nil, "", fmt.Errorf("peers' result.json: %w", err)
	}
	var rows []Row
	for _, r := range pr.Rows {
		ci := -1
		for i, c := range cases {
			if c.Name == r.Case {
				ci = i
			}
		}
		if ci < 0 {
			continue
		}
		ids, rowsN, cols, err := readInt64NPY(filepath.Join(dir, r.IDs))
		if err != nil {
			return nil, nil, "", err
		}
		var recall float64
		for q := range rowsN {
			var got []int
			for _, id := range ids[q*cols : (q+1)*cols] {
				if id >= 0 {
					got = append(got, int(id))
				}
			}
			recall += recallOf(got, truth[ci][q])
		}
		kind := cases[ci].Kind
		if r.Engine != "faiss-sel" {
			kind = fmt.Sprintf("post-filter, fetch %d, efSearch %d", r.FetchK, r.Ef)
		} else {
			kind = fmt.Sprintf("IDSelectorBitmap, efSearch %d", r.Ef)
		}
		rows = append(rows, Row{Case: r.Case, Kind: kind, Selectivity: sels[ci], Engine: r.Engine,
			Recall: recall / float64(max(1, rowsN)), P50MS: r.P50MS, P99MS: r.P99MS, QPS1: r.QPS1,
			QPSClients: r.QPSClients, Queries: rowsN})
	}
	note := fmt.Sprintf("peers: %d queries per filter, latency one query per call on one thread (Python call overhead included), throughput one batch on %d threads",
		nq, cfg.Clients)
	return rows, pr.Engines, note, nil
}

type multiWriter struct {
	a, b interface{ Write([]byte) (int, error) }
}

func (m *multiWriter) Write(p []byte) (int, error) {
	_, _ = m.b.Write(p)
	return m.a.Write(p)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
