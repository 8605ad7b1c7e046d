package serving

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/serving/formula"
	"github.com/livefeed/livefeed/serving/index"
)

// Formula variables besides the livestream features and query parameters.
const (
	VarSimilarity = "similarity" // cosine to the taste or query vector; 0 in the popular fallback
	VarEngagement = "engagement" // the popular fallback's score (index.Engagement)
)

type slotKind uint8

const (
	slotSimilarity slotKind = iota
	slotEngagement
	slotViewers
	slotLiveMinutes
	slotFeature
	slotParam
)

type slot struct {
	kind slotKind
	def  features.Definition // slotFeature
	name string              // slotParam: the parameter's name without $
}

// scorer is a parsed formula bound to the livestream features: how to read
// each of its variables from a candidate.
type scorer struct {
	expr  *formula.Expr
	slots []slot
}

// newScorer parses src. params are the names that $name may refer to (named
// queries); nil allows none.
func newScorer(src string, feats *features.Set, params map[string]bool) (*scorer, error) {
	isVar := func(name string) bool {
		if p, ok := strings.CutPrefix(name, "$"); ok {
			return params[p]
		}
		switch name {
		case VarSimilarity, VarEngagement, index.AttrViewersNow, index.AttrLiveMinutes:
			return true
		}
		_, ok := feats.Get(name)
		return ok
	}
	e, err := formula.Parse(src, isVar)
	if err != nil {
		var fe *formula.Error
		if errors.As(err, &fe) && strings.HasPrefix(fe.Msg, "unknown variable") {
			return nil, fmt.Errorf("%w (variables: similarity, engagement, viewers_now, live_minutes, a livestream feature name%s)",
				err, map[bool]string{true: " or a $parameter", false: ""}[len(params) > 0])
		}
		return nil, err
	}
	sc := &scorer{expr: e, slots: make([]slot, len(e.Vars()))}
	for i, name := range e.Vars() {
		switch {
		case strings.HasPrefix(name, "$"):
			sc.slots[i] = slot{kind: slotParam, name: name[1:]}
		case name == VarSimilarity:
			sc.slots[i] = slot{kind: slotSimilarity}
		case name == VarEngagement:
			sc.slots[i] = slot{kind: slotEngagement}
		case name == index.AttrViewersNow:
			sc.slots[i] = slot{kind: slotViewers}
		case name == index.AttrLiveMinutes:
			sc.slots[i] = slot{kind: slotLiveMinutes}
		default:
			d, _ := feats.Get(name)
			sc.slots[i] = slot{kind: slotFeature, def: d}
		}
	}
	return sc, nil
}

// ranking is how one request orders its candidates beyond the index's
// similarity: a formula, at most MaxPerSeller per seller, and how many
// candidates to fetch per result.
type ranking struct {
	scorer       *scorer            // nil: the index's order
	params       map[string]float64 // values of $parameters
	maxPerSeller int                // 0: no limit
	overFetch    int                // candidates fetched per wanted result
}

// active reports whether the ranking changes anything.
func (r *ranking) active() bool { return r != nil && (r.scorer != nil || r.maxPerSeller > 0) }

// fetch is how many candidates to ask the index for to return k.
func (r *ranking) fetch(k, maxCandidates int) int {
	if !r.active() {
		return k
	}
	return max(k, min(k*r.overFetch, maxCandidates))
}

// ranked is a hit after re-ranking: Score is the formula's value,
// Similarity the index's score.
type ranked struct {
	index.Hit
	Similarity float64
}

// rerank orders hits by the formula (if any), applies the per-seller cap and
// keeps k. similarity says whether the hits' scores are similarities (vector
// strategies) or engagement (the popular fallback).
func (s *Service) rerank(hits []index.Hit, k int, r *ranking, similarity bool, now time.Time) ([]ranked, RankStats) {
	start := time.Now()
	st := RankStats{OverFetch: r.overFetch, MaxPerSeller: r.maxPerSeller, Candidates: len(hits)}
	out := make([]ranked, len(hits))
	for i, h := range hits {
		out[i] = ranked{Hit: h, Similarity: h.Score}
	}
	if sc := r.scorer; sc != nil {
		st.Formula = sc.expr.String()
		vals := make([]float64, len(sc.slots))
		for i, sl := range sc.slots {
			if sl.kind == slotParam {
				vals[i] = r.params[sl.name]
			}
		}
		for i := range out {
			it := out[i].Item
			for j, sl := range sc.slots {
				switch sl.kind {
				case slotSimilarity:
					if similarity {
						vals[j] = out[i].Similarity
					} else {
						vals[j] = 0
					}
				case slotEngagement:
					if similarity {
						vals[j] = s.index.Engagement(it, now)
					} else {
						vals[j] = out[i].Similarity
					}
				case slotViewers:
					vals[j] = float64(it.ViewersNow)
				case slotLiveMinutes:
					vals[j] = liveMinutes(it, now)
				case slotFeature:
					// A feature without a value (null) is NaN: it makes
					// the formula NaN, which ranks last, unless the formula
					// says what to use instead (coalesce(feature, 0)).
					x, ok := sl.def.Number(it.Features.Series[sl.def.Name], now)
					if !ok {
						x = math.NaN()
					}
					vals[j] = x
				}
			}
			v := sc.expr.Eval(vals)
			if math.IsNaN(v) || math.IsInf(v, 0) {
				st.NonFinite++
				if math.IsNaN(v) {
					v = math.Inf(-1)
				}
			}
			out[i].Score = v
		}
		st.Evaluated = len(out)
		slices.SortStableFunc(out, func(a, b ranked) int {
			switch {
			case a.Score > b.Score:
				return -1
			case a.Score < b.Score:
				return 1
			}
			return strings.Compare(a.Item.ID, b.Item.ID)
		})
	}
	if r.maxPerSeller > 0 {
		per := map[string]int{}
		kept := out[:0]
		for _, h := range out {
			if len(kept) == k {
				break
			}
			if per[h.Item.SellerID] >= r.maxPerSeller {
				st.DroppedByDiversity++
				continue
			}
			per[h.Item.SellerID]++
			kept = append(kept, h)
		}
		out = kept
	}
	if len(out) > k {
		out = out[:k]
	}
	st.TookMS = ms(time.Since(start))
	if s.metrics != nil {
		s.metrics.reranked.Observe(float64(st.Candidates))
	}
	return out, st
}

// liveMinutes is how long a live stream has been live (0 otherwise), as
// the index's filters compute it.
func liveMinutes(it *index.Item, now time.Time) float64 {
	if it.LiveSince.IsZero() || it.Status != events.StatusLive {
		return 0
	}
	return now.Sub(it.LiveSince).Minutes()
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
