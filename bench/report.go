package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
)

// WriteText prints the report for humans.
func (rep *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	rev := rep.Revision
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rep.Modified {
		rev += " (modified)"
	}
	if rev == "" {
		rev = "unknown"
	}
	mode := "full"
	if rep.Quick {
		mode = "quick"
	}
	fmt.Fprintf(&b, "livefeed bench pipeline — run %s (%s), %s\n", rep.RunID, mode, rep.StartedAt.Format("2006-01-02 15:04:05 MST"))
	fmt.Fprintf(&b, "  brokers %s, %d partitions per topic; %s %s/%s, %d CPUs (GOMAXPROCS %d); revision %s\n",
		rep.Brokers, rep.Partitions, rep.GoVersion, rep.GOOS, rep.GOARCH, rep.NumCPU, rep.GOMAXPROCS, rev)
	if rep.Model != "" {
		fmt.Fprintf(&b, "  embedding model %s (dim %d)\n", rep.Model, rep.ModelDim)
	}

	if t := rep.Throughput; t != nil {
		fmt.Fprintf(&b, "\n1. Processor throughput (backlog of %d simulated events, then the processors start)\n", t.Events)
		fmt.Fprintf(&b, "  produced        %d events in %.2fs (%.0f/s; event times spaced for %g events/s): %s\n",
			t.Produced.Acked, t.Produced.Seconds, t.Produced.EventsPerSec, t.Produced.SimulatedRate, topicCounts(t.Produced.ByTopic))
		fmt.Fprintf(&b, "  ready           %.2fs after start (group join, rebalance and table recovery)\n", t.ReadySeconds)
		tw := tabwriter.NewWriter(&b, 2, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "  group\tevents\tfirst event\tall done\tevents/s (startup excluded)\tevents/s (startup included)\toutcomes\n")
		for _, g := range []GroupThroughput{t.Livestream, t.User} {
			fmt.Fprintf(tw, "  %s\t%d\t%.1fs\t%.1fs\t%.0f\t%.0f\t%s\n", g.Group, g.Handled, g.FirstSeconds, g.DoneSeconds,
				g.EventsPerSec, g.WithStartupPerSec, topicCounts(g.Outcomes))
		}
		tw.Flush()
		if late := t.Livestream.LateByTopic; len(late) > 0 {
			fmt.Fprintf(&b, "  late (dropped from windows) by topic: %s\n", topicCounts(late))
			fmt.Fprintf(&b, "  note: an event older than its own topic's watermark for the stream minus the feature's allowed\n"+
				"        lateness is dropped from the windows (it is still handled and emits signals)\n")
		}
		fmt.Fprintf(&b, "  committed lag of the livestream group reached 0 at %.1fs\n", t.CommitLagZeroSeconds)
		fmt.Fprintf(&b, "  CPU              %.1fs of process CPU until both groups were done: %.0f input events per CPU-second (per core)\n",
			t.CPUSeconds, t.EventsPerCPUSecond)
		if fl := t.Floor; fl != nil {
			ratio := 0.0
			if fl.EventsPerSec > 0 {
				ratio = t.Livestream.EventsPerSec / fl.EventsPerSec
			}
			fmt.Fprintf(&b, "  peer, same run: goka floor (%s counts per key in goleveldb, same backlog, broker and config)\n", fl.Group)
			fmt.Fprintf(&b, "        %d events in %.1fs: %.0f events/s; livestream group = %.2f × the floor\n", fl.Events, fl.Seconds, fl.EventsPerSec, ratio)
			fmt.Fprintf(&b, "        %.1fs of process CPU: %.0f events per CPU-second\n", fl.CPUSeconds, fl.EventsPerCPUSecond)
		}
		if fl := t.TwoHopFloor; fl != nil {
			ratio := 0.0
			if fl.EventsPerCPUSecond > 0 {
				ratio = t.EventsPerCPUSecond / fl.EventsPerCPUSecond
			}
			fmt.Fprintf(&b, "  peer, same run: goka two-hop floor (%s: count per key, emit each event to a user-keyed topic,\n"+
				"        count per key again; plain goka state writes): %d events in %.1fs: %.0f events/s\n", fl.Group, fl.Events, fl.Seconds, fl.EventsPerSec)
			fmt.Fprintf(&b, "        %.1fs of process CPU: %.0f events per CPU-second; livefeed = %.2f × the two-hop floor per CPU-second\n",
				fl.CPUSeconds, fl.EventsPerCPUSecond, ratio)
		}
		if fl := t.FranzFloor; fl != nil {
			fmt.Fprintf(&b, "  peer, same run: franz-go floor (%s: one franz-go client consumes, counts per key in a map,\n"+
				"        produces one record per event, commits per poll; no goka): %d events in %.1fs: %.0f events/s\n", fl.Group, fl.Events, fl.Seconds, fl.EventsPerSec)
			fmt.Fprintf(&b, "        %.1fs of process CPU: %.0f events per CPU-second\n", fl.CPUSeconds, fl.EventsPerCPUSecond)
		}
		fmt.Fprintf(&b, "  method: %s\n", t.Method)
	}

	if f := rep.Freshness; f != nil {
		fmt.Fprintf(&b, "\n2. Data latency: produce → visible in /v1/recommendations (%d samples, background %.0f events/s)\n",
			f.Samples, f.Background.EventsPerSec)
		tw := tabwriter.NewWriter(&b, 2, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "  \tp50\tp90\tp95\tp99\tmax\tmean\n")
		latencyRow(tw, "produce → visible", f.Latency, "ms")
		latencyRow(tw, "produce ack", f.Ack, "ms")
		latencyRow(tw, "polls per sample", f.Polls, "")
		tw.Flush()
		fmt.Fprintf(&b, "  poll interval %gms, %d timeouts; background acked %d events\n", f.PollIntervalMS, f.Timeouts, f.Background.Acked)
		fmt.Fprintf(&b, "  method: %s\n", f.Method)
	}

	if q := rep.Query; q != nil {
		fmt.Fprintf(&b, "\n3. Recommendation latency (%d live streams, %d users with taste vectors)\n", q.Streams, q.Users)
		fmt.Fprintf(&b, "  index built in  %.1fs (%.0f streams/s, each embedded by the processor)\n", q.IndexSeconds, q.IndexStreamsPerSec)
		fmt.Fprintf(&b, "  engagement      %d events, %d streams with viewers\n", q.EngagementEvents, q.StreamsWithViewers)
		fmt.Fprintf(&b, "  mix: %s\n", q.Mix)
		for _, run := range []QueryRun{q.Sequential, q.Concurrent} {
			fmt.Fprintf(&b, "  %d client(s), %d requests in %.2fs: %.0f req/s, %d errors, strategies %s\n",
				run.Clients, run.Requests, run.Seconds, run.ReqPerSec, run.Errors, intCounts(run.Strategies))
			tw := tabwriter.NewWriter(&b, 2, 0, 2, ' ', 0)
			fmt.Fprintf(tw, "    \tp50\tp90\tp95\tp99\tmax\tmean\n")
			latencyRow(tw, "  client", run.Client, "ms")
			latencyRow(tw, "  server took_ms", run.Server, "ms")
			kinds := make([]string, 0, len(run.ByKind))
			for k := range run.ByKind {
				kinds = append(kinds, k)
			}
			slices.Sort(kinds)
			for _, k := range kinds {
				latencyRow(tw, "  client "+k, run.ByKind[k], "ms")
			}
			latencyRow(tw, "  results/answer", run.Results, "")
			latencyRow(tw, "  matched/answer", run.Matched, "")
			tw.Flush()
		}
		fmt.Fprintf(&b, "  method: %s\n", q.Method)
	}
	fmt.Fprintf(&b, "\ntotal %.1fs\n", rep.TotalSeconds)
	_, err := io.WriteString(w, b.String())
	return err
}

func latencyRow(w io.Writer, name string, l Latency, unit string) {
	f := func(v float64) string {
		if unit == "" {
			return fmt.Sprintf("%g", round1(v))
		}
		if v >= 100 {
			return fmt.Sprintf("%.0f%s", v, unit)
		}
		return fmt.Sprintf("%.2f%s", v, unit)
	}
	fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, f(l.P50), f(l.P90), f(l.P95), f(l.P99), f(l.Max), f(l.Mean))
}

func topicCounts(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}

func intCounts(m map[string]int) string {
	c := make(map[string]int64, len(m))
	for k, v := range m {
		c[k] = int64(v)
	}
	return topicCounts(c)
}

// WriteJSON writes the report as indented JSON to path.
func (rep *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding report: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing report: %w", err)
	}
	return nil
}
