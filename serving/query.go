package serving

import "github.com/livefeed/livefeed/api"

// splitList splits a comma-separated parameter (api.SplitList).
func splitList(v string) []string { return api.SplitList(v) }
