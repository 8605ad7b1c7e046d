package bench

import (
	"context"
	"testing"

	"github.com/livefeed/livefeed/app"
	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/tables"
)

// The generated table values are what the livestream processor writes:
// they decode, carry feature state and the embedding, and the live share
// follows LiveFraction.
func TestRecoveryStateGen(t *testing.T) {
	all, err := app.LoadFeatures("")
	if err != nil {
		t.Fatal(err)
	}
	cfg := RecoveryConfig{Keys: 200, Dim: 16, LiveFraction: 0.5}
	cfg.defaults()
	g := newStateGen(cfg, all.ForEntity("livestream"))
	live := 0
	for i := range cfg.Keys {
		key, val, err := g.next(context.Background(), i)
		if err != nil {
			t.Fatal(err)
		}
		st, err := tables.DecodeLivestream(val)
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		if st.LivestreamID != key || len(st.Embedding) != 16 || st.Events < 4 || len(st.Viewers) == 0 && st.Status == events.StatusLive {
			t.Fatalf("%s: unexpected state %+v", key, st)
		}
		if st.Features.Empty() {
			t.Fatalf("%s: no feature state", key)
		}
		if st.Status == events.StatusLive {
			live++
		}
	}
	if live < 60 || live > 140 {
		t.Errorf("%d of %d live, want about half", live, cfg.Keys)
	}
}

func TestProcStatusMiB(t *testing.T) {
	rss := procStatusMiB("VmRSS") // first: RSS may grow between the reads
	if hwm := procStatusMiB("VmHWM"); hwm <= 0 || rss <= 0 || rss > hwm {
		t.Errorf("VmHWM %.1f MiB, VmRSS %.1f MiB", hwm, rss)
	}
	if procStatusMiB("NoSuchField") != 0 {
		t.Error("a missing field reads as non-zero")
	}
}
