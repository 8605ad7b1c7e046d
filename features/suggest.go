package features

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// suggest returns the candidate nearest to s by edit distance when it is
// near enough to be a typo, else "".
func suggest(s string, candidates []string) string {
	best, bestD := "", 1<<30
	ls := strings.ToLower(s)
	for _, c := range candidates {
		d := editDistance(ls, strings.ToLower(c))
		if d < bestD {
			best, bestD = c, d
		}
	}
	limit := max(1, min(3, len(s)/3))
	if bestD <= limit || best != "" && (strings.Contains(best, ls) && len(ls) >= 3) {
		return best
	}
	return ""
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		if a == b {
			return 0
		}
		return 1 << 20
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func didYouMean(s string, candidates []string) string {
	if m := suggest(s, candidates); m != "" {
		return fmt.Sprintf("did you mean %q?", m)
	}
	return "one of: " + strings.Join(candidates, ", ")
}

// ParseDuration parses a duration as time.ParseDuration does, and also
// days ("7d") and weeks ("2w"), alone or combined ("1d12h").
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	if s == "0" {
		return 0, nil
	}
	var total time.Duration
	rest := s
	for rest != "" {
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.') {
			i++
		}
		j := i
		for j < len(rest) && (rest[j] < '0' || rest[j] > '9') && rest[j] != '.' {
			j++
		}
		if i == 0 || j == i {
			return 0, fmt.Errorf("bad duration %q: want e.g. 30s, 5m, 1h, 7d", s)
		}
		unit := rest[i:j]
		var mult time.Duration
		switch unit {
		case "d":
			mult = 24 * time.Hour
		case "w":
			mult = 7 * 24 * time.Hour
		default:
			d, err := time.ParseDuration(rest[:j])
			if err != nil {
				return 0, fmt.Errorf("bad duration %q: want e.g. 30s, 5m, 1h, 7d", s)
			}
			total += d
			rest = rest[j:]
			continue
		}
		f, err := strconv.ParseFloat(rest[:i], 64)
		if err != nil || f > 1e5 {
			return 0, fmt.Errorf("bad duration %q", s)
		}
		total += time.Duration(f * float64(mult))
		rest = rest[j:]
	}
	if total < 0 {
		return 0, fmt.Errorf("bad duration %q", s)
	}
	return total, nil
}

// FormatDuration writes d in the units ParseDuration reads, using days for
// whole days: 7d, 1d12h, 5m, 30s.
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	day := 24 * time.Hour
	if d >= day {
		days := d / day
		rest := d % day
		s := strconv.FormatInt(int64(days), 10) + "d"
		if rest != 0 {
			s += shortDur(rest)
		}
		return s
	}
	return shortDur(d)
}

func shortDur(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
