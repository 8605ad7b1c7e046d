#!/usr/bin/env bash
# A local 3-node Apache Kafka cluster (KRaft) on one machine, for livefeed's
# broker-fault test: each node is a combined broker+controller JVM with its
# own ports, data dir, log and pid file; the three controllers form a static
# 3-voter quorum. Topics default to replication factor 3 and
# min.insync.replicas 2, so one node down loses nothing written with
# acks=all. It runs beside kafka.sh's single broker and uses the same jars
# (kafka.sh fetch).
#
#   kafka-cluster.sh fetch                 download the jars (kafka.sh fetch; idempotent)
#   kafka-cluster.sh start                 format fresh storage for 3 nodes, start them, wait until
#                                          every node answers and sees all 3 brokers (so the quorum
#                                          has a leader); prints KAFKA_CLUSTER_BROKERS=h:p,h:p,h:p
#                                          on stdout (eval-able)
#   kafka-cluster.sh stop                  stop every node (SIGTERM, then SIGKILL), delete the data
#   kafka-cluster.sh stop-node N [--kill]  stop node N (1-3), keeping its data: SIGTERM (a controlled
#                                          shutdown that moves its leaders first) or, with --kill,
#                                          SIGKILL (a crash)
#   kafka-cluster.sh start-node N          start node N again on its data, wait until it answers and
#                                          the cluster has 3 brokers
#   kafka-cluster.sh status                one line per node; exit 0 only if all 3 answer
#   kafka-cluster.sh quorum                the KRaft quorum (kafka-metadata-quorum describe --status)
#   kafka-cluster.sh logs N [LINES]        the last LINES (default 100) lines of node N's log
#
# Node N (1-3) is broker id N, its client port is KAFKA_CLUSTER_PORT + 2(N-1) (19192, 19194,
# 19196) and its controller port the next one (19193, 19195, 19197). Everything except the
# KAFKA_CLUSTER_BROKERS line goes to stderr:
#   eval "$(deploy/kafka/kafka-cluster.sh start)" && export KAFKA_CLUSTER_BROKERS
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

KAFKA_VERSION=${KAFKA_VERSION:-4.4.0}
KAFKA_HOME=${LIVEFEED_KAFKA_HOME:-$HOME/.cache/livefeed/kafka-$KAFKA_VERSION}
DATA=${LIVEFEED_KAFKA_CLUSTER_DATA:-/tmp/livefeed-kafka-cluster}
KAFKA_HOST=127.0.0.1
BASE_PORT=${KAFKA_CLUSTER_PORT:-19192}
HEAP_OPTS=${KAFKA_CLUSTER_HEAP_OPTS:--Xms128m -Xmx384m}
START_TIMEOUT=${KAFKA_START_TIMEOUT:-120}
STOP_TIMEOUT=${KAFKA_STOP_TIMEOUT:-30}
JAVA=${JAVA:-java}
if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" && "$JAVA" == java ]]; then
  JAVA="$JAVA_HOME/bin/java"
fi
NODES=(1 2 3)

LIBS_DIR="$KAFKA_HOME/libs"
CONF_DIR="$DATA/config" # the CLI tools' log4j config (java_tool)

log() { printf 'kafka-cluster.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# write_log4j FILE LEVEL, port_open PORT, java_tool MAIN ARGS...
# shellcheck source=deploy/kafka/lib.sh
source "$SCRIPT_DIR/lib.sh"

# ---------------------------------------------------------------- nodes ----

broker_port() { echo $((BASE_PORT + 2 * ($1 - 1))); }
controller_port() { echo $((BASE_PORT + 2 * ($1 - 1) + 1)); }
node_dir() { echo "$DATA/node$1"; }
# pid and log live next to (not inside) the data dir: `stop` deletes the
# data but the logs stay for post-mortems until the next `start`.
node_pid_file() { echo "$DATA-node$1.pid"; }
node_log() { echo "$DATA-node$1.log"; }
node_conf() { echo "$(node_dir "$1")/server.properties"; }

all_brokers() {
  local n out=()
  for n in "${NODES[@]}"; do out+=("$KAFKA_HOST:$(broker_port "$n")"); done
  local IFS=,
  echo "${out[*]}"
}

voters() {
  local n out=()
  for n in "${NODES[@]}"; do out+=("$n@$KAFKA_HOST:$(controller_port "$n")"); done
  local IFS=,
  echo "${out[*]}"
}

check_node() {
  [[ "${1:-}" =~ ^[1-3]$ ]] || die "node must be 1, 2 or 3 (got '${1:-}')"
}

# Prints node N's pid if its pid file points at our live kafka.Kafka JVM.
running_pid() {
  local f pid
  f=$(node_pid_file "$1")
  [[ -f "$f" ]] || return 1
  pid=$(cat "$f" 2>/dev/null || true)
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # Guard against pid reuse: the process must be a kafka.Kafka on our config.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "kafka.Kafka $(node_conf "$1")" || return 1
  echo "$pid"
}

# How many brokers node N's metadata lists (kcat), or, without kcat, 3 if
# its port is open and its log says it started (the best we can tell).
brokers_seen() {
  local port
  port=$(broker_port "$1")
  port_open "$port" || { echo 0; return; }
  if command -v kcat >/dev/null; then
    kcat -L -b "$KAFKA_HOST:$port" -m 2 -J 2>/dev/null |
      grep -o '"brokers":\[[^]]*\]' | grep -o '"id":[0-9]*' | wc -l
  elif grep -qE 'Kafka Server started|Transition from STARTING to STARTED' "$(node_log "$1")" 2>/dev/null; then
    echo 3
  else
    echo 0
  fi
}

# A node is ready when it answers a metadata request listing all 3 brokers:
# brokers register with the active controller, so this also means the
# quorum has elected a leader.
node_ready() { [[ "$(brokers_seen "$1")" -eq ${#NODES[@]} ]]; }

write_server_properties() { # $1 = node
  local n=$1
  cat >"$(node_conf "$n")" <<EOF
# Generated by deploy/kafka/kafka-cluster.sh: node $n of a 3-node KRaft cluster for tests.
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$(voters)
listeners=PLAINTEXT://$KAFKA_HOST:$(broker_port "$n"),CONTROLLER://$KAFKA_HOST:$(controller_port "$n")
advertised.listeners=PLAINTEXT://$KAFKA_HOST:$(broker_port "$n")
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$(node_dir "$n")/kraft-logs

num.partitions=8
auto.create.topics.enable=false
# One node down: every partition keeps a leader and 2 in-sync replicas,
# so acks=all writes go on and nothing acknowledged is lost.
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
unclean.leader.election.enable=false
group.initial.rebalance.delay.ms=0
EOF
}

start_jvm() { # $1 = node
  local n=$1 pid
  # shellcheck disable=SC2086  # HEAP_OPTS / KAFKA_JVM_OPTS are word lists
  run_detached "$(node_log "$n")" "$JAVA" $HEAP_OPTS \
    -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -XX:CICompilerCount=2 -XX:ActiveProcessorCount=2 \
    -Dlog4j2.configurationFile="$CONF_DIR/log4j2.properties" -Dkafka.logs.dir="$(node_dir "$n")" \
    ${KAFKA_JVM_OPTS:-} \
    -cp "$LIBS_DIR/*" kafka.Kafka "$(node_conf "$n")"
  pid=$DETACHED_PID
  echo "$pid" >"$(node_pid_file "$n")"
  log "node $n: started (pid $pid) on $KAFKA_HOST:$(broker_port "$n"), log: $(node_log "$n")"
}

# wait_ready NODE...: until each node is ready, failing (with the log tail)
# if one exits or the timeout passes.
wait_ready() {
  local deadline=$((SECONDS + START_TIMEOUT)) n pending=("$@") still
  while ((${#pending[@]} > 0)); do
    still=()
    for n in "${pending[@]}"; do
      if ! running_pid "$n" >/dev/null; then
        log "node $n exited during startup; last lines of $(node_log "$n"):"
        tail -n 60 "$(node_log "$n")" >&2 || true
        die "node $n failed to start"
      fi
      node_ready "$n" || still+=("$n")
    done
    pending=("${still[@]+"${still[@]}"}")
    ((${#pending[@]} == 0)) && break
    if ((SECONDS >= deadline)); then
      for n in "${pending[@]}"; do
        log "node $n not ready after ${START_TIMEOUT}s (sees $(brokers_seen "$n") brokers); last lines of $(node_log "$n"):"
        tail -n 40 "$(node_log "$n")" >&2 || true
      done
      die "cluster not ready within ${START_TIMEOUT}s"
    fi
    sleep 0.25
  done
}

stop_pid() { # $1 = node, $2 = pid, $3 = signal
  local n=$1 pid=$2 sig=$3
  kill "-$sig" "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    log "node $n still alive after ${STOP_TIMEOUT}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$(node_pid_file "$n")"
}

# --------------------------------------------------------------- commands ----

cmd_fetch() { "$SCRIPT_DIR/kafka.sh" fetch >&2; }

cmd_start() {
  local n pid up=0
  for n in "${NODES[@]}"; do
    if running_pid "$n" >/dev/null; then up=$((up + 1)); fi
  done
  if ((up == ${#NODES[@]})); then
    wait_ready "${NODES[@]}"
    log "already running at $(all_brokers); leaving it as is (run 'stop' first for a fresh cluster)"
    echo "KAFKA_CLUSTER_BROKERS=$(all_brokers)"
    return 0
  fi
  ((up == 0)) || die "$up of ${#NODES[@]} nodes are running; 'start-node N' the others, or '$0 stop' first"
  for n in "${NODES[@]}"; do
    rm -f "$(node_pid_file "$n")"
    for p in "$(broker_port "$n")" "$(controller_port "$n")"; do
      port_open "$p" && die "port $KAFKA_HOST:$p is already in use by another process"
    done
  done
  command -v "$JAVA" >/dev/null || die "java not found (need Java 17+)"

  cmd_fetch

  local t0=$SECONDS
  rm -rf "$DATA"
  mkdir -p "$CONF_DIR"
  write_log4j "$CONF_DIR/log4j2.properties" INFO
  write_log4j "$CONF_DIR/log4j2-tools.properties" WARN
  local cluster_id
  cluster_id=$(java_tool kafka.tools.StorageTool random-uuid | tail -n1)
  [[ "$cluster_id" =~ ^[A-Za-z0-9_-]{22}$ ]] || die "storage tool returned a bad cluster id: '$cluster_id'"
  # Format the three nodes' storage with the same cluster id, in parallel
  # (a JVM each, ~1 s).
  local pids=()
  for n in "${NODES[@]}"; do
    mkdir -p "$(node_dir "$n")/kraft-logs"
    write_server_properties "$n"
    java_tool kafka.tools.StorageTool format -t "$cluster_id" -c "$(node_conf "$n")" \
      >"$(node_dir "$n")/format.out" 2>&1 &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do
    n=${NODES[$i]}
    if ! wait "${pids[$i]}"; then
      cat "$(node_dir "$n")/format.out" >&2
      die "formatting node $n's storage failed"
    fi
  done

  log "starting a 3-node kafka $KAFKA_VERSION cluster $cluster_id (voters $(voters))"
  for n in "${NODES[@]}"; do
    : >"$(node_log "$n")"
    start_jvm "$n"
  done
  wait_ready "${NODES[@]}"
  log "cluster up in $((SECONDS - t0))s: $(all_brokers)"
  echo "KAFKA_CLUSTER_BROKERS=$(all_brokers)"
}

cmd_stop() {
  local n pid
  for n in "${NODES[@]}"; do
    if pid=$(running_pid "$n"); then
      log "node $n: stopping (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  # Stopped together, the nodes cannot finish a controlled shutdown once
  # the quorum is gone, and the data is deleted anyway: SIGKILL whatever is
  # still up after a short grace.
  local deadline=$((SECONDS + ${KAFKA_CLUSTER_STOP_GRACE:-5}))
  for n in "${NODES[@]}"; do
    while pid=$(running_pid "$n") && ((SECONDS < deadline)); do sleep 0.1; done
    if pid=$(running_pid "$n"); then stop_pid "$n" "$pid" KILL; fi
    rm -f "$(node_pid_file "$n")"
  done
  rm -rf "$DATA"
  log "removed $DATA"
}

cmd_stop_node() {
  local n=${1:-} mode=${2:-} pid sig=TERM t0=$SECONDS
  check_node "$n"
  case "$mode" in
    "") ;;
    --kill) sig=KILL ;;
    *) die "stop-node N [--kill] (got '$mode')" ;;
  esac
  pid=$(running_pid "$n") || { log "node $n not running"; return 0; }
  log "node $n: SIG$sig (pid $pid)"
  stop_pid "$n" "$pid" "$sig"
  log "node $n stopped in $((SECONDS - t0))s (data kept)"
}

cmd_start_node() {
  local n=${1:-} t0=$SECONDS
  check_node "$n"
  if running_pid "$n" >/dev/null; then
    log "node $n already running"
  else
    [[ -f "$(node_conf "$n")" ]] || die "node $n has no data in $(node_dir "$n"); run '$0 start' first"
    local p
    for p in "$(broker_port "$n")" "$(controller_port "$n")"; do
      port_open "$p" && die "port $KAFKA_HOST:$p is already in use by another process"
    done
    start_jvm "$n"
  fi
  wait_ready "$n"
  log "node $n up in $((SECONDS - t0))s"
}

cmd_status() {
  local n pid ok=0
  for n in "${NODES[@]}"; do
    if pid=$(running_pid "$n"); then
      if node_ready "$n"; then
        echo "node $n: running (pid $pid) at $KAFKA_HOST:$(broker_port "$n")"
        ok=$((ok + 1))
      else
        echo "node $n: process $pid alive, sees $(brokers_seen "$n") of ${#NODES[@]} brokers at $KAFKA_HOST:$(broker_port "$n")"
      fi
    else
      echo "node $n: not running"
    fi
  done
  ((ok == ${#NODES[@]}))
}

cmd_quorum() {
  [[ -f "$CONF_DIR/log4j2-tools.properties" ]] || die "no cluster data in $DATA; run '$0 start' first"
  java_tool org.apache.kafka.tools.MetadataQuorumCommand --bootstrap-server "$(all_brokers)" describe --status
}

cmd_logs() {
  check_node "${1:-}"
  tail -n "${2:-100}" "$(node_log "$1")"
}

usage() {
  sed -n '2,28p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

case "${1:-}" in
  fetch) cmd_fetch ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  stop-node) shift; cmd_stop_node "$@" ;;
  start-node) shift; cmd_start_node "$@" ;;
  status) cmd_status ;;
  quorum) cmd_quorum ;;
  logs) shift; cmd_logs "$@" ;;
  *) usage ;;
esac
