#!/usr/bin/env bash
# live-cpu.sh: processor cost under live traffic on real Kafka, the peer of
# `livefeed bench pipeline`'s backlog figure. Runs `livefeed process` on a
# fresh topic prefix, `livefeed simulate --rate RATE` for SECONDS, then
# prints the livestream group's events and the process's CPU time.
#
#   eval "$(deploy/kafka/kafka.sh start)"
#   bench/scripts/live-cpu.sh ./livefeed [RATE] [SECONDS]      # 10000, 40
#   LIVEFEED_PPROF=true ... then go tool pprof http://127.0.0.1:18121/debug/pprof/profile?seconds=20
#   LIVEFEED_MODEL=DIR ... embeds with a real model (default: the generated test model)
set -euo pipefail
if (($# < 1)); then
  sed -n '2,11p' "$0" >&2
  exit 2
fi
lf=$1 rate=${2:-10000} secs=${3:-40}
# shellcheck source=bench/scripts/live-lib.sh
. "$(dirname "$0")/live-lib.sh"
prefix=live-$(date +%s%N)-
start_live "$lf" "$rate" "$prefix" 127.0.0.1:18121
sleep "$secs"
events=$(handled 127.0.0.1:18121 "$prefix")
read -r utime stime < <(awk '{print $14, $15}' "/proc/$proc/stat")
cpu=$(awk -v t=$((utime + stime)) -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", t / hz}')
echo "$lf: ${secs}s at ${rate} events/s offered: livestream group handled $events events," \
  "process CPU ${cpu}s: $(awk -v e="$events" -v c="$cpu" 'BEGIN {printf "%.0f", e / c}') input events per CPU-second" \
  "(load $(cut -d' ' -f1 /proc/loadavg); logs in $dir)"
