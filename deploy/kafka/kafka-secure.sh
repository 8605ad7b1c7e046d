#!/usr/bin/env bash
# A second local single-node Apache Kafka (KRaft) that only speaks SASL_SSL,
# for livefeed's security tests: TLS with a throwaway CA, SASL PLAIN and
# SCRAM-SHA-256/512 users. It shares the jars of kafka.sh (same version, same
# cache) but has its own ports, data dir, pid and log, so it runs beside the
# plain broker of kafka.sh.
#
#   kafka-secure.sh start     make a CA + server certificate (openssl), format fresh storage with
#                             the SCRAM users (kafka-storage format --add-scram), start, wait
#                             until a SASL_SSL metadata request succeeds; prints eval-able
#                             `export KAFKA_SECURE_*=...` lines on stdout
#   kafka-secure.sh stop      SIGTERM (then SIGKILL) the broker and delete its data dir
#   kafka-secure.sh status    exit 0 if up, 1 otherwise
#   kafka-secure.sh env       print the export lines of the running broker again
#   kafka-secure.sh logs [N]  last N (default 100) lines of the broker log
#
# Printed variables: KAFKA_SECURE_BROKERS (host:port, SASL_SSL), KAFKA_SECURE_CA_FILE (PEM),
# KAFKA_SECURE_PLAIN_USERNAME/_PASSWORD (SASL PLAIN), KAFKA_SECURE_SCRAM_USERNAME/_PASSWORD
# (SCRAM-SHA-512 and SCRAM-SHA-256). Passwords are random per start. Everything else goes to
# stderr:  eval "$(deploy/kafka/kafka-secure.sh start)"
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

KAFKA_VERSION=${KAFKA_VERSION:-4.4.0}
KAFKA_HOME=${LIVEFEED_KAFKA_HOME:-$HOME/.cache/livefeed/kafka-$KAFKA_VERSION}
DATA=${LIVEFEED_KAFKA_SECURE_DATA:-/tmp/livefeed-kafka-secure}
HOST=127.0.0.1
PORT=${KAFKA_SECURE_PORT:-19392}
CONTROLLER_PORT=${KAFKA_SECURE_CONTROLLER_PORT:-19393}
HEAP_OPTS=${KAFKA_SECURE_HEAP_OPTS:--Xms128m -Xmx512m}
START_TIMEOUT=${KAFKA_START_TIMEOUT:-90}
STOP_TIMEOUT=${KAFKA_STOP_TIMEOUT:-30}
JAVA=${JAVA:-java}
if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" && "$JAVA" == java ]]; then
  JAVA="$JAVA_HOME/bin/java"
fi

LIBS_DIR="$KAFKA_HOME/libs"
PID_FILE="$DATA.pid"
LOG_FILE="$DATA.log"
CONF_DIR="$DATA/config"
TLS_DIR="$DATA/tls"
ENV_FILE="$DATA/env"
BROKERS="$HOST:$PORT"
PLAIN_USER=livefeed-plain
SCRAM_USER=livefeed-scram

log() { printf 'kafka-secure.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

running_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid=$(cat "$PID_FILE" 2>/dev/null || true)
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "kafka.Kafka $CONF_DIR/server.properties" || return 1
  echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# A metadata request over SASL_SSL (PLAIN user) succeeds; without kcat, the
# port is open and the log says the server started.
broker_ready() {
  port_open "$PORT" || return 1
  if command -v kcat >/dev/null; then
    kcat -F "$CONF_DIR/kcat.conf" -L -m 2 -J 2>/dev/null | grep -q '"brokers":\[{"id":1'
  else
    grep -qE 'Kafka Server started|Transition from STARTING to STARTED' "$LOG_FILE" 2>/dev/null
  fi
}

java_tool() { # main-class args...
  local main=$1; shift
  "$JAVA" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$CONF_DIR/log4j2-tools.properties" \
    -cp "$LIBS_DIR/*" "$main" "$@"
}

write_log4j() { # $1 = file, $2 = root level
  cat >"$1" <<EOF
status = warn
name = livefeed-kafka-secure
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
EOF
}

# A CA and a server certificate for 127.0.0.1/localhost, valid 7 days; the
# broker's key store is PKCS#12, its trust store the CA's PEM.
make_certs() { # $1 = key store password
  local pw=$1
  mkdir -p "$TLS_DIR"
  (
    cd "$TLS_DIR"
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 7 -subj "/CN=livefeed test CA" \
      -keyout ca.key -out ca.pem \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' >server.ext
    openssl x509 -req -sha256 -days 7 -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
      -extfile server.ext -out server.pem 2>/dev/null
    openssl pkcs12 -export -in server.pem -inkey server.key -certfile ca.pem -name kafka \
      -out server.p12 -passout "pass:$pw"
    rm -f server.csr server.ext ca.srl
    chmod 600 ca.key server.key server.p12
  )
}

write_server_properties() { # $1 = file, $2 = store password, $3 = admin password, $4 = plain password
  cat >"$1" <<EOF
# Generated by deploy/kafka/kafka-secure.sh: single-node KRaft, SASL_SSL only, for tests.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$CONTROLLER_PORT
listeners=SASL_SSL://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT
advertised.listeners=SASL_SSL://$HOST:$PORT
inter.broker.listener.name=SASL_SSL
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL
log.dirs=$DATA/kraft-logs

sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-512,SCRAM-SHA-256
sasl.mechanism.inter.broker.protocol=PLAIN
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="$3" user_admin="$3" user_$PLAIN_USER="$4";
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;

ssl.keystore.type=PKCS12
ssl.keystore.location=$TLS_DIR/server.p12
ssl.keystore.password=$2
ssl.key.password=$2
ssl.truststore.type=PEM
ssl.truststore.location=$TLS_DIR/ca.pem
ssl.client.auth=none

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

print_env() { cat "$ENV_FILE"; }

cmd_start() {
  local pid
  if pid=$(running_pid); then
    if broker_ready; then
      log "already running (pid $pid) at $BROKERS; leaving it as is"
      print_env
      return 0
    fi
    die "a broker (pid $pid) is running but not answering on $BROKERS; run '$0 stop' first"
  fi
  rm -f "$PID_FILE"
  local p
  for p in "$PORT" "$CONTROLLER_PORT"; do
    port_open "$p" && die "port $HOST:$p is already in use by another process"
  done
  command -v "$JAVA" >/dev/null || die "java not found (need Java 17+)"
  command -v openssl >/dev/null || die "openssl not found (apt-get install -y openssl)"
  "$SCRIPT_DIR/kafka.sh" fetch

  local t0=$SECONDS
  rm -rf "$DATA"
  mkdir -p "$CONF_DIR" "$DATA/kraft-logs"
  chmod 700 "$DATA"
  local store_pw admin_pw plain_pw scram_pw
  store_pw=$(openssl rand -hex 16)
  admin_pw=$(openssl rand -hex 16)
  plain_pw=$(openssl rand -hex 16)
  scram_pw=$(openssl rand -hex 16)
  make_certs "$store_pw"
  write_log4j "$CONF_DIR/log4j2.properties" INFO
  write_log4j "$CONF_DIR/log4j2-tools.properties" WARN
  write_server_properties "$CONF_DIR/server.properties" "$store_pw" "$admin_pw" "$plain_pw"
  chmod 600 "$CONF_DIR/server.properties"
  cat >"$CONF_DIR/kcat.conf" <<EOF
bootstrap.servers=$BROKERS
security.protocol=SASL_SSL
sasl.mechanisms=PLAIN
sasl.username=$PLAIN_USER
sasl.password=$plain_pw
ssl.ca.location=$TLS_DIR/ca.pem
EOF
  chmod 600 "$CONF_DIR/kcat.conf"
  cat >"$ENV_FILE" <<EOF
export KAFKA_SECURE_BROKERS=$BROKERS
export KAFKA_SECURE_CA_FILE=$TLS_DIR/ca.pem
export KAFKA_SECURE_PLAIN_USERNAME=$PLAIN_USER
export KAFKA_SECURE_PLAIN_PASSWORD=$plain_pw
export KAFKA_SECURE_SCRAM_USERNAME=$SCRAM_USER
export KAFKA_SECURE_SCRAM_PASSWORD=$scram_pw
EOF
  chmod 600 "$ENV_FILE"

  local cluster_id
  cluster_id=$(java_tool kafka.tools.StorageTool random-uuid | tail -n1)
  [[ "$cluster_id" =~ ^[A-Za-z0-9_-]{22}$ ]] || die "storage tool returned a bad cluster id: '$cluster_id'"
  # SCRAM credentials live in the KRaft metadata log: add them at format time.
  if ! java_tool kafka.tools.StorageTool format -t "$cluster_id" -c "$CONF_DIR/server.properties" \
      --add-scram "SCRAM-SHA-512=[name=$SCRAM_USER,password=$scram_pw]" \
      --add-scram "SCRAM-SHA-256=[name=$SCRAM_USER,password=$scram_pw]" \
      >"$DATA/format.out" 2>&1; then
    cat "$DATA/format.out" >&2
    die "formatting $DATA/kraft-logs failed"
  fi

  log "starting SASL_SSL kafka $KAFKA_VERSION on $BROKERS, log: $LOG_FILE"
  : >"$LOG_FILE"
  # shellcheck disable=SC2086  # HEAP_OPTS is a word list
  setsid "$JAVA" $HEAP_OPTS \
    -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$CONF_DIR/log4j2.properties" -Dkafka.logs.dir="$DATA" \
    -cp "$LIBS_DIR/*" kafka.Kafka "$CONF_DIR/server.properties" \
    </dev/null >>"$LOG_FILE" 2>&1 &
  pid=$!
  echo "$pid" >"$PID_FILE"

  local deadline=$((SECONDS + START_TIMEOUT))
  until broker_ready; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PID_FILE"
      log "broker exited during startup; last lines of $LOG_FILE:"
      tail -n 60 "$LOG_FILE" >&2 || true
      die "kafka failed to start"
    fi
    if ((SECONDS >= deadline)); then
      log "broker not ready after ${START_TIMEOUT}s; last lines of $LOG_FILE:"
      tail -n 60 "$LOG_FILE" >&2 || true
      kill -KILL "$pid" 2>/dev/null || true
      rm -f "$PID_FILE"
      die "kafka did not become ready within ${START_TIMEOUT}s"
    fi
    sleep 0.25
  done
  log "SASL_SSL kafka up (pid $pid) in $((SECONDS - t0))s"
  print_env
}

cmd_stop() {
  local pid
  if pid=$(running_pid); then
    log "stopping SASL_SSL kafka (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.25; done
    if kill -0 "$pid" 2>/dev/null; then
      log "still alive after ${STOP_TIMEOUT}s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
  else
    log "SASL_SSL kafka not running"
  fi
  rm -f "$PID_FILE"
  rm -rf "$DATA"
  log "removed $DATA"
}

cmd_status() {
  local pid
  if pid=$(running_pid) && broker_ready; then
    echo "kafka-secure: running (pid $pid) at $BROKERS (SASL_SSL)"
    return 0
  fi
  echo "kafka-secure: not running"
  return 1
}

cmd_env() {
  running_pid >/dev/null || die "not running"
  print_env
}

usage() {
  sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) cmd_env ;;
  logs) shift; tail -n "${1:-100}" "$LOG_FILE" ;;
  *) usage ;;
esac
