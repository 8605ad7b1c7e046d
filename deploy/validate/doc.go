// Package validate checks deploy/: the compose file (compose-spec schema and
// consistency, through compose-go), the Grafana dashboard (every PromQL
// expression parses and names only metrics that exist), the Prometheus
// scrape targets and the Kubernetes manifests' wiring (probes, ports,
// volumes, selectors, flags). Schema validation of the manifests is
// kubernetes-validate's, run by deploy/validate.sh.
//
// It is its own module so that compose-go and the PromQL parser stay out of
// livefeed's go.mod.
package validate
