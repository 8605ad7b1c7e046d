package api

// Result is one recommended or found stream.
type Result struct {
	LivestreamID string  `json:"livestream_id"`
	Score        float64 `json:"score"`
	// Similarity is the index's score (cosine, or engagement in the
	// popular fallback) when a formula computed Score.
	Similarity *float64 `json:"similarity,omitempty"`
	Title      string   `json:"title"`
	Category   string   `json:"category"`
	SellerID   string   `json:"seller_id"`
	Language   string   `json:"language"`
	Status     Status   `json:"status"`
	ViewersNow int      `json:"viewers_now"`
	// Features are the stream's livestream features as numbers (a list's
	// length for last_k_distinct and top_k); a feature without a value
	// (null: the mean, min, max, last or percentile of an empty window) is
	// absent.
	Features map[string]float64 `json:"features"`
}

// Response is the body of recommendation, search and named-query answers.
type Response struct {
	UserID   string   `json:"user_id,omitempty"`
	Query    string   `json:"query,omitempty"` // the named query
	Strategy string   `json:"strategy"`        // taste, popular, vector, text
	Results  []Result `json:"results"`
	Scanned  int      `json:"scanned"`
	Matched  int      `json:"matched"`
	TookMS   float64  `json:"took_ms"`
	Explain  *Explain `json:"explain,omitempty"` // with explain=true
}

// Explain is how an answer was computed (explain=true).
type Explain struct {
	Strategy string `json:"strategy"`
	// FallbackFrom is "taste" when the taste search found nothing and the
	// popular fallback answered.
	FallbackFrom string `json:"fallback_from,omitempty"`
	// Filter is the effective filter (defaults, named-query template and
	// seen streams applied).
	Filter *Filter `json:"filter"`
	// K is the results asked for, Fetched the candidates asked of the index.
	K       int `json:"k"`
	Fetched int `json:"fetched"`
	// FetchedPerPartition is the most each partition contributed to a
	// vector search's candidates (at least k).
	FetchedPerPartition int `json:"fetched_per_partition,omitempty"`
	// Plan is the partitions' common plan ("mixed" if they differ),
	// Estimated the planner's estimate of the filtered set.
	Plan string `json:"plan"`
	// SubGraph, with plan "subgraph", names the sub-graph searched
	// (attribute=value and its node count).
	SubGraph   string             `json:"sub_graph,omitempty"`
	Estimated  int                `json:"estimated"`
	Partitions []PartitionExplain `json:"partitions"`
	IndexMS    float64            `json:"index_ms"`
	Ranking    *RankStats         `json:"ranking,omitempty"`
}

// PartitionExplain is one partition's share of the index query. A graph
// plan is one search over every partition's nodes: Scanned counts a
// partition's exact scans only (the search's distances are in the
// response's scanned), TookMS is the whole search's time.
type PartitionExplain struct {
	Partition int     `json:"partition"`
	Plan      string  `json:"plan"` // exact, graph, graph+exact, far-exact, none
	Estimated int     `json:"estimated"`
	Scanned   int     `json:"scanned"`
	Matched   int     `json:"matched"`
	TookMS    float64 `json:"took_ms"`
	Far       bool    `json:"far,omitempty"`
}

// RankStats explains the re-ranking of one answer.
type RankStats struct {
	Formula      string `json:"formula,omitempty"`
	OverFetch    int    `json:"overfetch"`
	MaxPerSeller int    `json:"max_per_seller,omitempty"`
	// Candidates is how many hits the index returned for re-ranking.
	Candidates int `json:"candidates"`
	// Evaluated is how many times the formula ran; NonFinite how many
	// results were NaN or infinite (NaN ranks last).
	Evaluated int `json:"evaluated"`
	NonFinite int `json:"non_finite,omitempty"`
	// DroppedByDiversity counts candidates skipped because their seller
	// already had MaxPerSeller results.
	DroppedByDiversity int     `json:"dropped_by_diversity"`
	TookMS             float64 `json:"took_ms"`
}

// ErrorBody is the body of every error answer (4xx, 5xx).
type ErrorBody struct {
	Error string `json:"error"`
	// ExpectedDimensions and ReceivedDimensions come with the 400 of a
	// search vector whose dimension is not the index's: the dimensions of
	// the vectors the index holds (two while a new model's replace an old
	// one's) and the request's.
	ExpectedDimensions []int `json:"expected_dimensions,omitempty"`
	ReceivedDimensions int   `json:"received_dimensions,omitempty"`
}
