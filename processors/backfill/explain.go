package backfill

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Describe writes a group's backfills from its catalogs, a line per run,
// by partition: what `livefeed features explain --brokers` prints.
func Describe(group string, cats map[int32]*Catalog, now time.Time) string {
	var b strings.Builder
	parts := make([]int32, 0, len(cats))
	for p := range cats {
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	var total, left int64
	runs := 0
	for _, p := range parts {
		for i := range cats[p].Runs {
			r := &cats[p].Runs[i]
			runs++
			total += r.Total()
			if !r.Done {
				left += r.Remaining()
			}
		}
	}
	fmt.Fprintf(&b, "backfills of group %s: %d run(s)", group, runs)
	if total > 0 {
		fmt.Fprintf(&b, ", %d of %d records replayed (%.0f%%)", total-left, total, 100*float64(total-left)/float64(total))
	}
	b.WriteString("\n")
	for _, p := range parts {
		for i := range cats[p].Runs {
			r := &cats[p].Runs[i]
			fmt.Fprintf(&b, "  partition %d  %s  %s: ", p, r.ID, strings.Join(r.Features, ", "))
			n := r.Total()
			switch {
			case r.Done:
				fmt.Fprintf(&b, "done, %d records, %d keys merged, in %s (finished %s)", r.Replayed, r.Keys,
					r.Finished.Sub(r.Started).Round(time.Millisecond), r.Finished.UTC().Format(time.RFC3339))
			default:
				done := n - r.Remaining()
				pct := 100.0
				if n > 0 {
					pct = 100 * float64(done) / float64(n)
				}
				fmt.Fprintf(&b, "warming up, %d of %d records (%.0f%%), started %s ago", done, n, pct, now.Sub(r.Started).Round(time.Second))
				if r.Error != "" {
					fmt.Fprintf(&b, "; last error: %s", r.Error)
				}
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}
