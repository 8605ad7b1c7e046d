// Package trainingset builds point-in-time correct training sets: for each
// row of a labels file (entity keys, a timestamp, label columns), every
// requested feature of each entity the row names as of that row's instant,
// plus the content and taste embeddings if asked.
//
// It streams an event log once, in log order, through the offline engine
// (the processors' own code, package offline) and answers each label when
// the log's clock reaches its instant. Labels are sorted by time first;
// memory is the engine's state plus the labels, not the log.
//
// # Which side of the instant
//
// A row at instant T sees the records of the log before the first record
// whose event time is after T: every event with event time ≤ T (T
// included, as a window read at T includes events at T) that had arrived
// by the time the log's clock — the newest event time read so far —
// passed T. A late event (event time ≤ T) arriving after that is not seen
// at T, as online serving had not seen it at T either; it is applied to
// the state when it arrives, with the lateness rules the processors
// apply, and later rows see it. Windows are then read at T, as `livefeed
// features compute --at T` reads them and as serving's `?at=T` does: the
// values equal compute --at T over the same log prefix and what serving
// answered at T having consumed it. An entity no event has reached yet
// reads as an empty state: counts and sums 0, means and maxima null.
package trainingset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/offline"
	"github.com/livefeed/livefeed/topologies"
	"golang.org/x/sync/errgroup"
)

// The embedding columns' names.
const (
	// ContentColumn is the stream's content vector (its title, category
	// and tags through the model), without the audience blend serving
	// adds; null before the stream's metadata.
	ContentColumn = "content_embedding"
	// TasteColumn is the user's taste (unit length); null before the
	// user's first signal.
	TasteColumn = "taste_embedding"
)

// Options configure Build.
type Options struct {
	// Topology holds the feature set, entities, embedder and taste weights
	// (app.OfflineTopology); nothing of Kafka is used.
	Topology *topologies.Topology
	// Features names the features to compute; empty: every feature of each
	// entity whose key column the labels have.
	Features []string
	// Embeddings adds ContentColumn when the labels have livestream_id and
	// TasteColumn when they have user_id (needs the topology's embedder).
	Embeddings bool
	// Format of the output (default Parquet).
	Format Format
}

// Source is an event log read in order (offline.LogScanner, or the input
// topics of a Kafka cluster).
type Source interface {
	Scan() bool
	Record() offline.Record
	Err() error
}

// Stats describe a Build.
type Stats struct {
	Rows     int            `json:"rows"`
	Records  int            `json:"records"` // log records read
	Rejected map[string]int `json:"rejected"`
	Late     int            `json:"late"`
	// Replay is the replaying goroutine's time applying records (and
	// waiting for the reader to decode them), Lookup its time reading the
	// features and vectors at the rows' instants: together the build's
	// wall time. Write is the encoding goroutine's busy time, alongside.
	Replay time.Duration `json:"replay_ns"`
	Lookup time.Duration `json:"lookup_ns"`
	Write  time.Duration `json:"write_ns"`
}

// KeyColumns maps each key column to its entity for a topology:
// livestream_id → livestream, user_id → user, seller_id → seller, …
func KeyColumns(topo *topologies.Topology) map[string]string {
	m := map[string]string{"livestream_id": "livestream"}
	for _, e := range topo.Entities {
		m[e.KeyField] = e.Name
	}
	return m
}

// entityPlan is what Build reads for one entity of a row.
type entityPlan struct {
	entity string
	col    int // the key column in Labels.Columns
	defs   []features.Definition
}

// plan is the output's layout: label columns, then features, then vectors.
type plan struct {
	entities      []entityPlan
	featureNames  []string
	content       int // the livestream_id column, -1: no content vector
	taste         int // the user_id column, -1: no taste vector
	labelsColumns []Column
	timeColumn    string
}

func newPlan(o Options, l *Labels) (*plan, error) {
	topo := o.Topology
	keyCol := map[string]int{}
	for i, c := range l.Columns {
		if c.Entity != "" {
			keyCol[c.Entity] = i
		}
	}
	sets := []struct {
		name string
		set  *features.Set
	}{{"livestream", topo.Features}}
	for _, e := range topo.Entities {
		sets = append(sets, struct {
			name string
			set  *features.Set
		}{e.Name, e.Features})
	}
	want, found := map[string]bool{}, map[string]bool{}
	for _, n := range o.Features {
		want[n] = true
	}
	p := &plan{content: -1, taste: -1, labelsColumns: l.Columns, timeColumn: l.TimeColumn}
	for _, s := range sets {
		col, ok := keyCol[s.name]
		ep := entityPlan{entity: s.name, col: col}
		for _, d := range s.set.All() {
			if len(want) > 0 && !want[d.Name] {
				continue
			}
			if !ok {
				if len(want) > 0 {
					return nil, fmt.Errorf("feature %s is of entity %s: the labels need a %s column", d.Name, s.name, features.KeyField(s.name))
				}
				continue
			}
			found[d.Name] = true
			ep.defs = append(ep.defs, d)
			p.featureNames = append(p.featureNames, d.Name)
		}
		if len(ep.defs) > 0 {
			p.entities = append(p.entities, ep)
		}
	}
	if len(found) < len(want) {
		var unknown []string
		for n := range want {
			if !found[n] {
				unknown = append(unknown, n)
			}
		}
		slices.Sort(unknown)
		return nil, fmt.Errorf("unknown features: %s", strings.Join(unknown, ", "))
	}
	if o.Embeddings {
		if topo.Embedder == nil {
			return nil, errors.New("embeddings need a model (--model DIR or --model test), not --no-embeddings")
		}
		if c, ok := keyCol["livestream"]; ok {
			p.content = c
		}
		if c, ok := keyCol["user"]; ok {
			p.taste = c
		}
		if p.content < 0 && p.taste < 0 {
			return nil, errors.New("embeddings need a livestream_id or user_id column")
		}
	}
	if len(p.featureNames) == 0 && p.content < 0 && p.taste < 0 {
		var keys []string
		for k := range KeyColumns(topo) {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return nil, fmt.Errorf("nothing to compute: the labels have no entity key column (any of %s)", strings.Join(keys, ", "))
	}
	for _, n := range p.featureNames {
		for _, c := range l.Columns {
			if c.Name == n {
				return nil, fmt.Errorf("the labels have a column %q, the name of a feature", n)
			}
		}
	}
	return p, nil
}

// Build writes the training set of labels over the log to w, rows in time
// order (rows at the same instant in the labels' order).
//
// Three goroutines share the work: one reads and decodes the log, one
// replays it and looks the rows up (the state is only ever touched there),
// one encodes the output.
func Build(ctx context.Context, o Options, labels *Labels, log Source, w io.Writer) (Stats, error) {
	var st Stats
	p, err := newPlan(o, labels)
	if err != nil {
		return st, err
	}
	if o.Format == "" {
		o.Format = Parquet
	}
	out, err := newWriter(w, o.Format, p)
	if err != nil {
		return st, err
	}
	en := offline.New(o.Topology)
	en.SkipTastes = p.taste < 0 // nothing else reads them
	b := &build{p: p, en: en, empty: &features.State{}, caches: make([]map[string][]features.ReadCache, len(p.entities))}
	for i := range b.caches {
		b.caches[i] = map[string][]features.ReadCache{}
	}
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	readCtx, stopReading := context.WithCancel(gctx)
	defer stopReading()
	decoded := make(chan []offline.Decoded, 4)
	records := 0
	g.Go(func() error {
		defer close(decoded)
		batch := make([]offline.Decoded, 0, batchSize)
		for log.Scan() {
			records++
			batch = append(batch, offline.Decode(log.Record()))
			if len(batch) < batchSize {
				continue
			}
			select {
			case decoded <- batch:
			case <-readCtx.Done():
				return nil // stopped: every row answered, or another goroutine failed
			}
			batch = make([]offline.Decoded, 0, batchSize)
		}
		if err := log.Err(); err != nil {
			return err
		}
		select {
		case decoded <- batch:
		case <-readCtx.Done():
		}
		return nil
	})
	answered := make(chan []answer, 4)
	g.Go(func() error {
		for batch := range answered {
			t := time.Now()
			for _, a := range batch {
				if err := out.row(a.row, a.feats, a.content, a.taste); err != nil {
					return fmt.Errorf("writing training set: %w", err)
				}
			}
			st.Write += time.Since(t)
		}
		t := time.Now()
		if err := out.close(); err != nil {
			return fmt.Errorf("writing training set: %w", err)
		}
		st.Write += time.Since(t)
		return nil
	})
	g.Go(func() error {
		defer close(answered)
		defer stopReading()
		send := func(rows []Row) error {
			for len(rows) > 0 {
				n := min(len(rows), batchSize)
				t := time.Now()
				batch := b.answer(rows[:n])
				st.Lookup += time.Since(t)
				st.Rows += n
				rows = rows[n:]
				select {
				case answered <- batch:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
			return nil
		}
		rows := labels.Rows
		var clock time.Time
		for batch := range decoded {
			for _, d := range batch {
				if t, ok := d.Time(); ok && t.After(clock) {
					// The clock moves past every row before t: answer
					// them with the state as it is, before this record.
					n, _ := slices.BinarySearchFunc(rows, t, func(r Row, t time.Time) int { return r.At.Compare(t) })
					if err := send(rows[:n]); err != nil {
						return err
					}
					rows = rows[n:]
					clock = t
					if len(rows) == 0 {
						return nil // the rest of the log is after every row
					}
				}
				en.ApplyDecoded(gctx, d)
			}
			if gctx.Err() != nil {
				return gctx.Err()
			}
		}
		if gctx.Err() != nil {
			return gctx.Err() // the reader failed: the log is not complete
		}
		// Rows after the end of the log see all of it.
		return send(rows)
	})
	if err := g.Wait(); err != nil {
		return st, err
	}
	st.Records = records
	st.Replay = time.Since(start) - st.Lookup
	st.Rejected, st.Late = en.Rejected, en.Late
	return st, nil
}

// batchSize is how many records or rows go between the goroutines at once.
const batchSize = 512

type build struct {
	p     *plan
	en    *offline.Engine
	empty *features.State
	// caches holds, per entity of the plan and key, each feature's
	// ReadCache: rows come in time order, so a key's next row mostly
	// reads the same sketch tiles again, and merges only those that
	// changed (the approx_distinct reads were most of the lookups).
	caches []map[string][]features.ReadCache
}

// answer is one output row.
type answer struct {
	row            Row
	feats          []float64 // NaN: null
	content, taste []float32 // nil: null
}

// answer looks rows up at their instants.
func (b *build) answer(rows []Row) []answer {
	out := make([]answer, len(rows))
	feats := make([]float64, len(rows)*len(b.p.featureNames))
	for j, r := range rows {
		a := &out[j]
		a.row = r
		a.feats = feats[j*len(b.p.featureNames) : (j+1)*len(b.p.featureNames)]
		i := 0
		for e, ep := range b.p.entities {
			s := b.empty
			var cs []features.ReadCache // nil: the empty state, nothing to keep
			if k := r.Cells[ep.col]; k.Kind == String {
				if fs := b.en.FeatureState(ep.entity, k.Str); fs != nil {
					s = fs
					if cs = b.caches[e][k.Str]; cs == nil {
						cs = make([]features.ReadCache, len(ep.defs))
						b.caches[e][k.Str] = cs
					}
				}
			}
			for j, d := range ep.defs {
				var c *features.ReadCache
				if cs != nil {
					c = &cs[j]
				}
				a.feats[i] = math.NaN()
				if x, ok := d.NumberCached(s.Series[d.Name], r.At, c); ok {
					a.feats[i] = x
				}
				i++
			}
		}
		if c := b.p.content; c >= 0 && r.Cells[c].Kind == String {
			if s := b.en.Streams()[r.Cells[c].Str]; s != nil {
				a.content = s.Embedding
			}
		}
		if c := b.p.taste; c >= 0 && r.Cells[c].Kind == String {
			if u := b.en.Users()[r.Cells[c].Str]; u != nil {
				a.taste = u.Taste.Unit()
			}
		}
	}
	return out
}
