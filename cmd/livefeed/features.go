package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/livefeed/livefeed/app"
	"github.com/livefeed/livefeed/broker"
	"github.com/livefeed/livefeed/offline"
	"github.com/livefeed/livefeed/processors/backfill"
	"github.com/livefeed/livefeed/topologies"
	"github.com/lovoo/goka"
)

const featuresUsage = `usage: livefeed features <command> [flags]

  validate FILE                             check a feature-definition file; errors give file:line:column and the fix
  explain FILE [--partitions N] [--brokers B]
                                            the compiled topology: groups, topics, partitions, state per key;
                                            with --brokers, each feature backfill's progress
  compute --events FILE.jsonl [--at TIME]   recompute every feature from an event log without Kafka
                                            (one JSON record per line: {"topic","key","value"}; write one
                                            with 'livefeed simulate --out FILE.jsonl --limit N')
  training-set --labels FILE --events FILE.jsonl|--brokers B --out FILE [--select a,b] [--embeddings]
                                            point-in-time features for every row of a labels file
                                            (.csv, .jsonl, .parquet: keys, a timestamp, labels) as of
                                            its timestamp; writes .parquet, .csv or .jsonl
  reference (--events FILE.jsonl [--at TIME] | --url URL) --out FILE
                                            a reference for serving's feature monitoring
                                            (serve --feature-reference FILE): every feature's
                                            distribution in a log at one instant, or a server's window
`

func runFeatures(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, featuresUsage)
		return errors.New("missing features command")
	}
	switch args[0] {
	case "compute":
		return runFeaturesCompute(ctx, args[1:])
	case "training-set":
		return runFeaturesTrainingSet(ctx, args[1:])
	case "reference":
		return runFeaturesReference(ctx, args[1:])
	case "validate":
		return runFeaturesValidate(args[1:])
	case "explain":
		return runFeaturesExplain(args[1:])
	case "-h", "--help", "help":
		fmt.Print(featuresUsage)
		return nil
	}
	fmt.Fprint(os.Stderr, featuresUsage)
	return fmt.Errorf("unknown features command %q", args[0])
}

func runFeaturesCompute(ctx context.Context, args []string) error {
	f := newFlags("features compute", false, false)
	f.needModel = true // the vectors must come from the model the processors ran
	var eventsPath, at string
	f.fs.StringVar(&eventsPath, "events", "", "event log (JSONL records {topic, key, value}); - for stdin")
	f.fs.StringVar(&at, "at", "", "evaluate windows at this time (RFC 3339); default: the newest event time in the log")
	if err := f.parse(args, false); err != nil {
		return err
	}
	if eventsPath == "" {
		return errors.New("--events is required")
	}
	in := os.Stdin
	if eventsPath != "-" {
		file, err := os.Open(eventsPath)
		if err != nil {
			return fmt.Errorf("opening event log: %w", err)
		}
		defer file.Close()
		in = file
	}
	topo, closeTopo, err := app.OfflineTopology(ctx, f.cfg)
	if err != nil {
		return err
	}
	defer closeTopo()
	en := offline.New(topo)
	n, err := en.ReadLog(ctx, in)
	if err != nil {
		return err
	}
	when := time.Time{}
	if at != "" {
		if when, err = time.Parse(time.RFC3339Nano, at); err != nil {
			return fmt.Errorf("--at: %w", err)
		}
	} else {
		for _, st := range en.Streams() {
			if st.Features.Watermark.After(when) {
				when = st.Features.Watermark
			}
		}
	}
	out := struct {
		Records  int            `json:"records"`
		At       time.Time      `json:"at"`
		Rejected map[string]int `json:"rejected"`
		Late     int            `json:"late"`
		Features offline.Values `json:"features"`
	}{n, when, en.Rejected, en.Late, en.Values(when)}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	return enc.Encode(out)
}

func runFeaturesValidate(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: livefeed features validate FILE")
	}
	set, err := app.LoadFeatures(args[0])
	if err != nil {
		return err
	}
	fmt.Printf("%s: %d features OK (entities: %s)\n", args[0], len(set.All()), strings.Join(set.Entities(), ", "))
	return nil
}

func runFeaturesExplain(args []string) error {
	fs := flag.NewFlagSet("features explain", flag.ContinueOnError)
	partitions := fs.Int("partitions", 8, "partitions of every topic")
	prefix := fs.String("topic-prefix", "", "prefix of every topic and group name")
	brokers := fs.String("brokers", "", "also show the running deployment's feature backfills (comma-separated seed brokers)")
	var sec broker.Security
	var kf kafkaFlags
	kf.declare(fs, &sec)
	var file string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		file, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := kf.resolve(fs, &sec); err != nil {
		return err
	}
	set, err := app.LoadFeatures(file)
	if err != nil {
		return err
	}
	if file == "" {
		file = "(built-in defaults)"
	}
	names := topologies.Names{Prefix: *prefix}
	fmt.Print(topologies.Explain(file, set, names, int32(*partitions)))
	if *brokers == "" {
		return nil
	}
	// The backfills' catalogs (processors/backfill): which features each
	// partition is still warming up, and how far their replay got.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	groups := []goka.Group{names.LivestreamGroup()}
	for _, e := range topologies.EntitiesOf(set) {
		if e.Name != "user" { // the user group does not backfill
			groups = append(groups, names.EntityGroup(e.Name))
		}
	}
	client := (&broker.Config{Brokers: strings.Split(*brokers, ","), Security: sec}).KgoOpts()
	for _, g := range groups {
		cats, err := backfill.ReadCatalogs(ctx, client, names.BackfillStateTopic(g))
		if err != nil {
			return fmt.Errorf("reading the backfills of %s: %w", g, err)
		}
		fmt.Print("\n", backfill.Describe(string(g), cats, time.Now()))
	}
	return nil
}
