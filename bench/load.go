package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/livefeed/livefeed/simulate"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// LoadConfig configures an open-loop HTTP load run against a running
// livefeed server (`livefeed bench load`).
type LoadConfig struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:8080.
	URL string
	// Rate is the request rate in requests/s (default 1000). Requests are
	// scheduled by the clock, not by the previous response (open loop).
	Rate float64
	// Duration of the run (default 30s).
	Duration time.Duration
	// Conns bounds the keep-alive connections (and requests in flight),
	// default 64.
	Conns int
	// Backlog is how many scheduled requests may wait for a free connection
	// before further ones are dropped (counted, not sent); default 4*Conns.
	Backlog int
	// Timeout of one request (default 2s).
	Timeout time.Duration
	// LateAfter: a request that starts this long after its scheduled time
	// counts as late (default 10ms). Its latency is measured from the
	// scheduled time either way.
	LateAfter time.Duration
	// Users is the simulator's user space: ids u-<i> padded like the
	// simulator's (default 110000, the simulator's population at 10k events/s).
	Users int
	// Categories to filter by (default: the simulator's catalogue).
	Categories []string
	// K per request (default 20).
	K int
	// CategoryShare, MinViewersShare and ForYouShare are the request mix:
	// shares of requests with a category filter, with min_viewers, and sent
	// to the for_you named query instead (the command's defaults are 0.5,
	// 0.2 and 0.1; zero here means none).
	CategoryShare, MinViewersShare, ForYouShare float64
	// Token is a bearer token for the /v1 API (empty: none).
	Token string
	// Seed of the request mix.
	Seed uint64
	// ServerMetrics is the server's /metrics URL (process_resident_memory_bytes
	// is sampled from it every second); empty: URL + /metrics.
	ServerMetrics string
	// ProcMetrics are /metrics URLs of processor processes
	// (livefeed_processor_events_total is sampled from them).
	ProcMetrics []string
	// ServerPID, if > 0, also samples VmRSS from /proc/<pid>/status.
	ServerPID int
	// Brokers, if set, samples the consumer lag of every group whose name
	// starts with GroupPrefix every LagEvery (default 2s).
	Brokers     []string
	GroupPrefix string
	LagEvery    time.Duration
}

func (c *LoadConfig) defaults() {
	if c.Rate <= 0 {
		c.Rate = 1000
	}
	if c.Duration <= 0 {
		c.Duration = 30 * time.Second
	}
	if c.Conns <= 0 {
		c.Conns = 64
	}
	if c.Backlog <= 0 {
		c.Backlog = 4 * c.Conns
	}
	if c.Timeout <= 0 {
		c.Timeout = 2 * time.Second
	}
	if c.LateAfter <= 0 {
		c.LateAfter = 10 * time.Millisecond
	}
	if c.Users <= 0 {
		c.Users = 110_000
	}
	if c.Categories == nil {
		c.Categories = simulate.Categories()
	}
	if c.K <= 0 {
		c.K = 20
	}
	if c.LagEvery <= 0 {
		c.LagEvery = 2 * time.Second
	}
	if c.ServerMetrics == "" {
		c.ServerMetrics = strings.TrimRight(c.URL, "/") + "/metrics"
	}
}

// Latencies summarises request latencies.
type Latencies struct {
	N                        int
	P50, P90, P99, P999, Max time.Duration
}

// Span is the min, max and last of a sampled quantity.
type Span struct {
	N              int
	Min, Max, Last float64
}

func (s *Span) add(v float64) {
	if s.N == 0 || v < s.Min {
		s.Min = v
	}
	if s.N == 0 || v > s.Max {
		s.Max = v
	}
	s.Last = v
	s.N++
}

// LoadResult is the outcome of a load run.
type LoadResult struct {
	Config    LoadConfig
	Elapsed   time.Duration
	Scheduled int
	Sent      int
	// Dropped requests were never sent: the backlog was full.
	Dropped int
	// Late requests started more than LateAfter after their scheduled time.
	Late int
	// Completed requests got a response (any status).
	Completed int
	Status    map[int]int
	// Errors by kind: timeout, connection, other.
	Errors map[string]int
	// Latency of requests answered 2xx, from the scheduled time to the end
	// of the body; All includes every completed request.
	OK, All Latencies
	// AchievedRate is completed responses per second.
	AchievedRate float64
	// RSSMetrics is process_resident_memory_bytes of the server; RSSProc is
	// VmRSS of --server-pid, both in bytes.
	RSSMetrics, RSSProc Span
	// ProcEvents is the increase of livefeed_processor_events_total over
	// the run on ProcMetrics, IngestRate per second; EventsRates the
	// per-second rates sampled.
	ProcEvents float64
	IngestRate float64
	EventsRate Span
	// Lag is the total consumer lag (records) of the matching groups.
	Lag       Span
	LagGroups []string
	// SampleErrors counts failed metric/lag samples.
	SampleErrors int
}

type loadJob struct {
	due  time.Time
	path string
}

type loadOutcome struct {
	lat    time.Duration
	status int
	errKey string
	late   bool
}

// Percentile returns the p-th percentile (0 < p <= 100) of sorted by the
// nearest-rank method; 0 for an empty slice.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	// The epsilon keeps float error (0.999*1000 = 999.0000000000001) from
	// moving the rank up one.
	rank := int(math.Ceil(p/100*float64(len(sorted)) - 1e-9))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

func summarise(lat []time.Duration) Latencies {
	slices.Sort(lat)
	l := Latencies{N: len(lat)}
	if len(lat) == 0 {
		return l
	}
	l.P50, l.P90, l.P99, l.P999 = Percentile(lat, 50), Percentile(lat, 90), Percentile(lat, 99), Percentile(lat, 99.9)
	l.Max = lat[len(lat)-1]
	return l
}

// UserID returns the simulator's id of user i in a population of n
// ("u-" and i zero-padded to at least 4 digits, the width of n-1).
func UserID(i, n int) string {
	w := max(4, len(strconv.Itoa(n-1)))
	s := strconv.Itoa(i)
	if len(s) < w {
		s = strings.Repeat("0", w-len(s)) + s
	}
	return "u-" + s
}

// requestMix returns the path and query of the next request.
func requestMix(rng *rand.Rand, c *LoadConfig) string {
	q := url.Values{}
	q.Set("user_id", UserID(rng.IntN(c.Users), c.Users))
	q.Set("k", strconv.Itoa(c.K))
	if len(c.Categories) > 0 && rng.Float64() < c.CategoryShare {
		q.Set("category", c.Categories[rng.IntN(len(c.Categories))])
	}
	if rng.Float64() < c.MinViewersShare {
		q.Set("min_viewers", strconv.Itoa(1+rng.IntN(20)))
	}
	path := "/v1/recommendations"
	if rng.Float64() < c.ForYouShare {
		path = "/v1/queries/for_you"
	}
	return path + "?" + q.Encode()
}

func errKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	var oe *net.OpError
	if errors.As(err, &oe) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "connection"
	}
	return "other"
}

// RunLoad sends requests to cfg.URL at cfg.Rate for cfg.Duration and
// samples the server's memory, the processors' event counter and the
// consumer lag alongside. It returns an error only if the run could not
// start; request failures are counted in the result.
func RunLoad(ctx context.Context, cfg LoadConfig) (LoadResult, error) {
	cfg.defaults()
	if cfg.URL == "" {
		return LoadResult{}, errors.New("load: no server URL")
	}
	base := strings.TrimRight(cfg.URL, "/")
	res := LoadResult{Config: cfg, Status: map[int]int{}, Errors: map[string]int{}}

	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        cfg.Conns,
		MaxIdleConnsPerHost: cfg.Conns,
		MaxConnsPerHost:     cfg.Conns,
		IdleConnTimeout:     90 * time.Second,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: cfg.Timeout}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	// Samplers: memory and events every second, lag every LagEvery.
	var smu sync.Mutex
	var samplers sync.WaitGroup
	sampleCtx, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	mclient := &http.Client{Timeout: time.Second}
	var firstEvents, lastEvents float64
	var firstAt, lastAt time.Time
	sampleOnce := func() {
		now := time.Now()
		if v, err := scrapeSum(sampleCtx, mclient, cfg.ServerMetrics, "process_resident_memory_bytes"); err == nil {
			smu.Lock()
			res.RSSMetrics.add(v)
			smu.Unlock()
		} else if sampleCtx.Err() == nil {
			smu.Lock()
			res.SampleErrors++
			smu.Unlock()
		}
		if cfg.ServerPID > 0 {
			if v, err := procRSS(cfg.ServerPID); err == nil {
				smu.Lock()
				res.RSSProc.add(v)
				smu.Unlock()
			} else {
				smu.Lock()
				res.SampleErrors++
				smu.Unlock()
			}
		}
		if len(cfg.ProcMetrics) > 0 {
			var total float64
			ok := true
			for _, u := range cfg.ProcMetrics {
				v, err := scrapeSum(sampleCtx, mclient, u, "livefeed_processor_events_total")
				if err != nil {
					ok = false
					break
				}
				total += v
			}
			smu.Lock()
			if !ok {
				if sampleCtx.Err() == nil {
					res.SampleErrors++
				}
			} else {
				if firstAt.IsZero() {
					firstEvents, firstAt = total, now
				} else if d := now.Sub(lastAt).Seconds(); d > 0 {
					res.EventsRate.add((total - lastEvents) / d)
				}
				lastEvents, lastAt = total, now
			}
			smu.Unlock()
		}
	}
	samplers.Add(1)
	go func() {
		defer samplers.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		sampleOnce()
		for {
			select {
			case <-sampleCtx.Done():
				return
			case <-t.C:
				sampleOnce()
			}
		}
	}()
	if len(cfg.Brokers) > 0 {
		kc, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
		if err != nil {
			return res, fmt.Errorf("load: kafka client: %w", err)
		}
		defer kc.Close()
		adm := kadm.NewClient(kc)
		samplers.Add(1)
		go func() {
			defer samplers.Done()
			t := time.NewTicker(cfg.LagEvery)
			defer t.Stop()
			for {
				lag, groups, err := groupLag(sampleCtx, adm, cfg.GroupPrefix)
				smu.Lock()
				if err != nil {
					if sampleCtx.Err() == nil {
						res.SampleErrors++
					}
				} else {
					res.Lag.add(float64(lag))
					res.LagGroups = groups
				}
				smu.Unlock()
				select {
				case <-sampleCtx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}

	// Workers: one request at a time each, so at most Conns in flight.
	jobs := make(chan loadJob, cfg.Backlog)
	outcomes := make(chan loadOutcome, cfg.Backlog+cfg.Conns)
	var workers sync.WaitGroup
	for range cfg.Conns {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for j := range jobs {
				outcomes <- doRequest(runCtx, client, base, cfg, j)
			}
		}()
	}
	var okLat, allLat []time.Duration
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for o := range outcomes {
			if o.late {
				res.Late++
			}
			if o.errKey != "" {
				res.Errors[o.errKey]++
				continue
			}
			res.Completed++
			res.Status[o.status]++
			allLat = append(allLat, o.lat)
			if o.status >= 200 && o.status < 300 {
				okLat = append(okLat, o.lat)
			}
		}
	}()

	// The open-loop scheduler: request i is due at start + i/rate.
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x10ad))
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	start := time.Now()
	end := start.Add(cfg.Duration)
	timer := time.NewTimer(0)
	<-timer.C
schedule:
	for i := 0; ; i++ {
		due := start.Add(time.Duration(i) * interval)
		if !due.Before(end) {
			break
		}
		if d := time.Until(due); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				timer.Stop()
				break schedule
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			break
		}
		res.Scheduled++
		select {
		case jobs <- loadJob{due: due, path: requestMix(rng, &cfg)}:
			res.Sent++
		default:
			res.Dropped++
		}
	}
	close(jobs)
	workers.Wait()
	close(outcomes)
	<-collected
	res.Elapsed = time.Since(start)
	stopSampling()
	samplers.Wait()

	res.OK, res.All = summarise(okLat), summarise(allLat)
	if s := res.Elapsed.Seconds(); s > 0 {
		res.AchievedRate = float64(res.Completed) / s
	}
	if !firstAt.IsZero() && lastAt.After(firstAt) {
		res.ProcEvents = lastEvents - firstEvents
		res.IngestRate = res.ProcEvents / lastAt.Sub(firstAt).Seconds()
	}
	return res, nil
}

func doRequest(ctx context.Context, client *http.Client, base string, cfg LoadConfig, j loadJob) loadOutcome {
	started := time.Now()
	o := loadOutcome{late: started.Sub(j.due) > cfg.LateAfter}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+j.path, nil)
	if err != nil {
		o.errKey = "other"
		return o
	}
	if cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+cfg.Token)
	}
	resp, err := client.Do(req)
	if err != nil {
		o.errKey = errKind(err)
		return o
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		o.errKey = errKind(err)
		return o
	}
	o.status = resp.StatusCode
	o.lat = time.Since(j.due)
	return o
}

// scrapeSum fetches a Prometheus text exposition and returns the sum of every
// sample of the metric name (all label sets).
func scrapeSum(ctx context.Context, c *http.Client, u, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: status %d", u, resp.StatusCode)
	}
	return sumMetric(resp.Body, name)
}

// sumMetric sums the samples of name in a Prometheus text exposition.
func sumMetric(r io.Reader, name string) (float64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	var sum float64
	found := false
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		if rest[0] == '{' {
			i := strings.LastIndexByte(rest, '}')
			if i < 0 {
				continue
			}
			rest = rest[i+1:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return 0, fmt.Errorf("metric %s: %w", name, err)
		}
		sum += v
		found = true
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	if !found {
		return 0, fmt.Errorf("metric %s not exported", name)
	}
	return sum, nil
}

// procRSS returns VmRSS of pid in bytes.
func procRSS(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return 0, fmt.Errorf("VmRSS of %d: %w", pid, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// groupLag sums the lag of every consumer group starting with prefix.
func groupLag(ctx context.Context, adm *kadm.Client, prefix string) (int64, []string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		return 0, nil, fmt.Errorf("listing groups: %w", err)
	}
	var groups []string
	for _, g := range listed.Groups() {
		if strings.HasPrefix(g, prefix) {
			groups = append(groups, g)
		}
	}
	if len(groups) == 0 {
		return 0, nil, errors.New("no consumer groups")
	}
	lags, err := adm.Lag(ctx, groups...)
	if err != nil {
		return 0, nil, fmt.Errorf("lag: %w", err)
	}
	var total int64
	for _, l := range lags {
		if l.Error() != nil {
			return 0, nil, fmt.Errorf("lag of %s: %w", l.Group, l.Error())
		}
		total += l.Lag.Total()
	}
	return total, groups, nil
}

// WriteLoadReport prints r as text.
func WriteLoadReport(w io.Writer, r LoadResult) {
	c := r.Config
	fmt.Fprintf(w, "load: %s, open loop at %.0f req/s for %v over at most %d connections (backlog %d, timeout %v)\n",
		c.URL, c.Rate, c.Duration, c.Conns, c.Backlog, c.Timeout)
	fmt.Fprintf(w, "mix: k=%d, user ids from %d simulator users, category %.0f%%, min_viewers %.0f%%, for_you %.0f%%\n",
		c.K, c.Users, 100*max(c.CategoryShare, 0), 100*max(c.MinViewersShare, 0), 100*max(c.ForYouShare, 0))
	fmt.Fprintf(w, "requests: scheduled %d, sent %d, dropped %d (backlog full), late %d (>%v after schedule), completed %d in %.1fs = %.1f req/s\n",
		r.Scheduled, r.Sent, r.Dropped, r.Late, c.LateAfter, r.Completed, r.Elapsed.Seconds(), r.AchievedRate)
	codes := make([]int, 0, len(r.Status))
	for k := range r.Status {
		codes = append(codes, k)
	}
	slices.Sort(codes)
	var sb strings.Builder
	for _, k := range codes {
		fmt.Fprintf(&sb, " %d:%d", k, r.Status[k])
	}
	kinds := make([]string, 0, len(r.Errors))
	for k := range r.Errors {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	var eb strings.Builder
	for _, k := range kinds {
		fmt.Fprintf(&eb, " %s:%d", k, r.Errors[k])
	}
	if eb.Len() == 0 {
		eb.WriteString(" none")
	}
	fmt.Fprintf(w, "status:%s   errors:%s\n", sb.String(), eb.String())
	for _, l := range []struct {
		name string
		l    Latencies
	}{{"2xx", r.OK}, {"all", r.All}} {
		fmt.Fprintf(w, "latency %-3s (n=%d, from scheduled time): p50 %v  p90 %v  p99 %v  p99.9 %v  max %v\n",
			l.name, l.l.N, ms(l.l.P50), ms(l.l.P90), ms(l.l.P99), ms(l.l.P999), ms(l.l.Max))
	}
	mib := func(v float64) string { return fmt.Sprintf("%.0f MiB", v/(1<<20)) }
	if r.RSSMetrics.N > 0 {
		fmt.Fprintf(w, "server RSS (process_resident_memory_bytes, %d samples): min %s  max %s  last %s\n",
			r.RSSMetrics.N, mib(r.RSSMetrics.Min), mib(r.RSSMetrics.Max), mib(r.RSSMetrics.Last))
	}
	if r.RSSProc.N > 0 {
		fmt.Fprintf(w, "pid %d VmRSS (%d samples): min %s  max %s  last %s\n",
			c.ServerPID, r.RSSProc.N, mib(r.RSSProc.Min), mib(r.RSSProc.Max), mib(r.RSSProc.Last))
	}
	if r.EventsRate.N > 0 {
		fmt.Fprintf(w, "processors: livefeed_processor_events_total +%.0f = %.0f events/s (per second: min %.0f  max %.0f)\n",
			r.ProcEvents, r.IngestRate, r.EventsRate.Min, r.EventsRate.Max)
	}
	if r.Lag.N > 0 {
		fmt.Fprintf(w, "consumer lag of %d groups (%d samples): min %.0f  max %.0f  last %.0f records\n",
			len(r.LagGroups), r.Lag.N, r.Lag.Min, r.Lag.Max, r.Lag.Last)
	}
	if r.SampleErrors > 0 {
		fmt.Fprintf(w, "sampling errors: %d\n", r.SampleErrors)
	}
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}
