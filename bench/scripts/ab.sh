#!/usr/bin/env bash
# ab.sh: compare livefeed binaries on processor throughput, alternating
# them so that both see the same machine load.
#
#   bench/scripts/ab.sh ROUNDS BINARY... [-- BENCH FLAGS]
#   bench/scripts/ab.sh 3 ./livefeed-before ./livefeed-after
#   bench/scripts/ab.sh 2 ./old ./new -- --brokers 127.0.0.1:19092
#
# Prints one line per run: binary, input events per CPU-second, load average.
set -euo pipefail
if (($# < 2)); then
  sed -n '2,9p' "$0" >&2
  exit 2
fi
rounds=$1
shift
bins=()
while (($#)) && [[ $1 != -- ]]; do
  bins+=("$1")
  shift
done
[[ ${1:-} == -- ]] && shift
for ((i = 1; i <= rounds; i++)); do
  for bin in "${bins[@]}"; do
    rate=$("$bin" bench pipeline --phases throughput --events 200000 "$@" 2>&1 |
      grep -oE '[0-9]+ input events per CPU-second' | cut -d' ' -f1)
    echo "$bin ${rate:-failed} load $(cut -d' ' -f1 /proc/loadavg)"
  done
done
