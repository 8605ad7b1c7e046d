// Package peers holds the peer engines' benchmark script (ann_peers.py:
// faiss and hnswlib from PyPI on the data `livefeed bench serving` writes),
// embedded so that the binary can run it from anywhere.
package peers

import _ "embed"

// ANNScript is ann_peers.py.
//
//go:embed ann_peers.py
var ANNScript []byte
