# shellcheck shell=bash
# Shared helpers of the local Kafka scripts (kafka.sh, kafka-cluster.sh, kafka-secure.sh).
# Sourced, not run.

# write_log4j FILE LEVEL: a log4j2 config that logs to stderr at LEVEL, with
# Kafka's noisy request/state-change/authorizer loggers at WARN.
write_log4j() {
  cat >"$1" <<LOG4J
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
LOG4J
}

# port_open PORT: something accepts connections on $KAFKA_HOST:PORT.
port_open() { (exec 3<>"/dev/tcp/$KAFKA_HOST/$1") 2>/dev/null; }

# java_tool MAIN-CLASS ARGS...: a short-lived CLI JVM on the broker's jars
# ($LIBS_DIR), logging with $CONF_DIR/log4j2-tools.properties.
java_tool() {
  local main=$1; shift
  "$JAVA" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$CONF_DIR/log4j2-tools.properties" \
    -cp "$LIBS_DIR/*" "$main" "$@"
}

# run_detached LOG CMD...: starts CMD in the background in a session of its
# own, stdin from /dev/null, stdout and stderr appended to LOG, and with no
# other descriptor of the caller: `$(kafka.sh start)` must see EOF, and a
# caller's lock (flock /tmp/heavy.lock go test …, whose test restarts a
# broker) must not live on in the broker. The pid (CMD's: setsid execs it)
# is in DETACHED_PID once the subshell has exec'd it: until then
# /proc/PID is still a copy of the calling script, and a caller that checks
# the pid's command line (kafka-cluster.sh's running_pid) took the node for
# dead; TestBrokerFault failed so in CI once, restarting a killed node on a
# busy machine.
run_detached() {
  local log=$1 i
  shift
  (
    for fd in "/proc/$BASHPID/fd/"*; do
      fd=${fd##*/}
      if ((fd > 2)); then eval "exec $fd>&-"; fi
    done
    exec setsid "$@" </dev/null >>"$log" 2>&1
  ) &
  DETACHED_PID=$!
  for ((i = 0; i < 400; i++)); do # at most ~20 s
    [[ -r /proc/$DETACHED_PID/cmdline ]] || break # it exited: the caller sees that
    tr '\0' ' ' <"/proc/$DETACHED_PID/cmdline" 2>/dev/null | grep -qF -- "$1 " && break
    sleep 0.05
  done
}

# await_broker PID TIMEOUT: waits until the calling script's broker_ready
# succeeds. If the broker exits first, or TIMEOUT seconds pass (the broker is
# then killed), it prints the tail of $LOG_FILE, removes $PID_FILE and dies.
await_broker() {
  local pid=$1 timeout=$2 deadline=$((SECONDS + $2))
  until broker_ready; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PID_FILE"
      log "broker exited during startup; last lines of $LOG_FILE:"
      tail -n 60 "$LOG_FILE" >&2 || true
      die "kafka failed to start"
    fi
    if ((SECONDS >= deadline)); then
      log "broker not ready after ${timeout}s; last lines of $LOG_FILE:"
      tail -n 60 "$LOG_FILE" >&2 || true
      kill -KILL "$pid" 2>/dev/null || true
      rm -f "$PID_FILE"
      die "kafka did not become ready within ${timeout}s"
    fi
    sleep 0.25
  done
}
