package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/simulate"
	"github.com/twmb/franz-go/pkg/kgo"
)

// FreshnessResult is phase 2: the time from producing a new live stream
// until /v1/recommendations returns it, under background traffic.
type FreshnessResult struct {
	Samples int `json:"samples"`
	// Latency is from just before the produce call until the response that
	// contained the stream was read.
	Latency Latency `json:"latency"`
	// Ack is the produce call alone (until the broker acknowledged).
	Ack Latency `json:"ack"`
	// Polls is the number of /v1/recommendations requests per sample.
	Polls          Latency `json:"polls"`
	PollIntervalMS float64 `json:"poll_interval_ms"`
	Timeouts       int     `json:"timeouts"`
	Background     struct {
		TargetRate   float64 `json:"target_rate"`
		Acked        int64   `json:"acked"`
		EventsPerSec float64 `json:"events_per_sec"`
		Errors       int64   `json:"errors"`
	} `json:"background"`
	Method string `json:"method"`
}

func (r *runner) freshness(ctx context.Context) (*FreshnessResult, error) {
	res := &FreshnessResult{Samples: r.cfg.Samples, PollIntervalMS: float64(r.cfg.PollInterval) / float64(time.Millisecond)}
	res.Method = "a livestream event (status live) for a new stream id in a category of its own is produced with ProduceSync; " +
		"GET /v1/recommendations?user_id=bench-nobody&category=<that category>&k=1 is then polled on one keep-alive " +
		"connection until the stream is in the results; latency = produce start to the end of that response"
	a, err := r.newApp(ctx, "fr")
	if err != nil {
		return nil, err
	}
	stk := startProcessors(ctx, a)
	defer func() {
		if err := stk.stop(); err != nil {
			r.progress("freshness: stopping: %v", err)
		}
	}()
	if err := stk.startServing(r.cfg.HTTPAddr); err != nil {
		return nil, err
	}
	if _, err := stk.waitReady(ctx, 2*time.Minute); err != nil {
		return nil, err
	}

	// Background traffic until the samples are taken.
	sc := simulate.Config{Seed: r.cfg.Seed + 1, BadFraction: 0}
	sc.FitRate(r.cfg.BackgroundRate)
	gen, err := simulate.New(sc)
	if err != nil {
		return nil, fmt.Errorf("creating simulator: %w", err)
	}
	bgClient, err := producer(a.Brokers(), 5*time.Millisecond)
	if err != nil {
		return nil, err
	}
	defer bgClient.Close()
	bgCtx, bgCancel := context.WithCancel(ctx)
	type bgResult struct {
		st  simulate.Stats
		err error
	}
	bgDone := make(chan bgResult, 1)
	go func() {
		st, err := simulate.Produce(bgCtx, bgClient, gen, simulate.ProduceOptions{
			Rate: r.cfg.BackgroundRate, TopicPrefix: a.Topology.Names.Prefix,
		})
		bgDone <- bgResult{st, err}
	}()
	bgStopped := false
	stopBackground := func() error {
		if bgStopped {
			return nil
		}
		bgStopped = true
		bgCancel()
		select {
		case b := <-bgDone:
			res.Background.TargetRate = r.cfg.BackgroundRate
			res.Background.Acked, res.Background.Errors = b.st.Acked(), b.st.Errors
			res.Background.EventsPerSec = round1(b.st.Rate())
			if b.err != nil && !errors.Is(b.err, context.Canceled) {
				return fmt.Errorf("background traffic: %w", b.err)
			}
			return nil
		case <-time.After(stopTimeout):
			return errors.New("background traffic did not stop")
		}
	}
	defer stopBackground()

	// Let the traffic reach the processors and the index first.
	r.progress("freshness: background traffic at %g events/s; warming up", r.cfg.BackgroundRate)
	if err := sleepCtx(ctx, 3*time.Second); err != nil {
		return res, err
	}

	probe, err := producer(a.Brokers(), 0)
	if err != nil {
		return res, err
	}
	defer probe.Close()
	rng := rand.New(rand.NewPCG(uint64(r.cfg.Seed), 2))
	cats := simulate.Catalog()
	catIDs := simulate.Categories()
	topic := a.Topology.Names.InputTopic(events.TopicLivestreams)
	var lat, ack []time.Duration
	var polls []float64
	r.progress("freshness: %d samples", r.cfg.Samples)
	for i := range r.cfg.Samples {
		if err := stk.failed(); err != nil {
			return res, err
		}
		cat := catIDs[rng.IntN(len(catIDs))]
		id := fmt.Sprintf("bench-probe-%05d", i)
		probeCat := fmt.Sprintf("bench-probe-%05d", i)
		ev := events.Livestream{
			Header:   events.Header{EventID: "bench-probe-ev-" + fmt.Sprint(i), EventTime: time.Now().UTC(), LivestreamID: id},
			SellerID: fmt.Sprintf("bench-probe-seller-%05d", i),
			Title:    streamTitle(rng, cats[cat]),
			Category: probeCat,
			Tags:     streamTags(rng, cats[cat]),
			Language: "en",
			Status:   events.StatusLive,
		}
		val, err := json.Marshal(ev)
		if err != nil {
			return res, err
		}
		path := "/v1/recommendations?" + url.Values{
			"user_id": {"bench-nobody"}, "category": {probeCat}, "k": {"1"},
		}.Encode()

		t0 := time.Now()
		pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
		err = probe.ProduceSync(pctx, &kgo.Record{Topic: topic, Key: []byte(id), Value: val}).FirstErr()
		pcancel()
		if err != nil {
			return res, fmt.Errorf("producing probe %d: %w", i, err)
		}
		ack = append(ack, time.Since(t0))
		found, n, err := pollFor(ctx, stk, path, id, r.cfg.PollInterval, 10*time.Second)
		if err != nil {
			return res, fmt.Errorf("probe %d: %w", i, err)
		}
		polls = append(polls, float64(n))
		if !found {
			res.Timeouts++
			continue
		}
		lat = append(lat, time.Since(t0))
		// A pause of 5-25ms decorrelates the samples from the processors'
		// and producers' flush ticks.
		if err := sleepCtx(ctx, time.Duration(5+rng.IntN(20))*time.Millisecond); err != nil {
			return res, err
		}
	}
	if err := stopBackground(); err != nil {
		return res, err
	}
	res.Latency, res.Ack = summarize(lat), summarize(ack)
	res.Polls = summarizeMS(polls)
	res.Polls.Mean = round1(res.Polls.Mean)
	r.progress("freshness: p50 %.1fms p99 %.1fms max %.1fms (%d timeouts)", res.Latency.P50, res.Latency.P99, res.Latency.Max, res.Timeouts)
	if res.Timeouts > 0 {
		return res, fmt.Errorf("%d of %d probes not visible within 10s", res.Timeouts, r.cfg.Samples)
	}
	return res, nil
}

// pollFor polls path every interval until a result has the stream id. It
// returns whether it was found and the number of requests made.
func pollFor(ctx context.Context, stk *stack, path, id string, interval, timeout time.Duration) (bool, int, error) {
	deadline := time.Now().Add(timeout)
	n := 0
	for {
		next := time.Now().Add(interval)
		var resp struct {
			Results []struct {
				LivestreamID string `json:"livestream_id"`
			} `json:"results"`
		}
		code, _, err := stk.get(ctx, path, &resp)
		n++
		if err != nil {
			return false, n, err
		}
		if code != http.StatusOK {
			return false, n, fmt.Errorf("GET %s: status %d", path, code)
		}
		for _, res := range resp.Results {
			if res.LivestreamID == id {
				return true, n, nil
			}
		}
		if time.Now().After(deadline) {
			return false, n, nil
		}
		if d := time.Until(next); d > 0 {
			if err := sleepCtx(ctx, d); err != nil {
				return false, n, err
			}
		}
	}
}
