// Package buildinfo says which livefeed binary is running: the module
// version, the VCS revision and commit time and the Go version that the Go
// toolchain records in every binary it builds from a module
// (runtime/debug.ReadBuildInfo). `livefeed version` prints it; every
// long-running command logs it at start and exports it as the
// livefeed_build_info gauge, so a dashboard or an incident can tell which
// build answered.
package buildinfo

import (
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Unknown stands for a value the binary does not record (a test binary, or
// a build with -buildvcs=false or outside a VCS checkout).
const Unknown = "unknown"

// Info describes one build.
type Info struct {
	// Version is the main module's version: a tag (v0.1.0), a
	// pseudo-version derived from the commit, or "(devel)".
	Version string
	// Revision is the VCS commit the binary was built from.
	Revision string
	// Time is the commit's time; zero when unknown.
	Time time.Time
	// Modified: the work tree had uncommitted changes.
	Modified bool
	// GoVersion is the toolchain that built the binary (go1.26.8).
	GoVersion string
}

// Set at link time for builds without VCS stamping, such as the image's,
// whose build context has no .git (deploy/Dockerfile):
//
//	go build -ldflags "-X github.com/livefeed/livefeed/internal/buildinfo.revision=$(git rev-parse HEAD)"
//
// A value set here wins over the recorded one.
var version, revision string

// Read returns the running binary's build information.
func Read() Info {
	bi, _ := debug.ReadBuildInfo()
	return withLinked(FromBuildInfo(bi), version, revision)
}

// withLinked overrides i's version and revision with the link-time values
// that are set.
func withLinked(i Info, version, revision string) Info {
	if version != "" {
		i.Version = version
	}
	if revision != "" {
		i.Revision = revision
	}
	return i
}

// FromBuildInfo extracts Info from bi; nil or missing fields become Unknown
// (GoVersion falls back to runtime.Version).
func FromBuildInfo(bi *debug.BuildInfo) Info {
	info := Info{Version: Unknown, Revision: Unknown, GoVersion: runtime.Version()}
	if bi == nil {
		return info
	}
	if bi.Main.Version != "" {
		info.Version = bi.Main.Version
	}
	if bi.GoVersion != "" {
		info.GoVersion = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if s.Value != "" {
				info.Revision = s.Value
			}
		case "vcs.time":
			if t, err := time.Parse(time.RFC3339, s.Value); err == nil {
				info.Time = t
			}
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return info
}

// String is the text of `livefeed version`: one "key value" line each.
func (i Info) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "version   %s\n", i.Version)
	rev := i.Revision
	if i.Modified {
		rev += " (modified)"
	}
	fmt.Fprintf(&b, "revision  %s\n", rev)
	t := Unknown
	if !i.Time.IsZero() {
		t = i.Time.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(&b, "time      %s\n", t)
	fmt.Fprintf(&b, "go        %s\n", i.GoVersion)
	return b.String()
}

// LogValue logs the build as a group of its fields.
func (i Info) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("version", i.Version),
		slog.String("revision", i.Revision),
		slog.Bool("modified", i.Modified),
		slog.String("go", i.GoVersion),
	}
	if !i.Time.IsZero() {
		attrs = append(attrs, slog.Time("time", i.Time))
	}
	return slog.GroupValue(attrs...)
}

// Register adds the livefeed_build_info gauge (value 1, the build in its
// labels version, revision and goversion) to reg.
func Register(reg prometheus.Registerer, i Info) error {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "livefeed_build_info",
		Help: "Build of the running livefeed binary: always 1, the build is in the labels (module version, VCS revision, Go version).",
		ConstLabels: prometheus.Labels{
			"version":   i.Version,
			"revision":  i.Revision,
			"goversion": i.GoVersion,
		},
	})
	g.Set(1)
	return reg.Register(g)
}
