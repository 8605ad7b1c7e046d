package servingbench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
)

// WriteText prints the report: engines, then one block per filter with
// every engine's recall, latency and throughput and livefeed's ratios.
func (r *Report) WriteText(w io.Writer) error {
	c := r.Config
	fmt.Fprintf(w, "livefeed bench serving — %s, %s, GOMAXPROCS %d\n", r.Date, r.GoVersion, r.GOMAXPROCS)
	fmt.Fprintf(w, "catalogue %d × %d (clustered: %d topics × %d sub-topics), %d queries/filter, k=%d, %d partitions, %d clients\n\n",
		c.N, c.Dim, topics, subPerTopic, c.Queries, c.K, c.Partitions, c.Clients)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "engine\tbuild\tmemory\tparameters")
	for _, e := range r.Engines {
		mem := "—"
		if e.MemoryBytes > 0 {
			mem = fmt.Sprintf("%.0f MB", float64(e.MemoryBytes)/(1<<20))
		}
		build := "—"
		if e.BuildSec > 0 {
			build = fmt.Sprintf("%.1f s", e.BuildSec)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Name, build, mem, e.Params)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "filter\tsel\tengine\trecall@k\tp50 ms\tp99 ms\tq/s 1 client\tq/s clients\tq/s lf÷peer\tp99 lf÷peer\tplans / how\t")
	byCase := map[string][]Row{}
	var order []string
	for _, row := range r.Rows {
		if _, ok := byCase[row.Case]; !ok {
			order = append(order, row.Case)
		}
		byCase[row.Case] = append(byCase[row.Case], row)
	}
	for _, name := range order {
		rows := byCase[name]
		var lf *Row
		for i := range rows {
			if lf == nil && strings.HasPrefix(rows[i].Engine, "livefeed") && !strings.Contains(rows[i].Engine, " ef=") {
				lf = &rows[i]
			}
		}
		for _, row := range rows {
			qx, px := "", ""
			if lf != nil && !strings.HasPrefix(row.Engine, "livefeed") && row.QPS1 > 0 && lf.P99MS > 0 {
				qx = fmt.Sprintf("%.2f", lf.QPS1/row.QPS1)
				px = fmt.Sprintf("%.2f", lf.P99MS/row.P99MS)
			}
			how := row.Kind
			if strings.HasPrefix(row.Engine, "livefeed") {
				how = plans(row.Plans)
			}
			fmt.Fprintf(tw, "%s\t%.2f%%\t%s\t%.4f\t%.3f\t%.3f\t%.0f\t%.0f\t%s\t%s\t%s\t\n", row.Case, 100*row.Selectivity,
				row.Engine, row.Recall, row.P50MS, row.P99MS, row.QPS1, row.QPSClients, qx, px, how)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, u := range r.Updates {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "%s update\tn\tp50 µs\tp99 µs\tper s (1 writer)\t\n", u.Engine)
		for _, k := range u.Kinds {
			fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f\t%.0f\t\n", k.Kind, k.N, k.P50US, k.P99US, k.PerS)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(w, "%s unfiltered queries, sequential: idle p50 %.3f ms p99 %.3f ms; while %.0f updates/s flow in (1 %% vector moves) p50 %.3f ms p99 %.3f ms\n",
			u.Engine, u.IdleP50MS, u.IdleP99MS, u.LoadApplied, u.LoadP50MS, u.LoadP99MS)
	}
	for _, e := range r.Engines {
		if e.VectorBytes > 0 {
			fmt.Fprintf(w, "%s vectors: %.0f MB read by searches, %.0f MB read only by rescoring\n",
				e.Name, float64(e.VectorBytes)/(1<<20), float64(e.RescoreBytes)/(1<<20))
		}
		if e.ResidentBuilt.RSS > 0 {
			fmt.Fprintf(w, "%s resident set: before the build %.0f MB (anon %.0f), built %.0f MB (anon %.0f, file %.0f), after the queries %.0f MB (anon %.0f, file %.0f); float32 file on disk %.0f MB\n",
				e.Name, mb(e.ResidentBefore.RSS), mb(e.ResidentBefore.Anon), mb(e.ResidentBuilt.RSS), mb(e.ResidentBuilt.Anon), mb(e.ResidentBuilt.File),
				mb(e.ResidentQuery.RSS), mb(e.ResidentQuery.Anon), mb(e.ResidentQuery.File), mb(e.FileBytes))
		}
		if rs := e.Rescoring; rs != nil {
			for _, ph := range rs.Phases {
				fmt.Fprintf(w, "%s rescoring from the file, pages %s: p50 %.3f ms p99 %.3f ms mean %.3f ms; read from the disk %.1f KB per query\n",
					e.Name, ph.State, ph.P50MS, ph.P99MS, ph.MeanMS, ph.DiskKB)
			}
			if rs.Note != "" {
				fmt.Fprintf(w, "%s rescoring: %s\n", e.Name, rs.Note)
			}
		}
		if sn := e.Snapshot; sn != nil {
			fmt.Fprintf(w, "%s restart: snapshot %.0f MB written in %.2f s, restored in %.2f s (build %.1f s); identical results: %v %s\n",
				e.Name, float64(sn.Bytes)/(1<<20), sn.WriteSec, sn.RestoreSec, e.BuildSec, sn.Identical, sn.Note)
		}
	}
	if r.PeerNote != "" {
		fmt.Fprintf(w, "\n%s\n", r.PeerNote)
	}
	return nil
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

func plans(m map[string]int) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var parts []string
	for _, k := range ks {
		parts = append(parts, fmt.Sprintf("%s:%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

// WriteJSON writes the report to path.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
