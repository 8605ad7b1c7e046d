package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/livefeed/livefeed/app"
	"github.com/livefeed/livefeed/offline"
)

const featuresUsage = `usage: livefeed features <command> [flags]

  compute --events FILE.jsonl [--at TIME]   recompute every feature from an event log without Kafka
                                            (one JSON record per line: {"topic","key","value"}; write one
                                            with 'livefeed simulate --out FILE.jsonl --limit N')
`

func runFeatures(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, featuresUsage)
		return errors.New("missing features command")
	}
	switch args[0] {
	case "compute":
		return runFeaturesCompute(ctx, args[1:])
	case "-h", "--help", "help":
		fmt.Print(featuresUsage)
		return nil
	}
	fmt.Fprint(os.Stderr, featuresUsage)
	return fmt.Errorf("unknown features command %q", args[0])
}

func runFeaturesCompute(ctx context.Context, args []string) error {
	f := newFlags("features compute", false, false)
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
