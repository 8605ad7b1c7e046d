// Package features is the pure core of livefeed's features: declarative
// definitions (Go or a YAML features file) of windowed aggregations over
// the input events, compiled into a Set that folds events into an entity's
// State, judges lateness per source, evicts expired tiles and evaluates
// values at any time. It knows nothing of Kafka or Goka, so processors
// (online) and offline recomputation share it.
//
// A Definition names an entity (livestream, user, seller or a key field),
// its sources (topics), an optional filter and projection (a small typed
// expression language over the events' JSON fields), an aggregation
// (count, sum, mean, min, max, last, last_k_distinct, approx_distinct,
// approx_percentile, top_k, decayed_sum, decayed_count) and a window
// (sliding tiles, tumbling, all-time) with an allowed lateness.
//
// See README.md in this directory for the file format, the semantics
// (event time, lateness, windows, approximation errors, versioning, idle
// keys) and the state encoding.
package features
