package main

import (
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livefeed/livefeed/processors/pipeline"
)

// A bad LIVEFEED_* value stops every command with an error naming the
// variable, the value and what it expects; before, envInt and friends fell
// back to the default without a word and booleans took only "true".
func TestEnvBadValues(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // nothing may get as far as connecting
	quietStderr(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		cmd      []string
		variable string
		value    string
		want     string
	}{
		{[]string{"process"}, "LIVEFEED_PARTITIONS", "eight", "an integer"},
		{[]string{"serve"}, "LIVEFEED_TASTE_HALF_LIFE", "24", "a duration with a unit"},
		{[]string{"process"}, "LIVEFEED_REPLICATION", "3.0", "an integer"},
		{[]string{"process"}, "LIVEFEED_NO_EMBEDDING_WORKER", "yes", "a boolean"},
		{[]string{"process"}, "LIVEFEED_SESSION_TIMEOUT", "10", "a duration with a unit"},
		{[]string{"process"}, "LIVEFEED_HEARTBEAT_INTERVAL", "1 s", "a duration with a unit"},
		{[]string{"process"}, "LIVEFEED_STATE_FLUSH_INTERVAL", "100", "a duration with a unit"},
		{[]string{"process"}, "LIVEFEED_FUTURE_SKEW", "1hour", "a duration with a unit"},
		{[]string{"process"}, "LIVEFEED_MISROUTED", "drop", "reroute or dead-letter"},
		{[]string{"process"}, "LIVEFEED_EMBED_BATCH", "1e3", "an integer"},
		{[]string{"process"}, "LIVEFEED_EMBED_DELAY", "20", "a duration with a unit"},
		{[]string{"process"}, "LIVEFEED_SELLER_BUYER_WEIGHT", "30%", "a number"},
		{[]string{"process"}, "LIVEFEED_AUDIENCE_WEIGHT", "", "a number"},
		{[]string{"process"}, "LIVEFEED_SELLER_CONTENT_HALF_LIFE", "7d", "a duration with a unit"},
		{[]string{"process"}, "LIVEFEED_PPROF", "on", "a boolean"},
		{[]string{"process"}, "LIVEFEED_KAFKA_TLS", "enabled", "a boolean"},
		{[]string{"process"}, "LIVEFEED_KAFKA_TLS_INSECURE_SKIP_VERIFY", "sure", "a boolean"},
		{[]string{"process"}, "LIVEFEED_LOG_LEVEL", "loud", "want debug, info, warn or error"},
		{[]string{"process"}, "LIVEFEED_TASTE_WEIGHTS", "buy=lots", "LIVEFEED_TASTE_WEIGHTS"},
		{[]string{"serve"}, "LIVEFEED_SNAPSHOT_EVERY", "600", "a duration with a unit"},
		{[]string{"serve"}, "LIVEFEED_STALE_AFTER", "5", "a duration with a unit"},
		{[]string{"serve"}, "LIVEFEED_MAX_STALENESS", "forever", "a duration with a unit"},
		{[]string{"serve"}, "LIVEFEED_INDEX_QUANTIZE", "int8", "a boolean"},
		{[]string{"embed"}, "LIVEFEED_NO_EMBEDDINGS", "no", "a boolean"},
		{[]string{"simulate"}, "LIVEFEED_RATE", "fast", "a number"},
		{[]string{"simulate"}, "LIVEFEED_SEED", "0x", "an integer"},
		{[]string{"simulate"}, "LIVEFEED_LIMIT", "10k", "an integer"},
		{[]string{"simulate"}, "LIVEFEED_BAD_FRACTION", "0,1", "a number"},
		{[]string{"topics", "create"}, "LIVEFEED_PARTITIONS", "8 ", "an integer"},
		{[]string{"demo"}, "LIVEFEED_PARTITIONS", "-", "an integer"},
		{[]string{"features", "compute"}, "LIVEFEED_TASTE_HALF_LIFE", "1 day", "a duration with a unit"},
		{[]string{"bench", "pipeline"}, "LIVEFEED_QUICK", "yes please", "a boolean"},
	} {
		t.Run(strings.Join(tc.cmd, "-")+"/"+tc.variable, func(t *testing.T) {
			t.Setenv(tc.variable, tc.value)
			args := append(append([]string(nil), tc.cmd[1:]...), "--brokers", "127.0.0.1:1", "--data", dir, "--model", "test")
			if tc.cmd[0] == "demo" || tc.cmd[0] == "bench" || tc.cmd[0] == "features" {
				args = append(append([]string(nil), tc.cmd[1:]...), "--data", dir)
			}
			err := run(ctx, tc.cmd[0], args)
			if err == nil {
				t.Fatalf("livefeed %s with %s=%q: no error", strings.Join(tc.cmd, " "), tc.variable, tc.value)
			}
			for _, want := range []string{tc.variable, tc.want} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("livefeed %s with %s=%q: error %q does not say %q", strings.Join(tc.cmd, " "), tc.variable, tc.value, err, want)
				}
			}
			if tc.want != "LIVEFEED_TASTE_WEIGHTS" && !strings.Contains(err.Error(), `"`+tc.value+`"`) {
				t.Errorf("error %q does not quote the value %q", err, tc.value)
			}
		})
	}
}

// Every typed flag of the shared flag sets rejects a bad environment value,
// so a flag added later cannot bring back a silent default.
func TestEnvEveryTypedFlag(t *testing.T) {
	f := newFlags("all", true, true)
	f.servingFlags()
	bad := map[string]string{"bool": "maybe", "int": "many", "uint": "-1", "float": "much", "duration": "24",
		"value": "sideways"} // value: a flag.TextVar (--misrouted)
	seen := map[string]int{}
	f.fs.VisitAll(func(fl *flag.Flag) {
		typ, _ := flag.UnquoteUsage(fl) // the type -h shows: int, float, duration, string, ...
		if b, ok := fl.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			typ = "bool"
		}
		v, ok := bad[typ]
		if !ok {
			if typ != "string" {
				t.Errorf("flag --%s: no bad value for type %q", fl.Name, typ)
			}
			return
		}
		seen[typ]++
		t.Run(fl.Name, func(t *testing.T) {
			name := envName(fl.Name)
			t.Setenv(name, v)
			g := newFlags("all", true, true)
			g.servingFlags()
			err := g.parse(nil, false)
			if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), `"`+v+`"`) {
				t.Errorf("%s=%q: %v", name, v, err)
			}
		})
	})
	if seen["bool"] < 5 || seen["int"] < 4 || seen["float"] < 4 || seen["duration"] < 10 {
		t.Fatalf("typed flags checked: %v", seen)
	}
}

// Good values from the environment: booleans as strconv.ParseBool takes
// them, and the command line wins over the environment.
func TestEnvGoodValues(t *testing.T) {
	falses := []string{"0", "f", "F", "false", "FALSE", "False"}
	for i, v := range []string{"1", "t", "T", "true", "TRUE", "True"} {
		t.Setenv("LIVEFEED_NO_EMBEDDINGS", v)
		t.Setenv("LIVEFEED_KAFKA_TLS_INSECURE_SKIP_VERIFY", falses[i])
		f := newFlags("process", false, false)
		if err := f.parse([]string{"--brokers", "b"}, true); err != nil {
			t.Fatal(err)
		}
		if !f.cfg.NoEmbeddings || f.cfg.Kafka.InsecureSkipVerify {
			t.Errorf("LIVEFEED_NO_EMBEDDINGS=%s → %v, LIVEFEED_KAFKA_TLS_INSECURE_SKIP_VERIFY=%s → %v",
				v, f.cfg.NoEmbeddings, falses[i], f.cfg.Kafka.InsecureSkipVerify)
		}
	}
	t.Setenv("LIVEFEED_NO_EMBEDDINGS", "0")
	t.Setenv("LIVEFEED_PARTITIONS", "12")
	t.Setenv("LIVEFEED_TASTE_HALF_LIFE", "36h")
	t.Setenv("LIVEFEED_SEED", "0x10")
	t.Setenv("LIVEFEED_MISROUTED", "dead-letter")
	f := newFlags("simulate", false, true)
	if err := f.parse([]string{"--brokers", "b", "--partitions", "4"}, true); err != nil {
		t.Fatal(err)
	}
	if f.cfg.NoEmbeddings || f.cfg.Partitions != 4 || f.cfg.TasteHalfLife != 36*time.Hour || f.cfg.SimSeed != 16 ||
		f.cfg.Misrouted != pipeline.DeadLetterMisrouted {
		t.Errorf("from the environment: no-embeddings %v, partitions %d (flag 4 wins), taste half-life %v, seed %d, misrouted %v",
			f.cfg.NoEmbeddings, f.cfg.Partitions, f.cfg.TasteHalfLife, f.cfg.SimSeed, f.cfg.Misrouted)
	}
	if f := newFlags("process", false, false); f.parse([]string{"--brokers", "b"}, true) != nil || f.cfg.Misrouted != pipeline.DeadLetterMisrouted {
		t.Errorf("LIVEFEED_MISROUTED=dead-letter → %v", f.cfg.Misrouted)
	}
	t.Setenv("LIVEFEED_MISROUTED", "")
	os.Unsetenv("LIVEFEED_MISROUTED")
	if f := newFlags("process", false, false); f.parse([]string{"--brokers", "b"}, true) != nil || f.cfg.Misrouted != pipeline.Reroute {
		t.Errorf("misrouted by default: %v, want reroute", f.cfg.Misrouted)
	}
}

// A bad flag value says what the flag expects.
func TestFlagBadValueSaysWhatItExpects(t *testing.T) {
	for _, tc := range []struct{ args []string }{
		{[]string{"--partitions", "eight"}},
		{[]string{"--taste-half-life=24"}},
		{[]string{"--no-embeddings=yes"}},
		{[]string{"--misrouted=drop"}},
	} {
		f := newFlags("process", false, false)
		f.fs.SetOutput(io.Discard)
		err := f.parse(append(tc.args, "--brokers", "b"), true)
		if err == nil || !strings.Contains(err.Error(), "; want ") {
			t.Errorf("%v: %v", tc.args, err)
		}
	}
}

// process, serve, embed and features compute refuse to start without a
// named model; --model test, LIVEFEED_MODEL and --no-embeddings satisfy
// them, and demo defaults to the test model.
func TestModelMustBeNamed(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // past the model check, app.New fails on the canceled context
	quietStderr(t)
	dir := t.TempDir()
	events := filepath.Join(dir, "events.jsonl")
	if err := os.WriteFile(events, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{{"process"}, {"serve"}, {"embed"}, {"features", "compute", "--events", events}} {
		base := append(append([]string(nil), cmd[1:]...), "--brokers", "127.0.0.1:1", "--data", dir)
		err := run(ctx, cmd[0], base)
		if err == nil || !strings.Contains(err.Error(), "needs an embedding model") || !strings.Contains(err.Error(), "--model test") {
			t.Errorf("livefeed %s without --model: %v", cmd[0], err)
		}
		for _, extra := range [][]string{{"--model", "test"}, {"--model=/nonexistent/model"}, {"--no-embeddings"}} {
			err := run(ctx, cmd[0], append(append([]string(nil), base...), extra...))
			if err != nil && strings.Contains(err.Error(), "needs an embedding model") {
				t.Errorf("livefeed %s %v: %v", cmd[0], extra, err)
			}
		}
		t.Setenv("LIVEFEED_MODEL", "test")
		if err := run(ctx, cmd[0], base); err != nil && strings.Contains(err.Error(), "needs an embedding model") {
			t.Errorf("livefeed %s with LIVEFEED_MODEL=test: %v", cmd[0], err)
		}
		os.Unsetenv("LIVEFEED_MODEL")
	}
	f := newFlags("demo", true, true)
	if err := f.parse(nil, false); err != nil || f.cfg.ModelDir != "test" {
		t.Errorf("demo's model %q, want test (%v)", f.cfg.ModelDir, err)
	}
}

func TestVersionCommand(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	err = run(context.Background(), "version", nil)
	os.Stdout = stdout
	w.Close()
	out, _ := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"version ", "revision ", "time ", "go        go1."} {
		if !strings.Contains(string(out), want) {
			t.Errorf("livefeed version lacks %q:\n%s", want, out)
		}
	}
	if err := run(context.Background(), "version", []string{"extra"}); err == nil {
		t.Error("livefeed version extra: no error")
	}
}

// quietStderr sends the commands' logs, flag usage and output to /dev/null
// for the test.
func quietStderr(t *testing.T) {
	t.Helper()
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	stderr, stdout := os.Stderr, os.Stdout
	os.Stderr, os.Stdout = devnull, devnull
	t.Cleanup(func() { os.Stderr, os.Stdout = stderr, stdout; devnull.Close() })
}
