package pipeline

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/lovoo/goka/storage"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/syndtr/goleveldb/leveldb"
)

// openCheckpointed opens a goleveldb table partition under dir, wrapped as
// the State wraps it, as a recovered store.
func openCheckpointed(t *testing.T, dir string, interval time.Duration, maxBytes int64, g prometheus.Gauge) (*tableStorage, *leveldb.DB) {
	t.Helper()
	db, err := leveldb.OpenFile(dir, storageOptions(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	st, err := storage.New(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.MarkRecovered(); err != nil {
		t.Fatal(err)
	}
	ts := newTableStorage(st, db, checkpointOptions{interval: interval, bytes: maxBytes, pending: g})
	ts.release = func() {}
	return ts, db
}

func get(t *testing.T, s storage.Storage, key string) []byte {
	t.Helper()
	v, err := s.Get(key)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Staged values are read before the store and reach it, with the offset
// acknowledged by then, only at a checkpoint; a store reopened after a
// crash before the checkpoint holds the previous checkpoint: values that
// cover its offset, so that recovery from the changelog is exact.
func TestCheckpointStagesUntilDue(t *testing.T) {
	dir := t.TempDir()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "unstored"})
	ts, db := openCheckpointed(t, dir, time.Hour, 1<<20, g)

	if err := ts.stage([]string{"a", "b"}, [][]byte{[]byte("a1"), []byte("b1")}); err != nil {
		t.Fatal(err)
	}
	ts.ackedOffset(7)
	if v := get(t, ts, "a"); string(v) != "a1" {
		t.Fatalf("staged a reads %q", v)
	}
	if v := get(t, ts.Storage, "a"); v != nil {
		t.Fatalf("a reached the store before its checkpoint: %q", v)
	}
	if u := testutil.ToFloat64(g); u != 4 {
		t.Errorf("unstored bytes %v, want 4", u)
	}
	// A copy: the staged buffer is reused by the key's next stage.
	v := get(t, ts, "a")
	v[0] = 'x'
	if err := ts.stage([]string{"a"}, [][]byte{[]byte("a2")}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(v, []byte("x1")) || string(get(t, ts, "a")) != "a2" {
		t.Fatalf("a read %q aliases the staged value, now %q", v, get(t, ts, "a"))
	}

	if err := ts.checkpoint(); err != nil {
		t.Fatal(err)
	}
	if a, b := get(t, ts.Storage, "a"), get(t, ts.Storage, "b"); string(a) != "a2" || string(b) != "b1" {
		t.Fatalf("after the checkpoint the store holds a=%q b=%q", a, b)
	}
	if o, err := ts.Storage.GetOffset(-1); err != nil || o != 7 {
		t.Fatalf("stored offset %d (%v), want 7", o, err)
	}
	if u := testutil.ToFloat64(g); u != 0 {
		t.Errorf("unstored bytes %v after the checkpoint", u)
	}

	// A delete and a new value, acknowledged, then a crash: neither the
	// values nor the offset reach the store.
	if err := ts.stage([]string{"b", "c"}, [][]byte{nil, []byte("c1")}); err != nil {
		t.Fatal(err)
	}
	ts.ackedOffset(9)
	if v := get(t, ts, "b"); v != nil {
		t.Fatalf("deleted b reads %q", v)
	}
	if ok, err := ts.Has("b"); ok || err != nil {
		t.Fatalf("deleted b: Has %v %v", ok, err)
	}
	if err := db.Close(); err != nil { // the crash: no checkpoint
		t.Fatal(err)
	}
	ts, _ = openCheckpointed(t, dir, time.Hour, 1<<20, g)
	if o, err := ts.GetOffset(-1); err != nil || o != 7 {
		t.Fatalf("offset after the crash %d (%v), want the checkpoint's 7", o, err)
	}
	if b := get(t, ts, "b"); string(b) != "b1" {
		t.Fatalf("b after the crash %q, want the checkpoint's b1", b)
	}

	// An iterator sees what is staged (the checkpoint is written first).
	if err := ts.stage([]string{"b", "d"}, [][]byte{nil, []byte("d1")}); err != nil {
		t.Fatal(err)
	}
	it, err := ts.Iterator()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for it.Next() {
		k := string(it.Key())
		if k == "__offset" {
			continue
		}
		v, _ := it.Value()
		seen[k] = string(v)
	}
	it.Release()
	if len(seen) != 2 || seen["a"] != "a2" || seen["d"] != "d1" {
		t.Fatalf("iterator saw %v, want a=a2 d=d1", seen)
	}
	if err := ts.Close(); err != nil {
		t.Fatal(err)
	}
}

// A checkpoint is written early once CheckpointBytes wait for it.
func TestCheckpointWrittenAtItsByteBound(t *testing.T) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "unstored"})
	ts, _ := openCheckpointed(t, t.TempDir(), time.Hour, 10, g)
	defer ts.Close()
	if err := ts.stage([]string{"a"}, [][]byte{[]byte("12345")}); err != nil {
		t.Fatal(err)
	}
	if v := get(t, ts.Storage, "a"); v != nil {
		t.Fatal("written below the byte bound")
	}
	if err := ts.stage([]string{"b"}, [][]byte{[]byte("1234567")}); err != nil {
		t.Fatal(err)
	}
	if a, b := get(t, ts.Storage, "a"), get(t, ts.Storage, "b"); string(a) != "12345" || string(b) != "1234567" {
		t.Fatalf("at the byte bound the store holds a=%q b=%q", a, b)
	}
}

// failingSets is a goleveldb store whose writes fail (a full disk), each
// after a value arrives on proceed when it is not nil.
type failingSets struct {
	storage.Storage
	proceed chan struct{}
}

func (f failingSets) Set(string, []byte) error {
	if f.proceed != nil {
		<-f.proceed
	}
	return errors.New("disk full")
}

// A checkpoint that fails keeps its values readable and counted, and
// fails the next stage; a value staged anew while it was writing replaces
// the failed one, in the store-to-be and in the count.
func TestCheckpointFailureKeepsValues(t *testing.T) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "unstored"})
	real, _ := openCheckpointed(t, t.TempDir(), time.Hour, 1<<20, g)
	proceed := make(chan struct{})
	// Another store than goleveldb: checkpointed at every stage.
	ts := newTableStorage(failingSets{real.Storage, proceed}, nil, checkpointOptions{interval: time.Hour, bytes: 1 << 20, pending: g})
	first := make(chan error)
	go func() { first <- ts.stage([]string{"a"}, [][]byte{[]byte("a1")}) }()
	// While the first checkpoint writes a1, a2 is staged (its own
	// checkpoint waits for the first).
	for {
		ts.mu.Lock()
		writing := ts.checkpointing != nil
		ts.mu.Unlock()
		if writing {
			break
		}
		time.Sleep(time.Millisecond)
	}
	second := make(chan error)
	go func() { second <- ts.stage([]string{"a"}, [][]byte{[]byte("a2")}) }()
	for {
		ts.mu.Lock()
		_, staged := ts.staged["a"]
		ts.mu.Unlock()
		if staged {
			break
		}
		time.Sleep(time.Millisecond)
	}
	proceed <- struct{}{}
	if err := <-first; err == nil {
		t.Fatal("a failed checkpoint was not reported")
	}
	close(proceed)
	if err := <-second; err == nil {
		t.Fatal("the checkpoint after a failed one succeeded")
	}
	if v := get(t, ts, "a"); string(v) != "a2" {
		t.Fatalf("a after the failed checkpoints reads %q, want a2", v)
	}
	if u := testutil.ToFloat64(g); u != 2 {
		t.Errorf("unstored bytes %v after the failures, want 2 (a2 only)", u)
	}
	if err := ts.stage([]string{"b"}, [][]byte{[]byte("b1")}); err == nil {
		t.Fatal("a stage after a failed checkpoint succeeded")
	}
}
