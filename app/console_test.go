package app

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/livefeed/livefeed/api"
	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/serving"
	"github.com/livefeed/livefeed/serving/drift"
)

// chromium finds a Chromium or Chrome binary: $LIVEFEED_CHROMIUM, else the
// usual names on PATH.
func chromium() string {
	if p := os.Getenv("LIVEFEED_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// browserConsole collects what the page writes to its console.
type browserConsole struct {
	mu   sync.Mutex
	msgs []chromedp.ConsoleMessage
}

// problems are the console errors and warnings, uncaught exceptions and
// unhandled rejections, except the browser's own network log lines for the
// 401 that makes the page ask for the token and for a 503 (the server's
// time limit, which the page shows and the test retries).
func (c *browserConsole) problems() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, m := range c.msgs {
		switch {
		case m.Type != chromedp.ConsoleError && m.Type != chromedp.ConsoleWarning && !m.IsException():
		case m.Source == "network" && (strings.Contains(m.Text, "status of 401") || strings.Contains(m.Text, "status of 503")):
		default:
			out = append(out, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line+1))
		}
	}
	return out
}

// The web console in headless Chromium against the demo pipeline (embedded
// kfake broker, simulated traffic, the generated test model, an API token):
// the page asks for the token, the stream board updates when a new stream's
// viewers arrive, a user's recommendation renders with its explain, a text
// search finds the stream, and the health and features pages show data;
// no page writes an error to the console. A screenshot of each page goes to
// $LIVEFEED_SCREENSHOT_DIR (default: the test's temporary directory).
func TestConsoleInBrowser(t *testing.T) {
	bin := chromium()
	if bin == "" {
		t.Skip("no Chromium binary (chromium, chromium-browser, google-chrome on PATH, or $LIVEFEED_CHROMIUM): " +
			"the console's browser test needs one (Debian: apt-get install chromium)")
	}
	shots := os.Getenv("LIVEFEED_SCREENSHOT_DIR")
	if shots == "" {
		shots = t.TempDir()
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}

	emb := loadTestModel(t, 1)
	r, _ := startStack(t, Config{Brokers: testBrokers(), DataDir: t.TempDir(), Embedder: emb, APIToken: testToken,
		SimRate: 40, TopicPrefix: fmt.Sprintf("t%d-", time.Now().UnixNano()),
		// Feature monitoring fast enough to have a reference (its first
		// 4 s window) and a drift score while the test runs.
		Drift: drift.Options{Interval: 500 * time.Millisecond, Window: 4 * time.Second, MinCount: 5}})
	r.client = r.newProducer(t)
	t.Cleanup(r.client.Close)
	// The demo's simulated marketplace, running until the test ends.
	simCtx, stopSim := context.WithCancel(context.Background())
	simDone := make(chan struct{})
	go func() {
		defer close(simDone)
		_, _ = r.app.Simulate(simCtx)
	}()
	t.Cleanup(func() { stopSim(); <-simDone })

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1440, 960))
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	ctx, cancel := context.WithTimeout(bctx, 5*time.Minute)
	defer cancel()

	// Start the browser, then read its console until the test ends.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1440, 960)); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	console := &browserConsole{}
	msgs := chromedp.Console(ctx)
	consoleDone := make(chan struct{})
	go func() {
		defer close(consoleDone)
		for m, err := range msgs {
			if err != nil {
				return
			}
			console.mu.Lock()
			console.msgs = append(console.msgs, m)
			console.mu.Unlock()
		}
	}()
	defer func() { cancelBrowser(); <-consoleDone }()

	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			if png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot()); err == nil {
				_ = os.WriteFile(filepath.Join(shots, "console-failed.png"), png, 0o644)
			}
			t.Fatalf("%s: %v; console: %q", what, err, console.problems())
		}
	}
	// waitJS waits until a JavaScript expression is truthy.
	waitJS := func(what, expr string, timeout time.Duration) {
		t.Helper()
		do(what, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(100*time.Millisecond)))
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q).textContent`, sel)))
		if err != nil {
			t.Fatalf("reading %s: %v", sel, err)
		}
		return s
	}
	shot := func(page string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatalf("screenshot of %s: %v", page, err)
		}
		path := filepath.Join(shots, "console-"+page+".png")
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot %s (%d KiB)", path, len(png)>>10)
	}
	checkConsole := func(page string) {
		t.Helper()
		if p := console.problems(); len(p) > 0 {
			t.Fatalf("%s page: console errors: %q", page, p)
		}
	}

	// The page asks for the token on the first 401 and keeps it.
	do("opening the console", chromedp.Navigate(r.url+"/#streams"))
	do("the token dialog", chromedp.WaitVisible(chromedp.CSS("#token-input")))
	do("entering the token", chromedp.SendKeys(chromedp.CSS("#token-input"), testToken), chromedp.Click(chromedp.CSS("#token-save")))
	waitJS("the stream board", `document.body.dataset.ready === 'true' && document.querySelectorAll('#st-table tbody tr').length > 0`, 90*time.Second)
	if tok, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`sessionStorage.getItem('livefeed.token')`)); tok != testToken {
		t.Fatalf("session token %q", tok)
	}

	// Live streams: rank by viewers; a new stream with many viewers comes
	// in while the page polls and must appear, first.
	do("ranking by viewers", chromedp.SetValue(chromedp.CSS("#st-rank"), "viewers_now"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#st-rank').dispatchEvent(new Event('change'))`))
	const probe, probeTitle = "ls-console-probe", "vintage jordan sneakers console probe"
	resetBase()
	n := 0
	r.produce(t, events.TopicLivestreams, probe, events.Livestream{Header: hdr(&n, probe, 0), SellerID: "s-console",
		Title: probeTitle, Category: "sneakers", Tags: []string{"jordan", "sneakers"}, Language: "en", Status: events.StatusLive})
	for i := range 400 {
		r.produce(t, events.TopicViewing, probe, events.Viewing{Header: hdr(&n, probe, time.Second), Type: events.ViewingJoin, UserID: fmt.Sprintf("u-probe-viewer-%d", i)})
	}
	waitJS("the new stream on the board, first", `(() => { const tr = document.querySelector('#st-table tbody tr'); return tr && tr.dataset.id === `+fmt.Sprintf("%q", probe)+`; })()`, 90*time.Second)
	do("selecting it", chromedp.Click(chromedp.CSS(`#st-table tbody tr[data-id="`+probe+`"]`)))
	waitJS("its features", `document.querySelectorAll('#st-detail .featrows svg').length > 5`, 10*time.Second)
	// Two more polls so the sparklines have history.
	time.Sleep(3500 * time.Millisecond)
	if got := text("#st-detail h2"); got != probeTitle {
		t.Fatalf("detail panel shows %q", got)
	}
	checkConsole("streams")
	shot("streams")

	// A user who chatted in the probe stream after it had a vector has a
	// taste: the recommendation runs the taste search, with explain.
	const user = "u-console-probe"
	r.waitFor(t, "the probe stream embedded", func() bool {
		var lf serving.LivestreamFeatures
		return r.authGet(t, "/v1/features/livestream/"+probe, testToken, &lf) == 200 && lf.EmbeddingModel != ""
	})
	for i := range 3 {
		r.produce(t, events.TopicChat, probe, events.Chat{Header: hdr(&n, probe, time.Duration(2+i)*time.Second), UserID: user, Text: "love these"})
	}
	r.waitFor(t, "the user's taste", func() bool {
		var uf serving.UserFeatures
		return r.authGet(t, "/v1/features/user/"+user, testToken, &uf) == 200 && uf.HasTaste
	})
	do("the recommendations page", chromedp.Navigate(r.url+"/#recs"))
	waitJS("named queries listed", `document.querySelectorAll('#rc-query option').length > 1`, 20*time.Second)
	do("asking for the user", chromedp.SetValue(chromedp.CSS("#rc-user"), user), chromedp.Click(chromedp.CSS(`#rc-form button[type=submit]`)))
	waitJS("the answer with explain", `document.querySelectorAll('#rc-table tbody tr td.rank').length > 0 && document.querySelectorAll('#rc-explain .bars').length > 0 && document.querySelector('#rc-user-card .pill') !== null`, 30*time.Second)
	if meta := text("#rc-meta"); !strings.HasPrefix(meta, "taste") {
		t.Fatalf("recommendation strategy: %q", meta)
	}
	if ex := text("#rc-explain"); !strings.Contains(ex, "Partitions (4)") || !strings.Contains(ex, "plan") {
		t.Fatalf("explain: %q", ex)
	}
	if u := text("#rc-user-card"); !strings.Contains(u, "has taste") || !strings.Contains(u, "sneakers") {
		t.Fatalf("user card: %q", u)
	}
	checkConsole("recommendations")
	shot("recommendations")

	// A named query: its parameters become inputs; the answer says which
	// query ran and how it ranked.
	do("choosing for_you", chromedp.SetValue(chromedp.CSS("#rc-query"), "for_you"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#rc-query').dispatchEvent(new Event('change'))`))
	do("its parameters", chromedp.WaitVisible(chromedp.CSS(`#rc-params input[data-param="decay_minutes"]`)),
		chromedp.SendKeys(chromedp.CSS(`#rc-params input[data-param="category"]`), "sneakers,trading-cards"),
		chromedp.Click(chromedp.CSS(`#rc-form button[type=submit]`)))
	waitJS("the named query's answer", `document.querySelector('#rc-meta').textContent.includes('for_you')`, 30*time.Second)
	if ex := text("#rc-explain"); !strings.Contains(ex, "max per seller") || !strings.Contains(ex, "sneakers") {
		t.Fatalf("for_you explain: %q", ex)
	}
	checkConsole("named query")

	// Text search finds the probe stream by its title.
	do("the search page", chromedp.Navigate(r.url+"/#search"))
	do("searching", chromedp.SendKeys(chromedp.CSS("#sr-text"), "vintage jordan sneakers"), chromedp.Click(chromedp.CSS(`#sr-form button[type=submit]`)))
	// A 503 (the request's time limit passed while the pure-Go model embedded
	// the text on a busy machine) is what a user would retry: so does the test.
	waitJS("search results", `(() => {
		const e = document.querySelector('#sr-error');
		if (!e.hidden && e.textContent.startsWith('503')) document.querySelector('#sr-form button[type=submit]').click();
		return document.querySelectorAll('#sr-results .result').length > 0;
	})()`, 90*time.Second)
	if res := text("#sr-results"); !strings.Contains(res, probeTitle) {
		t.Fatalf("search results lack the probe stream: %q", res)
	}
	checkConsole("search")
	shot("search")

	// Health: the processors' events per second need two scrapes.
	do("the health page", chromedp.Navigate(r.url+"/#health"))
	waitJS("events per group", `document.querySelectorAll('#hl-groups tbody tr').length >= 2 && document.querySelectorAll('#hl-tiles .tile').length === 5 && document.querySelectorAll('#hl-stale .featrows .n').length > 0`, 30*time.Second)
	if g := text("#hl-groups"); !strings.Contains(g, "livestream") || !strings.Contains(g, "user") {
		t.Fatalf("groups: %q", g)
	}
	waitJS("the processor groups' lag", `document.querySelector('#hl-lag').textContent.includes('group ')`, 20*time.Second)
	time.Sleep(2500 * time.Millisecond) // sparklines with a few points
	checkConsole("health")
	shot("health")

	// Features: every livestream feature with a distribution over the live
	// streams; the probe's 400 viewers are in joins_5m's histogram.
	do("the features page", chromedp.Navigate(r.url+"/#features"))
	waitJS("feature cards", `document.querySelectorAll('.feature').length >= 20 && document.querySelectorAll('.feature[data-feature="joins_5m"] rect.bar').length > 0`, 30*time.Second)
	if f := text(`.feature[data-feature="joins_5m"]`); !strings.Contains(f, "viewing") || !strings.Contains(f, "sliding 5m") {
		t.Fatalf("joins_5m card: %q", f)
	}
	// Each card's drift from its reference; one opened beside it.
	waitJS("drift scores", `[...document.querySelectorAll('.feature .drift')].filter((d) => d.dataset.level !== 'unknown').length >= 10`, 40*time.Second)
	do("the joins_5m distribution against its reference",
		chromedp.Evaluate[chromedp.Void](`document.querySelector('.feature[data-feature="joins_5m"] button.cmp').click()`))
	waitJS("the two distributions", `document.querySelectorAll('.feature[data-feature="joins_5m"] svg.cmp rect.cur').length > 0 && document.querySelectorAll('.feature[data-feature="joins_5m"] svg.cmp rect.ref').length > 0`, 15*time.Second)
	if f := text(`.feature[data-feature="joins_5m"] .drift`); !strings.Contains(f, "PSI") || !strings.Contains(f, "reference") {
		t.Fatalf("joins_5m drift: %q", f)
	}
	checkConsole("features")
	shot("features")
	// The route behind the page: every entity's table read, users and
	// sellers included.
	var cat api.FeatureCatalog
	if code := r.authGet(t, "/v1/features", testToken, &cat); code != 200 {
		t.Fatalf("GET /v1/features: %d", code)
	}
	for _, e := range cat.Entities {
		if e.Error != "" || e.Count == 0 || len(e.Features) == 0 {
			t.Errorf("catalogue of %s: %d read, %d features, error %q", e.Entity, e.Count, len(e.Features), e.Error)
		}
	}
	if len(cat.Entities) < 3 {
		t.Errorf("catalogue has %d entities, want livestream, seller and user", len(cat.Entities))
	}
}
