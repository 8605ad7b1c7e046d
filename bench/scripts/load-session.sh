#!/bin/bash
# One load session on real Kafka: process + serve + simulate --rate RATE, then bench load.
# Used for the "Load" figures in BENCHMARKS.md: RATE=10000 flock /tmp/heavy.lock bench/scripts/load-session.sh
set -u
LF=${LF:-./livefeed}   # go build -o livefeed ./cmd/livefeed
BROKERS=${KAFKA_BROKERS:-127.0.0.1:19092}   # eval "$(deploy/kafka/kafka.sh start)"
RATE=${RATE:-10000}; QPS=${QPS:-1000}; DUR=${DUR:-60s}; WARM=${WARM:-30}
MODEL=${MODEL:-test}   # the generated test model; MODEL=$(deploy/models/fetch.sh all-minilm-l6-v2) for the real one
P=load-$(date +%s)-
D=/tmp/load/run-$P; mkdir -p $D
echo "prefix $P  date $(date -u +%FT%TZ)  $(uptime)"
$LF topics create --brokers $BROKERS --topic-prefix $P --log-level warn || exit 1
$LF process --brokers $BROKERS --topic-prefix $P --model "$MODEL" --data $D/proc --http 127.0.0.1:18101 --log-level warn >$D/process.log 2>&1 & PROC=$!
for i in $(seq 60); do curl -sf http://127.0.0.1:18101/readyz >/dev/null && break; sleep 1; done
echo "process ready after ~${i}s"
$LF serve --brokers $BROKERS --topic-prefix $P --model "$MODEL" --data $D/serve --http 127.0.0.1:18102 --log-level warn >$D/serve.log 2>&1 & SERVE=$!
sleep 3
$LF simulate --brokers $BROKERS --topic-prefix $P --rate $RATE --log-level warn >$D/simulate.log 2>&1 & SIM=$!
for i in $(seq 60); do curl -sf http://127.0.0.1:18102/readyz >/dev/null && break; sleep 1; done
echo "serve ready after ~${i}s; warming up ${WARM}s"
sleep $WARM
# processor + simulator RSS every second, in the background
( while kill -0 $PROC 2>/dev/null; do echo "$(date +%s) proc $(awk '/VmRSS/{print $2}' /proc/$PROC/status) sim $(awk '/VmRSS/{print $2}' /proc/$SIM/status) kafka $(awk '/VmRSS/{print $2}' /proc/$(pgrep -f -o 'kafka.Kafka')/status)"; sleep 1; done ) >$D/rss.log 2>/dev/null & RSSL=$!
top -b -d 5 -n $(( ${DUR%s} / 5 + 1 )) -p $PROC,$SERVE,$SIM,$(pgrep -f -o 'kafka.Kafka') >$D/top.log 2>&1 & TOP=$!
echo "load start $(date -u +%T)  $(uptime)"
$LF bench load --url http://127.0.0.1:18102 --rate $QPS --duration $DUR --server-pid $SERVE \
  --proc-metrics http://127.0.0.1:18101/metrics --brokers $BROKERS --group-prefix $P ${EXTRA:-}
echo "load end $(date -u +%T)  $(uptime)"
curl -s http://127.0.0.1:18102/readyz; echo
kill $SIM; sleep 1; kill $PROC $SERVE; kill $RSSL $TOP 2>/dev/null
wait $PROC $SERVE $SIM 2>/dev/null
awk '{print $3}' $D/rss.log | sort -n | sed -n '1p;$p' | tr '\n' ' ' | sed 's/^/processor VmRSS KiB min,max: /'; echo
awk "NF==7{print \$5}" $D/rss.log | sort -n | sed -n '1p;$p' | tr '\n' ' ' | sed 's/^/simulator VmRSS KiB min,max: /'; echo
awk "NF==7{print \$7}" $D/rss.log | sort -n | sed -n '1p;$p' | tr '\n' ' ' | sed 's/^/kafka VmRSS KiB min,max: /'; echo
grep -E "^ *($PROC|$SERVE|$SIM) " $D/top.log | awk '{c[$1]+=$9; n[$1]++} END {for (p in c) printf "pid %s avg %%CPU %.0f (%d top samples)\n", p, c[p]/n[p], n[p]}'
echo "pids: process $PROC serve $SERVE simulate $SIM"
for f in simulate process serve; do echo "== $f.log"; tail -n 3 $D/$f.log; done
