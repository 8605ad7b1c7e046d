package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestFromBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/livefeed/livefeed", Version: "v0.1.1-0.20261207170540-9e76c01a2b3c+dirty"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "9e76c01a2b3c4d5e6f708192a3b4c5d6e7f80912"},
			{Key: "vcs.time", Value: "2026-12-07T17:05:40Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	got := FromBuildInfo(bi)
	want := Info{Version: bi.Main.Version, Revision: "9e76c01a2b3c4d5e6f708192a3b4c5d6e7f80912",
		Time: time.Date(2026, 12, 7, 17, 5, 40, 0, time.UTC), Modified: true, GoVersion: "go1.26.8"}
	if got != want {
		t.Fatalf("FromBuildInfo = %+v, want %+v", got, want)
	}
	s := got.String()
	for _, line := range []string{"version   " + bi.Main.Version, "revision  9e76c01a2b3c4d5e6f708192a3b4c5d6e7f80912 (modified)", "time      2026-12-07T17:05:40Z", "go        go1.26.8"} {
		if !strings.Contains(s, line+"\n") {
			t.Errorf("String() lacks %q:\n%s", line, s)
		}
	}

	// Without build information (or VCS stamping) nothing is left empty.
	for _, bi := range []*debug.BuildInfo{nil, {}} {
		got := FromBuildInfo(bi)
		if got.Version != Unknown || got.Revision != Unknown || got.GoVersion == "" || !got.Time.IsZero() {
			t.Errorf("FromBuildInfo(%v) = %+v", bi, got)
		}
		if !strings.Contains(got.String(), "time      unknown\n") {
			t.Errorf("String() without a time:\n%s", got.String())
		}
	}
	if Read().GoVersion == "" {
		t.Error("Read: no Go version")
	}
	linked := withLinked(Info{Version: "(devel)", Revision: Unknown}, "v0.2.0", "abc123")
	if linked.Version != "v0.2.0" || linked.Revision != "abc123" {
		t.Errorf("link-time values not used: %+v", linked)
	}
	if kept := withLinked(want, "", ""); kept != want {
		t.Errorf("empty link-time values changed %+v to %+v", want, kept)
	}
}

func TestRegister(t *testing.T) {
	reg := prometheus.NewRegistry()
	info := Info{Version: "v1.2.3", Revision: "abc", GoVersion: "go1.26.8"}
	if err := Register(reg, info); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP livefeed_build_info Build of the running livefeed binary: always 1, the build is in the labels (module version, VCS revision, Go version).
# TYPE livefeed_build_info gauge
livefeed_build_info{goversion="go1.26.8",revision="abc",version="v1.2.3"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "livefeed_build_info"); err != nil {
		t.Fatal(err)
	}
	if err := Register(reg, info); err == nil {
		t.Fatal("registered twice in one registry")
	}
}
