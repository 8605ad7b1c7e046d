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
brokers=${KAFKA_BROKERS:-127.0.0.1:19092}
prefix=live-$(date +%s%N)-
dir=$(mktemp -d)
"$lf" topics create --brokers "$brokers" --topic-prefix "$prefix" --log-level warn >/dev/null
"$lf" process --brokers "$brokers" --topic-prefix "$prefix" --data "$dir/proc" --http 127.0.0.1:18121 \
  --model "${LIVEFEED_MODEL:-test}" --log-level warn >"$dir/process.log" 2>&1 &
proc=$!
sleep 4
"$lf" simulate --brokers "$brokers" --topic-prefix "$prefix" --rate "$rate" --log-level warn >"$dir/simulate.log" 2>&1 &
sim=$!
trap 'kill "$sim" "$proc" 2>/dev/null || true' EXIT
sleep "$secs"
events=$(curl -s http://127.0.0.1:18121/metrics |
  awk -v g="${prefix}livestream" '$1 ~ "^livefeed_processor_events_total\\{group=\"" g "\"" {s += $2} END {print s + 0}')
read -r utime stime < <(awk '{print $14, $15}' "/proc/$proc/stat")
cpu=$(awk -v t=$((utime + stime)) -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", t / hz}')
echo "$lf: ${secs}s at ${rate} events/s offered: livestream group handled $events events," \
  "process CPU ${cpu}s: $(awk -v e="$events" -v c="$cpu" 'BEGIN {printf "%.0f", e / c}') input events per CPU-second" \
  "(load $(cut -d' ' -f1 /proc/loadavg); logs in $dir)"
