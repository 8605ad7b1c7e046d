// Package api holds the wire types of livefeed's HTTP API: the requests the
// feed service sends (recommendations, search, named queries, feature
// lookups) and the answers serving writes. The serving package encodes these
// very types and the client package decodes them, so the two cannot drift;
// serving/openapi.json describes the same shapes and a test validates real
// answers against it.
//
// The package imports only the standard library: a caller of the API pulls
// in nothing of Kafka, goka or Prometheus.
package api
