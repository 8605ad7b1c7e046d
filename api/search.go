package api

// SearchRequest is the body of POST /v1/search: a vector or a text, k, a
// filter and optionally a ranking. A vector must have the dimension of the
// index's vectors (400 otherwise, naming both).
type SearchRequest struct {
	Vector []float32 `json:"vector,omitempty"`
	Text   string    `json:"text,omitempty"`
	// K is the number of results; 0: the server's default (20).
	K int `json:"k,omitempty"`
	// Filter restricts the candidates; nil: live streams.
	Filter *Filter `json:"filter,omitempty"`
	// Formula re-ranks the candidates (see the README's formula language).
	Formula string `json:"formula,omitempty"`
	// MaxPerSeller caps results per seller; 0: no cap.
	MaxPerSeller int `json:"max_per_seller,omitempty"`
	// OverFetch is the candidates fetched per result when re-ranking.
	OverFetch int `json:"overfetch,omitempty"`
	// Exclude lists stream ids to leave out.
	Exclude []string `json:"exclude,omitempty"`
	Explain bool     `json:"explain,omitempty"`
}
