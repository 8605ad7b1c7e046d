package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/simulate"
	"github.com/twmb/franz-go/pkg/kgo"
)

// QueryResult is phase 3: /v1/recommendations over many live streams for
// users with taste vectors.
type QueryResult struct {
	Streams int `json:"streams"`
	Users   int `json:"users"`
	// IndexSeconds is from the first stream produced until every stream
	// was served with its vector (texts are embedded asynchronously by the
	// embedding worker); IndexStreamsPerSec is Streams over it.
	IndexSeconds       float64 `json:"index_seconds"`
	IndexStreamsPerSec float64 `json:"index_streams_per_sec"`
	// EngagementEvents are the viewing joins and chats produced for the users.
	EngagementEvents int `json:"engagement_events"`
	// StreamsWithViewers is how many streams got at least one viewer.
	StreamsWithViewers int      `json:"streams_with_viewers"`
	Sequential         QueryRun `json:"sequential"`
	Concurrent         QueryRun `json:"concurrent"`
	Mix                string   `json:"mix"`
	Method             string   `json:"method"`
}

// QueryRun is one timed series of requests.
type QueryRun struct {
	Clients   int     `json:"clients"`
	Requests  int     `json:"requests"`
	Seconds   float64 `json:"seconds"`
	ReqPerSec float64 `json:"req_per_sec"`
	// Client is the latency the client saw (request written to body read);
	// Server is the took_ms the server reported.
	Client Latency `json:"client"`
	Server Latency `json:"server"`
	// ByKind is the client latency per kind of request.
	ByKind map[string]Latency `json:"by_kind"`
	// Strategies counts the answers by strategy (taste, popular).
	Strategies map[string]int `json:"strategies"`
	// Results is the number of results per answer.
	Results Latency `json:"results_per_answer"`
	// Scanned and Matched are the server's index statistics per answer.
	Scanned Latency `json:"scanned"`
	Matched Latency `json:"matched"`
	Errors  int     `json:"errors"`
}

// Request kinds of the query mix.
const (
	kindPlain    = "taste"             // user_id, k=20
	kindCategory = "taste+category"    // plus category=<a favourite>
	kindViewers  = "taste+cat+viewers" // plus min_viewers=1
	// kindFormula re-ranks k × 10 candidates by benchFormula, at most one
	// per seller.
	kindFormula = "taste+formula+diversity"
	// kindNamed runs the built-in named query for_you (formula with a
	// parameter, one per seller, seen streams excluded).
	kindNamed = "query:for_you"
)

// benchFormula is the example ranking formula.
const benchFormula = "similarity * log(1 + viewers_now) * exp(-live_minutes / 60)"

// streamsPerSeller: the bench's sellers run several streams each, so that
// max_per_seller has something to cut.
const streamsPerSeller = 4

type benchUser struct {
	id   string
	favs []string
}

func (r *runner) query(ctx context.Context) (*QueryResult, error) {
	nStreams, nUsers, per := r.cfg.Streams, r.cfg.Users, r.cfg.StreamsPerUser
	res := &QueryResult{Streams: nStreams, Users: nUsers}
	res.Mix = "per 6 requests: 2× " + kindPlain + " (k=20), 1× " + kindCategory + ", 1× " + kindViewers +
		", 1× " + kindFormula + " (formula=" + benchFormula + ", max_per_seller=1), 1× " + kindNamed +
		"; users round-robin; category = one of the user's favourite categories; " +
		strconv.Itoa(streamsPerSeller) + " streams per seller"
	res.Method = "client latency measured around http.Client.Do until the body is read, one keep-alive connection per client; " +
		"server latency is took_ms of the answer; the client runs in the same process and on the same CPUs as the pipeline"
	a, err := r.newApp(ctx, "qy")
	if err != nil {
		return nil, err
	}
	cnt, err := newCounters(a)
	if err != nil {
		a.Close()
		return nil, err
	}
	stk := startProcessors(ctx, a)
	defer func() {
		if err := stk.stop(); err != nil {
			r.progress("query: stopping: %v", err)
		}
	}()
	if err := stk.startServing(r.cfg.HTTPAddr); err != nil {
		return nil, err
	}
	if _, err := stk.waitReady(ctx, 2*time.Minute); err != nil {
		return nil, err
	}
	cl, err := producer(a.Brokers(), 5*time.Millisecond)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	names := a.Topology.Names
	lsGroup, userGroup := string(names.LivestreamGroup()), string(names.UserGroup())

	// 1. The live streams, simulator-like, over the catalog's categories by
	// popularity.
	rng := rand.New(rand.NewPCG(uint64(r.cfg.Seed), 3))
	cats := simulate.Catalog()
	catIDs := simulate.Categories()
	pick := popularityPicker(catIDs, cats)
	byCat := map[string][]string{}
	var batch []*kgo.Record
	now := time.Now().UTC()
	for i := range nStreams {
		cat := pick(rng)
		id := fmt.Sprintf("bench-ls-%06d", i)
		byCat[cat] = append(byCat[cat], id)
		ev := events.Livestream{
			Header:   events.Header{EventID: "bench-ev-ls-" + strconv.Itoa(i), EventTime: now, LivestreamID: id},
			SellerID: fmt.Sprintf("bench-s-%06d", i/streamsPerSeller),
			Title:    streamTitle(rng, cats[cat]),
			Category: cat,
			Tags:     streamTags(rng, cats[cat]),
			Language: pickLanguage(rng),
			Status:   events.StatusLive,
		}
		rec, err := record(names.InputTopic(events.TopicLivestreams), id, ev)
		if err != nil {
			return res, err
		}
		batch = append(batch, rec)
	}
	r.progress("query: producing %d live streams", nStreams)
	start := time.Now()
	if err := produceAll(ctx, cl, batch); err != nil {
		return res, fmt.Errorf("producing streams: %w", err)
	}
	idxTimeout := time.Minute + time.Duration(nStreams)*time.Second/50
	if err := r.waitUntil(ctx, stk, idxTimeout, 200*time.Millisecond, func() (bool, string, error) {
		n, err := stk.indexed(ctx)
		return n >= nStreams, fmt.Sprintf("%d/%d streams indexed", n, nStreams), err
	}); err != nil {
		return res, fmt.Errorf("waiting for the index: %w", err)
	}
	// The embedding worker embeds the texts asynchronously: wait until
	// every stream is served with a vector before users engage (a signal
	// for a stream without one does not move the user's taste).
	missing := make([]string, 0, nStreams)
	for _, l := range byCat {
		missing = append(missing, l...)
	}
	// The worker embeds ~19 streams/s under the race detector on a quiet
	// 2-core box, several times fewer under load: wait generously.
	vecTimeout := 2*time.Minute + time.Duration(nStreams)*time.Second/10
	if err := r.waitUntil(ctx, stk, vecTimeout, 200*time.Millisecond, func() (bool, string, error) {
		still := missing[:0]
		for _, id := range missing {
			var lf struct {
				EmbeddingModel string `json:"embedding_model"`
			}
			code, _, err := stk.get(ctx, "/v1/features/livestream/"+url.PathEscape(id), &lf)
			if err != nil {
				return false, "", err
			}
			if code != http.StatusOK || lf.EmbeddingModel == "" {
				still = append(still, id)
			}
		}
		missing = still
		return len(missing) == 0, fmt.Sprintf("%d/%d streams served with a vector", nStreams-len(missing), nStreams), nil
	}); err != nil {
		return res, fmt.Errorf("waiting for the streams' vectors: %w", err)
	}
	took := time.Since(start)
	res.IndexSeconds, res.IndexStreamsPerSec = seconds(took), round1(float64(nStreams)/took.Seconds())
	r.progress("query: %d streams indexed with vectors in %.1fs (%.0f/s)", nStreams, took.Seconds(), float64(nStreams)/took.Seconds())

	// 2. Users with one or two favourite categories join and chat in
	// streams of those categories (after the streams are in the table, so
	// their signals carry the streams' embeddings).
	users := make([]benchUser, nUsers)
	batch = batch[:0]
	viewers := map[string]bool{}
	now = time.Now().UTC()
	n := 0
	for u := range users {
		users[u].id = fmt.Sprintf("bench-u-%04d", u)
		users[u].favs = []string{pick(rng)}
		if rng.Float64() < 0.5 {
			if c := pick(rng); c != users[u].favs[0] {
				users[u].favs = append(users[u].favs, c)
			}
		}
		for j := range per {
			cat := users[u].favs[j%len(users[u].favs)]
			if len(byCat[cat]) == 0 {
				continue
			}
			ls := byCat[cat][rng.IntN(len(byCat[cat]))]
			viewers[ls] = true
			at := now.Add(time.Duration(j) * time.Millisecond)
			n++
			join := events.Viewing{Header: events.Header{EventID: "bench-ev-v-" + strconv.Itoa(n), EventTime: at, LivestreamID: ls},
				Type: events.ViewingJoin, UserID: users[u].id}
			n++
			chat := events.Chat{Header: events.Header{EventID: "bench-ev-c-" + strconv.Itoa(n), EventTime: at, LivestreamID: ls},
				UserID: users[u].id, Text: chatText(rng, cats[cat])}
			for _, e := range []struct {
				topic string
				v     any
			}{{events.TopicViewing, join}, {events.TopicChat, chat}} {
				rec, err := record(names.InputTopic(e.topic), ls, e.v)
				if err != nil {
					return res, err
				}
				batch = append(batch, rec)
			}
		}
	}
	res.EngagementEvents, res.StreamsWithViewers = len(batch), len(viewers)
	r.progress("query: producing %d engagement events for %d users", len(batch), nUsers)
	if err := produceAll(ctx, cl, batch); err != nil {
		return res, fmt.Errorf("producing engagement: %w", err)
	}
	wantLS, wantUser := int64(nStreams+len(batch)), int64(len(batch))
	if err := r.waitUntil(ctx, stk, 2*time.Minute, 100*time.Millisecond, func() (bool, string, error) {
		m, err := cnt.read()
		if err != nil {
			return false, "", err
		}
		var ls, us int64
		if g := m[lsGroup]; g != nil {
			ls = g.Total
		}
		if g := m[userGroup]; g != nil {
			us = g.Total
		}
		return ls >= wantLS && us >= wantUser, fmt.Sprintf("livestream group %d/%d, user group %d/%d", ls, wantLS, us, wantUser), nil
	}); err != nil {
		return res, fmt.Errorf("waiting for the engagement to be processed: %w", err)
	}
	if err := r.waitUntil(ctx, stk, time.Minute, 100*time.Millisecond, func() (bool, string, error) {
		missing := 0
		for _, u := range users {
			var uf struct {
				HasTaste bool `json:"has_taste"`
			}
			code, _, err := stk.get(ctx, "/v1/features/user/"+url.PathEscape(u.id), &uf)
			if err != nil {
				return false, "", err
			}
			if code != http.StatusOK || !uf.HasTaste {
				missing++
			}
		}
		return missing == 0, fmt.Sprintf("%d of %d users without a taste vector in serving", missing, len(users)), nil
	}); err != nil {
		return res, fmt.Errorf("waiting for taste vectors: %w", err)
	}

	// 3. The requests.
	paths := make([]string, r.cfg.Requests)
	kinds := make([]string, r.cfg.Requests)
	for i := range paths {
		u := users[i%len(users)]
		q := url.Values{"user_id": {u.id}, "k": {"20"}}
		kinds[i] = kindPlain
		endpoint := "/v1/recommendations?"
		switch i % 6 {
		case 2:
			kinds[i] = kindCategory
			q.Set("category", u.favs[(i/6)%len(u.favs)])
		case 3:
			kinds[i] = kindViewers
			q.Set("category", u.favs[(i/6)%len(u.favs)])
			q.Set("min_viewers", "1")
		case 4:
			kinds[i] = kindFormula
			q.Set("formula", benchFormula)
			q.Set("max_per_seller", "1")
		case 5:
			kinds[i] = kindNamed
			endpoint = "/v1/queries/for_you?"
		}
		paths[i] = endpoint + q.Encode()
	}
	warm := min(200, max(20, r.cfg.Requests/10))
	if _, err := r.timeRequests(ctx, stk, paths[:min(warm, len(paths))], kinds, 1); err != nil {
		return res, fmt.Errorf("warm-up: %w", err)
	}
	r.progress("query: %d sequential requests", len(paths))
	if res.Sequential, err = r.timeRequests(ctx, stk, paths, kinds, 1); err != nil {
		return res, err
	}
	r.progress("query: sequential p50 %.2fms p99 %.2fms, %.0f req/s", res.Sequential.Client.P50, res.Sequential.Client.P99, res.Sequential.ReqPerSec)
	r.progress("query: %d requests over %d concurrent clients", len(paths), r.cfg.Clients)
	if res.Concurrent, err = r.timeRequests(ctx, stk, paths, kinds, r.cfg.Clients); err != nil {
		return res, err
	}
	r.progress("query: %d clients p50 %.2fms p99 %.2fms, %.0f req/s", r.cfg.Clients, res.Concurrent.Client.P50, res.Concurrent.Client.P99, res.Concurrent.ReqPerSec)
	if e := res.Sequential.Errors + res.Concurrent.Errors; e > 0 {
		return res, fmt.Errorf("%d requests failed", e)
	}
	return res, nil
}

type answer struct {
	Strategy string            `json:"strategy"`
	Results  []json.RawMessage `json:"results"`
	Scanned  int               `json:"scanned"`
	Matched  int               `json:"matched"`
	TookMS   float64           `json:"took_ms"`
}

// timeRequests issues paths over clients concurrent clients (client c takes
// paths c, c+clients, ...), each sequential.
func (r *runner) timeRequests(ctx context.Context, stk *stack, paths, kinds []string, clients int) (QueryRun, error) {
	type obs struct {
		kind   string
		client time.Duration
		ans    answer
		ok     bool
		err    error
	}
	out := make([]obs, len(paths))
	var wg sync.WaitGroup
	start := time.Now()
	for c := range clients {
		wg.Go(func() {
			for i := c; i < len(paths); i += clients {
				if ctx.Err() != nil {
					out[i].err = ctx.Err()
					return
				}
				o := &out[i]
				o.kind = kinds[i]
				code, d, err := stk.get(ctx, paths[i], &o.ans)
				o.client = d
				switch {
				case err != nil:
					o.err = err
				case code != http.StatusOK:
					o.err = fmt.Errorf("GET %s: status %d", paths[i], code)
				default:
					o.ok = true
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	run := QueryRun{Clients: clients, Requests: len(paths), Seconds: seconds(elapsed),
		ByKind: map[string]Latency{}, Strategies: map[string]int{}}
	run.ReqPerSec = round1(float64(len(paths)) / elapsed.Seconds())
	var client []time.Duration
	var server, results, scanned, matched []float64
	kindLat := map[string][]time.Duration{}
	var firstErr error
	for _, o := range out {
		if !o.ok {
			run.Errors++
			if firstErr == nil {
				firstErr = o.err
			}
			continue
		}
		client = append(client, o.client)
		kindLat[o.kind] = append(kindLat[o.kind], o.client)
		server = append(server, o.ans.TookMS)
		results = append(results, float64(len(o.ans.Results)))
		scanned = append(scanned, float64(o.ans.Scanned))
		matched = append(matched, float64(o.ans.Matched))
		run.Strategies[o.ans.Strategy]++
	}
	if ctx.Err() != nil {
		return run, ctx.Err()
	}
	if run.Errors > 0 && run.Errors == len(paths) {
		return run, fmt.Errorf("every request failed, first: %w", firstErr)
	}
	run.Client, run.Server = summarize(client), summarizeMS(server)
	run.Results, run.Scanned, run.Matched = summarizeMS(results), summarizeMS(scanned), summarizeMS(matched)
	for k, v := range kindLat {
		run.ByKind[k] = summarize(v)
	}
	return run, nil
}

// waitUntil polls cond every interval until it holds, a component fails or
// timeout passes; progress is reported every 5s.
func (r *runner) waitUntil(ctx context.Context, stk *stack, timeout, interval time.Duration, cond func() (bool, string, error)) error {
	deadline := time.Now().Add(timeout)
	last := time.Now()
	for {
		ok, state, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if err := stk.failed(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v: %s", timeout, state)
		}
		if time.Since(last) > 5*time.Second {
			last = time.Now()
			r.progress("query: %s", state)
		}
		if err := sleepCtx(ctx, interval); err != nil {
			return err
		}
	}
}

func record(topic, key string, v any) (*kgo.Record, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding event: %w", err)
	}
	return &kgo.Record{Topic: topic, Key: []byte(key), Value: b}, nil
}

// produceAll produces records asynchronously and waits until all are
// acknowledged.
func produceAll(ctx context.Context, cl *kgo.Client, recs []*kgo.Record) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var (
		mu       sync.Mutex
		firstErr error
		failed   int
	)
	for _, rec := range recs {
		cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				failed++
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("flushing: %w", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if failed > 0 {
		return fmt.Errorf("%d of %d records failed, first: %w", failed, len(recs), firstErr)
	}
	return nil
}

// popularityPicker draws category ids by the catalog's popularity.
func popularityPicker(ids []string, cats map[string]simulate.CategoryWords) func(*rand.Rand) string {
	cum := make([]float64, len(ids))
	var sum float64
	for i, id := range ids {
		sum += cats[id].Popularity
		cum[i] = sum
	}
	return func(rng *rand.Rand) string {
		x := rng.Float64() * sum
		i, _ := slices.BinarySearch(cum, x)
		return ids[min(i, len(ids)-1)]
	}
}

// streamTitle builds a title like the simulator's: "[modifier] item [format]".
func streamTitle(rng *rand.Rand, w simulate.CategoryWords) string {
	one := func(l []string) string { return l[rng.IntN(len(l))] }
	switch rng.IntN(3) {
	case 0:
		return one(w.Modifiers) + " " + one(w.Items)
	case 1:
		return one(w.Modifiers) + " " + one(w.Items) + " " + one(w.Formats)
	default:
		return one(w.Items) + " " + one(w.Formats)
	}
}

// streamTags draws 2 to 4 distinct tags.
func streamTags(rng *rand.Rand, w simulate.CategoryWords) []string {
	n := min(len(w.Tags), 2+rng.IntN(3))
	perm := rng.Perm(len(w.Tags))
	tags := make([]string, n)
	for i := range tags {
		tags[i] = w.Tags[perm[i]]
	}
	return tags
}

func chatText(rng *rand.Rand, w simulate.CategoryWords) string {
	return strings.Join([]string{"need that", w.Items[rng.IntN(len(w.Items))]}, " ")
}

func pickLanguage(rng *rand.Rand) string {
	switch x := rng.Float64(); {
	case x < 0.85:
		return "en"
	case x < 0.95:
		return "es"
	default:
		return "de"
	}
}
