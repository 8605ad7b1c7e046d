package broker

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func writeOffset(t *testing.T, dir string, off int64) {
	t.Helper()
	db, err := leveldb.OpenFile(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Put([]byte(gokaOffsetKey), []byte(strconv.FormatInt(off, 10)), nil); err != nil {
		t.Fatal(err)
	}
	db.Close()
}

func TestGuardStateRemovesStateAheadOfLog(t *testing.T) {
	e := startEmbedded(t)
	ctx := context.Background()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := EnsureTopics(ctx, cl, 1, []TopicSpec{{Name: "g-table", Partitions: 2, Compacted: true}}); err != nil {
		t.Fatal(err)
	}
	// Three records on partition 0 (offsets 0..2), none on partition 1.
	for range 3 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "g-table", Partition: 0, Key: []byte("k"), Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// The default partitioner decides where they went; find it.
	ends, err := adm.ListEndOffsets(ctx, "g-table")
	if err != nil {
		t.Fatal(err)
	}
	var full, empty int32 = 0, 1
	if o, _ := ends.Lookup("g-table", 1); o.Offset == 3 {
		full, empty = 1, 0
	}

	cfg := &Config{Brokers: e.Addrs(), StateDir: t.TempDir()}
	cfg.Defaults()
	pdir := cfg.ProcessorStateDir()
	okDir := filepath.Join(pdir, "g-table."+strconv.Itoa(int(full)))
	staleDir := filepath.Join(pdir, "g-table."+strconv.Itoa(int(empty)))
	writeOffset(t, okDir, 2)    // last applied offset 2 < end 3: consistent
	writeOffset(t, staleDir, 5) // the log is empty: stale
	removed, err := GuardState(ctx, cfg, adm, "", []string{"g-table"})
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != staleDir {
		t.Fatalf("removed %v, want [%s]", removed, staleDir)
	}
	if _, err := os.Stat(okDir); err != nil {
		t.Fatalf("consistent state was removed: %v", err)
	}

	// State of unknown origin (no log id recorded) or of another log goes whole.
	if _, err := GuardState(ctx, cfg, adm, "log-a", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(pdir); !os.IsNotExist(err) {
		t.Fatal("state without a recorded log id must be removed")
	}
	writeOffset(t, okDir, 2)
	if _, err := GuardState(ctx, cfg, adm, "log-a", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(okDir); err != nil {
		t.Fatal("state of the same log must be kept")
	}
	if _, err := GuardState(ctx, cfg, adm, "log-b", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(pdir); !os.IsNotExist(err) {
		t.Fatalf("state of another log must be removed, stat: %v", err)
	}
}
