#!/usr/bin/env bash
# live-hold.sh: can `livefeed process` hold a live rate? Runs it on a fresh
# topic prefix on real Kafka, `livefeed simulate --rate RATE` for SECONDS,
# and every 10 s prints the livestream group's handled rate, each group's
# committed lag (records, and seconds of input at RATE), the process RSS
# and its CPU per event. The summary covers the samples after the first
# minute (start-up: joins, the simulator's bootstrap of streams).
#
#   eval "$(deploy/kafka/kafka.sh start)"
#   bench/scripts/live-hold.sh ./livefeed [RATE] [SECONDS]     # 10000, 300
#   LIVEFEED_MODEL=DIR ... embeds with a real model (default: the generated test model)
set -euo pipefail
if (($# < 1)); then
  sed -n '2,11p' "$0" >&2
  exit 2
fi
lf=$1 rate=${2:-10000} secs=${3:-300}
# shellcheck source=bench/scripts/live-lib.sh
. "$(dirname "$0")/live-lib.sh"
prefix=hold-$(date +%s%N)-
metrics=127.0.0.1:18123
start_live "$lf" "$rate" "$prefix" "$metrics"

hz=$(getconf CLK_TCK)
cpu() { awk -v hz="$hz" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$proc/stat"; }
lags() { # "group=records ..." for every processor group
  curl -s "http://$metrics/metrics" |
    awk -v p="$prefix" '$1 ~ "^livefeed_processor_group_lag_records" {g = $1; sub(".*group=\"" p, "", g); sub("\".*", "", g); printf "%s=%d ", g, $2}'
}
maxlag() { # the largest group lag in records
  curl -s "http://$metrics/metrics" |
    awk '$1 ~ "^livefeed_processor_group_lag_records" && $2 > m {m = $2} END {print m + 0}'
}

prev_e=0 prev_c=0 t=0
worst_lag=0 worst_rss=0 sum_e=0 sum_c=0
while ((t < secs)); do
  sleep 10
  t=$((t + 10))
  e=$(handled "$metrics" "$prefix") c=$(cpu) l=$(maxlag)
  rss=$(awk '/VmRSS/ {printf "%d", $2 / 1024}' "/proc/$proc/status")
  de=$((e - prev_e))
  dc=$(awk -v a="$c" -v b="$prev_c" 'BEGIN {printf "%.2f", a - b}')
  printf 't=%3ds handled %6.0f/s  cpu %.2f cores  %6.0f events/CPU-s  rss %5d MB  lag %s\n' \
    "$t" "$(awk -v d="$de" 'BEGIN {print d / 10}')" "$(awk -v d="$dc" 'BEGIN {print d / 10}')" \
    "$(awk -v d="$de" -v c="$dc" 'BEGIN {print (c > 0 ? d / c : 0)}')" "$rss" "$(lags)"
  if ((t > 60)); then
    ((l > worst_lag)) && worst_lag=$l
    ((rss > worst_rss)) && worst_rss=$rss
    sum_e=$((sum_e + de))
    sum_c=$(awk -v a="$sum_c" -v b="$dc" 'BEGIN {printf "%.2f", a + b}')
  fi
  prev_e=$e prev_c=$c
done
echo "$lf: ${secs}s at ${rate} events/s offered; after the first minute:" \
  "handled $(awk -v e="$sum_e" -v s="$((secs - 60))" 'BEGIN {printf "%.0f", e / s}')/s," \
  "$(awk -v e="$sum_e" -v c="$sum_c" 'BEGIN {printf "%.0f", (c > 0 ? e / c : 0)}') input events per CPU-second," \
  "max group lag ${worst_lag} records ($(awk -v l="$worst_lag" -v r="$rate" 'BEGIN {printf "%.1f", l / r}') s of input)," \
  "max RSS ${worst_rss} MB (load $(cut -d' ' -f1 /proc/loadavg); logs in $dir)"
