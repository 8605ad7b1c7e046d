package index

import (
	"fmt"
	"slices"

	"github.com/livefeed/livefeed/serving/index/hnsw"
)

// Attributes that may have sub-graphs (Options.SubGraphs).
const (
	SubGraphCategory = "category"
	SubGraphLanguage = "language"
)

// subGraphs are the sub-graphs of one attribute over a dimension's graph:
// one per value, holding the graph's nodes of that value (links only: the
// vectors are the graph's, hnsw.NewSub). A filter on one value of the
// attribute searches that value's sub-graph instead of the whole graph:
// its members are all there, near each other, and the rest of the filter
// is applied inside it. This is what keeps a value whose members lie away
// from the query (a filter correlated with the vectors) from needing a
// scan: in the whole graph the query's neighbourhood holds none of them.
type subGraphs struct {
	attr   string
	cfg    hnsw.Config
	baseG  *hnsw.Graph
	byVal  map[string]int // value → index in graphs
	vals   []string
	graphs []*hnsw.Graph
	idx    []uint16 // graph node → its sub-graph's index + 1; 0: none
	node   []uint32 // graph node → its node in that sub-graph
}

func newSubGraphs(attr string, base *hnsw.Graph, cfg hnsw.Config) *subGraphs {
	return &subGraphs{attr: attr, cfg: cfg, baseG: base, byVal: map[string]int{}}
}

// value is the attribute of it the sub-graphs split on.
func (sg *subGraphs) value(it *Item) string {
	if sg.attr == SubGraphLanguage {
		return it.Language
	}
	return it.Category
}

// filterValue is the one value f asks of the attribute ("" if it asks
// none or several).
func (sg *subGraphs) filterValue(f *Filter) string {
	vals := f.Categories
	if sg.attr == SubGraphLanguage {
		vals = f.Languages
	}
	if len(vals) != 1 {
		return ""
	}
	return vals[0]
}

// graph is the sub-graph of value v, nil if there is none.
func (sg *subGraphs) graph(v string) *hnsw.Graph {
	if i, ok := sg.byVal[v]; ok {
		return sg.graphs[i]
	}
	return nil
}

// set makes base node node a member of value v's sub-graph (leaving the
// one it was in); moved says its vector changed in the base graph (done
// already), so that it is relinked where it stays.
func (sg *subGraphs) set(node uint32, v string, moved bool) {
	for int(node) >= len(sg.idx) {
		sg.idx = append(sg.idx, 0)
		sg.node = append(sg.node, 0)
	}
	if cur := sg.idx[node]; cur != 0 && sg.vals[cur-1] == v {
		if moved {
			sg.graphs[cur-1].Relink(sg.node[node])
		}
		return
	}
	sg.leave(node)
	if v == "" {
		return
	}
	i, ok := sg.byVal[v]
	if !ok {
		if len(sg.graphs) >= 1<<16-1 {
			return // values beyond 65535 get no sub-graph
		}
		i = len(sg.graphs)
		sg.byVal[v] = i
		sg.vals = append(sg.vals, v)
		sg.graphs = append(sg.graphs, hnsw.NewSub(sg.baseG, sg.cfg))
	}
	sg.node[node] = sg.graphs[i].AddRef(node)
	sg.idx[node] = uint16(i + 1)
}

// leave takes base node node out of its sub-graph, if any: before the
// base graph deletes it.
func (sg *subGraphs) leave(node uint32) {
	if int(node) >= len(sg.idx) || sg.idx[node] == 0 {
		return
	}
	sg.graphs[sg.idx[node]-1].Delete(sg.node[node])
	sg.idx[node] = 0
}

// subNode is base node n's node in sub-graph g, false if it is not there.
func (sg *subGraphs) subNode(n uint32, g *hnsw.Graph) (uint32, bool) {
	if int(n) >= len(sg.idx) || sg.idx[n] == 0 || sg.graphs[sg.idx[n]-1] != g {
		return 0, false
	}
	return sg.node[n], true
}

// memoryBytes is the sub-graphs' links and maps.
func (sg *subGraphs) memoryBytes() int {
	n := 2*cap(sg.idx) + 4*cap(sg.node)
	for _, g := range sg.graphs {
		n += g.MemoryBytes()
	}
	return n
}

// restore rebuilds idx and node from restored sub-graphs.
func (sg *subGraphs) restore() error {
	sg.idx = make([]uint16, sg.baseG.Nodes())
	sg.node = make([]uint32, sg.baseG.Nodes())
	for i, g := range sg.graphs {
		for n := range uint32(g.Nodes()) {
			if g.Deleted(n) {
				continue
			}
			b := g.Ref(n)
			if sg.idx[b] != 0 || sg.baseG.Deleted(b) {
				return fmt.Errorf("%s sub-graphs: base node %d twice or deleted", sg.attr, b)
			}
			sg.idx[b], sg.node[b] = uint16(i+1), n
		}
	}
	return nil
}

// subFilter is a graph search's filter seen from a sub-graph's nodes.
type subFilter struct {
	rp *replicaPred
	g  *hnsw.Graph
}

// Allowed implements hnsw.Filter.
func (f subFilter) Allowed(node uint32) bool { return f.rp.Allowed(f.g.Ref(node)) }

// validSubGraphs checks Options.SubGraphs.
func validSubGraphs(attrs []string) []string {
	var out []string
	for _, a := range attrs {
		if (a == SubGraphCategory || a == SubGraphLanguage) && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}
