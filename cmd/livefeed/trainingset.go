package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/livefeed/livefeed/app"
	"github.com/livefeed/livefeed/broker"
	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/offline"
	"github.com/livefeed/livefeed/offline/kafkalog"
	"github.com/livefeed/livefeed/offline/trainingset"
	"github.com/livefeed/livefeed/topologies"
)

// runFeaturesTrainingSet is `livefeed features training-set`: the
// point-in-time features of every row of a labels file, from an event log.
func runFeaturesTrainingSet(ctx context.Context, args []string) error {
	f := newFlags("features training-set", false, false)
	f.needModel = true // vectors, if asked, must come from the model the processors ran
	var (
		labelsPath, eventsPath, outPath, featureList, timeColumn, from, to, format string
		embeddings                                                                 bool
	)
	f.fs.StringVar(&labelsPath, "labels", "", "labels file: .csv, .jsonl or .parquet with a timestamp column, entity key columns (livestream_id, user_id, seller_id, …) and any label columns (carried through)")
	f.fs.StringVar(&eventsPath, "events", "", "event log (JSONL records {topic, key, value}, in the order the processors consumed it; 'livefeed simulate --out' writes one); - for stdin")
	f.fs.StringVar(&outPath, "out", "", "training set to write: .parquet, .csv or .jsonl")
	f.fs.StringVar(&format, "format", "", "output format: parquet, csv or jsonl (default: by --out's extension)")
	f.fs.StringVar(&featureList, "select", "", "comma-separated feature names to compute (default: every feature of each entity the labels name)")
	f.fs.StringVar(&timeColumn, "time-column", "", "the labels' timestamp column (default: the first of "+strings.Join(trainingset.TimeColumns, ", ")+"); RFC 3339 or Unix epoch s/ms/µs/ns")
	f.fs.StringVar(&from, "from", "", "keep only label rows at or after this time (RFC 3339); with --brokers the topics are read from this time minus the longest window and lateness")
	f.fs.StringVar(&to, "to", "", "keep only label rows at or before this time (RFC 3339); the log is read up to the last row")
	f.fs.BoolVar(&embeddings, "embeddings", false, "add content_embedding (livestream_id) and taste_embedding (user_id) as of each row")
	if err := f.parse(args, false); err != nil {
		return err
	}
	if labelsPath == "" || outPath == "" {
		return errors.New("--labels and --out are required")
	}
	if (eventsPath == "") == (f.cfg.Brokers == "") {
		return errors.New("name the event log: --events FILE (JSONL; 'livefeed simulate --out FILE --limit N' writes one) or --brokers (the input topics)")
	}
	var ro trainingset.ReadOptions
	for _, t := range []struct {
		flag, v string
		dst     *time.Time
	}{{"from", from, &ro.From}, {"to", to, &ro.To}} {
		if t.v == "" {
			continue
		}
		v, err := time.Parse(time.RFC3339Nano, t.v)
		if err != nil {
			return fmt.Errorf("--%s: %w", t.flag, err)
		}
		*t.dst = v
	}
	out := trainingset.Format(format)
	if out == "" {
		var err error
		if out, err = trainingset.FormatOf(outPath); err != nil {
			return fmt.Errorf("--out: %w (or name it with --format)", err)
		}
	}
	topo, closeTopo, err := app.OfflineTopology(ctx, f.cfg)
	if err != nil {
		return err
	}
	defer closeTopo()
	o := trainingset.Options{Topology: topo, Embeddings: embeddings, Format: out}
	if featureList != "" {
		for _, n := range strings.Split(featureList, ",") {
			if n = strings.TrimSpace(n); n != "" {
				o.Features = append(o.Features, n)
			}
		}
	}
	ro.TimeColumn = timeColumn
	ro.KeyColumns = trainingset.KeyColumns(topo)
	start := time.Now()
	labels, err := trainingset.ReadLabels(labelsPath, ro)
	if err != nil {
		return err
	}
	readLabels := time.Since(start)
	var log trainingset.Source
	switch {
	case f.cfg.Brokers != "":
		// The input topics, from early enough before the first row that
		// every window (plus lateness) is full at it.
		o := kafkalog.Options{Prefix: f.cfg.TopicPrefix,
			Client: (&broker.Config{Brokers: strings.Split(f.cfg.Brokers, ","), Security: f.cfg.Kafka}).KgoOpts()}
		for _, t := range events.InputTopics() {
			o.Topics = append(o.Topics, topologies.Names{Prefix: f.cfg.TopicPrefix}.InputTopic(t))
		}
		if len(labels.Rows) > 0 {
			o.From = labels.Rows[0].At.Add(-warmup(topo))
		}
		kl, err := kafkalog.Open(ctx, o)
		if err != nil {
			return err
		}
		defer kl.Close()
		log = kl
	case eventsPath == "-":
		log = offline.NewLogScanner(bufio.NewReaderSize(os.Stdin, 1<<20))
	default:
		file, err := os.Open(eventsPath)
		if err != nil {
			return fmt.Errorf("opening event log: %w", err)
		}
		defer file.Close()
		log = offline.NewLogScanner(bufio.NewReaderSize(file, 1<<20))
	}
	dst, err := os.Create(outPath)
	if err != nil {
		return fmt.Errorf("creating %s: %w", outPath, err)
	}
	bw := bufio.NewWriterSize(dst, 1<<20)
	st, err := trainingset.Build(ctx, o, labels, log, bw)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	report := struct {
		Out         string         `json:"out"`
		Rows        int            `json:"rows"`
		Skipped     int            `json:"skipped"`
		Records     int            `json:"records"`
		Rejected    map[string]int `json:"rejected"`
		Late        int            `json:"late"`
		ReadLabelsS float64        `json:"read_labels_s"`
		ReplayS     float64        `json:"replay_s"`
		LookupS     float64        `json:"lookup_s"`
		WriteS      float64        `json:"write_s"`
		TotalS      float64        `json:"total_s"`
	}{outPath, st.Rows, labels.Skipped, st.Records, st.Rejected, st.Late, readLabels.Seconds(),
		st.Replay.Seconds(), st.Lookup.Seconds(), st.Write.Seconds(), time.Since(start).Seconds()}
	enc := json.NewEncoder(os.Stderr)
	enc.SetIndent("", " ")
	return enc.Encode(report)
}

// warmup is how long before an instant the log must start for every
// feature's window to be complete at it: the longest window plus its
// lateness (all_time and decayed features: the topics' retention).
func warmup(topo *topologies.Topology) time.Duration {
	var d time.Duration
	sets := []*features.Set{topo.Features}
	for _, e := range topo.Entities {
		sets = append(sets, e.Features)
	}
	for _, s := range sets {
		for _, def := range s.All() {
			if def.Window.Size == 0 {
				return features.DefaultRetention
			}
			d = max(d, def.Window.Size+def.Lateness)
		}
	}
	return min(d, features.DefaultRetention)
}
