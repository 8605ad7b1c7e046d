# shellcheck shell=bash
# live-lib.sh: what live-cpu.sh and live-hold.sh share (sourced).

# start_live BINARY RATE PREFIX METRICS_ADDR: creates the topics under
# PREFIX, starts `process` (metrics on METRICS_ADDR, model $LIVEFEED_MODEL
# or the generated test model) and, once it has joined, `simulate --rate
# RATE`; sets proc, sim and dir, and kills both on exit.
start_live() {
  local lf=$1 rate=$2 prefix=$3 metrics=$4
  local brokers=${KAFKA_BROKERS:-127.0.0.1:19092}
  dir=$(mktemp -d)
  "$lf" topics create --brokers "$brokers" --topic-prefix "$prefix" --log-level warn >/dev/null
  "$lf" process --brokers "$brokers" --topic-prefix "$prefix" --data "$dir/proc" --http "$metrics" \
    --model "${LIVEFEED_MODEL:-test}" --log-level warn >"$dir/process.log" 2>&1 &
  proc=$!
  sleep 4
  "$lf" simulate --brokers "$brokers" --topic-prefix "$prefix" --rate "$rate" --log-level warn >"$dir/simulate.log" 2>&1 &
  sim=$!
  trap 'kill "$sim" "$proc" 2>/dev/null || true' EXIT
}

# handled METRICS_ADDR PREFIX: input events the livestream group handled.
handled() {
  curl -s "http://$1/metrics" |
    awk -v g="${2}livestream" '$1 ~ "^livefeed_processor_events_total\\{group=\"" g "\"" {s += $2} END {print s + 0}'
}
