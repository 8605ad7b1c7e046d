#!/usr/bin/env bash
# backfill-live.sh: how long does the backfill of a feature added to the
# definitions file take while the pipeline keeps serving live traffic? On a
# fresh topic prefix on real Kafka: `livefeed simulate --rate RATE` and
# `livefeed process` (default features) run for HIST seconds, building the
# history; then process is stopped (SIGTERM, waited for: the only process
# of the group), restarted with --features FILE (the defaults plus
# bids_1h_backfill, a 1-hour count of bids) while the simulator keeps
# producing. Every 2 s it prints the backfill metrics (records replayed,
# remaining, warming runs) and the largest processor group lag, until every
# run finished (or MAXWAIT seconds), then the duration and records/s.
#
#   eval "$(deploy/kafka/kafka.sh start)"
#   bench/scripts/backfill-live.sh ./livefeed [RATE] [HIST] [MAXWAIT]    # 10000, 120, 300
#   LIVEFEED_MODEL=DIR ... embeds with a real model (default: the generated test model)
set -euo pipefail
if (($# < 1)); then
  sed -n '2,15p' "$0" >&2
  exit 2
fi
lf=$1 rate=${2:-10000} hist=${3:-120} maxwait=${4:-300}
brokers=${KAFKA_BROKERS:-127.0.0.1:19092}
# shellcheck source=bench/scripts/live-lib.sh
. "$(dirname "$0")/live-lib.sh"
prefix=bf-$(date +%s%N)-
metrics=127.0.0.1:18124
defaults=$(dirname "$0")/../../features/defaults.yaml

# metric NAME: the sum of a metric's series (0 when absent).
metric() {
  curl -s "http://$metrics/metrics" | awk -v n="$1" '$1 == n || index($1, n "{") == 1 {s += $2} END {printf "%.0f", s}'
}
lags() { # "group=records ..." for every processor group
  curl -s "http://$metrics/metrics" |
    awk -v p="$prefix" '$1 ~ "^livefeed_processor_group_lag_records" {g = $1; sub(".*group=\"" p, "", g); sub("\".*", "", g); printf "%s=%d ", g, $2}'
}
maxlag() { # the largest group lag in records
  curl -s "http://$metrics/metrics" |
    awk '$1 ~ "^livefeed_processor_group_lag_records" && $2 > m {m = $2} END {print m + 0}'
}
now() { date +%s.%N; }
since() { awk -v a="$(now)" -v b="$1" 'BEGIN {printf "%.1f", a - b}'; }

start_live "$lf" "$rate" "$prefix" "$metrics"
echo "history: simulate --rate $rate and process (default features) for ${hist}s on prefix $prefix"
sleep "$hist"
echo "history: livestream group handled $(handled "$metrics" "$prefix") events; lag $(lags)"

# Stop the group's only process and wait for it: a backfill is prepared
# when no process of the group runs (README, "Add a feature and watch it
# backfill").
kill -TERM "$proc"
wait "$proc" || true
features=$dir/features.yaml
cp "$defaults" "$features"
cat >>"$features" <<'EOF'
  - name: bids_1h_backfill
    description: bids in the last hour (added by bench/scripts/backfill-live.sh)
    entity: livestream
    sources: [auctions]
    filter: type == "bid"
    aggregation: count
    window: {type: sliding, size: 1h, hop: 5m}
    lateness: 2m
EOF
"$lf" features validate "$features"

t0=$(now)
"$lf" process --brokers "$brokers" --topic-prefix "$prefix" --data "$dir/proc" --http "$metrics" \
  --model "${LIVEFEED_MODEL:-test}" --features "$features" --log-level info >"$dir/process2.log" 2>&1 &
proc=$!
echo "restarted process with $features (simulator still at $rate/s)"

first=0 first_n=0 prev_n=0 prev_t=0 total=0 worst_lag=0 done_at=
while :; do
  sleep 2
  n=$(metric livefeed_backfill_records_replayed_total)
  rem=$(metric livefeed_backfill_remaining_records)
  warm=$(metric livefeed_backfill_warming_runs)
  l=$(maxlag)
  t=$(since "$t0")
  ((l > worst_lag)) && worst_lag=$l
  if ((n > 0)) && [[ $first == 0 ]]; then
    first=$t first_n=$n
  fi
  ((n + rem > total)) && total=$((n + rem))
  printf 't=%6ss replayed %9d (%7.0f/s)  remaining %9d  warming runs %d  lag %s\n' \
    "$t" "$n" "$(awk -v d="$((n - prev_n))" -v a="$t" -v b="$prev_t" 'BEGIN {print d / (a - b)}')" "$rem" "$warm" "$(lags)"
  prev_n=$n prev_t=$t
  if ((n > 0 && rem == 0 && warm == 0)); then
    done_at=$t
    break
  fi
  if awk -v t="$t" -v m="$maxwait" 'BEGIN {exit !(t > m)}'; then
    break
  fi
done
for _ in 1 2 3 4 5; do # the lag just after
  sleep 2
  printf 't=%6ss after the backfill: lag %s\n' "$(since "$t0")" "$(lags)"
done
grep -E 'backfill (started|done)' "$dir/process2.log" | cut -c1-300 || true
if [[ -z $done_at ]]; then
  echo "$lf: backfill NOT finished ${maxwait}s after the restart: replayed $n of $total records (logs in $dir)"
  exit 1
fi
echo "$lf: ${hist}s of history at ${rate} events/s; backfill of bids_1h_backfill finished ${done_at}s after the restart" \
  "(first record replayed by ${first}s), $n records replayed," \
  "$(awk -v n="$((n - first_n))" -v a="$first" -v b="$done_at" 'BEGIN {printf "%.0f", (b > a ? n / (b - a) : 0)}') records/s" \
  "after the first sample, $(awk -v n="$n" -v b="$done_at" 'BEGIN {printf "%.0f", n / b}') records/s from the restart;" \
  "max group lag ${worst_lag} records ($(awk -v l="$worst_lag" -v r="$rate" 'BEGIN {printf "%.1f", l / r}') s of input)" \
  "(load $(cut -d' ' -f1-3 /proc/loadavg); logs in $dir)"
