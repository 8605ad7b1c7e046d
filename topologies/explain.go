package topologies

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/processors/livestream"
	"github.com/livefeed/livefeed/processors/user"
)

// tileBytes estimates the encoded bytes of one tile of an aggregation.
func tileBytes(d features.Definition) int {
	switch d.Aggregation {
	case features.Count, features.Sum, features.Mean, features.Min, features.Max, features.Last:
		return 16
	case features.DecayedSum, features.DecayedCount:
		return 16
	case features.ApproxDistinct:
		p := d.Precision
		if p == 0 {
			p = 12
		}
		return min(1<<p, 400) // sparse HyperLogLog while small, 2^p registers at most
	case features.ApproxPercentile:
		return 300
	case features.TopK:
		c := d.Capacity
		if c == 0 {
			c = max(10*d.K, 20)
		}
		return 24 * c
	case features.LastKDistinct:
		return 32 * d.K
	}
	return 32
}

// Explain describes, for a data scientist, what a feature set compiles to:
// the goka groups (one per entity), their input, output and table topics,
// partitions, and the state each key holds with an estimate of its size.
func Explain(file string, set *features.Set, names Names, partitions int32) string {
	var b strings.Builder
	fmt.Fprintf(&b, "features %s: %d definitions, entities %s; %d partitions per topic (all co-partitioned)\n\n",
		file, len(set.All()), strings.Join(set.Entities(), ", "), partitions)
	entities := EntitiesOf(set)
	lt := names.LivestreamTopics()
	in := make([]string, 0, 4)
	for _, s := range lt.Inputs() {
		in = append(in, string(s))
	}
	out := []string{string(lt.UserSignals) + " (re-keyed by user_id: engagement signals, with the event when user features read it)"}
	for _, e := range entities {
		if e.Name != "user" {
			out = append(out, fmt.Sprintf("%s (re-keyed by %s)", names.EntityTopic(e.Name), e.KeyField))
		}
	}
	group(&b, string(names.LivestreamGroup()), in, out, string(names.LivestreamTable()),
		"stream metadata, viewer set, content embedding", set.ForEntity("livestream"))
	for _, e := range entities {
		inputs := []string{string(names.EntityTopic(e.Name))}
		extra := "windowed features only"
		table := string(names.EntityTable(e.Name))
		g := string(names.EntityGroup(e.Name))
		if e.Name == "user" {
			extra = "taste embedding, category affinity, recent streams"
			table, g = string(names.UserTable()), string(names.UserGroup())
		}
		group(&b, g, inputs, nil, table, extra, e.Features)
	}
	if !hasEntity(entities, "user") {
		group(&b, string(names.UserGroup()), []string{string(lt.UserSignals)}, nil, string(names.UserTable()),
			"taste embedding, category affinity, recent streams", nil)
	}
	fmt.Fprintf(&b, "with an embedding model (not --no-embeddings):\n"+
		"  worker  %s reads %s, writes %s (an input of %s)\n"+
		"  %s writes %s (viewers' tastes, an input of %s)\n",
		names.EmbeddingGroup("<model version>"), lt.Livestreams, names.VectorsTopic(), names.LivestreamGroup(),
		names.UserGroup(), names.AudienceTopic(), names.LivestreamGroup())
	if hasEntity(entities, "seller") {
		fmt.Fprintf(&b, "  %s and %s write %s (streams' content, buyers' tastes: an input of %s)\n",
			names.LivestreamGroup(), names.UserGroup(), names.SellerSignalsTopic(), names.EntityGroup("seller"))
	}
	fmt.Fprintf(&b, "backfills (new features from the inputs' history): %s and every entity group but the user's read <group>-backfill,\n"+
		"  written with <group>-backfill-state (compacted catalogs) by processors/backfill; --brokers shows their progress\n",
		names.LivestreamGroup())
	fmt.Fprintf(&b, "dead letters: <input topic>.dlq for every input topic above; tables are compacted changelogs.\n")
	fmt.Fprintf(&b, "groups defined in code: %s (livestream), %s (user)\n", pkgOf(livestream.DefaultGroup), pkgOf(user.DefaultGroup))
	return b.String()
}

func pkgOf[T ~string](g T) string { return "processors/" + string(g) }

func hasEntity(es []Entity, name string) bool {
	for _, e := range es {
		if e.Name == name {
			return true
		}
	}
	return false
}

func group(b *strings.Builder, name string, inputs, outputs []string, table, extra string, set *features.Set) {
	fmt.Fprintf(b, "group %s\n  inputs  %s\n", name, strings.Join(inputs, ", "))
	if len(outputs) > 0 {
		fmt.Fprintf(b, "  outputs %s\n", strings.Join(outputs, ", "))
	}
	fmt.Fprintf(b, "  table   %s (state per key: %s)\n", table, extra)
	if set == nil || len(set.All()) == 0 {
		b.WriteString("\n")
		return
	}
	defs := append([]features.Definition(nil), set.All()...)
	sort.SliceStable(defs, func(i, j int) bool { return defs[i].Name < defs[j].Name })
	tw := tabwriter.NewWriter(b, 2, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  feature\taggregation\twindow\tlateness\tsources\ttiles\t≈ bytes/key\n")
	total := 0
	for _, d := range defs {
		est := d.Tiles() * tileBytes(d)
		total += est
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%d\t%d\n", d.Name, d.Aggregation, d.Window, features.FormatDuration(d.Lateness),
			strings.Join(d.Sources, ","), d.Tiles(), est)
	}
	tw.Flush()
	fmt.Fprintf(b, "  ≈ %d bytes of feature state per key at most (upper bound: every tile filled)\n\n", total)
}
