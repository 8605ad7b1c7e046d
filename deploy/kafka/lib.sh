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
