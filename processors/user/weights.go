package user

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/livefeed/livefeed/events"
)

// String formats the weights as ParseWeights reads them, kinds in the
// order of events.SignalKinds.
func (w Weights) String() string {
	var parts []string
	for _, k := range events.SignalKinds() {
		if x, ok := w[k]; ok {
			parts = append(parts, string(k)+"="+strconv.FormatFloat(x, 'g', -1, 64))
		}
	}
	return strings.Join(parts, ",")
}

// ParseWeights reads "watch=1,chat=2,bid=4,buy=8": a comma-separated list
// of kind=weight. A kind left out keeps its DefaultWeights weight; a weight
// must be a finite number >= 0 (0: the kind does not move the taste).
func ParseWeights(s string) (Weights, error) {
	w := DefaultWeights()
	seen := map[events.SignalKind]bool{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, val, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("taste weights: %q: want kind=weight", part)
		}
		k := events.SignalKind(strings.TrimSpace(name))
		if !slices.Contains(events.SignalKinds(), k) {
			return nil, fmt.Errorf("taste weights: unknown signal kind %q: want one of watch, chat, bid, buy", k)
		}
		if seen[k] {
			return nil, fmt.Errorf("taste weights: %s given twice", k)
		}
		seen[k] = true
		x, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("taste weights: weight of %s: %q is not a finite number", k, val)
		}
		if x < 0 {
			return nil, fmt.Errorf("taste weights: weight of %s is negative (%v)", k, x)
		}
		w[k] = x
	}
	return w, nil
}
