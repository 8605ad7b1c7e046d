package app

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/livefeed/livefeed/offline"
)

// `livefeed simulate --out` writes a log that `livefeed features compute`
// reads back; a line that is not a record is reported with its number.
func TestEventLogRoundTrip(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	log := filepath.Join(dir, "events.jsonl")
	cfg := Config{DataDir: dir, SimLimit: 2000, SimRate: 200, SimSeed: 3, SimBadFraction: 0.01, NoEmbeddings: true}
	if err := WriteLog(ctx, cfg, log); err != nil {
		t.Fatal(err)
	}
	topo, release, err := OfflineTopology(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	f, err := os.Open(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	en := offline.New(topo)
	n, err := en.ReadLog(ctx, f)
	if err != nil || n != 2000 {
		t.Fatalf("read %d records: %v", n, err)
	}
	bad := 0
	for _, c := range en.Rejected {
		bad += c
	}
	if bad == 0 || len(en.Streams()) == 0 || len(en.Users()) == 0 {
		t.Fatalf("rejected %v, %d streams, %d users", en.Rejected, len(en.Streams()), len(en.Users()))
	}
	_, err = offline.New(topo).ReadLog(ctx, strings.NewReader("{\"topic\":\"chat\",\"key\":\"k\",\"value\":{}}\nnot json\n"))
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("bad line: %v", err)
	}
}
