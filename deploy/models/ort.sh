#!/usr/bin/env bash
# Provide the two native libraries hugot's ONNX Runtime backend (build tag
# ORT) needs, in one cache directory, and print the environment to use them.
#
#   eval "$(deploy/models/ort.sh)"       # fetch/build if needed, then export:
#     CGO_LDFLAGS          += -L<cache>/lib   (libtokenizers.a, linked by cgo)
#     LIVEFEED_ORT_LIB_DIR  = <cache>/lib     (holds libonnxruntime.so, opened at run time)
#   go build -tags ORT ./...
#
#   libonnxruntime.so  from the npm package onnxruntime-node (ORT_NPM_VERSION,
#                      default 1.30.0): `npm pack` (no install scripts run),
#                      bin/napi-v6/linux/x64/libonnxruntime.so.1
#   libtokenizers.a    the Rust static library of github.com/daulet/tokenizers,
#                      built with cargo (crates from crates.io) from the source
#                      in that Go module, at the version go.mod requires. Its
#                      Cargo.toml takes tiktoken-rs from a GitHub branch; it is
#                      switched to tiktoken-rs from crates.io (TIKTOKEN_VERSION).
#
# The default build (no tag) needs neither. Cache: ${LIVEFEED_ORT_CACHE:-
# $HOME/.cache/livefeed/ort}; a second run checks the recorded SHA-256 and
# returns at once. Needs npm, cargo, go, tar. Logs go to stderr. Linux x64.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
ORT_NPM_VERSION=${ORT_NPM_VERSION:-1.30.0}
TIKTOKEN_VERSION=${TIKTOKEN_VERSION:-0.9.1}
CACHE=${LIVEFEED_ORT_CACHE:-$HOME/.cache/livefeed/ort}
LIB=$CACHE/lib
STAMP=$LIB/.livefeed-ort

log() { printf 'ort.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

case "${1:-}" in
  ""|fetch) ;;
  *) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
[[ "$(uname -s)/$(uname -m)" == Linux/x86_64 ]] || die "only linux/x86_64 is supported (onnxruntime-node's bin/napi-v6/linux/x64)"
for tool in npm cargo go tar sha256sum; do
  command -v "$tool" >/dev/null || die "$tool not found"
done

TOK_VERSION=$(cd "$REPO_ROOT" && go list -m -f '{{.Version}}' github.com/daulet/tokenizers) \
  || die "github.com/daulet/tokenizers is not in go.mod's module graph"
KEY="onnxruntime-node@$ORT_NPM_VERSION tokenizers@$TOK_VERSION tiktoken-rs@$TIKTOKEN_VERSION"

emit_env() {
  printf 'export CGO_LDFLAGS=%q\n' "-L$LIB${CGO_LDFLAGS:+ $CGO_LDFLAGS}"
  printf 'export LIVEFEED_ORT_LIB_DIR=%q\n' "$LIB"
}

is_current() {
  [[ -f "$STAMP" ]] && [[ "$(sed -n 's/^key //p' "$STAMP")" == "$KEY" ]] &&
    (cd "$LIB" && grep -E '^[0-9a-f]{64}  ' "$STAMP" | sha256sum --check --status --strict)
}

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
if command -v flock >/dev/null; then flock 9; fi

if is_current; then
  log "libraries current in $LIB ($KEY)"
  emit_env
  exit 0
fi

start=$(date +%s)
WORK=$(mktemp -d "$CACHE/.work.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/lib"

# --- libonnxruntime.so from npm ---------------------------------------------
log "npm pack onnxruntime-node@$ORT_NPM_VERSION"
(cd "$WORK" && npm pack --silent "onnxruntime-node@$ORT_NPM_VERSION" >/dev/null) \
  || die "npm pack onnxruntime-node@$ORT_NPM_VERSION failed"
tgz=$(find "$WORK" -maxdepth 1 -name 'onnxruntime-node-*.tgz' | head -1)
member=package/bin/napi-v6/linux/x64/libonnxruntime.so.1
tar -xzf "$tgz" -C "$WORK" "$member" || die "$member not in $(basename "$tgz")"
mv "$WORK/$member" "$WORK/lib/libonnxruntime.so"
log "libonnxruntime.so: $(du -h "$WORK/lib/libonnxruntime.so" | cut -f1) (from $(basename "$tgz"), $(du -h "$tgz" | cut -f1))"

# --- libtokenizers.a with cargo ---------------------------------------------
src=$(cd "$REPO_ROOT" && go mod download -json "github.com/daulet/tokenizers@$TOK_VERSION" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[[ -n "$src" && -f "$src/Cargo.toml" ]] || die "no Rust source in github.com/daulet/tokenizers@$TOK_VERSION"
cp -r "$src" "$WORK/tokenizers"
chmod -R u+w "$WORK/tokenizers"
# GitHub is not reachable: tiktoken-rs from crates.io instead of a branch.
sed -i -E "s|^tiktoken-rs = .*|tiktoken-rs = \"=$TIKTOKEN_VERSION\"|" "$WORK/tokenizers/Cargo.toml"
# Cargo.lock stays: cargo re-resolves only tiktoken-rs (and what it alone needs).
log "cargo build --release (daulet/tokenizers $TOK_VERSION; target dir $CACHE/cargo-target)"
(cd "$WORK/tokenizers" && CARGO_TARGET_DIR="$CACHE/cargo-target" cargo build --release --lib >&2) \
  || die "cargo build of libtokenizers.a failed"
cp "$CACHE/cargo-target/release/libtokenizers.a" "$WORK/lib/libtokenizers.a"
log "libtokenizers.a: $(du -h "$WORK/lib/libtokenizers.a" | cut -f1)"

{
  printf 'key %s\n' "$KEY"
  (cd "$WORK/lib" && sha256sum libonnxruntime.so libtokenizers.a)
} >"$WORK/lib/.livefeed-ort"
rm -rf "$LIB"
mv "$WORK/lib" "$LIB"
log "ready in $LIB ($(( $(date +%s) - start ))s)"
emit_env
