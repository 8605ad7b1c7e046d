#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft, broker+controller in one JVM) for
# livefeed's integration tests and CI. The jars come from Maven Central via
# deploy/kafka/pom.xml; no tarball, no Docker.
#
#   kafka.sh fetch            download the broker's jars into the cache (idempotent)
#   kafka.sh start            format fresh storage, start the broker, wait until it answers;
#                             prints KAFKA_BROKERS=127.0.0.1:<port> on stdout (eval-able)
#   kafka.sh stop             SIGTERM (then SIGKILL) the broker and delete the data dir
#   kafka.sh status           exit 0 and say so if the broker is up, exit 1 otherwise
#   kafka.sh topics ARGS...   run Kafka's kafka-topics tool against the broker
#   kafka.sh logs [N]         print the last N (default 100) lines of the broker log
#
# Everything except the KAFKA_BROKERS line goes to stderr, so
#   eval "$(deploy/kafka/kafka.sh start)" && export KAFKA_BROKERS
# works. See README.md for the environment variables.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

KAFKA_VERSION=${KAFKA_VERSION:-4.4.0}
KAFKA_HOME=${LIVEFEED_KAFKA_HOME:-$HOME/.cache/livefeed/kafka-$KAFKA_VERSION}
KAFKA_DATA=${LIVEFEED_KAFKA_DATA:-/tmp/livefeed-kafka}
KAFKA_HOST=127.0.0.1
KAFKA_PORT=${KAFKA_PORT:-19092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-19093}
KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}
KAFKA_START_TIMEOUT=${KAFKA_START_TIMEOUT:-90}
KAFKA_STOP_TIMEOUT=${KAFKA_STOP_TIMEOUT:-30}
JAVA=${JAVA:-java}
if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" && "$JAVA" == java ]]; then
  JAVA="$JAVA_HOME/bin/java"
fi

LIBS_DIR="$KAFKA_HOME/libs"
STAMP="$KAFKA_HOME/.fetched"
# pid and log live next to (not inside) the data dir: `stop` deletes the data
# dir but the log stays for post-mortems until the next `start`.
PID_FILE=${LIVEFEED_KAFKA_PID:-$KAFKA_DATA.pid}
LOG_FILE=${LIVEFEED_KAFKA_LOG:-$KAFKA_DATA.log}
CONF_DIR="$KAFKA_DATA/config"
BROKERS="$KAFKA_HOST:$KAFKA_PORT"

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- fetch ----

# The stamp records what was fetched; a changed pom or version refetches.
fetch_key() {
  printf '%s\n' "$KAFKA_VERSION" | cat - "$SCRIPT_DIR/pom.xml" | sha256sum | cut -d' ' -f1
}

is_fetched() {
  [[ -f "$STAMP" && -d "$LIBS_DIR" ]] && [[ "$(cat "$STAMP")" == "$(fetch_key)" ]]
}

cmd_fetch() {
  if is_fetched; then
    log "kafka $KAFKA_VERSION already fetched in $KAFKA_HOME"
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found (apt-get install -y maven)"
  log "fetching kafka $KAFKA_VERSION jars from Maven Central into $LIBS_DIR"
  mkdir -p "$KAFKA_HOME"
  local tmp
  tmp=$(mktemp -d "$KAFKA_HOME/.libs.XXXXXX")
  # Uses ~/.m2 (or whatever maven.repo.local the user configured) as cache.
  if ! mvn -B -q -Dstyle.color=never -f "$SCRIPT_DIR/pom.xml" \
      -Dkafka.version="$KAFKA_VERSION" \
      dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$tmp" 2>&1 \
      | sed 's/\x1b\[[0-9;]*m//g' >&2; then  # Debian's mvn 3.8 emits stray ANSI resets even with -B
    rm -rf "$tmp"
    die "mvn dependency:copy-dependencies failed (is kafka $KAFKA_VERSION on Maven Central?)"
  fi
  [[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ]] || { rm -rf "$tmp"; die "kafka_2.13-$KAFKA_VERSION.jar missing after fetch"; }
  rm -rf "$LIBS_DIR"
  mv "$tmp" "$LIBS_DIR"
  fetch_key >"$STAMP"
  log "fetched $(find "$LIBS_DIR" -name '*.jar' | wc -l) jars ($(du -sh "$LIBS_DIR" | cut -f1))"
}

# -------------------------------------------------------------- helpers ----

# Prints the broker pid if the pid file points at our live broker JVM.
running_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid=$(cat "$PID_FILE" 2>/dev/null || true)
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # Guard against pid reuse: the process must be a kafka.Kafka on our config.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "kafka.Kafka $CONF_DIR/server.properties" || return 1
  echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/$KAFKA_HOST/$1") 2>/dev/null; }

# Broker answers a Metadata request (kcat), or, without kcat, the port accepts
# connections and the log says the server finished starting.
broker_ready() {
  port_open "$KAFKA_PORT" || return 1
  if command -v kcat >/dev/null; then
    kcat -L -b "$BROKERS" -m 2 -J 2>/dev/null | grep -q '"brokers":\[{"id":1'
  else
    grep -qE 'Kafka Server started|Transition from STARTING to STARTED' "$LOG_FILE" 2>/dev/null
  fi
}

write_log4j() { # $1 = file, $2 = root level
  cat >"$1" <<EOF
status = warn
name = livefeed-kafka
appender.out.type = Console
appender.out.name = OUT
appender.out.target = SYSTEM_ERR
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = $2
rootLogger.appenderRef.out.ref = OUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.authorizer.name = kafka.authorizer.logger
logger.authorizer.level = WARN
EOF
}

java_tool() { # main-class args...; short-lived CLI JVM
  local main=$1; shift
  "$JAVA" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$CONF_DIR/log4j2-tools.properties" \
    -cp "$LIBS_DIR/*" "$main" "$@"
}

write_server_properties() { # $1 = file
  cat >"$1" <<EOF
# Generated by deploy/kafka/kafka.sh: single-node KRaft for tests.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT,CONTROLLER://$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_DATA/kraft-logs

num.partitions=8
auto.create.topics.enable=false
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
}

# ---------------------------------------------------------------- start ----

cmd_start() {
  local pid
  if pid=$(running_pid); then
    if broker_ready; then
      log "already running (pid $pid) at $BROKERS; leaving it as is (run 'stop' first for a fresh broker)"
      echo "KAFKA_BROKERS=$BROKERS"
      return 0
    fi
    die "a broker (pid $pid) is running but not answering on $BROKERS; run '$0 stop' first"
  fi
  if [[ -f "$PID_FILE" ]]; then
    log "removing stale pid file $PID_FILE"
    rm -f "$PID_FILE"
  fi
  local p
  for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    port_open "$p" && die "port $KAFKA_HOST:$p is already in use by another process"
  done
  command -v "$JAVA" >/dev/null || die "java not found (need Java 17+)"

  cmd_fetch

  local t0=$SECONDS
  rm -rf "$KAFKA_DATA"
  mkdir -p "$CONF_DIR" "$KAFKA_DATA/kraft-logs"
  write_log4j "$CONF_DIR/log4j2.properties" INFO
  write_log4j "$CONF_DIR/log4j2-tools.properties" WARN
  write_server_properties "$CONF_DIR/server.properties"

  local cluster_id
  cluster_id=$(java_tool kafka.tools.StorageTool random-uuid | tail -n1)
  [[ "$cluster_id" =~ ^[A-Za-z0-9_-]{22}$ ]] || die "storage tool returned a bad cluster id: '$cluster_id'"
  if ! java_tool kafka.tools.StorageTool format -t "$cluster_id" -c "$CONF_DIR/server.properties" \
      >"$KAFKA_DATA/format.out" 2>&1; then
    cat "$KAFKA_DATA/format.out" >&2
    die "formatting $KAFKA_DATA/kraft-logs failed"
  fi

  log "starting kafka $KAFKA_VERSION (cluster $cluster_id) on $BROKERS, log: $LOG_FILE"
  : >"$LOG_FILE"
  # setsid + closed stdio: the broker must not hold the caller's stdout, or
  # `$(kafka.sh start)` would never see EOF.
  # shellcheck disable=SC2086  # KAFKA_HEAP_OPTS / KAFKA_JVM_OPTS are word lists
  setsid "$JAVA" $KAFKA_HEAP_OPTS \
    -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$CONF_DIR/log4j2.properties" -Dkafka.logs.dir="$KAFKA_DATA" \
    ${KAFKA_JVM_OPTS:-} \
    -cp "$LIBS_DIR/*" kafka.Kafka "$CONF_DIR/server.properties" \
    </dev/null >>"$LOG_FILE" 2>&1 &
  pid=$!
  echo "$pid" >"$PID_FILE"

  local deadline=$((SECONDS + KAFKA_START_TIMEOUT))
  until broker_ready; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PID_FILE"
      log "broker exited during startup; last lines of $LOG_FILE:"
      tail -n 60 "$LOG_FILE" >&2 || true
      die "kafka failed to start"
    fi
    if ((SECONDS >= deadline)); then
      log "broker not ready after ${KAFKA_START_TIMEOUT}s; last lines of $LOG_FILE:"
      tail -n 60 "$LOG_FILE" >&2 || true
      kill -KILL "$pid" 2>/dev/null || true
      rm -f "$PID_FILE"
      die "kafka did not become ready within ${KAFKA_START_TIMEOUT}s"
    fi
    sleep 0.25
  done
  log "kafka up (pid $pid) in $((SECONDS - t0))s"
  echo "KAFKA_BROKERS=$BROKERS"
}

# ----------------------------------------------------------------- stop ----

cmd_stop() {
  local pid
  if pid=$(running_pid); then
    log "stopping kafka (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + KAFKA_STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.25; done
    if kill -0 "$pid" 2>/dev/null; then
      log "still alive after ${KAFKA_STOP_TIMEOUT}s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
  else
    log "kafka not running"
  fi
  rm -f "$PID_FILE"
  rm -rf "$KAFKA_DATA"
  log "removed $KAFKA_DATA"
}

# --------------------------------------------------------------- status ----

cmd_status() {
  local pid
  if pid=$(running_pid); then
    if broker_ready; then
      echo "kafka: running (pid $pid) at $BROKERS"
      return 0
    fi
    echo "kafka: process $pid alive but not answering on $BROKERS"
    return 1
  fi
  echo "kafka: not running"
  return 1
}

# --------------------------------------------------------------- extras ----

cmd_topics() {
  is_fetched || die "kafka not fetched; run '$0 fetch' (or start) first"
  [[ -f "$CONF_DIR/log4j2-tools.properties" ]] || { mkdir -p "$CONF_DIR"; write_log4j "$CONF_DIR/log4j2-tools.properties" WARN; }
  java_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$BROKERS" "$@"
}

cmd_logs() { tail -n "${1:-100}" "$LOG_FILE"; }

usage() {
  sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

case "${1:-}" in
  fetch) cmd_fetch ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  topics) shift; cmd_topics "$@" ;;
  logs) shift; cmd_logs "$@" ;;
  *) usage ;;
esac
